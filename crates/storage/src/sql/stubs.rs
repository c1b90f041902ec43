//! Temporary stubs.
#![allow(unused_variables, dead_code)]

use async_trait::async_trait;
use chat_domain::{ConversationEvent, ConversationId, ConversationSummary, Member, Message, MessageId, MessageVersion, Millis, Pin, Reaction, SeqWindow, User, UserId, Workspace, WorkspaceId, Conversation, MemberRole};

use super::SqlStore;
use crate::*;

#[async_trait]
impl UserStore for SqlStore {
    async fn ensure_workspace(&self, ws: &Workspace) -> StoreResult<()> {
        todo!()
    }
    async fn create_user(&self, user: &User, password_hash: &str) -> StoreResult<()> {
        todo!()
    }
    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        todo!()
    }
    async fn user_credentials(&self, ws: WorkspaceId, username: &str) -> StoreResult<Option<(User, String)>> {
        todo!()
    }
    async fn users(&self, ids: &[UserId]) -> StoreResult<Vec<User>> {
        todo!()
    }
    async fn search_users(&self, ws: WorkspaceId, prefix: &str, limit: i64) -> StoreResult<Vec<User>> {
        todo!()
    }
}

#[async_trait]
impl AuthStore for SqlStore {
    async fn signing_key(&self) -> StoreResult<Option<SigningKeyRecord>> {
        todo!()
    }
    async fn insert_signing_key_if_absent(&self, key: &SigningKeyRecord) -> StoreResult<SigningKeyRecord> {
        todo!()
    }
    async fn insert_refresh_token(&self, token: &RefreshTokenRecord) -> StoreResult<()> {
        todo!()
    }
    async fn refresh_token(&self, jti: &str) -> StoreResult<Option<RefreshTokenRecord>> {
        todo!()
    }
    async fn rotate_refresh_token(&self, old_jti: &str, new: &RefreshTokenRecord, now: Millis) -> StoreResult<bool> {
        todo!()
    }
    async fn revoke_refresh_token(&self, jti: &str, now: Millis) -> StoreResult<bool> {
        todo!()
    }
    async fn create_oauth_client(&self, client: &OAuthClientRecord) -> StoreResult<()> {
        todo!()
    }
    async fn oauth_client(&self, client_id: &str) -> StoreResult<Option<OAuthClientRecord>> {
        todo!()
    }
}

#[async_trait]
impl ConversationStore for SqlStore {
    async fn create_conversation(&self, new: &NewConversation) -> StoreResult<(Conversation, Vec<ConversationEvent>)> {
        todo!()
    }
    async fn conversation(&self, id: ConversationId) -> StoreResult<Option<Conversation>> {
        todo!()
    }
    async fn conversation_by_dm_key(&self, dm_key: &str) -> StoreResult<Option<Conversation>> {
        todo!()
    }
    async fn conversations_of(&self, user: UserId) -> StoreResult<Vec<ConversationSummary>> {
        todo!()
    }
    async fn public_channels(&self, ws: WorkspaceId, limit: i64) -> StoreResult<Vec<Conversation>> {
        todo!()
    }
    async fn member(&self, conv: ConversationId, user: UserId) -> StoreResult<Option<Member>> {
        todo!()
    }
    async fn members(&self, conv: ConversationId) -> StoreResult<Vec<Member>> {
        todo!()
    }
    async fn member_ids(&self, conv: ConversationId) -> StoreResult<Vec<UserId>> {
        todo!()
    }
    async fn update_conversation(&self, update: &ConversationUpdate) -> StoreResult<(Conversation, ConversationEvent)> {
        todo!()
    }
    async fn add_member(&self, conv: ConversationId, actor: UserId, user: UserId, role: MemberRole, at: Millis) -> StoreResult<ConversationEvent> {
        todo!()
    }
    async fn remove_member(&self, conv: ConversationId, actor: UserId, user: UserId, at: Millis) -> StoreResult<ConversationEvent> {
        todo!()
    }
    async fn set_read_position(&self, conv: ConversationId, user: UserId, delivered: Option<i64>, seen: Option<i64>, at: Millis) -> StoreResult<Member> {
        todo!()
    }
    async fn last_message_at(&self, conv: ConversationId, user: UserId) -> StoreResult<Option<Millis>> {
        todo!()
    }
}

#[async_trait]
impl MessageStore for SqlStore {
    async fn append_messages(&self, batch: &[NewMessage]) -> StoreResult<Vec<StoreResult<SendOutcome>>> {
        todo!()
    }
    async fn message(&self, id: MessageId) -> StoreResult<Option<Message>> {
        todo!()
    }
    async fn messages(&self, conv: ConversationId, window: SeqWindow) -> StoreResult<Vec<Message>> {
        todo!()
    }
    async fn thread_replies(&self, root: MessageId, window: SeqWindow) -> StoreResult<Vec<Message>> {
        todo!()
    }
    async fn edit_message(&self, edit: &MessageEdit) -> StoreResult<(Message, ConversationEvent)> {
        todo!()
    }
    async fn delete_message(&self, id: MessageId, actor: UserId, at: Millis) -> StoreResult<Option<(Message, ConversationEvent)>> {
        todo!()
    }
    async fn versions(&self, id: MessageId) -> StoreResult<Vec<MessageVersion>> {
        todo!()
    }
    async fn add_reaction(&self, msg: &Message, user: UserId, emoji: &str, at: Millis) -> StoreResult<Option<ConversationEvent>> {
        todo!()
    }
    async fn remove_reaction(&self, msg: &Message, user: UserId, emoji: &str, at: Millis) -> StoreResult<Option<ConversationEvent>> {
        todo!()
    }
    async fn reactions(&self, id: MessageId) -> StoreResult<Vec<Reaction>> {
        todo!()
    }
    async fn pin(&self, msg: &Message, by: UserId, at: Millis) -> StoreResult<Option<ConversationEvent>> {
        todo!()
    }
    async fn unpin(&self, msg: &Message, by: UserId, at: Millis) -> StoreResult<Option<ConversationEvent>> {
        todo!()
    }
    async fn pins(&self, conv: ConversationId) -> StoreResult<Vec<Pin>> {
        todo!()
    }
}

#[async_trait]
impl EventStore for SqlStore {
    async fn events_after(&self, conv: ConversationId, after_seq: i64, limit: i64) -> StoreResult<Vec<ConversationEvent>> {
        todo!()
    }
}

#[async_trait]
impl OutboxStore for SqlStore {
    async fn pending_outbox(&self, limit: i64) -> StoreResult<Vec<OutboxRow>> {
        todo!()
    }
    async fn mark_outbox_processed(&self, ids: &[i64], at: Millis) -> StoreResult<()> {
        todo!()
    }
}
