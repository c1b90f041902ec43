//! The outbox relay (product.md message path, step 4): publishes committed outbox rows to the
//! event log and only then marks them PROCESSED.
//!
//! Rows are selected by status (`PENDING`), never by "id greater than the last one seen", so a
//! row that committed after a later one is still found on the next pass (field notes, failure
//! mode 12). The relay wakes on the core's commit notification and also polls every
//! [`RelayConfig::poll_interval`], so such a late row waits at most one interval even if its
//! notification was consumed by an earlier pass. Publish failures are retried with exponential
//! backoff; unpublished rows are never marked. A row published but not marked (crash, or
//! marking failed) is published again: consumers drop duplicates by event id.
//!
//! Run exactly one relay per database (serve mode: one task); several relays would publish the
//! same rows twice (harmless but wasteful) and interleave conversations' order across them.

use std::sync::Arc;
use std::time::Duration;

use chat_domain::Millis;
use chat_storage::OutboxStore;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::Result;
use crate::log::EventLog;

/// Settings of [`OutboxRelay`].
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// Most rows per pass (one `pending_outbox` call, one publish, one mark); default 500.
    pub batch: i64,
    /// Poll interval when no commit notification arrives; default 50 ms.
    pub poll_interval: Duration,
    /// First retry delay after a failure; doubles per consecutive failure; default 50 ms.
    pub backoff_min: Duration,
    /// Cap of the retry delay; default 5 s.
    pub backoff_max: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            batch: 500,
            poll_interval: Duration::from_millis(50),
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(5),
        }
    }
}

/// Moves committed outbox rows to the [`EventLog`].
pub struct OutboxRelay {
    store: Arc<dyn OutboxStore>,
    log: Arc<dyn EventLog>,
    /// The core's commit notification (`ChatService::commit_notify`): a permit is stored when
    /// no pass is waiting, so a commit during a pass triggers another pass.
    notify: Arc<Notify>,
    cfg: RelayConfig,
}

impl OutboxRelay {
    /// A relay reading `store`'s outbox into `log`, woken by `notify` (pass
    /// `ChatService::commit_notify()`; any `Arc<Notify>` works).
    pub fn new(store: Arc<dyn OutboxStore>, log: Arc<dyn EventLog>, notify: Arc<Notify>, cfg: RelayConfig) -> Self {
        OutboxRelay { store, log, notify, cfg }
    }

    /// One pass: reads up to [`RelayConfig::batch`] PENDING rows (per conversation in seq
    /// order), publishes their events in that order, then marks them PROCESSED. Returns how
    /// many rows were published and marked.
    ///
    /// # Errors
    /// Reading the outbox, publishing or marking failed. After a publish failure no row of the
    /// pass was marked; after a marking failure the rows stay PENDING and are published again
    /// on a later pass (duplicates downstream are dropped by event id).
    pub async fn run_once(&self) -> Result<usize> {
        let rows = self.store.pending_outbox(self.cfg.batch.max(1)).await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let events: Vec<_> = rows.into_iter().map(|r| r.event).collect();
        self.log.publish(&events).await?;
        // Fault injection (feature `failpoints`, `FAILPOINTS=relay-after-publish=return`): the
        // process dies after the log acknowledged and before the rows are marked, so the next
        // relay publishes them again (the scale-out tests check they are delivered once).
        fail::fail_point!("relay-after-publish", |_| {
            tracing::error!("failpoint relay-after-publish: aborting the process");
            std::process::abort()
        });
        self.store.mark_outbox_processed(&ids, Millis::now()).await?;
        tracing::trace!(rows = ids.len(), "relayed outbox rows");
        Ok(ids.len())
    }

    /// Runs passes until `cancel` fires: immediately again after a full batch, otherwise on the
    /// next commit notification or after [`RelayConfig::poll_interval`]; after a failure, after
    /// the backoff delay. A pass in progress when `cancel` fires is abandoned; rows it published
    /// but did not mark are published again by the next relay (at-least-once).
    pub async fn run(self, cancel: CancellationToken) {
        let mut backoff = self.cfg.backoff_min;
        loop {
            if cancel.is_cancelled() {
                return;
            }
            let wait = match cancel.run_until_cancelled(self.run_once()).await {
                None => return,
                Some(Ok(n)) => {
                    backoff = self.cfg.backoff_min;
                    if n as i64 >= self.cfg.batch.max(1) {
                        continue;
                    }
                    self.cfg.poll_interval
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "outbox relay pass failed");
                    let w = backoff;
                    backoff = (backoff * 2).min(self.cfg.backoff_max);
                    // After a failure wait the full backoff, not for a notification.
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(w) => continue,
                    }
                }
            };
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = self.notify.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}
