//! BEGIN / COMMIT / ABORT.
//!
//! A transaction buffers its SEND frames (at most `max_frames_per_transaction`, at most
//! `max_transactions_per_session` open at once). COMMIT executes them in order, each as a
//! normal SEND (each message commits on its own in the store; a refused one is an ERROR that
//! ends the session and drops the rest), then sends COMMIT's RECEIPT. ABORT drops them. An
//! unknown transaction id, or BEGIN of an open one, is an ERROR.

use super::send::short;
use super::{Handled, Next, Session, StompError};

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
        self.receipt(receipt.as_deref()).await;
        Ok(Next::Continue)
    }

    pub(super) async fn on_commit(&mut self, transaction: String, receipt: Option<String>) -> Handled {
        let Some(frames) = self.transactions.remove(&transaction) else {
            return Err(StompError::new(format!("unknown transaction '{}'", short(&transaction))));
        };
        for frame in frames {
            self.process_send(frame).await?;
        }
        self.receipt(receipt.as_deref()).await;
        Ok(Next::Continue)
    }

    pub(super) async fn on_abort(&mut self, transaction: String, receipt: Option<String>) -> Handled {
        if self.transactions.remove(&transaction).is_none() {
            return Err(StompError::new(format!("unknown transaction '{}'", short(&transaction))));
        }
        self.receipt(receipt.as_deref()).await;
        Ok(Next::Continue)
    }
}
