//! Changes to stored messages: edits, deletes, reactions and pins. Each locks the
//! conversation's sequence row first, re-reads the state it depends on, and appends exactly
//! one event through the shared helper (or nothing, for a no-op).

use chat_domain::{ConversationEvent, EventId, EventPayload, Mentions, Message, MessageId, Millis, UserId};
use sea_query::{Expr, ExprTrait, Query};

use super::append::insert_mentions;
use super::events::{append_event, lock_sequence};
use super::messages::{load_message, normalize_mentions};
use super::schema::{
    MessageMentions as Mm, MessagePins as Mp, MessageReactions as Mr, MessageVersions as Mv, Messages as M,
};
use super::writes::WriteBuffer;
use super::{SqlStore, Tx, b, db_err, execute, fetch_optional};
use crate::{MessageEdit, StoreError, StoreResult};

impl SqlStore {
    /// Opens a write transaction with the message's conversation locked and the message
    /// re-read under that lock.
    async fn begin_on_message(&self, id: MessageId) -> StoreResult<(Tx, Message)> {
        let d = self.dialect();
        let mut tx = self.begin().await?;
        let msg = load_message(&mut tx, d, id).await?.ok_or(StoreError::NotFound("message"))?;
        lock_sequence(&mut tx, d, msg.conversation_id).await?.ok_or(StoreError::NotFound("conversation"))?;
        let msg = load_message(&mut tx, d, id).await?.ok_or(StoreError::NotFound("message"))?;
        Ok((tx, msg))
    }

    /// Replaces the message's mentions (rows and `@channel` flag are written by the caller's
    /// UPDATE).
    async fn replace_mentions(tx: &mut Tx, d: super::Dialect, m: &Message) -> StoreResult<()> {
        let del =
            Query::delete().from_table(Mm::Table).and_where(Expr::col(Mm::MessageId).eq(m.id.to_string())).to_owned();
        let mut w = WriteBuffer::new(tx, d);
        w.push(&del, None).await?;
        insert_mentions(&mut w, std::slice::from_ref(m)).await?;
        w.flush().await
    }

    /// [`crate::MessageStore::edit_message`].
    pub(crate) async fn edit(&self, edit: &MessageEdit) -> StoreResult<(Message, ConversationEvent)> {
        let d = self.dialect();
        let (mut tx, old) = self.begin_on_message(edit.id).await?;
        if old.deleted {
            return Err(StoreError::Conflict("the message is deleted".into()));
        }
        let version = old.version_count + 1;
        let ins = Query::insert()
            .into_table(Mv::Table)
            .columns([Mv::MessageId, Mv::Version, Mv::OldText, Mv::EditedAt, Mv::EditedBy])
            .values_panic([
                old.id.to_string().into(),
                version.into(),
                old.text.clone().into(),
                edit.at.0.into(),
                edit.editor.to_string().into(),
            ])
            .to_owned();
        execute(&mut *tx, d, &ins).await?;
        let new = Message {
            text: edit.text.clone(),
            edited: true,
            version_count: version,
            updated_at: edit.at,
            mentions: normalize_mentions(&edit.mentions),
            ..old
        };
        let upd = Query::update()
            .table(M::Table)
            .value(M::Text, new.text.clone())
            .value(M::Edited, 1i64)
            .value(M::VersionCount, version)
            .value(M::UpdatedAt, edit.at.0)
            .value(M::MentionsChannel, b(new.mentions.channel))
            .and_where(Expr::col(M::MessageId).eq(new.id.to_string()))
            .to_owned();
        execute(&mut *tx, d, &upd).await?;
        Self::replace_mentions(&mut tx, d, &new).await?;
        let payload = EventPayload::MessageEdited { message: (&new).into() };
        let ev = append_event(&mut tx, d, new.conversation_id, edit.editor, edit.event_id, payload, edit.at).await?;
        tx.commit().await.map_err(db_err)?;
        Ok((new, ev))
    }

    /// [`crate::MessageStore::delete_message`].
    pub(crate) async fn delete(
        &self,
        id: MessageId,
        actor: UserId,
        at: Millis,
    ) -> StoreResult<Option<(Message, ConversationEvent)>> {
        let d = self.dialect();
        let (mut tx, old) = self.begin_on_message(id).await?;
        if old.deleted {
            tx.rollback().await.map_err(db_err)?;
            return Ok(None);
        }
        let tomb = Message {
            text: String::new(),
            deleted: true,
            updated_at: at,
            mentions: Mentions::default(),
            attachments: Vec::new(),
            ..old
        };
        let upd = Query::update()
            .table(M::Table)
            .value(M::Text, "")
            .value(M::Deleted, 1i64)
            .value(M::UpdatedAt, at.0)
            .value(M::MentionsChannel, 0i64)
            .and_where(Expr::col(M::MessageId).eq(id.to_string()))
            .to_owned();
        execute(&mut *tx, d, &upd).await?;
        Self::replace_mentions(&mut tx, d, &tomb).await?;
        super::attachments::hide_for_message(&mut tx, d, id, at).await?;
        let payload = EventPayload::MessageDeleted { message: (&tomb).into() };
        let ev = append_event(&mut tx, d, tomb.conversation_id, actor, EventId::new(), payload, at).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(Some((tomb, ev)))
    }

    /// [`crate::MessageStore::add_reaction`] (`want` present) and `remove_reaction`.
    pub(crate) async fn react(
        &self,
        msg: &Message,
        user: UserId,
        emoji: &str,
        at: Millis,
        want: Presence,
    ) -> StoreResult<Option<ConversationEvent>> {
        let add = want == Presence::Present;
        let d = self.dialect();
        let mut tx = self.begin().await?;
        lock_sequence(&mut tx, d, msg.conversation_id).await?.ok_or(StoreError::NotFound("conversation"))?;
        let key = |q: &mut sea_query::SelectStatement| {
            q.and_where(Expr::col(Mr::MessageId).eq(msg.id.to_string()))
                .and_where(Expr::col(Mr::Emoji).eq(emoji))
                .and_where(Expr::col(Mr::UserId).eq(user.to_string()));
        };
        let mut exists_q = Query::select().column(Mr::UserId).from(Mr::Table).to_owned();
        key(&mut exists_q);
        let exists = fetch_optional(&mut *tx, d, &exists_q).await?.is_some();
        if exists == add {
            tx.rollback().await.map_err(db_err)?;
            return Ok(None);
        }
        let payload = if add {
            let ins = Query::insert()
                .into_table(Mr::Table)
                .columns([Mr::MessageId, Mr::Emoji, Mr::UserId, Mr::ReactedAt])
                .values_panic([msg.id.to_string().into(), emoji.into(), user.to_string().into(), at.0.into()])
                .to_owned();
            execute(&mut *tx, d, &ins).await?;
            EventPayload::ReactionAdded { message_id: msg.id, emoji: emoji.to_owned(), user_id: user }
        } else {
            let del = Query::delete()
                .from_table(Mr::Table)
                .and_where(Expr::col(Mr::MessageId).eq(msg.id.to_string()))
                .and_where(Expr::col(Mr::Emoji).eq(emoji))
                .and_where(Expr::col(Mr::UserId).eq(user.to_string()))
                .to_owned();
            execute(&mut *tx, d, &del).await?;
            EventPayload::ReactionRemoved { message_id: msg.id, emoji: emoji.to_owned(), user_id: user }
        };
        let ev = append_event(&mut tx, d, msg.conversation_id, user, EventId::new(), payload, at).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(Some(ev))
    }

    /// [`crate::MessageStore::pin`] (`want` present) and `unpin`.
    pub(crate) async fn set_pin(
        &self,
        msg: &Message,
        by: UserId,
        at: Millis,
        want: Presence,
    ) -> StoreResult<Option<ConversationEvent>> {
        let pin = want == Presence::Present;
        let d = self.dialect();
        let mut tx = self.begin().await?;
        lock_sequence(&mut tx, d, msg.conversation_id).await?.ok_or(StoreError::NotFound("conversation"))?;
        let exists_q = Query::select()
            .column(Mp::MessageId)
            .from(Mp::Table)
            .and_where(Expr::col(Mp::MessageId).eq(msg.id.to_string()))
            .to_owned();
        let exists = fetch_optional(&mut *tx, d, &exists_q).await?.is_some();
        if exists == pin {
            tx.rollback().await.map_err(db_err)?;
            return Ok(None);
        }
        let payload = if pin {
            let ins = Query::insert()
                .into_table(Mp::Table)
                .columns([Mp::MessageId, Mp::ConversationId, Mp::PinnedBy, Mp::PinnedAt])
                .values_panic([
                    msg.id.to_string().into(),
                    msg.conversation_id.to_string().into(),
                    by.to_string().into(),
                    at.0.into(),
                ])
                .to_owned();
            execute(&mut *tx, d, &ins).await?;
            EventPayload::MessagePinned { message_id: msg.id, pinned_by: by }
        } else {
            let del = Query::delete()
                .from_table(Mp::Table)
                .and_where(Expr::col(Mp::MessageId).eq(msg.id.to_string()))
                .to_owned();
            execute(&mut *tx, d, &del).await?;
            EventPayload::MessageUnpinned { message_id: msg.id, unpinned_by: by }
        };
        let ev = append_event(&mut tx, d, msg.conversation_id, by, EventId::new(), payload, at).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(Some(ev))
    }
}

/// Whether a reaction or pin should exist after a change (a no-op when it already is so).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Presence {
    /// Add it (reaction added, message pinned).
    Present,
    /// Remove it (reaction removed, message unpinned).
    Absent,
}
