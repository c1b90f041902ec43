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

use async_trait::async_trait;
use chat_domain::{AttachmentStatus, ConversationId, Message, Millis, UserId};
use sea_query::{Cond, Expr, ExprTrait, Iden, Order, Query, SelectStatement};
use sqlx::AssertSqlSafe;

use super::messages::{load_messages, message_select};
use super::schema::{ConversationMembers as Cm, MessageMentions as Mm, Messages as M};
use super::{Dialect, SqlStore, db_err, fetch_all, fetch_optional, get_i64, get_id};
use crate::StoreResult;
use crate::search::{
    AttachmentFilter, ChangeCursor, MAX_SEARCH_LIMIT, MentionFilter, SearchHit, SearchPage, SearchQuery, SearchStore,
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
