//! Full-text search of chat-sys.
//!
//! One interface, [`SearchEngine`], two engines:
//! - [`TantivyIndex`] ([`EngineKind::Tantivy`], the `serve` default): an embedded index in a
//!   directory, written by one [`Indexer`] that consumes the event log as consumer group
//!   [`CONSUMER_GROUP`] (created, edited and deleted messages), after catching up from the
//!   database. One writer per index directory, so one process per index.
//! - [`DatabaseSearch`] ([`EngineKind::Database`], for scale-out where several core processes
//!   share the database): the database's own full-text index (PostgreSQL `tsvector` GIN,
//!   MySQL/MariaDB InnoDB FULLTEXT, SQLite FTS5) through [`chat_storage::SearchStore`].
//!
//! Both answer the same [`SearchQuery`] with the same semantics (see [`chat_storage::search`]):
//! every word of the query must occur in the text (case-insensitive, no stemming); only
//! conversations the searcher is a member of are searched (the tantivy index filters on the
//! set of the searcher's conversation ids, the database joins `conversation_members`);
//! deleted messages are never found and edited ones only by their current text; hits come
//! newest first with a keyset cursor. [`terms`] turns a user's query into words and
//! [`snippet`] marks them in a text.

#![warn(missing_docs)]

mod database;
mod indexer;
mod tantivy_index;
mod terms;

use async_trait::async_trait;
use chat_storage::StoreError;

pub use chat_storage::search::{
    AttachmentFilter, ChangeCursor, MAX_SEARCH_LIMIT, MentionFilter, SearchCursor, SearchHit, SearchPage, SearchQuery,
    SearchStore,
};
pub use database::DatabaseSearch;
pub use indexer::{CATCH_UP_MARGIN_MS, CONSUMER_GROUP, DEFAULT_REFRESH_INTERVAL, Indexer, IndexerConfig, reindex};
pub use tantivy_index::{IndexStats, TantivyIndex};
pub use terms::{MAX_QUERY_BYTES, MAX_TERMS, SnippetPart, TermsError, snippet, terms};

/// Which engine answers searches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EngineKind {
    /// The embedded tantivy index (one process).
    Tantivy,
    /// The database's own full-text search (any number of processes).
    Database,
}

impl EngineKind {
    /// The configuration name: `tantivy` or `database`.
    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::Tantivy => "tantivy",
            EngineKind::Database => "database",
        }
    }
}

/// Why a search or an index update failed.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The database failed.
    #[error("database: {0}")]
    Store(#[from] StoreError),
    /// The tantivy index failed (I/O, corruption, or its directory is locked by another
    /// writer).
    #[error("search index: {0}")]
    Index(#[from] tantivy::TantivyError),
    /// The index directory could not be opened or created.
    #[error("search index directory {path}: {reason}")]
    Directory {
        /// The directory.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// A blocking index task panicked or was cancelled.
    #[error("search index task failed: {0}")]
    Task(String),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, SearchError>;

/// A full-text search engine over messages.
#[async_trait]
pub trait SearchEngine: Send + Sync {
    /// Runs `q` (already validated: see [`terms`] and [`MAX_SEARCH_LIMIT`]): the hits among
    /// the messages of conversations `q.searcher` is a member of, newest first.
    ///
    /// # Errors
    /// [`SearchError::Store`] when the database fails, [`SearchError::Index`] when the index
    /// does.
    async fn search(&self, q: &SearchQuery) -> Result<SearchPage>;

    /// Which engine this is.
    fn kind(&self) -> EngineKind;
}
