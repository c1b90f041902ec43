//! ACK / NACK.
//!
//! Deliveries are acknowledged automatically when written (`ack:auto`, the default). For
//! `client` and `client-individual` subscriptions MESSAGE frames carry an `ack` header; ACK
//! and NACK of those ids are accepted without effect (delivery is at-least-once with catch-up
//! by seq, and read positions are reported through `/app/ack`). An ACK/NACK naming an unknown
//! transaction is an ERROR.

use chat_stomp::AckFrame;

use super::send::short;
use super::{Handled, Next, Session, StompError};

impl Session {
    pub(super) async fn on_ack(&mut self, frame: AckFrame) -> Handled {
        if let Some(tx) = &frame.transaction
            && !self.transactions.contains_key(tx)
        {
            return Err(StompError::new(format!("unknown transaction '{}'", short(tx))));
        }
        self.receipt(frame.receipt.as_deref());
        Ok(Next::Continue)
    }
}
