//! DISCONNECT: the RECEIPT (when asked) is written after everything queued before it, then
//! the socket is closed (spec "DISCONNECT": graceful shutdown).

use super::{Handled, Next, Session};
use crate::delivery::Outbound;

impl Session {
    pub(super) async fn on_disconnect(&mut self, receipt: Option<String>) -> Handled {
        self.receipt(receipt.as_deref());
        self.queue(Outbound::Close(None));
        Ok(Next::Close)
    }
}
