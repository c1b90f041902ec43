//! Feeding the tantivy index: [`Indexer`] (catch-up from the database, then the event log)
//! and [`reindex`] (a rebuild from the database).
//!
//! The indexer's start, so that no change is missed across restarts (the in-process log does
//! not survive one) and a large first build does not hold up delivery:
//! 1. note `t0`, then apply every message changed since the index's watermark minus
//!    [`CATCH_UP_MARGIN_MS`] (the margin covers commits that took their timestamp earlier),
//!    read from the database in (`updated_at`, `message_id`) order;
//! 2. subscribe to the event log as consumer group [`CONSUMER_GROUP`];
//! 3. apply what changed since `t0` minus the margin (what committed during step 1, before the
//!    subscription);
//! 4. consume the log: per batch, apply the created, edited and deleted messages, commit the
//!    index (searchable from then on), then commit the log offsets (at-least-once; applying a
//!    message state twice is harmless, and a conversation's events arrive in seq order, so the
//!    last applied state is the latest); after a batch that was not full, wait
//!    [`IndexerConfig::refresh_interval`] (default 1 s) before reading again, so that a steady
//!    trickle of messages makes one index commit per interval, not one per message.
//!
//! Metrics (Prometheus, through the `metrics` facade): `search_index_messages_applied_total`,
//! `search_index_commits_total`, `search_index_commit_failures_total`.

use std::sync::Arc;
use std::time::Duration;

use chat_domain::{EventPayload, Message, Millis};
use chat_pipeline::{EventLog, LogRecord, PipelineError};
use chat_storage::SearchStore;
use chat_storage::search::ChangeCursor;
use tokio_util::sync::CancellationToken;

use crate::tantivy_index::{IndexedMessage, blocking};
use crate::{Result, SearchError, TantivyIndex};

/// The event-log consumer group of the indexer.
pub const CONSUMER_GROUP: &str = "search";
/// How far before the watermark the catch-up starts (ms): 5 minutes.
pub const CATCH_UP_MARGIN_MS: i64 = 300_000;
/// Messages read from the database per catch-up or rebuild page.
const SCAN_PAGE: i64 = 1000;

/// Settings of [`Indexer`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexerConfig {
    /// Most log records applied per index commit (default 1024).
    pub max_batch: usize,
    /// Wait before retrying after a failure of the log, the database or the index (default
    /// 1 s).
    pub retry_delay: Duration,
    /// Refresh interval (as Elasticsearch's `index.refresh_interval`, whose default this
    /// shares): after a commit of a batch smaller than `max_batch`, the indexer waits this
    /// long before reading the log again, so a busy log is indexed in few large commits (each
    /// tantivy commit writes a segment and feeds merges) instead of one per small batch. A
    /// message is searchable at most about this long (plus the relay's and the commit's few
    /// milliseconds) after it reached the log; under load (full batches) there is no wait.
    /// Zero commits every batch as soon as it is read. Default [`DEFAULT_REFRESH_INTERVAL`]
    /// (1 s).
    pub refresh_interval: Duration,
}

/// Default [`IndexerConfig::refresh_interval`]: 1 s (Elasticsearch's default
/// `index.refresh_interval`).
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(1);

impl Default for IndexerConfig {
    fn default() -> Self {
        IndexerConfig {
            max_batch: 1024,
            retry_delay: Duration::from_secs(1),
            refresh_interval: DEFAULT_REFRESH_INTERVAL,
        }
    }
}

/// Keeps a [`TantivyIndex`] up to date (see the module documentation). The only writer of
/// its index.
pub struct Indexer {
    index: Arc<TantivyIndex>,
    store: Arc<dyn SearchStore>,
    log: Arc<dyn EventLog>,
    cfg: IndexerConfig,
}

/// The message state an event carries, for the events that change what is searchable.
fn message_of(record: &LogRecord) -> Option<IndexedMessage> {
    match &record.event.payload {
        EventPayload::Message { message, .. }
        | EventPayload::MessageEdited { message }
        | EventPayload::MessageDeleted { message } => Some(message.into()),
        _ => None,
    }
}

/// Applies `messages` and commits with the largest `updated_at` among them as watermark.
async fn apply_and_commit(index: &Arc<TantivyIndex>, messages: Vec<IndexedMessage>) -> Result<()> {
    let index = Arc::clone(index);
    blocking(move || {
        let watermark = messages.iter().map(|m| m.updated_at).max().unwrap_or(Millis(0));
        let applied = messages.iter().try_for_each(|m| index.apply(m)).and_then(|()| index.commit(watermark));
        match &applied {
            Ok(()) => {
                metrics::counter!("search_index_messages_applied_total").increment(messages.len() as u64);
                metrics::counter!("search_index_commits_total").increment(1);
            }
            Err(_) => {
                metrics::counter!("search_index_commit_failures_total").increment(1);
                index.rollback();
            }
        }
        applied
    })
    .await
}

/// Applies, page by page, every message changed since `since` (one index commit per page);
/// `progress` gets the number applied so far after each page. Returns that number.
async fn scan(
    index: &Arc<TantivyIndex>,
    store: &Arc<dyn SearchStore>,
    since: Millis,
    mut progress: impl FnMut(u64) + Send,
) -> Result<u64> {
    let mut after: Option<ChangeCursor> = None;
    let mut done = 0u64;
    loop {
        let page: Vec<Message> = store.messages_changed_since(since, after, SCAN_PAGE).await?;
        let Some(last) = page.last() else { return Ok(done) };
        after = Some(ChangeCursor { updated_at: last.updated_at, message_id: last.id });
        done += page.len() as u64;
        apply_and_commit(index, page.iter().map(IndexedMessage::from).collect()).await?;
        progress(done);
    }
}

impl Indexer {
    /// An indexer of `index`, catching up from `store` and consuming `log`.
    pub fn new(
        index: Arc<TantivyIndex>,
        store: Arc<dyn SearchStore>,
        log: Arc<dyn EventLog>,
        cfg: IndexerConfig,
    ) -> Self {
        Indexer { index, store, log, cfg: IndexerConfig { max_batch: cfg.max_batch.max(1), ..cfg } }
    }

    /// Steps 1 to 3 of the module documentation: catches up from the database and subscribes.
    async fn start(&self) -> Result<Box<dyn chat_pipeline::EventConsumer>> {
        let t0 = Millis::now();
        let watermark = self.index.stats()?.watermark;
        let n = scan(&self.index, &self.store, Millis(watermark.0.saturating_sub(CATCH_UP_MARGIN_MS)), |_| {}).await?;
        tracing::info!(messages = n, since = %watermark.to_rfc3339(), "search index caught up from the database");
        let consumer = self.log.subscribe(CONSUMER_GROUP).await.map_err(|e| unavailable(&e))?;
        scan(&self.index, &self.store, Millis(t0.0.saturating_sub(CATCH_UP_MARGIN_MS)), |_| {}).await?;
        Ok(consumer)
    }

    /// Runs until `cancel` fires or the log closes: catches up, then applies the log (see the
    /// module documentation). Failures of the database, the log or the index are logged and
    /// retried after `retry_delay`; the log's uncommitted records are applied again.
    pub async fn run(self, cancel: CancellationToken) {
        'restart: loop {
            let mut consumer = loop {
                let started = tokio::select! {
                    () = cancel.cancelled() => return,
                    r = self.start() => r,
                };
                match started {
                    Ok(c) => break c,
                    Err(e) => {
                        tracing::warn!(error = %e, "search indexer: catch-up failed; retrying");
                        if sleep_or_cancel(&cancel, self.cfg.retry_delay).await {
                            return;
                        }
                    }
                }
            };
            loop {
                let batch = tokio::select! {
                    () = cancel.cancelled() => return,
                    r = consumer.next_batch(self.cfg.max_batch) => r,
                };
                let batch = match batch {
                    Ok(b) => b,
                    Err(PipelineError::Closed) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, "search indexer: event log failed; subscribing again");
                        if sleep_or_cancel(&cancel, self.cfg.retry_delay).await {
                            return;
                        }
                        continue 'restart;
                    }
                };
                let messages: Vec<IndexedMessage> = batch.iter().filter_map(message_of).collect();
                if !messages.is_empty()
                    && let Err(e) = apply_and_commit(&self.index, messages).await
                {
                    tracing::warn!(error = %e, "search indexer: index commit failed; catching up again");
                    if sleep_or_cancel(&cancel, self.cfg.retry_delay).await {
                        return;
                    }
                    continue 'restart;
                }
                if let Err(e) = consumer.commit(&batch).await {
                    tracing::warn!(error = %e, "search indexer: offset commit failed; subscribing again");
                    continue 'restart;
                }
                if batch.len() < self.cfg.max_batch && sleep_or_cancel(&cancel, self.cfg.refresh_interval).await {
                    return;
                }
            }
        }
    }
}

fn unavailable(e: &PipelineError) -> SearchError {
    SearchError::Store(chat_storage::StoreError::Unavailable(format!("event log: {e}")))
}

/// Sleeps `d`; `true` when cancelled first.
async fn sleep_or_cancel(cancel: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        () = cancel.cancelled() => true,
        () = tokio::time::sleep(d) => false,
    }
}

/// Rebuilds `index` from the database: removes every document, applies every message (one
/// commit per page of 1000, so searches keep working on the partial index; each commit's
/// watermark is the rebuild's start), and calls `progress(done, total)` after each page.
/// Returns the number of messages read (deleted ones included). The index must not have
/// another writer: stop `chat-sys serve` first (its lock makes [`TantivyIndex::open`] fail).
///
/// # Errors
/// [`SearchError::Store`] or [`SearchError::Index`]; the index then holds what was applied
/// so far, and a new run starts over.
pub async fn reindex(
    index: &Arc<TantivyIndex>,
    store: &Arc<dyn SearchStore>,
    mut progress: impl FnMut(u64, u64) + Send,
) -> Result<u64> {
    let started = Millis::now();
    let total = store.count_messages_changed_since(Millis(i64::MIN)).await?;
    progress(0, total);
    {
        let index = Arc::clone(index);
        blocking(move || {
            index.clear()?;
            index.commit_rebuilt(started)
        })
        .await?;
    }
    let done = scan(index, store, Millis(i64::MIN), |done| progress(done, total.max(done))).await?;
    let index = Arc::clone(index);
    blocking(move || index.commit_rebuilt(started)).await?;
    Ok(done)
}
