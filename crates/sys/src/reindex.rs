//! Search: the `[search]` configuration section, the wiring of the configured engine into a
//! core process ([`open_search`]), and `chat-sys reindex` ([`run`]).
//!
//! Engines (`search.engine`):
//! - `tantivy` (default): an embedded index in `search.dir` (default `{data_dir}/search`),
//!   kept up to date by an indexer consuming the event log as consumer group `search` after
//!   catching up from the database, committing at most once per `search.refresh_interval_ms`
//!   (default 1000) while the log is not busy. One writer per index directory, so only for
//!   one process (`serve`); a second process on the same directory fails to start. On SQLite
//!   the database's FTS5 triggers are dropped at start (writes no longer maintain an index
//!   nobody queries).
//! - `database`: the database's own full-text index (PostgreSQL `tsvector` GIN,
//!   MySQL/MariaDB InnoDB FULLTEXT, SQLite FTS5), for scale-out where several core processes
//!   share the database. Nothing to feed. On SQLite, a start after one on `tantivy` recreates
//!   the FTS5 triggers and rebuilds the index (once; see
//!   `chat_storage::SqlStore::set_full_text_maintenance`).
//!
//! `chat-sys reindex` rebuilds the configured engine's index from the database with a
//! progress bar: for `tantivy`, every document (stop `serve` first: it holds the index's
//! writer lock); for `database`, the database's own index (SQLite FTS5 `rebuild`, PostgreSQL
//! `REINDEX`, MySQL/MariaDB `OPTIMIZE TABLE`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chat_core::service::ChatService;
use chat_pipeline::EventLog;
use chat_search::{DatabaseSearch, Indexer, IndexerConfig, SearchStore, TantivyIndex};
use chat_storage::SqlStore;
use chat_storage::search::FullTextChange;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::config::Config;

/// `search.engine`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchEngineSetting {
    /// The embedded tantivy index (default; one process).
    #[default]
    Tantivy,
    /// The database's own full-text search (any number of core processes).
    Database,
}

/// The `[search]` section.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchConfig {
    /// `tantivy` (default) or `database`.
    pub engine: SearchEngineSetting,
    /// Directory of the tantivy index. Default `{data_dir}/search`.
    pub dir: Option<PathBuf>,
    /// Refresh interval of the tantivy indexer, in milliseconds (as Elasticsearch's
    /// `index.refresh_interval`): after indexing a batch that did not fill the indexer's
    /// batch, it waits this long before the next, so a message becomes searchable at most
    /// about this long after it was sent, and a steady stream of messages costs one index
    /// commit (segment write, merges) per interval. 0 commits every batch at once (more CPU).
    /// Default 1000. Not used by the `database` engine, which sees a message when it commits.
    pub refresh_interval_ms: u64,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            engine: SearchEngineSetting::default(),
            dir: None,
            refresh_interval_ms: u64::try_from(chat_search::DEFAULT_REFRESH_INTERVAL.as_millis()).unwrap_or(1000),
        }
    }
}

impl SearchConfig {
    /// The tantivy index directory: `dir`, or `{data_dir}/search`.
    pub fn index_dir(&self, data_dir: &std::path::Path) -> PathBuf {
        self.dir.clone().unwrap_or_else(|| data_dir.join("search"))
    }

    /// The tantivy indexer's settings: the defaults with `refresh_interval_ms`.
    pub fn indexer_config(&self) -> IndexerConfig {
        IndexerConfig { refresh_interval: Duration::from_millis(self.refresh_interval_ms), ..IndexerConfig::default() }
    }
}

/// A running search engine of a core process: its indexer task, if it has one.
pub struct SearchRuntime {
    cancel: CancellationToken,
    indexer: Option<tokio::task::JoinHandle<()>>,
}

impl SearchRuntime {
    /// Stops the indexer (if any) and waits for it (at most 10 s), releasing the index.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        if let Some(task) = self.indexer
            && tokio::time::timeout(Duration::from_secs(10), task).await.is_err()
        {
            tracing::warn!("search indexer did not stop within 10 s");
        }
    }
}

/// Attaches the configured search engine to `service`. For `tantivy`, opens the index and
/// starts its indexer on `log` (needed then; `None` is an error). Makes the database
/// maintain its own full-text index only for `database` ([`full_text_maintenance`]).
///
/// # Errors
/// The index directory cannot be opened, is locked by another process, or holds an index
/// of another schema (delete it and run `chat-sys reindex`); `tantivy` without a log; the
/// database failing while its full-text maintenance is switched.
pub async fn open_search(
    config: &Config,
    service: ChatService,
    sql: Arc<SqlStore>,
    log: Option<Arc<dyn EventLog>>,
) -> anyhow::Result<(ChatService, SearchRuntime)> {
    let store: Arc<dyn SearchStore> = sql.clone();
    let cancel = CancellationToken::new();
    match config.search.engine {
        SearchEngineSetting::Database => {
            full_text_maintenance(&sql, true).await?;
            tracing::info!("search: the database's full-text index");
            let service = service.with_search(Arc::new(DatabaseSearch::new(store)));
            Ok((service, SearchRuntime { cancel, indexer: None }))
        }
        SearchEngineSetting::Tantivy => {
            let log = log.context(
                "search.engine = \"tantivy\" is for `chat-sys serve` (one process); \
                 set search.engine = \"database\" for the scale-out roles",
            )?;
            let dir = config.search.index_dir(&config.data_dir);
            let index = open_index(dir.clone(), store.clone()).await?;
            full_text_maintenance(&sql, false).await?;
            tracing::info!(
                dir = %dir.display(), refresh_interval_ms = config.search.refresh_interval_ms, "search: tantivy index"
            );
            let indexer = Indexer::new(index.clone(), store, log, config.search.indexer_config());
            let task = tokio::spawn(indexer.run(cancel.clone()));
            Ok((service.with_search(Arc::new(index)), SearchRuntime { cancel, indexer: Some(task) }))
        }
    }
}

/// The search engine of a scale-out core process (`chat-sys core`): always the database's
/// full-text search, which any number of core processes share; a configured `tantivy` (the
/// `serve` default) is overridden, with a log line saying so. The database is made to
/// maintain its full-text index ([`full_text_maintenance`]).
///
/// # Errors
/// The database failing while its full-text maintenance is switched on.
pub async fn scale_out_search(
    config: &Config,
    service: ChatService,
    sql: Arc<SqlStore>,
) -> anyhow::Result<ChatService> {
    if config.search.engine == SearchEngineSetting::Tantivy {
        tracing::info!("search: the database's full-text index (the tantivy index is for `serve` only)");
    }
    full_text_maintenance(&sql, true).await?;
    let store: Arc<dyn SearchStore> = sql;
    Ok(service.with_search(Arc::new(DatabaseSearch::new(store))))
}

/// Makes writes maintain the database's own full-text index (`on`: the `database` engine
/// answers searches) or not (SQLite: its FTS5 triggers cost every group commit, and only
/// that engine reads the index; the other databases keep theirs either way). Cheap when the
/// state is already right; switching on rebuilds the index, which is logged with its
/// duration. Returns what changed.
///
/// # Errors
/// The database failing (nothing changed then).
pub async fn full_text_maintenance(sql: &SqlStore, on: bool) -> anyhow::Result<FullTextChange> {
    let started = std::time::Instant::now();
    let change = sql.set_full_text_maintenance(on).await.with_context(|| {
        if on { "recreating the database's full-text triggers" } else { "dropping the database's full-text triggers" }
    })?;
    let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match change {
        FullTextChange::Unchanged => {}
        FullTextChange::Dropped => {
            tracing::info!(
                ms,
                "search: the engine is tantivy, so the database's own full-text index is no longer maintained \
                 (search.engine = \"database\" rebuilds it)"
            );
        }
        FullTextChange::Rebuilt => tracing::info!(ms, "search: the database's full-text index was rebuilt"),
    }
    Ok(change)
}

async fn open_index(dir: PathBuf, store: Arc<dyn SearchStore>) -> anyhow::Result<Arc<TantivyIndex>> {
    let shown = dir.display().to_string();
    tokio::task::spawn_blocking(move || TantivyIndex::open(&dir, store))
        .await
        .context("opening the search index")?
        .with_context(|| format!("opening the search index in {shown} (is another chat-sys using it?)"))
}

/// `chat-sys reindex`: rebuilds the configured engine's index from the database, showing a
/// progress bar on standard error; returns the number of messages read.
///
/// # Errors
/// Database errors; for `tantivy`, an index another process holds (stop `serve` first).
pub async fn run(config: &Config) -> anyhow::Result<u64> {
    let sql = Arc::new(crate::serve::open_store(config).await?);
    let store: Arc<dyn SearchStore> = sql.clone();
    let result = match config.search.engine {
        SearchEngineSetting::Database => {
            let bar = ProgressBar::new_spinner().with_message("rebuilding the database's full-text index");
            bar.enable_steady_tick(Duration::from_millis(100));
            let n = store.count_messages_changed_since(chat_domain::Millis(i64::MIN)).await?;
            // SQLite after `serve` on tantivy: the triggers come back with a rebuild of their own.
            if full_text_maintenance(&sql, true).await? != FullTextChange::Rebuilt {
                store.rebuild_search_index().await.context("rebuilding the database's full-text index")?;
            }
            bar.finish_with_message(format!("rebuilt the database's full-text index ({n} messages)"));
            Ok(n)
        }
        SearchEngineSetting::Tantivy => {
            let dir = config.search.index_dir(&config.data_dir);
            let index = open_index(dir.clone(), store.clone()).await?;
            let bar = ProgressBar::new(0).with_style(
                ProgressStyle::with_template(
                    "{spinner} reindexing [{bar:40}] {pos}/{len} messages ({per_sec}, eta {eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            let read = chat_search::reindex(&index, &store, |done, total| {
                bar.set_length(total);
                bar.set_position(done);
            })
            .await
            .with_context(|| format!("reindexing into {}", dir.display()));
            let documents = index.stats().map(|s| s.documents).unwrap_or(0);
            bar.finish_with_message("done");
            if read.is_ok() {
                eprintln!("search index {}: {documents} searchable messages", dir.display());
            }
            read
        }
    };
    sql.close().await;
    result
}
