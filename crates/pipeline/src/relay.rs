//! The outbox relay (product.md message path, step 4): publishes committed outbox rows to the
//! event log and only then marks them PROCESSED.
//!
//! Rows are selected by status (`PENDING`), never by "id greater than the last one seen", so a
//! row that committed after a later one is still found on the next pass (field notes, failure
//! mode 12). The relay wakes on the core's commit notification and also polls every
//! [`RelayConfig::poll_interval`], so such a late row waits at most one interval even if its
//! notification was consumed by an earlier pass. Publish failures are retried with exponential
//! backoff; unpublished rows are never marked. A row published but not marked (crash, or
//! marking failed) is published again: consumers drop duplicates by event id. The running
//! relay does not wait for a pass's mark before the next pass ([`OutboxRelay::run`]): later
//! passes skip the rows whose mark is in flight.
//!
//! Run exactly one relay per database (serve mode: one task); several relays would publish the
//! same rows twice (harmless but wasteful) and interleave conversations' order across them.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chat_domain::Millis;
use chat_storage::OutboxStore;
use tokio::sync::{Notify, mpsc};
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
        let ids = self.publish_pass(&HashSet::new()).await?;
        if !ids.is_empty() {
            self.store.mark_outbox_processed(&ids, Millis::now()).await?;
            tracing::trace!(rows = ids.len(), "relayed outbox rows");
        }
        Ok(ids.len())
    }

    /// Reads up to [`RelayConfig::batch`] PENDING rows that are not in `skip` (published, mark
    /// in flight) and publishes their events in order; returns the published rows' ids.
    async fn publish_pass(&self, skip: &HashSet<i64>) -> Result<Vec<i64>> {
        let batch = self.cfg.batch.max(1);
        // `skip`'s rows are still PENDING: read as many more, so a full batch of others fits.
        let mut rows = self.store.pending_outbox(batch + skip.len() as i64).await?;
        rows.retain(|r| !skip.contains(&r.id));
        rows.truncate(batch as usize);
        if rows.is_empty() {
            return Ok(Vec::new());
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
        Ok(ids)
    }

    /// Runs passes until `cancel` fires: immediately again after a full batch, otherwise on the
    /// next commit notification or after [`RelayConfig::poll_interval`]; after a failure, after
    /// the backoff delay.
    ///
    /// Marking is pipelined: a pass hands its published ids to a marking task and goes on
    /// without waiting for that write (on SQLite it queues behind the group commits of sends,
    /// so waiting would hold every later commit's delivery back by a commit or two). Rows
    /// whose mark is in flight are skipped by later passes, so they are not published twice;
    /// at most [`MAX_IN_FLIGHT_BATCHES`] batches await their marks before a pass waits. A
    /// failed mark leaves its rows PENDING: a later pass publishes them again (at-least-once;
    /// consumers drop duplicates by event id). On cancellation a pass in progress is abandoned
    /// and queued marks get up to [`MARK_DRAIN`] to finish; rows published but not marked are
    /// published again by the next relay.
    pub async fn run(self, cancel: CancellationToken) {
        let marks = Arc::new(InFlight::default());
        let (mark_tx, mark_rx) = mpsc::unbounded_channel::<Vec<i64>>();
        let marker = tokio::spawn(mark_loop(self.store.clone(), mark_rx, marks.clone()));
        let max_in_flight = (self.cfg.batch.max(1) as usize).saturating_mul(MAX_IN_FLIGHT_BATCHES);
        let mut backoff = self.cfg.backoff_min;
        loop {
            if cancel.is_cancelled() {
                break;
            }
            let skip = marks.snapshot();
            let wait = match cancel.run_until_cancelled(self.publish_pass(&skip)).await {
                None => break,
                Some(Ok(ids)) => {
                    backoff = self.cfg.backoff_min;
                    let n = ids.len();
                    if n > 0 {
                        marks.add(&ids);
                        // The marker ends only after this sender is dropped.
                        let _ = mark_tx.send(ids);
                    }
                    if marks.wait_below(max_in_flight, &cancel).await.is_none() {
                        break;
                    }
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
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep(w) => continue,
                    }
                }
            };
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = self.notify.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
        drop(mark_tx);
        if tokio::time::timeout(MARK_DRAIN, marker).await.is_err() {
            tracing::warn!("outbox relay: marks still pending at shutdown; those rows are published again later");
        }
    }
}

/// Batches of [`RelayConfig::batch`] rows that may await their marks before a pass waits.
pub const MAX_IN_FLIGHT_BATCHES: usize = 4;

/// How long a cancelled [`OutboxRelay::run`] lets queued marks finish.
pub const MARK_DRAIN: Duration = Duration::from_secs(2);

/// Ids of rows published and not yet marked (or whose mark failed moments ago).
///
/// Concurrency: a `std::sync::Mutex` held only to copy, add or remove ids, never across an
/// await; `changed` wakes a pass waiting for room.
#[derive(Debug, Default)]
struct InFlight {
    ids: Mutex<HashSet<i64>>,
    changed: Notify,
}

impl InFlight {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<i64>> {
        self.ids.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn snapshot(&self) -> HashSet<i64> {
        self.lock().clone()
    }

    fn add(&self, ids: &[i64]) {
        self.lock().extend(ids.iter().copied());
    }

    fn remove(&self, ids: &[i64]) {
        let mut set = self.lock();
        for id in ids {
            set.remove(id);
        }
        drop(set);
        self.changed.notify_waiters();
    }

    /// Waits until fewer than `max` ids are in flight; `None` when `cancel` fired first.
    async fn wait_below(&self, max: usize, cancel: &CancellationToken) -> Option<()> {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Registered before the check, so a removal between the check and the await wakes it.
            changed.as_mut().enable();
            if self.lock().len() < max {
                return Some(());
            }
            cancel.run_until_cancelled(changed).await?;
        }
    }
}

/// Marks published rows, merging whatever passes queued meanwhile into one write; ends when
/// the sender is dropped and the queue is empty.
async fn mark_loop(store: Arc<dyn OutboxStore>, mut rx: mpsc::UnboundedReceiver<Vec<i64>>, marks: Arc<InFlight>) {
    while let Some(mut ids) = rx.recv().await {
        while let Ok(more) = rx.try_recv() {
            ids.extend(more);
        }
        match store.mark_outbox_processed(&ids, Millis::now()).await {
            Ok(()) => tracing::trace!(rows = ids.len(), "relayed outbox rows"),
            Err(e) => {
                tracing::warn!(error = %e, rows = ids.len(), "marking relayed outbox rows failed; they are published again")
            }
        }
        marks.remove(&ids);
    }
}
