//! Full-text search over messages: the query shape shared by every search engine, and
//! [`SearchStore`], what the database offers (its own full-text index, and the scans that feed
//! an external index).
//!
//! Semantics every engine implements (chat-search's tantivy index and the database's):
//! - a message matches when every one of [`SearchQuery::terms`] occurs in its text as a word
//!   (case-insensitive; no stemming);
//! - only messages of conversations the searcher is a member of are returned, never a
//!   deleted message, and an edited message only by its current text;
//! - hits come newest first, by (`created_at`, `message_id`) descending; [`SearchCursor`] is
//!   the last hit of a page (keyset pagination: stable under concurrent writes).

use async_trait::async_trait;
use chat_domain::{ConversationId, Message, MessageId, Millis, UserId};

use crate::StoreResult;

/// Longest page a search returns.
pub const MAX_SEARCH_LIMIT: usize = 100;

/// Which messages a search returns by attachments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttachmentFilter {
    /// Only messages with at least one attachment.
    With,
    /// Only messages without attachments.
    Without,
}

/// Which messages a search returns by mentions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MentionFilter {
    /// No mention condition.
    #[default]
    Anyone,
    /// Only messages that mention the searcher: `@username` of the searcher, or `@channel` /
    /// `@here` (which mention every member, as in the conversation list's mention count).
    Searcher,
}

/// Position after which a page starts: the last hit of the previous page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SearchCursor {
    /// Creation instant of that hit.
    pub created_at: Millis,
    /// Its id (the tie-break among hits of one millisecond).
    pub message_id: MessageId,
}

/// One search, already validated by the caller (the core service).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchQuery {
    /// Who searches: only conversations this user is a member of are searched.
    pub searcher: UserId,
    /// Lower-case words, each made of letters and digits only (see `chat_search::terms`);
    /// all must occur. Empty means no text condition (only filters).
    pub terms: Vec<String>,
    /// Only this conversation.
    pub conversation_id: Option<ConversationId>,
    /// Only messages by this author.
    pub author_id: Option<UserId>,
    /// Only messages created at or after this instant.
    pub from: Option<Millis>,
    /// Only messages created before this instant.
    pub to: Option<Millis>,
    /// Attachment condition.
    pub attachments: Option<AttachmentFilter>,
    /// Mention condition.
    pub mentions: MentionFilter,
    /// Start after this hit (next page).
    pub after: Option<SearchCursor>,
    /// Page size, 1..=[`MAX_SEARCH_LIMIT`] (clamped).
    pub limit: usize,
}

/// One hit: which message, where, when.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SearchHit {
    /// The message.
    pub message_id: MessageId,
    /// Its conversation.
    pub conversation_id: ConversationId,
    /// Its creation instant.
    pub created_at: Millis,
}

impl SearchHit {
    /// The cursor that starts the page after this hit.
    pub fn cursor(&self) -> SearchCursor {
        SearchCursor { created_at: self.created_at, message_id: self.message_id }
    }
}

/// A page of hits, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchPage {
    /// Hits, by (`created_at`, `message_id`) descending.
    pub hits: Vec<SearchHit>,
    /// Where the next page starts; `None` when this page is the last.
    pub next: Option<SearchCursor>,
}

/// Position in a scan of messages by last change: (`updated_at`, `message_id`) ascending.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChangeCursor {
    /// `updated_at` of the last message read.
    pub updated_at: Millis,
    /// Its id.
    pub message_id: MessageId,
}

/// What [`SqlStore::set_full_text_maintenance`](crate::SqlStore::set_full_text_maintenance)
/// changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FullTextChange {
    /// Nothing: the database already was in the asked state (or is MySQL/MariaDB or
    /// PostgreSQL, whose full-text index is always maintained).
    Unchanged,
    /// SQLite: the triggers that kept `messages_fts` in step were dropped and the FTS5 index
    /// emptied; writes no longer touch it.
    Dropped,
    /// SQLite: the triggers were (re)created and the FTS5 index rebuilt from `messages`, in
    /// one transaction; every stored message is searchable again.
    Rebuilt,
}

/// The database's side of search.
#[async_trait]
pub trait SearchStore: Send + Sync {
    /// Runs `q` on the database's own full-text index (SQLite FTS5, MySQL/MariaDB InnoDB
    /// FULLTEXT, PostgreSQL `tsvector` GIN), joined with the searcher's memberships.
    async fn search_messages(&self, q: &SearchQuery) -> StoreResult<SearchPage>;
    /// Ids of the conversations `user` is a member of (what it may read), in no order.
    async fn readable_conversation_ids(&self, user: UserId) -> StoreResult<Vec<ConversationId>>;
    /// Messages (deleted ones included, as tombstones) with `updated_at >= since`, after
    /// `after` in (`updated_at`, `message_id`) order, at most `limit` (1..=1000): the scan
    /// that builds or catches up an external index.
    async fn messages_changed_since(
        &self,
        since: Millis,
        after: Option<ChangeCursor>,
        limit: i64,
    ) -> StoreResult<Vec<Message>>;
    /// Number of messages with `updated_at >= since` (a scan's length, for progress).
    async fn count_messages_changed_since(&self, since: Millis) -> StoreResult<u64>;
    /// Rebuilds the database's own full-text index from the message table (SQLite: FTS5
    /// `rebuild`; PostgreSQL: `REINDEX INDEX`; MySQL/MariaDB: `OPTIMIZE TABLE`, which
    /// rebuilds the InnoDB FULLTEXT index when `innodb_optimize_fulltext_only` is off).
    /// On SQLite the index stays current only while its triggers exist
    /// ([`SqlStore::set_full_text_maintenance`](crate::SqlStore::set_full_text_maintenance)).
    async fn rebuild_search_index(&self) -> StoreResult<()>;
}
