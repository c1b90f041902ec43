//! [`MessageStore`]: message reads and decoding here; the group-commit send path in
//! `append.rs`; edits, deletes, reactions and pins in `edits.rs`.

use std::collections::HashMap;

use async_trait::async_trait;
use chat_domain::{
    AttachmentInfo, ConversationEvent, ConversationId, Mentions, Message, MessageId, MessageVersion, Millis, Pin,
    Reaction, SeqWindow, ThreadSummary, UserId,
};
use sea_query::{Expr, ExprTrait, Order, Query, SelectStatement};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::edits::Presence;
use super::schema::{
    MessageMentions as Mm, MessagePins as Mp, MessageReactions as Mr, MessageThreads as Mt, MessageVersions as Mv,
    Messages as M,
};
use super::{
    Dialect, SqlStore, db_err, fetch_all, get_bool, get_i64, get_id, get_opt_i64, get_opt_id, get_opt_str, get_str,
};
use crate::{MessageEdit, MessageStore, NewMessage, SendOutcome, StoreError, StoreResult};

/// Largest page a window query returns.
const MAX_PAGE: i64 = 500;

/// Messages left-joined with their thread summary; callers add conditions and order.
pub(crate) fn message_select() -> SelectStatement {
    Query::select()
        .columns([
            (M::Table, M::MessageId),
            (M::Table, M::ConversationId),
            (M::Table, M::UserId),
            (M::Table, M::ClientMsgId),
            (M::Table, M::ServerSeq),
            (M::Table, M::ThreadRootId),
            (M::Table, M::Text),
            (M::Table, M::Type),
            (M::Table, M::CreatedAt),
            (M::Table, M::UpdatedAt),
            (M::Table, M::Edited),
            (M::Table, M::Deleted),
            (M::Table, M::VersionCount),
            (M::Table, M::MentionsChannel),
        ])
        .columns([(Mt::Table, Mt::ReplyCount), (Mt::Table, Mt::LastReplyAt), (Mt::Table, Mt::LastRepliedBy)])
        .from(M::Table)
        .left_join(Mt::Table, Expr::col((Mt::Table, Mt::ThreadRootId)).equals((M::Table, M::MessageId)))
        .to_owned()
}

fn decode_message(
    row: &AnyRow,
    mentions: &mut HashMap<MessageId, Vec<UserId>>,
    attachments: &mut HashMap<MessageId, Vec<AttachmentInfo>>,
) -> Result<Message, StoreError> {
    let id: MessageId = get_id(row, "message_id")?;
    let thread = match get_opt_i64(row, "reply_count")? {
        Some(reply_count) => Some(ThreadSummary {
            reply_count,
            last_reply_at: Millis(get_i64(row, "last_reply_at")?),
            last_replied_by: get_id(row, "last_replied_by")?,
        }),
        None => None,
    };
    Ok(Message {
        id,
        conversation_id: get_id(row, "conversation_id")?,
        user_id: get_id(row, "user_id")?,
        client_msg_id: get_opt_str(row, "client_msg_id")?,
        server_seq: get_i64(row, "server_seq")?,
        thread_root_id: get_opt_id(row, "thread_root_id")?,
        text: get_str(row, "text")?,
        kind: get_str(row, "type")?,
        created_at: Millis(get_i64(row, "created_at")?),
        updated_at: Millis(get_i64(row, "updated_at")?),
        edited: get_bool(row, "edited")?,
        deleted: get_bool(row, "deleted")?,
        version_count: get_i64(row, "version_count")?,
        thread,
        mentions: Mentions {
            user_ids: mentions.remove(&id).unwrap_or_default(),
            channel: get_bool(row, "mentions_channel")?,
        },
        attachments: attachments.remove(&id).unwrap_or_default(),
    })
}

/// Runs a [`message_select`] query and decodes the rows with their mentions and attachments
/// (two extra queries).
pub(crate) async fn load_messages(
    conn: &mut AnyConnection,
    d: Dialect,
    q: &SelectStatement,
) -> Result<Vec<Message>, StoreError> {
    let rows = fetch_all(&mut *conn, d, q).await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids = rows.iter().map(|r| get_str(r, "message_id")).collect::<Result<Vec<_>, _>>()?;
    let mut mentions: HashMap<MessageId, Vec<UserId>> = HashMap::new();
    for chunk in ids.chunks(500) {
        let mq = Query::select()
            .columns([Mm::MessageId, Mm::UserId])
            .from(Mm::Table)
            .and_where(Expr::col(Mm::MessageId).is_in(chunk.iter().cloned()))
            .order_by(Mm::MessageId, Order::Asc)
            .order_by(Mm::UserId, Order::Asc)
            .to_owned();
        for r in fetch_all(&mut *conn, d, &mq).await? {
            mentions.entry(get_id(&r, "message_id")?).or_default().push(get_id(&r, "user_id")?);
        }
    }
    let mut attachments = super::attachments::infos_of_messages(&mut *conn, d, &ids).await?;
    rows.iter().map(|r| decode_message(r, &mut mentions, &mut attachments)).collect()
}

/// One message by id.
pub(crate) async fn load_message(
    conn: &mut AnyConnection,
    d: Dialect,
    id: MessageId,
) -> Result<Option<Message>, StoreError> {
    let q = message_select().and_where(Expr::col((M::Table, M::MessageId)).eq(id.to_string())).to_owned();
    Ok(load_messages(conn, d, &q).await?.pop())
}

/// Applies a [`SeqWindow`] to a message query: `after < seq < before`; the oldest after
/// `after_seq` when given, else the newest; returns whether rows come newest first.
fn apply_window(q: &mut SelectStatement, w: SeqWindow) -> bool {
    if let Some(a) = w.after_seq {
        q.and_where(Expr::col((M::Table, M::ServerSeq)).gt(a));
    }
    if let Some(bf) = w.before_seq {
        q.and_where(Expr::col((M::Table, M::ServerSeq)).lt(bf));
    }
    q.limit(w.limit.clamp(1, MAX_PAGE) as u64);
    let newest_first = w.after_seq.is_none();
    q.order_by((M::Table, M::ServerSeq), if newest_first { Order::Desc } else { Order::Asc });
    newest_first
}

/// Sorted, deduplicated mentions (the stored form, so a created message equals its re-read).
pub(crate) fn normalize_mentions(m: &Mentions) -> Mentions {
    let mut user_ids = m.user_ids.clone();
    user_ids.sort();
    user_ids.dedup();
    Mentions { user_ids, channel: m.channel }
}

impl SqlStore {
    async fn window(&self, mut q: SelectStatement, w: SeqWindow) -> StoreResult<Vec<Message>> {
        let newest_first = apply_window(&mut q, w);
        let mut conn = self.reader().acquire().await.map_err(db_err)?;
        let mut msgs = load_messages(&mut conn, self.dialect(), &q).await?;
        if newest_first {
            msgs.reverse();
        }
        Ok(msgs)
    }
}

#[async_trait]
impl MessageStore for SqlStore {
    async fn append_messages(&self, batch: &[NewMessage]) -> StoreResult<Vec<StoreResult<SendOutcome>>> {
        self.append_batch(batch).await
    }

    async fn message(&self, id: MessageId) -> StoreResult<Option<Message>> {
        let mut conn = self.reader().acquire().await.map_err(db_err)?;
        load_message(&mut conn, self.dialect(), id).await
    }

    async fn message_by_client_id(
        &self,
        conv: ConversationId,
        author: UserId,
        client_msg_id: &str,
    ) -> StoreResult<Option<Message>> {
        let q = message_select()
            .and_where(Expr::col((M::Table, M::ConversationId)).eq(conv.to_string()))
            .and_where(Expr::col((M::Table, M::UserId)).eq(author.to_string()))
            .and_where(Expr::col((M::Table, M::ClientMsgId)).eq(client_msg_id))
            .to_owned();
        let mut conn = self.reader().acquire().await.map_err(db_err)?;
        Ok(load_messages(&mut conn, self.dialect(), &q).await?.pop())
    }

    async fn messages(&self, conv: ConversationId, window: SeqWindow) -> StoreResult<Vec<Message>> {
        let q = message_select().and_where(Expr::col((M::Table, M::ConversationId)).eq(conv.to_string())).to_owned();
        self.window(q, window).await
    }

    async fn thread_replies(&self, root: MessageId, window: SeqWindow) -> StoreResult<Vec<Message>> {
        let q = message_select().and_where(Expr::col((M::Table, M::ThreadRootId)).eq(root.to_string())).to_owned();
        self.window(q, window).await
    }

    async fn edit_message(&self, edit: &MessageEdit) -> StoreResult<(Message, ConversationEvent)> {
        self.edit(edit).await
    }

    async fn delete_message(
        &self,
        id: MessageId,
        actor: UserId,
        at: Millis,
    ) -> StoreResult<Option<(Message, ConversationEvent)>> {
        self.delete(id, actor, at).await
    }

    async fn versions(&self, id: MessageId) -> StoreResult<Vec<MessageVersion>> {
        let q = Query::select()
            .columns([Mv::MessageId, Mv::Version, Mv::OldText, Mv::EditedAt, Mv::EditedBy])
            .from(Mv::Table)
            .and_where(Expr::col(Mv::MessageId).eq(id.to_string()))
            .order_by(Mv::Version, Order::Asc)
            .to_owned();
        let mut conn = self.reader().acquire().await.map_err(db_err)?;
        fetch_all(&mut *conn, self.dialect(), &q)
            .await?
            .iter()
            .map(|r| {
                Ok(MessageVersion {
                    message_id: get_id(r, "message_id")?,
                    version: get_i64(r, "version")?,
                    old_text: get_str(r, "old_text")?,
                    edited_at: Millis(get_i64(r, "edited_at")?),
                    edited_by: get_id(r, "edited_by")?,
                })
            })
            .collect()
    }

    async fn add_reaction(
        &self,
        msg: &Message,
        user: UserId,
        emoji: &str,
        at: Millis,
    ) -> StoreResult<Option<ConversationEvent>> {
        self.react(msg, user, emoji, at, Presence::Present).await
    }

    async fn remove_reaction(
        &self,
        msg: &Message,
        user: UserId,
        emoji: &str,
        at: Millis,
    ) -> StoreResult<Option<ConversationEvent>> {
        self.react(msg, user, emoji, at, Presence::Absent).await
    }

    async fn reactions(&self, id: MessageId) -> StoreResult<Vec<Reaction>> {
        let q = Query::select()
            .columns([Mr::MessageId, Mr::Emoji, Mr::UserId, Mr::ReactedAt])
            .from(Mr::Table)
            .and_where(Expr::col(Mr::MessageId).eq(id.to_string()))
            .order_by(Mr::ReactedAt, Order::Asc)
            .order_by(Mr::Emoji, Order::Asc)
            .order_by(Mr::UserId, Order::Asc)
            .to_owned();
        let mut conn = self.reader().acquire().await.map_err(db_err)?;
        fetch_all(&mut *conn, self.dialect(), &q)
            .await?
            .iter()
            .map(|r| {
                Ok(Reaction {
                    message_id: get_id(r, "message_id")?,
                    emoji: get_str(r, "emoji")?,
                    user_id: get_id(r, "user_id")?,
                    reacted_at: Millis(get_i64(r, "reacted_at")?),
                })
            })
            .collect()
    }

    async fn pin(&self, msg: &Message, by: UserId, at: Millis) -> StoreResult<Option<ConversationEvent>> {
        self.set_pin(msg, by, at, Presence::Present).await
    }

    async fn unpin(&self, msg: &Message, by: UserId, at: Millis) -> StoreResult<Option<ConversationEvent>> {
        self.set_pin(msg, by, at, Presence::Absent).await
    }

    async fn pins(&self, conv: ConversationId) -> StoreResult<Vec<Pin>> {
        let q = Query::select()
            .columns([Mp::MessageId, Mp::ConversationId, Mp::PinnedBy, Mp::PinnedAt])
            .from(Mp::Table)
            .and_where(Expr::col(Mp::ConversationId).eq(conv.to_string()))
            .order_by(Mp::PinnedAt, Order::Desc)
            .order_by(Mp::MessageId, Order::Desc)
            .to_owned();
        let mut conn = self.reader().acquire().await.map_err(db_err)?;
        fetch_all(&mut *conn, self.dialect(), &q)
            .await?
            .iter()
            .map(|r| {
                Ok(Pin {
                    message_id: get_id(r, "message_id")?,
                    conversation_id: get_id(r, "conversation_id")?,
                    pinned_by: get_id(r, "pinned_by")?,
                    pinned_at: Millis(get_i64(r, "pinned_at")?),
                })
            })
            .collect()
    }
}
