//! [`ConversationStore`]: conversations, settings, members and read positions.

use std::collections::HashMap;

use async_trait::async_trait;
use chat_domain::{
    Conversation, ConversationEvent, ConversationId, ConversationKind, ConversationSettings, ConversationSummary,
    EventId, EventPayload, Member, MemberRole, Millis, UserId, WorkspaceId,
};
use sea_query::{Cond, Expr, ExprTrait, Func, JoinType, Order, Query, SelectStatement, SubQueryStatement};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::events::{append_event, insert_event, lock_sequence, reserve_seqs};
use super::schema::{
    ConversationMembers as Cm, ConversationSequences as Seqs, ConversationSettings as Cs, Conversations as C,
    MessageMentions as Mm, Messages as M,
};
use super::{
    Dialect, SqlStore, b, db_err, execute, fetch_all, fetch_optional, get_bool, get_i64, get_id, get_opt_i64,
    get_opt_str, get_str,
};
use crate::{ConversationStore, ConversationUpdate, MEMBER_IDS_CHUNK, NewConversation, StoreError, StoreResult};

/// Conversations joined with their settings and sequence row.
fn conv_select() -> SelectStatement {
    Query::select()
        .columns([
            (C::Table, C::ConversationId),
            (C::Table, C::WorkspaceId),
            (C::Table, C::Type),
            (C::Table, C::Name),
            (C::Table, C::Topic),
            (C::Table, C::IsPrivate),
            (C::Table, C::CreatedBy),
            (C::Table, C::CreatedAt),
            (C::Table, C::UpdatedAt),
        ])
        .columns([
            (Cs::Table, Cs::AllowReactions),
            (Cs::Table, Cs::AllowPins),
            (Cs::Table, Cs::AllowThread),
            (Cs::Table, Cs::SlowModeSeconds),
        ])
        .column((Seqs::Table, Seqs::LastSeq))
        .from(C::Table)
        .inner_join(Cs::Table, Expr::col((Cs::Table, Cs::ConversationId)).equals((C::Table, C::ConversationId)))
        .inner_join(Seqs::Table, Expr::col((Seqs::Table, Seqs::ConversationId)).equals((C::Table, C::ConversationId)))
        .to_owned()
}

fn decode_conv(row: &AnyRow) -> Result<Conversation, StoreError> {
    let kind = get_str(row, "type")?;
    Ok(Conversation {
        id: get_id(row, "conversation_id")?,
        workspace_id: get_id(row, "workspace_id")?,
        kind: ConversationKind::parse(&kind)
            .ok_or_else(|| StoreError::Unexpected(anyhow::anyhow!("unknown conversation type {kind:?}")))?,
        name: get_opt_str(row, "name")?,
        topic: get_opt_str(row, "topic")?,
        is_private: get_bool(row, "is_private")?,
        created_by: get_id(row, "created_by")?,
        created_at: Millis(get_i64(row, "created_at")?),
        updated_at: Millis(get_i64(row, "updated_at")?),
        settings: ConversationSettings {
            allow_reactions: get_bool(row, "allow_reactions")?,
            allow_pins: get_bool(row, "allow_pins")?,
            allow_thread: get_bool(row, "allow_thread")?,
            slow_mode_seconds: get_i64(row, "slow_mode_seconds")?,
        },
        last_seq: get_i64(row, "last_seq")?,
    })
}

fn member_select() -> SelectStatement {
    Query::select()
        .columns([Cm::ConversationId, Cm::UserId, Cm::Role, Cm::JoinedAt, Cm::DeliveredSeq, Cm::SeenSeq])
        .from(Cm::Table)
        .to_owned()
}

/// Where a query put the membership columns.
struct MemberCols {
    conversation_id: &'static str,
    user_id: &'static str,
    role: &'static str,
    joined_at: &'static str,
    delivered_seq: &'static str,
    seen_seq: &'static str,
}

/// The membership table's own column names (`conversation_id` may come from the
/// conversation in joins).
const MEMBER_COLS: MemberCols = MemberCols {
    conversation_id: "conversation_id",
    user_id: "user_id",
    role: "role",
    joined_at: "joined_at",
    delivered_seq: "delivered_seq",
    seen_seq: "seen_seq",
};

/// The membership columns of [`ConversationStore::conversation_with_member`]'s LEFT JOIN,
/// aliased so they cannot be confused with the conversation's (NULL without a membership).
const JOINED_MEMBER_COLS: MemberCols = MemberCols {
    conversation_id: "m_conversation_id",
    user_id: "m_user_id",
    role: "m_role",
    joined_at: "m_joined_at",
    delivered_seq: "m_delivered_seq",
    seen_seq: "m_seen_seq",
};

/// Decodes member columns named as [`MEMBER_COLS`].
fn decode_member(row: &AnyRow) -> Result<Member, StoreError> {
    decode_member_at(row, &MEMBER_COLS)
}

fn decode_member_at(row: &AnyRow, cols: &MemberCols) -> Result<Member, StoreError> {
    let role = get_str(row, cols.role)?;
    Ok(Member {
        conversation_id: get_id(row, cols.conversation_id)?,
        user_id: get_id(row, cols.user_id)?,
        role: MemberRole::parse(&role)
            .ok_or_else(|| StoreError::Unexpected(anyhow::anyhow!("unknown member role {role:?}")))?,
        joined_at: Millis(get_i64(row, cols.joined_at)?),
        delivered_seq: get_i64(row, cols.delivered_seq)?,
        seen_seq: get_i64(row, cols.seen_seq)?,
    })
}

async fn load_conv(
    conn: &mut AnyConnection,
    d: Dialect,
    id: ConversationId,
) -> Result<Option<Conversation>, StoreError> {
    let q = conv_select().and_where(Expr::col((C::Table, C::ConversationId)).eq(id.to_string())).to_owned();
    fetch_optional(conn, d, &q).await?.as_ref().map(decode_conv).transpose()
}

async fn load_member(
    conn: &mut AnyConnection,
    d: Dialect,
    conv: ConversationId,
    user: UserId,
) -> Result<Option<Member>, StoreError> {
    let q = member_select()
        .and_where(Expr::col(Cm::ConversationId).eq(conv.to_string()))
        .and_where(Expr::col(Cm::UserId).eq(user.to_string()))
        .to_owned();
    fetch_optional(conn, d, &q).await?.as_ref().map(decode_member).transpose()
}

async fn insert_member(
    conn: &mut AnyConnection,
    d: Dialect,
    conv: ConversationId,
    user: UserId,
    role: MemberRole,
    at: Millis,
) -> Result<(), StoreError> {
    let ins = Query::insert()
        .into_table(Cm::Table)
        .columns([Cm::ConversationId, Cm::UserId, Cm::Role, Cm::JoinedAt, Cm::DeliveredSeq, Cm::SeenSeq])
        .values_panic([
            conv.to_string().into(),
            user.to_string().into(),
            role.as_str().into(),
            at.0.into(),
            0i64.into(),
            0i64.into(),
        ])
        .to_owned();
    execute(conn, d, &ins).await.map(|_| ())
}

/// `SELECT COUNT(*) FROM messages x WHERE x is unread by the member row of the outer query`
/// (seq after `seen_seq`, not deleted, by someone else), plus `extra`.
fn unread_subquery(user: UserId, extra: Option<Cond>) -> SelectStatement {
    let mut cond = Cond::all()
        .add(Expr::col(("x", M::ConversationId)).equals((Cm::Table, Cm::ConversationId)))
        .add(Expr::col(("x", M::ServerSeq)).gt(Expr::col((Cm::Table, Cm::SeenSeq))))
        .add(Expr::col(("x", M::Deleted)).eq(0))
        .add(Expr::col(("x", M::UserId)).ne(user.to_string()));
    if let Some(extra) = extra {
        cond = cond.add(extra);
    }
    Query::select().expr(Func::count(Expr::col(("x", M::MessageId)))).from_as(M::Table, "x").cond_where(cond).to_owned()
}

#[async_trait]
impl ConversationStore for SqlStore {
    async fn create_conversation(&self, new: &NewConversation) -> StoreResult<(Conversation, Vec<ConversationEvent>)> {
        let d = self.dialect();
        let mut tx = self.begin().await?;
        let ins = Query::insert()
            .into_table(C::Table)
            .columns([
                C::ConversationId,
                C::WorkspaceId,
                C::Type,
                C::Name,
                C::Topic,
                C::IsPrivate,
                C::CreatedBy,
                C::CreatedAt,
                C::UpdatedAt,
                C::DmKey,
            ])
            .values_panic([
                new.id.to_string().into(),
                new.workspace_id.to_string().into(),
                new.kind.as_str().into(),
                new.name.clone().into(),
                new.topic.clone().into(),
                b(new.is_private).into(),
                new.created_by.to_string().into(),
                new.at.0.into(),
                new.at.0.into(),
                new.dm_key.clone().into(),
            ])
            .to_owned();
        match execute(&mut *tx, d, &ins).await {
            Ok(_) => {}
            Err(StoreError::Conflict(_)) if new.dm_key.is_some() => {
                return Err(StoreError::Conflict("a conversation with these members exists".into()));
            }
            Err(StoreError::Conflict(_)) => return Err(StoreError::Conflict("the conversation id exists".into())),
            Err(e) => return Err(e),
        }
        let s = &new.settings;
        let settings = Query::insert()
            .into_table(Cs::Table)
            .columns([Cs::ConversationId, Cs::AllowReactions, Cs::AllowPins, Cs::AllowThread, Cs::SlowModeSeconds])
            .values_panic([
                new.id.to_string().into(),
                b(s.allow_reactions).into(),
                b(s.allow_pins).into(),
                b(s.allow_thread).into(),
                s.slow_mode_seconds.into(),
            ])
            .to_owned();
        execute(&mut *tx, d, &settings).await?;
        let seq = Query::insert()
            .into_table(Seqs::Table)
            .columns([Seqs::ConversationId, Seqs::LastSeq, Seqs::LastEventAt])
            .values_panic([new.id.to_string().into(), 0i64.into(), new.at.0.into()])
            .to_owned();
        execute(&mut *tx, d, &seq).await?;
        let mut events = Vec::with_capacity(new.members.len());
        if !new.members.is_empty() {
            let first = reserve_seqs(&mut tx, d, new.id, new.members.len() as i64, new.at).await?;
            for (k, (user, role)) in new.members.iter().enumerate() {
                insert_member(&mut tx, d, new.id, *user, *role, new.at).await.map_err(|e| match e {
                    StoreError::Conflict(_) => StoreError::Conflict(format!("member {user} listed twice")),
                    e => e,
                })?;
                let ev = ConversationEvent {
                    event_id: EventId::new(),
                    conversation_id: new.id,
                    seq: first + k as i64,
                    actor_id: new.created_by,
                    created_at: new.at,
                    payload: EventPayload::UserJoined { user_id: *user, role: *role },
                };
                insert_event(&mut tx, d, &ev).await?;
                events.push(ev);
            }
        }
        let conv = load_conv(&mut tx, d, new.id).await?.ok_or(StoreError::NotFound("conversation"))?;
        tx.commit().await.map_err(db_err)?;
        Ok((conv, events))
    }

    async fn conversation(&self, id: ConversationId) -> StoreResult<Option<Conversation>> {
        let mut conn = self.reader().acquire().await.map_err(db_err)?;
        load_conv(&mut conn, self.dialect(), id).await
    }

    async fn conversation_by_dm_key(&self, dm_key: &str) -> StoreResult<Option<Conversation>> {
        let q = conv_select().and_where(Expr::col((C::Table, C::DmKey)).eq(dm_key)).to_owned();
        let mut conn = self.reader().acquire().await.map_err(db_err)?;
        fetch_optional(&mut *conn, self.dialect(), &q).await?.as_ref().map(decode_conv).transpose()
    }

    async fn conversations_of(&self, user: UserId) -> StoreResult<Vec<ConversationSummary>> {
        // One query: memberships joined with conversations, with two correlated COUNT
        // subqueries (unread; unread mentioning the user or @channel).
        let mentioned = Cond::any().add(Expr::col(("x", M::MentionsChannel)).eq(1)).add(Expr::exists(
            Query::select()
                .expr(Expr::val(1))
                .from(Mm::Table)
                .and_where(Expr::col((Mm::Table, Mm::MessageId)).equals(("x", M::MessageId)))
                .and_where(Expr::col((Mm::Table, Mm::UserId)).eq(user.to_string()))
                .to_owned(),
        ));
        let q = conv_select()
            .columns([
                (Cm::Table, Cm::UserId),
                (Cm::Table, Cm::Role),
                (Cm::Table, Cm::JoinedAt),
                (Cm::Table, Cm::DeliveredSeq),
                (Cm::Table, Cm::SeenSeq),
            ])
            .expr_as(Expr::from(SubQueryStatement::from(unread_subquery(user, None))), "unread_count")
            .expr_as(Expr::from(SubQueryStatement::from(unread_subquery(user, Some(mentioned)))), "mention_count")
            .inner_join(Cm::Table, Expr::col((Cm::Table, Cm::ConversationId)).equals((C::Table, C::ConversationId)))
            .and_where(Expr::col((Cm::Table, Cm::UserId)).eq(user.to_string()))
            .order_by((Seqs::Table, Seqs::LastEventAt), Order::Desc)
            .order_by((C::Table, C::ConversationId), Order::Asc)
            .to_owned();
        let mut conn = self.reader().acquire().await.map_err(db_err)?;
        let rows = fetch_all(&mut *conn, self.dialect(), &q).await?;
        rows.iter()
            .map(|r| {
                Ok(ConversationSummary {
                    conversation: decode_conv(r)?,
                    member: decode_member(r)?,
                    unread_count: get_i64(r, "unread_count")?,
                    mention_count: get_i64(r, "mention_count")?,
                })
            })
            .collect()
    }

    async fn public_channels(&self, ws: WorkspaceId, limit: i64) -> StoreResult<Vec<Conversation>> {
        let q = conv_select()
            .and_where(Expr::col((C::Table, C::WorkspaceId)).eq(ws.to_string()))
            .and_where(Expr::col((C::Table, C::IsPrivate)).eq(0))
            .and_where(Expr::col((C::Table, C::Type)).eq(ConversationKind::Channel.as_str()))
            .order_by((C::Table, C::Name), Order::Asc)
            .order_by((C::Table, C::ConversationId), Order::Asc)
            .limit(super::lim(limit))
            .to_owned();
        let mut conn = self.reader().acquire().await.map_err(db_err)?;
        fetch_all(&mut *conn, self.dialect(), &q).await?.iter().map(decode_conv).collect()
    }

    async fn member(&self, conv: ConversationId, user: UserId) -> StoreResult<Option<Member>> {
        let mut conn = self.reader().acquire().await.map_err(db_err)?;
        load_member(&mut conn, self.dialect(), conv, user).await
    }

    async fn conversation_with_member(
        &self,
        conv: ConversationId,
        user: UserId,
    ) -> StoreResult<Option<(Conversation, Option<Member>)>> {
        let c = &JOINED_MEMBER_COLS;
        let q = conv_select()
            .expr_as(Expr::col((Cm::Table, Cm::ConversationId)), c.conversation_id)
            .expr_as(Expr::col((Cm::Table, Cm::UserId)), c.user_id)
            .expr_as(Expr::col((Cm::Table, Cm::Role)), c.role)
            .expr_as(Expr::col((Cm::Table, Cm::JoinedAt)), c.joined_at)
            .expr_as(Expr::col((Cm::Table, Cm::DeliveredSeq)), c.delivered_seq)
            .expr_as(Expr::col((Cm::Table, Cm::SeenSeq)), c.seen_seq)
            .left_join(
                Cm::Table,
                Cond::all()
                    .add(Expr::col((Cm::Table, Cm::ConversationId)).equals((C::Table, C::ConversationId)))
                    .add(Expr::col((Cm::Table, Cm::UserId)).eq(user.to_string())),
            )
            .and_where(Expr::col((C::Table, C::ConversationId)).eq(conv.to_string()))
            .to_owned();
        let mut conn = self.reader().acquire().await.map_err(db_err)?;
        let Some(row) = fetch_optional(&mut *conn, self.dialect(), &q).await? else { return Ok(None) };
        let conversation = decode_conv(&row)?;
        let member = match get_opt_str(&row, c.user_id)? {
            None => None,
            Some(_) => Some(decode_member_at(&row, c)?),
        };
        Ok(Some((conversation, member)))
    }

    async fn members(&self, conv: ConversationId) -> StoreResult<Vec<Member>> {
        let q = member_select()
            .and_where(Expr::col(Cm::ConversationId).eq(conv.to_string()))
            .order_by(Cm::JoinedAt, Order::Asc)
            .order_by(Cm::UserId, Order::Asc)
            .to_owned();
        let mut conn = self.reader().acquire().await.map_err(db_err)?;
        fetch_all(&mut *conn, self.dialect(), &q).await?.iter().map(decode_member).collect()
    }

    async fn member_ids(&self, conv: ConversationId) -> StoreResult<Vec<UserId>> {
        let q = Query::select()
            .column(Cm::UserId)
            .from(Cm::Table)
            .and_where(Expr::col(Cm::ConversationId).eq(conv.to_string()))
            .to_owned();
        let mut conn = self.reader().acquire().await.map_err(db_err)?;
        fetch_all(&mut *conn, self.dialect(), &q).await?.iter().map(|r| get_id(r, "user_id")).collect()
    }

    async fn co_member_ids(&self, user: UserId, limit: usize) -> StoreResult<Vec<UserId>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let me = user.to_string();
        let q = Query::select()
            .distinct()
            .expr_as(Expr::col(("o", Cm::UserId)), "user_id")
            .from_as(Cm::Table, "m")
            .join_as(
                JoinType::InnerJoin,
                Cm::Table,
                "o",
                Expr::col(("o", Cm::ConversationId)).equals(("m", Cm::ConversationId)),
            )
            .and_where(Expr::col(("m", Cm::UserId)).eq(me.as_str()))
            .and_where(Expr::col(("o", Cm::UserId)).ne(me.as_str()))
            .limit(u64::try_from(limit).unwrap_or(u64::MAX))
            .to_owned();
        let mut conn = self.reader().acquire().await.map_err(db_err)?;
        fetch_all(&mut *conn, self.dialect(), &q).await?.iter().map(|r| get_id(r, "user_id")).collect()
    }

    async fn member_ids_of(&self, convs: &[ConversationId]) -> StoreResult<HashMap<ConversationId, Vec<UserId>>> {
        let mut out: HashMap<ConversationId, Vec<UserId>> = convs.iter().map(|c| (*c, Vec::new())).collect();
        if out.is_empty() {
            return Ok(out);
        }
        let distinct: Vec<String> = out.keys().map(ConversationId::to_string).collect();
        let mut conn = self.reader().acquire().await.map_err(db_err)?;
        for chunk in distinct.chunks(MEMBER_IDS_CHUNK) {
            let q = Query::select()
                .columns([Cm::ConversationId, Cm::UserId])
                .from(Cm::Table)
                .and_where(Expr::col(Cm::ConversationId).is_in(chunk.iter().cloned()))
                .to_owned();
            for row in fetch_all(&mut *conn, self.dialect(), &q).await? {
                let conv: ConversationId = get_id(&row, "conversation_id")?;
                out.entry(conv).or_default().push(get_id(&row, "user_id")?);
            }
        }
        Ok(out)
    }

    async fn update_conversation(&self, update: &ConversationUpdate) -> StoreResult<(Conversation, ConversationEvent)> {
        let d = self.dialect();
        let mut tx = self.begin().await?;
        lock_sequence(&mut tx, d, update.id).await?.ok_or(StoreError::NotFound("conversation"))?;
        let mut upd = Query::update();
        upd.table(C::Table).value(C::UpdatedAt, update.at.0);
        if let Some(name) = &update.name {
            upd.value(C::Name, name.clone());
        }
        if let Some(topic) = &update.topic {
            upd.value(C::Topic, topic.clone());
        }
        if let Some(p) = update.is_private {
            upd.value(C::IsPrivate, b(p));
        }
        upd.and_where(Expr::col(C::ConversationId).eq(update.id.to_string()));
        execute(&mut *tx, d, &upd).await?;
        if let Some(s) = update.settings {
            let upd = Query::update()
                .table(Cs::Table)
                .value(Cs::AllowReactions, b(s.allow_reactions))
                .value(Cs::AllowPins, b(s.allow_pins))
                .value(Cs::AllowThread, b(s.allow_thread))
                .value(Cs::SlowModeSeconds, s.slow_mode_seconds)
                .and_where(Expr::col(Cs::ConversationId).eq(update.id.to_string()))
                .to_owned();
            execute(&mut *tx, d, &upd).await?;
        }
        let before = load_conv(&mut tx, d, update.id).await?.ok_or(StoreError::NotFound("conversation"))?;
        let payload = EventPayload::ConversationUpdated {
            name: before.name.clone(),
            topic: before.topic.clone(),
            is_private: before.is_private,
            settings: before.settings,
        };
        let ev = append_event(&mut tx, d, update.id, update.actor, EventId::new(), payload, update.at).await?;
        tx.commit().await.map_err(db_err)?;
        Ok((Conversation { last_seq: ev.seq, ..before }, ev))
    }

    async fn add_member(
        &self,
        conv: ConversationId,
        actor: UserId,
        user: UserId,
        role: MemberRole,
        at: Millis,
    ) -> StoreResult<ConversationEvent> {
        let d = self.dialect();
        let mut tx = self.begin().await?;
        lock_sequence(&mut tx, d, conv).await?.ok_or(StoreError::NotFound("conversation"))?;
        if load_member(&mut tx, d, conv, user).await?.is_some() {
            return Err(StoreError::Conflict("already a member".into()));
        }
        insert_member(&mut tx, d, conv, user, role, at).await?;
        let ev =
            append_event(&mut tx, d, conv, actor, EventId::new(), EventPayload::UserJoined { user_id: user, role }, at)
                .await?;
        tx.commit().await.map_err(db_err)?;
        Ok(ev)
    }

    async fn remove_member(
        &self,
        conv: ConversationId,
        actor: UserId,
        user: UserId,
        at: Millis,
    ) -> StoreResult<ConversationEvent> {
        let d = self.dialect();
        let mut tx = self.begin().await?;
        lock_sequence(&mut tx, d, conv).await?.ok_or(StoreError::NotFound("conversation"))?;
        let del = Query::delete()
            .from_table(Cm::Table)
            .and_where(Expr::col(Cm::ConversationId).eq(conv.to_string()))
            .and_where(Expr::col(Cm::UserId).eq(user.to_string()))
            .to_owned();
        if execute(&mut *tx, d, &del).await? == 0 {
            return Err(StoreError::NotFound("member"));
        }
        let ev =
            append_event(&mut tx, d, conv, actor, EventId::new(), EventPayload::UserLeft { user_id: user }, at).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(ev)
    }

    async fn set_read_position(
        &self,
        conv: ConversationId,
        user: UserId,
        delivered: Option<i64>,
        seen: Option<i64>,
        _at: Millis,
    ) -> StoreResult<Member> {
        let d = self.dialect();
        let mut tx = self.begin().await?;
        let last = Query::select()
            .column(Seqs::LastSeq)
            .from(Seqs::Table)
            .and_where(Expr::col(Seqs::ConversationId).eq(conv.to_string()))
            .to_owned();
        let last_seq = match fetch_optional(&mut *tx, d, &last).await? {
            Some(r) => get_i64(&r, "last_seq")?,
            None => return Err(StoreError::NotFound("conversation")),
        };
        let seen_target = seen.unwrap_or(0).clamp(0, last_seq);
        let delivered_target = Ord::max(delivered.unwrap_or(0), seen.unwrap_or(0)).clamp(0, last_seq);
        // Monotonic without GREATEST (which SQLite lacks): only raise, guarded by WHERE.
        for (col, target) in [(Cm::SeenSeq, seen_target), (Cm::DeliveredSeq, delivered_target)] {
            if target > 0 {
                let upd = Query::update()
                    .table(Cm::Table)
                    .value(col, target)
                    .and_where(Expr::col(Cm::ConversationId).eq(conv.to_string()))
                    .and_where(Expr::col(Cm::UserId).eq(user.to_string()))
                    .and_where(Expr::col(col).lt(target))
                    .to_owned();
                execute(&mut *tx, d, &upd).await?;
            }
        }
        let m = load_member(&mut tx, d, conv, user).await?.ok_or(StoreError::NotFound("member"))?;
        tx.commit().await.map_err(db_err)?;
        Ok(m)
    }

    async fn last_message_at(&self, conv: ConversationId, user: UserId) -> StoreResult<Option<Millis>> {
        let q = Query::select()
            .expr_as(Func::max(Expr::col(M::CreatedAt)), "last_at")
            .from(M::Table)
            .and_where(Expr::col(M::ConversationId).eq(conv.to_string()))
            .and_where(Expr::col(M::UserId).eq(user.to_string()))
            .to_owned();
        let mut conn = self.reader().acquire().await.map_err(db_err)?;
        match fetch_optional(&mut *conn, self.dialect(), &q).await? {
            Some(r) => Ok(get_opt_i64(&r, "last_at")?.map(Millis)),
            None => Ok(None),
        }
    }
}
