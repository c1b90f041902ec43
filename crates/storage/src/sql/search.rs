//! [`SearchStore`]: the database's own full-text search (migration `0003_search`) and the
//! change scans that feed an external index.
//!
//! Full-text condition per dialect (terms are lower-case letters and digits only, so they
//! need no escaping in any engine's query syntax; they are still bound as values):
//! - SQLite: `rowid IN (SELECT rowid FROM messages_fts WHERE messages_fts MATCH '"a" "b"')`
//!   (FTS5, implicit AND of phrases);
//! - MySQL/MariaDB: `MATCH (search_text) AGAINST ('+a +b' IN BOOLEAN MODE)` on the lower-cased
//!   generated column;
//! - PostgreSQL: `to_tsvector('simple', text) @@ plainto_tsquery('simple', 'a b')`, the
//!   expression of the GIN index.
//!
//! Maintenance ([`SqlStore::set_full_text_maintenance`]): on SQLite the FTS5 index is kept by
//! three triggers on `messages`, which only the `database` search engine needs; a process on
//! another engine drops them (and empties the index), and switching back recreates them and
//! rebuilds the index in one transaction. MySQL/MariaDB and PostgreSQL keep their index
//! always: it is maintained by the engine itself (InnoDB's FULLTEXT cache, PostgreSQL's GIN
//! pending list), is the only engine of the scale-out cores that share those databases, and
//! dropping or building it is blocking DDL that cannot share a transaction with a rebuild
//! (MySQL/MariaDB) or hold writes for the length of the build (PostgreSQL).

use async_trait::async_trait;
use chat_domain::{AttachmentStatus, ConversationId, Message, Millis, UserId};
use sea_query::{Cond, Expr, ExprTrait, Iden, Order, Query, SelectStatement};
use sqlx::AssertSqlSafe;

use super::messages::{load_messages, message_select};
use super::schema::{ConversationMembers as Cm, MessageMentions as Mm, Messages as M};
use super::{Dialect, SqlStore, db_err, fetch_all, fetch_optional, get_i64, get_id};
use crate::StoreResult;
use crate::search::{
    AttachmentFilter, ChangeCursor, FullTextChange, MAX_SEARCH_LIMIT, MentionFilter, SearchHit, SearchPage,
    SearchQuery, SearchStore,
};

/// `message_attachments` (the columns search needs).
#[derive(Iden, Clone, Copy)]
enum MessageAttachments {
    Table,
    MessageId,
    Status,
}
use MessageAttachments as A;

/// Largest page of [`SearchStore::messages_changed_since`].
const MAX_SCAN: i64 = 1000;

/// The SQLite triggers that keep `messages_fts` in step with `messages`, by name: the
/// statements of migration `0003_search`, with `IF NOT EXISTS`.
const SQLITE_FTS_TRIGGERS: [(&str, &str); 3] = [
    (
        "messages_fts_ai",
        "CREATE TRIGGER IF NOT EXISTS messages_fts_ai AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts(rowid, text) VALUES (new.rowid, new.text);
END",
    ),
    (
        "messages_fts_ad",
        "CREATE TRIGGER IF NOT EXISTS messages_fts_ad AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
END",
    ),
    (
        "messages_fts_au",
        "CREATE TRIGGER IF NOT EXISTS messages_fts_au AFTER UPDATE OF text ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
    INSERT INTO messages_fts(rowid, text) VALUES (new.rowid, new.text);
END",
    ),
];

/// How many of [`SQLITE_FTS_TRIGGERS`] exist.
async fn sqlite_fts_triggers<'e, E>(e: E) -> StoreResult<usize>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'trigger' \
         AND name IN ('messages_fts_ai', 'messages_fts_ad', 'messages_fts_au')",
    )
    .fetch_one(e)
    .await
    .map_err(db_err)?;
    Ok(usize::try_from(get_i64(&row, "n")?).unwrap_or(0))
}

impl SqlStore {
    /// Whether writes keep the database's own full-text index (what the `database` search
    /// engine queries) up to date: on SQLite, whether all three triggers of migration
    /// `0003_search` on `messages` exist; always `true` on MySQL/MariaDB and PostgreSQL.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`](crate::StoreError::Unavailable) when the database does not
    /// answer.
    pub async fn full_text_maintained(&self) -> StoreResult<bool> {
        match self.dialect() {
            Dialect::Sqlite => Ok(sqlite_fts_triggers(self.reader()).await? == SQLITE_FTS_TRIGGERS.len()),
            Dialect::MySql | Dialect::Postgres => Ok(true),
        }
    }

    /// Makes writes maintain the database's own full-text index (`on`: the `database` search
    /// engine is in use) or not (another engine answers searches). Idempotent, and cheap when
    /// nothing changes (one look at `sqlite_master`), so call it on every start.
    ///
    /// SQLite only (the others always maintain their index, see the module documentation):
    /// - `on = false` with any of the triggers present: drops the three triggers on `messages`
    ///   and empties `messages_fts` (FTS5 `delete-all`; the table stays), so sends, edits and
    ///   deletes no longer write to it: [`FullTextChange::Dropped`];
    /// - `on = true` with any of them missing: creates the missing ones and rebuilds the index
    ///   from `messages` (FTS5 `rebuild`), in the same transaction as the triggers, so no write
    ///   falls between the two and every stored message is searchable afterwards:
    ///   [`FullTextChange::Rebuilt`]. The rebuild reads every message and holds the writer for
    ///   as long (once per switch of engines);
    /// - otherwise [`FullTextChange::Unchanged`].
    ///
    /// The state is the schema itself (the triggers), so it survives restarts and a store
    /// opened by another process sees it.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`](crate::StoreError::Unavailable) when the database does not
    /// answer or is busy; the transaction is then rolled back and nothing changed.
    pub async fn set_full_text_maintenance(&self, on: bool) -> StoreResult<FullTextChange> {
        if self.dialect() != Dialect::Sqlite {
            return Ok(FullTextChange::Unchanged);
        }
        let mut tx = self.begin().await?;
        let present = sqlite_fts_triggers(&mut *tx).await?;
        let mut statements: Vec<String> = Vec::new();
        let change = if on && present < SQLITE_FTS_TRIGGERS.len() {
            statements.extend(SQLITE_FTS_TRIGGERS.iter().map(|(_, create)| (*create).to_owned()));
            statements.push("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')".to_owned());
            FullTextChange::Rebuilt
        } else if !on && present > 0 {
            statements.extend(SQLITE_FTS_TRIGGERS.iter().map(|(name, _)| format!("DROP TRIGGER IF EXISTS {name}")));
            statements.push("INSERT INTO messages_fts(messages_fts) VALUES ('delete-all')".to_owned());
            FullTextChange::Dropped
        } else {
            FullTextChange::Unchanged
        };
        for sql in statements {
            sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *tx).await.map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(change)
    }
}

/// The full-text condition of `terms` in `dialect` (see the module documentation).
fn full_text(dialect: Dialect, terms: &[String]) -> Expr {
    match dialect {
        Dialect::Sqlite => {
            let phrases = terms.iter().map(|t| format!("\"{t}\"")).collect::<Vec<_>>().join(" ");
            Expr::cust_with_values(
                "messages.rowid IN (SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?)",
                [phrases],
            )
        }
        Dialect::MySql => {
            let required = terms.iter().map(|t| format!("+{t}")).collect::<Vec<_>>().join(" ");
            Expr::cust_with_values("MATCH (messages.search_text) AGAINST (? IN BOOLEAN MODE)", [required])
        }
        Dialect::Postgres => Expr::cust_with_values(
            "to_tsvector('simple', messages.text) @@ plainto_tsquery('simple', $1)",
            [terms.join(" ")],
        ),
    }
}

/// The search query of `q` (without limit), newest first.
fn search_select(dialect: Dialect, q: &SearchQuery) -> SelectStatement {
    let searcher = q.searcher.to_string();
    let mut s = Query::select()
        .columns([(M::Table, M::MessageId), (M::Table, M::ConversationId), (M::Table, M::CreatedAt)])
        .from(M::Table)
        .inner_join(
            Cm::Table,
            Cond::all()
                .add(Expr::col((Cm::Table, Cm::ConversationId)).equals((M::Table, M::ConversationId)))
                .add(Expr::col((Cm::Table, Cm::UserId)).eq(searcher.clone())),
        )
        .and_where(Expr::col((M::Table, M::Deleted)).eq(0))
        .to_owned();
    if !q.terms.is_empty() {
        s.and_where(full_text(dialect, &q.terms));
    }
    if let Some(c) = q.conversation_id {
        s.and_where(Expr::col((M::Table, M::ConversationId)).eq(c.to_string()));
    }
    if let Some(a) = q.author_id {
        s.and_where(Expr::col((M::Table, M::UserId)).eq(a.to_string()));
    }
    if let Some(from) = q.from {
        s.and_where(Expr::col((M::Table, M::CreatedAt)).gte(from.0));
    }
    if let Some(to) = q.to {
        s.and_where(Expr::col((M::Table, M::CreatedAt)).lt(to.0));
    }
    if let Some(filter) = q.attachments {
        let attached = Expr::exists(
            Query::select()
                .expr(Expr::val(1))
                .from(A::Table)
                .and_where(Expr::col((A::Table, A::MessageId)).equals((M::Table, M::MessageId)))
                .and_where(Expr::col((A::Table, A::Status)).eq(AttachmentStatus::Attached.as_str()))
                .to_owned(),
        );
        s.and_where(match filter {
            AttachmentFilter::With => attached,
            AttachmentFilter::Without => attached.not(),
        });
    }
    if q.mentions == MentionFilter::Searcher {
        s.cond_where(
            Cond::any().add(Expr::col((M::Table, M::MentionsChannel)).eq(1)).add(Expr::exists(
                Query::select()
                    .expr(Expr::val(1))
                    .from(Mm::Table)
                    .and_where(Expr::col((Mm::Table, Mm::MessageId)).equals((M::Table, M::MessageId)))
                    .and_where(Expr::col((Mm::Table, Mm::UserId)).eq(searcher))
                    .to_owned(),
            )),
        );
    }
    if let Some(after) = q.after {
        s.cond_where(
            Cond::any().add(Expr::col((M::Table, M::CreatedAt)).lt(after.created_at.0)).add(
                Cond::all()
                    .add(Expr::col((M::Table, M::CreatedAt)).eq(after.created_at.0))
                    .add(Expr::col((M::Table, M::MessageId)).lt(after.message_id.to_string())),
            ),
        );
    }
    s.order_by((M::Table, M::CreatedAt), Order::Desc).order_by((M::Table, M::MessageId), Order::Desc);
    s
}

#[async_trait]
impl SearchStore for SqlStore {
    async fn search_messages(&self, q: &SearchQuery) -> StoreResult<SearchPage> {
        let limit = q.limit.clamp(1, MAX_SEARCH_LIMIT);
        let s = search_select(self.dialect(), q).limit(limit as u64 + 1).to_owned();
        let rows = fetch_all(self.reader(), self.dialect(), &s).await?;
        let mut hits = rows
            .iter()
            .map(|r| {
                Ok(SearchHit {
                    message_id: get_id(r, "message_id")?,
                    conversation_id: get_id(r, "conversation_id")?,
                    created_at: Millis(get_i64(r, "created_at")?),
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        let more = hits.len() > limit;
        hits.truncate(limit);
        let next = if more { hits.last().map(SearchHit::cursor) } else { None };
        Ok(SearchPage { hits, next })
    }

    async fn readable_conversation_ids(&self, user: UserId) -> StoreResult<Vec<ConversationId>> {
        let q = Query::select()
            .column(Cm::ConversationId)
            .from(Cm::Table)
            .and_where(Expr::col(Cm::UserId).eq(user.to_string()))
            .to_owned();
        fetch_all(self.reader(), self.dialect(), &q).await?.iter().map(|r| get_id(r, "conversation_id")).collect()
    }

    async fn messages_changed_since(
        &self,
        since: Millis,
        after: Option<ChangeCursor>,
        limit: i64,
    ) -> StoreResult<Vec<Message>> {
        let mut q = message_select().and_where(Expr::col((M::Table, M::UpdatedAt)).gte(since.0)).to_owned();
        if let Some(a) = after {
            q.cond_where(
                Cond::any().add(Expr::col((M::Table, M::UpdatedAt)).gt(a.updated_at.0)).add(
                    Cond::all()
                        .add(Expr::col((M::Table, M::UpdatedAt)).eq(a.updated_at.0))
                        .add(Expr::col((M::Table, M::MessageId)).gt(a.message_id.to_string())),
                ),
            );
        }
        q.order_by((M::Table, M::UpdatedAt), Order::Asc)
            .order_by((M::Table, M::MessageId), Order::Asc)
            .limit(limit.clamp(1, MAX_SCAN) as u64);
        let mut conn = self.reader().acquire().await.map_err(db_err)?;
        load_messages(&mut conn, self.dialect(), &q).await
    }

    async fn count_messages_changed_since(&self, since: Millis) -> StoreResult<u64> {
        let q = Query::select()
            .expr_as(Expr::col(M::MessageId).count(), "n")
            .from(M::Table)
            .and_where(Expr::col(M::UpdatedAt).gte(since.0))
            .to_owned();
        let row = fetch_optional(self.reader(), self.dialect(), &q).await?;
        Ok(row.map(|r| get_i64(&r, "n")).transpose()?.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
    }

    async fn rebuild_search_index(&self) -> StoreResult<()> {
        let sql = match self.dialect() {
            Dialect::Sqlite => "INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')",
            Dialect::MySql => "OPTIMIZE TABLE messages",
            Dialect::Postgres => "REINDEX INDEX ix_messages_search",
        };
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(self.writer()).await.map_err(db_err)?;
        Ok(())
    }
}
