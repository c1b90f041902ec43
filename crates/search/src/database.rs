//! The database's own full-text search as a [`SearchEngine`] ([`DatabaseSearch`]).

use std::sync::Arc;

use async_trait::async_trait;
use chat_storage::SearchStore;
use chat_storage::search::{SearchPage, SearchQuery};

use crate::{EngineKind, Result, SearchEngine};

/// Searches with the database's full-text index (migration `0003_search`: PostgreSQL
/// `tsvector` GIN, MySQL/MariaDB InnoDB FULLTEXT, SQLite FTS5), joined with the searcher's
/// memberships. Nothing to feed: edits and deletes are searchable when they commit, so any
/// number of core processes can share it.
#[derive(Clone)]
pub struct DatabaseSearch {
    store: Arc<dyn SearchStore>,
}

impl DatabaseSearch {
    /// Search through `store`.
    pub fn new(store: Arc<dyn SearchStore>) -> Self {
        DatabaseSearch { store }
    }
}

impl std::fmt::Debug for DatabaseSearch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseSearch").finish_non_exhaustive()
    }
}

#[async_trait]
impl SearchEngine for DatabaseSearch {
    async fn search(&self, q: &SearchQuery) -> Result<SearchPage> {
        Ok(self.store.search_messages(q).await?)
    }

    fn kind(&self) -> EngineKind {
        EngineKind::Database
    }
}
