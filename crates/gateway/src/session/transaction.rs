//! BEGIN / COMMIT / ABORT.
//!
//! A transaction buffers its SEND frames, each parsed and validated when it arrives (see
//! [`super::send`]): at most `max_frames_per_transaction` per transaction, at most
//! `max_transaction_bytes` of bodies over all open transactions of the session, at most
//! `max_transactions_per_session` open at once; exceeding a limit is an ERROR naming it.
//!
//! COMMIT executes every buffered SEND in order, each as a normal SEND, and reports per
//! message: each stored message gets its ack offset on `/user/queue/notifications/private`
//! and its SEND's RECEIPT. A COMMIT is not atomic across messages (the service stores each
//! message on its own): when the service refuses some (a database failure, text limits, slow
//! mode, membership changed since the SEND), the others are still applied and the COMMIT is
//! answered by an ERROR listing the refused ones (then the close); otherwise by its RECEIPT.
//! ABORT drops the buffer. An unknown transaction id, or BEGIN of an open one, is an ERROR.

use super::send::short;
use super::{Handled, Next, Session, StompError};

/// Refused SENDs listed in a COMMIT's ERROR.
const MAX_LISTED: usize = 3;

impl Session {
    pub(super) async fn on_begin(&mut self, transaction: String, receipt: Option<String>) -> Handled {
        if self.transactions.contains_key(&transaction) {
            return Err(StompError::new(format!("transaction '{}' is already open", short(&transaction))));
        }
        let max = self.shared.cfg.max_transactions_per_session;
        if self.transactions.len() >= max {
            return Err(StompError::new(format!(
                "open transactions limit exceeded (max_transactions_per_session = {max})"
            )));
        }
        self.transactions.insert(transaction, Vec::new());
        self.receipt(receipt.as_deref());
        Ok(Next::Continue)
    }

    pub(super) async fn on_commit(&mut self, transaction: String, receipt: Option<String>) -> Handled {
        let Some(sends) = self.transactions.remove(&transaction) else {
            return Err(StompError::new(format!("unknown transaction '{}'", short(&transaction))));
        };
        let total = sends.len();
        self.transaction_bytes -= sends.iter().map(|p| p.body_len).sum::<usize>();
        let mut refused = Vec::new();
        for (i, send) in sends.into_iter().enumerate() {
            let what = send.describe();
            let send_receipt = send.receipt.clone();
            match self.run_prepared(send).await {
                Ok(()) => self.receipt(send_receipt.as_deref()),
                Err(e) => refused.push(format!("#{} {what} ({})", i + 1, e.message)),
            }
        }
        if refused.is_empty() {
            self.receipt(receipt.as_deref());
            return Ok(Next::Continue);
        }
        let n = refused.len();
        let mut listed = refused.into_iter().take(MAX_LISTED).collect::<Vec<_>>().join("; ");
        if n > MAX_LISTED {
            listed.push_str("; ...");
        }
        Err(StompError::new(format!(
            "COMMIT of transaction '{}': {n} of {total} SENDs refused, the others were applied: {listed}",
            short(&transaction)
        )))
    }

    pub(super) async fn on_abort(&mut self, transaction: String, receipt: Option<String>) -> Handled {
        let Some(sends) = self.transactions.remove(&transaction) else {
            return Err(StompError::new(format!("unknown transaction '{}'", short(&transaction))));
        };
        self.transaction_bytes -= sends.iter().map(|p| p.body_len).sum::<usize>();
        self.receipt(receipt.as_deref());
        Ok(Next::Continue)
    }
}
