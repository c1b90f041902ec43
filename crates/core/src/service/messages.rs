//! Messages: send (group commit), history, edits, deletes, threads, reactions and pins.

use chat_domain::authz;
use chat_domain::{
    Conversation, ConversationId, DomainError, EventId, Member, MemberRole, Mentions, Message, MessageId,
    MessageVersion, Millis, Pin, Reaction, SeqWindow, UserId,
};
use chat_storage::{MessageEdit, NewMessage, SendOutcome};

use super::mentions::parse_mentions;
use super::{ChatService, SendMessage, ServiceResult, validate};

/// Slow-mode reservations older than this are pruned (the longest slow mode, one day).
const SLOW_MODE_PRUNE_MS: i64 = validate::MAX_SLOW_MODE_SECONDS * 1000;
/// Prune the slow-mode map when it grows beyond this many entries.
const SLOW_MODE_PRUNE_AT: usize = 100_000;

impl ChatService {
    /// Sends a message through group commit. Returns [`SendOutcome::Created`] with the
    /// stored message (its `server_seq`) and event, or [`SendOutcome::Duplicate`] with the
    /// original message for a retry with the same `client_msg_id`.
    ///
    /// # Errors
    /// `Invalid` (`text`, `clientMsgId`, `type`, `threadRootId`, `attachmentIds`), as
    /// [`authz::require_member`], `Forbidden` for a thread reply when `allow_thread` is off,
    /// `RateLimited { retry_after_ms }` in slow mode (owners exempt) or past the per-user send
    /// rate (`limits.sends_per_user_per_sec`), `Unavailable` when the
    /// database is unreachable (nothing stored).
    pub async fn send(&self, actor: UserId, req: SendMessage) -> ServiceResult<SendOutcome> {
        let limits = self.limits();
        validate::text(&req.text, limits)?;
        validate::client_msg_id(req.client_msg_id.as_deref(), limits)?;
        let kind = req.kind.unwrap_or_else(|| "default".to_string());
        validate::kind(&kind)?;
        let (conv, member) = self.conv_as_member(actor, req.conversation_id).await?;
        if let Some(root_id) = req.thread_root_id {
            authz::require_threads_allowed(&conv)?;
            let root = self.store.message(root_id).await?;
            match root {
                Some(r) if r.conversation_id == conv.id && r.deleted => {
                    return Err(DomainError::Conflict("the thread root is deleted".into()));
                }
                Some(r) if r.conversation_id == conv.id && r.thread_root_id.is_none() => {}
                Some(r) if r.conversation_id == conv.id => {
                    return Err(DomainError::invalid("threadRootId", "cannot reply to a thread reply"));
                }
                _ => return Err(DomainError::invalid("threadRootId", "no such message in this conversation")),
            }
        }
        let mentions = self.resolve_mentions(&conv, &req.text).await?;
        let now = Millis::now();
        if (conv.settings.slow_mode_seconds > 0 || !req.attachment_ids.is_empty())
            && let Some(client_msg_id) = req.client_msg_id.as_deref()
            && let Some(original) = self.store.message_by_client_id(conv.id, actor, client_msg_id).await?
        {
            // A retry is answered with its original even inside the slow-mode window (and
            // although its attachments are attached by now).
            return Ok(SendOutcome::Duplicate { message: original });
        }
        self.check_send_attachments(actor, &conv, &req.attachment_ids).await?;
        self.take_send_budget(actor)?;
        let reservation = self.reserve_slow_mode(&conv, &member, now).await?;
        let msg = NewMessage {
            id: MessageId::new(),
            event_id: EventId::new(),
            conversation_id: conv.id,
            user_id: actor,
            client_msg_id: req.client_msg_id,
            thread_root_id: req.thread_root_id,
            text: req.text,
            kind,
            mentions,
            attachment_ids: req.attachment_ids,
            at: now,
        };
        let result = self.batcher.submit(msg).await;
        if !matches!(result, Ok(SendOutcome::Created { .. })) {
            self.release_slow_mode(reservation);
        }
        result
    }

    /// Messages of a conversation in a seq window, ascending. Members only.
    ///
    /// # Errors
    /// `Invalid` (`limit` 1..=`limits.max_page`, `afterSeq`, `beforeSeq`); as
    /// [`authz::require_member`].
    pub async fn messages(
        &self,
        actor: UserId,
        conv: ConversationId,
        window: SeqWindow,
    ) -> ServiceResult<Vec<Message>> {
        validate::window(&window, self.limits())?;
        self.conv_as_member(actor, conv).await?;
        Ok(self.store.messages(conv, window).await?)
    }

    /// One message. Members of its conversation only.
    ///
    /// # Errors
    /// `NotFound("message")`; as [`authz::require_member`].
    pub async fn message(&self, actor: UserId, id: MessageId) -> ServiceResult<Message> {
        Ok(self.message_as_member(actor, id).await?.0)
    }

    /// Edits the text of the actor's own message (mentions re-parsed). Returns the message
    /// after the edit.
    ///
    /// # Errors
    /// `Invalid("text")`; as [`authz::require_member`]; `Forbidden` when not the author;
    /// `Conflict` for a deleted message.
    pub async fn edit_message(&self, actor: UserId, id: MessageId, text: String) -> ServiceResult<Message> {
        validate::text(&text, self.limits())?;
        let (msg, conv, _member) = self.message_as_member(actor, id).await?;
        authz::require_can_edit(&msg, actor)?;
        let mentions = self.resolve_mentions(&conv, &text).await?;
        let edit = MessageEdit { id, editor: actor, text, mentions, at: Millis::now(), event_id: EventId::new() };
        let (msg, _event) = self.store.edit_message(&edit).await?;
        self.committed();
        Ok(msg)
    }

    /// Soft-deletes a message (author, or an owner of the conversation). Idempotent: deleting
    /// a deleted message returns its tombstone.
    ///
    /// # Errors
    /// As [`authz::require_member`]; `Forbidden` for neither author nor owner.
    pub async fn delete_message(&self, actor: UserId, id: MessageId) -> ServiceResult<Message> {
        let (msg, _conv, member) = self.message_as_member(actor, id).await?;
        authz::require_can_delete(&msg, &member)?;
        match self.store.delete_message(id, actor, Millis::now()).await? {
            Some((msg, _event)) => {
                self.committed();
                Ok(msg)
            }
            None => self.store.message(id).await?.ok_or(DomainError::NotFound("message")),
        }
    }

    /// Edit history of a message, oldest first. Members only.
    ///
    /// # Errors
    /// As [`ChatService::message`].
    pub async fn versions(&self, actor: UserId, id: MessageId) -> ServiceResult<Vec<MessageVersion>> {
        self.message_as_member(actor, id).await?;
        Ok(self.store.versions(id).await?)
    }

    /// Replies of a thread root in a seq window, ascending. Members only.
    ///
    /// # Errors
    /// As [`ChatService::messages`] and [`ChatService::message`].
    pub async fn thread_replies(
        &self,
        actor: UserId,
        root: MessageId,
        window: SeqWindow,
    ) -> ServiceResult<Vec<Message>> {
        validate::window(&window, self.limits())?;
        self.message_as_member(actor, root).await?;
        Ok(self.store.thread_replies(root, window).await?)
    }

    /// Adds the actor's reaction (idempotent: reacting twice with one emoji stores one).
    ///
    /// # Errors
    /// `Invalid("emoji")`; as [`authz::require_member`]; `Forbidden` when `allow_reactions`
    /// is off; `Conflict` for a deleted message.
    pub async fn add_reaction(&self, actor: UserId, msg: MessageId, emoji: &str) -> ServiceResult<()> {
        validate::emoji(emoji, self.limits())?;
        let (m, conv, _member) = self.message_as_member(actor, msg).await?;
        authz::require_reactions_allowed(&conv)?;
        if m.deleted {
            return Err(DomainError::Conflict("the message is deleted".into()));
        }
        if self.store.add_reaction(&m, actor, emoji, Millis::now()).await?.is_some() {
            self.committed();
        }
        Ok(())
    }

    /// Removes the actor's reaction (idempotent). Allowed even when reactions are disabled
    /// (cleaning up is always possible).
    ///
    /// # Errors
    /// `Invalid("emoji")`; as [`authz::require_member`].
    pub async fn remove_reaction(&self, actor: UserId, msg: MessageId, emoji: &str) -> ServiceResult<()> {
        validate::emoji(emoji, self.limits())?;
        let (m, _conv, _member) = self.message_as_member(actor, msg).await?;
        if self.store.remove_reaction(&m, actor, emoji, Millis::now()).await?.is_some() {
            self.committed();
        }
        Ok(())
    }

    /// Reactions of a message, oldest first. Members only.
    ///
    /// # Errors
    /// As [`ChatService::message`].
    pub async fn reactions(&self, actor: UserId, msg: MessageId) -> ServiceResult<Vec<Reaction>> {
        self.message_as_member(actor, msg).await?;
        Ok(self.store.reactions(msg).await?)
    }

    /// Pins a message (idempotent). Members, when `allow_pins` is on.
    ///
    /// # Errors
    /// As [`authz::require_member`]; `Forbidden` when pins are off; `Conflict` for a deleted
    /// message.
    pub async fn pin(&self, actor: UserId, msg: MessageId) -> ServiceResult<()> {
        let (m, conv, _member) = self.message_as_member(actor, msg).await?;
        authz::require_pins_allowed(&conv)?;
        if m.deleted {
            return Err(DomainError::Conflict("the message is deleted".into()));
        }
        if self.store.pin(&m, actor, Millis::now()).await?.is_some() {
            self.committed();
        }
        Ok(())
    }

    /// Unpins a message (idempotent). Members, when `allow_pins` is on.
    ///
    /// # Errors
    /// As [`authz::require_member`]; `Forbidden` when pins are off.
    pub async fn unpin(&self, actor: UserId, msg: MessageId) -> ServiceResult<()> {
        let (m, conv, _member) = self.message_as_member(actor, msg).await?;
        authz::require_pins_allowed(&conv)?;
        if self.store.unpin(&m, actor, Millis::now()).await?.is_some() {
            self.committed();
        }
        Ok(())
    }

    /// Pins of a conversation, newest first. Members only.
    ///
    /// # Errors
    /// As [`authz::require_member`].
    pub async fn pins(&self, actor: UserId, conv: ConversationId) -> ServiceResult<Vec<Pin>> {
        self.conv_as_member(actor, conv).await?;
        Ok(self.store.pins(conv).await?)
    }

    // ----- helpers -----

    /// Loads a message, its conversation and the actor's membership (required).
    async fn message_as_member(&self, actor: UserId, id: MessageId) -> ServiceResult<(Message, Conversation, Member)> {
        let msg = self.store.message(id).await?.ok_or(DomainError::NotFound("message"))?;
        let (conv, member) = self.conv_and_member(actor, msg.conversation_id).await?;
        match authz::require_member(&conv, member.as_ref()) {
            Ok(_) => {}
            // A message of a private conversation is invisible: say the message is not found.
            Err(DomainError::NotFound(_)) => return Err(DomainError::NotFound("message")),
            Err(e) => return Err(e),
        }
        Ok((msg, conv, member.expect("checked by require_member")))
    }

    /// Parses the mentions of `text` and resolves usernames to users of the conversation's
    /// workspace (unknown names are ignored).
    async fn resolve_mentions(&self, conv: &Conversation, text: &str) -> ServiceResult<Mentions> {
        let parsed = parse_mentions(text);
        let mut user_ids = Vec::with_capacity(parsed.usernames.len());
        for name in &parsed.usernames {
            if let Some((u, _)) = self.store.user_credentials(conv.workspace_id, name).await?
                && !user_ids.contains(&u.id)
            {
                user_ids.push(u.id);
            }
        }
        Ok(Mentions { user_ids, channel: parsed.channel })
    }

    /// Slow mode: a member (not an owner) may send once per `slow_mode_seconds`. Reserves
    /// the slot for this send; returns what [`ChatService::release_slow_mode`] needs to undo
    /// it if the send is not stored.
    ///
    /// # Errors
    /// `RateLimited { retry_after_ms }`.
    async fn reserve_slow_mode(&self, conv: &Conversation, member: &Member, now: Millis) -> ServiceResult<Reservation> {
        let secs = conv.settings.slow_mode_seconds;
        if secs <= 0 || member.role == MemberRole::Owner {
            return Ok(None);
        }
        let key = (conv.id, member.user_id);
        let stored = self.store.last_message_at(conv.id, member.user_id).await?;
        let window_ms = secs * 1000;
        let mut map = self.slow_mode.lock().expect("slow-mode lock poisoned");
        let prev = map.get(&key).copied();
        let last = prev.max(stored);
        if let Some(last) = last {
            let elapsed = now.0 - last.0;
            if elapsed < window_ms {
                let retry_after_ms = (window_ms - elapsed.max(0)).max(1) as u64;
                return Err(DomainError::RateLimited {
                    reason: format!("slow mode: one message per {secs} s in this conversation"),
                    retry_after_ms,
                });
            }
        }
        if map.len() >= SLOW_MODE_PRUNE_AT {
            map.retain(|_, at| now.0 - at.0 < SLOW_MODE_PRUNE_MS);
        }
        map.insert(key, now);
        Ok(Some((key, now, prev)))
    }

    /// Undoes a slow-mode reservation (the send was not stored, or was a duplicate).
    fn release_slow_mode(&self, reservation: Reservation) {
        let Some((key, at, prev)) = reservation else { return };
        let mut map = self.slow_mode.lock().expect("slow-mode lock poisoned");
        if map.get(&key) == Some(&at) {
            match prev {
                Some(p) => map.insert(key, p),
                None => map.remove(&key),
            };
        }
    }
}

/// A slow-mode reservation: key, reserved instant, previous instant.
type Reservation = Option<((ConversationId, UserId), Millis, Option<Millis>)>;
