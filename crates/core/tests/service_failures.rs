//! Group commit when the store fails a whole batch: every caller of the batch gets the error,
//! nothing is half-written, and the service keeps working afterwards. Uses a real SQLite
//! `SqlStore` behind a wrapper that can fail `append_messages` on demand.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use chat_core::service::{ChatService, CreateChannel, SendMessage, ServiceConfig};
use chat_domain::{
    Conversation, ConversationEvent, ConversationId, ConversationSettings, ConversationSummary, DomainError, Member,
    MemberRole, Message, MessageId, MessageVersion, Millis, Pin, Reaction, SeqWindow, User, UserId, Workspace,
    WorkspaceId,
};
use chat_storage::*;

/// A `SqlStore` whose `append_messages` fails with `Unavailable` while `fail` is set.
struct FlakyStore {
    inner: SqlStore,
    fail: AtomicBool,
}

impl FlakyStore {
    fn check(&self) -> StoreResult<()> {
        if self.fail.load(Ordering::SeqCst) { Err(StoreError::Unavailable("injected failure".into())) } else { Ok(()) }
    }
}

async fn setup() -> (tempfile::TempDir, Arc<FlakyStore>, ChatService) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("chat.db").display());
    let inner = SqlStore::connect(&url, ConnectOptions::default()).await.unwrap();
    inner.migrate().await.unwrap();
    let ws = Workspace { id: WorkspaceId::DEFAULT, name: "default".into(), created_at: Millis::now() };
    inner.ensure_workspace(&ws).await.unwrap();
    let store = Arc::new(FlakyStore { inner, fail: AtomicBool::new(false) });
    let svc = ChatService::new(store.clone(), ServiceConfig::default());
    (dir, store, svc)
}

async fn user(svc: &ChatService, name: &str) -> UserId {
    let u = User {
        id: UserId::new(),
        workspace_id: WorkspaceId::DEFAULT,
        username: name.into(),
        display_name: name.into(),
        avatar_url: None,
        created_at: Millis::now(),
    };
    svc.store().create_user(&u, "x").await.unwrap();
    u.id
}

fn msg(conv: ConversationId, text: &str) -> SendMessage {
    SendMessage { conversation_id: conv, text: text.into(), ..Default::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_batch_fails_every_caller_and_stores_nothing() {
    let (_dir, store, svc) = setup().await;
    let alice = user(&svc, "alice").await;
    let conv = svc.create_channel(alice, CreateChannel { name: "g".into(), ..Default::default() }).await.unwrap().id;
    svc.send(alice, msg(conv, "before")).await.unwrap();
    let last_before = svc.conversation(alice, conv).await.unwrap().last_seq;

    store.fail.store(true, Ordering::SeqCst);
    let mut tasks = Vec::new();
    for i in 0..50 {
        let svc = svc.clone();
        tasks.push(tokio::spawn(async move { svc.send(alice, msg(conv, &format!("lost {i}"))).await }));
    }
    for t in tasks {
        let r = t.await.unwrap();
        assert!(matches!(r, Err(DomainError::Unavailable(_))), "expected Unavailable, got {r:?}");
    }
    assert!(svc.batch_stats().failed_batches >= 1);
    assert_eq!(svc.conversation(alice, conv).await.unwrap().last_seq, last_before, "nothing was written");

    store.fail.store(false, Ordering::SeqCst);
    let after = svc.send(alice, msg(conv, "after")).await.unwrap();
    assert_eq!(after.message().server_seq, last_before + 1, "the log stays gap-free");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_refused_send_does_not_fail_the_rest_of_its_batch() {
    let (_dir, _store, svc) = setup().await;
    let alice = user(&svc, "alice").await;
    let conv = svc.create_channel(alice, CreateChannel { name: "g".into(), ..Default::default() }).await.unwrap().id;
    let mut tasks = Vec::new();
    for i in 0..60 {
        let svc = svc.clone();
        let text = if i == 30 { "poison".to_string() } else { format!("fine {i}") };
        tasks.push(tokio::spawn(async move { (i, svc.send(alice, msg(conv, &text)).await) }));
    }
    let mut stored = 0;
    for t in tasks {
        match t.await.unwrap() {
            (30, r) => assert!(matches!(r, Err(DomainError::Internal(_))), "the refused send fails: {r:?}"),
            (i, r) => {
                assert!(r.is_ok(), "send {i} failed: {r:?}");
                stored += 1;
            }
        }
    }
    assert_eq!(stored, 59);
    let events = svc.events_after(alice, conv, 0, 500).await.unwrap();
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=60).collect::<Vec<_>>(), "gap-free");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_send_does_not_use_up_the_slow_mode_slot() {
    let (_dir, store, svc) = setup().await;
    let (alice, bob) = (user(&svc, "alice").await, user(&svc, "bob").await);
    let settings = ConversationSettings { slow_mode_seconds: 60, ..Default::default() };
    let req =
        CreateChannel { name: "slow".into(), settings: Some(settings), member_ids: vec![bob], ..Default::default() };
    let conv = svc.create_channel(alice, req).await.unwrap().id;
    store.fail.store(true, Ordering::SeqCst);
    assert!(svc.send(bob, msg(conv, "lost")).await.is_err());
    store.fail.store(false, Ordering::SeqCst);
    svc.send(bob, msg(conv, "kept")).await.unwrap();
    assert!(matches!(svc.send(bob, msg(conv, "too soon")).await, Err(DomainError::RateLimited { .. })));
}

#[async_trait]
impl UserStore for FlakyStore {
    async fn ensure_workspace(&self, ws: &Workspace) -> StoreResult<()> {
        self.inner.ensure_workspace(ws).await
    }
    async fn create_user(&self, user: &User, password_hash: &str) -> StoreResult<()> {
        self.inner.create_user(user, password_hash).await
    }
    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        self.inner.user(id).await
    }
    async fn user_credentials(&self, ws: WorkspaceId, username: &str) -> StoreResult<Option<(User, String)>> {
        self.inner.user_credentials(ws, username).await
    }
    async fn users(&self, ids: &[UserId]) -> StoreResult<Vec<User>> {
        self.inner.users(ids).await
    }
    async fn search_users(&self, ws: WorkspaceId, prefix: &str, limit: i64) -> StoreResult<Vec<User>> {
        self.inner.search_users(ws, prefix, limit).await
    }
}

#[async_trait]
impl AuthStore for FlakyStore {
    async fn signing_key(&self) -> StoreResult<Option<SigningKeyRecord>> {
        self.inner.signing_key().await
    }
    async fn insert_signing_key_if_absent(&self, key: &SigningKeyRecord) -> StoreResult<SigningKeyRecord> {
        self.inner.insert_signing_key_if_absent(key).await
    }
    async fn insert_refresh_token(&self, token: &RefreshTokenRecord) -> StoreResult<()> {
        self.inner.insert_refresh_token(token).await
    }
    async fn refresh_token(&self, jti: &str) -> StoreResult<Option<RefreshTokenRecord>> {
        self.inner.refresh_token(jti).await
    }
    async fn rotate_refresh_token(&self, old_jti: &str, new: &RefreshTokenRecord, now: Millis) -> StoreResult<bool> {
        self.inner.rotate_refresh_token(old_jti, new, now).await
    }
    async fn revoke_refresh_family(&self, family_id: &str, now: Millis) -> StoreResult<u64> {
        self.inner.revoke_refresh_family(family_id, now).await
    }
    async fn revoke_refresh_token(&self, jti: &str, now: Millis) -> StoreResult<bool> {
        self.inner.revoke_refresh_token(jti, now).await
    }
    async fn create_oauth_client(&self, client: &OAuthClientRecord) -> StoreResult<()> {
        self.inner.create_oauth_client(client).await
    }
    async fn oauth_client(&self, client_id: &str) -> StoreResult<Option<OAuthClientRecord>> {
        self.inner.oauth_client(client_id).await
    }
}

#[async_trait]
impl ConversationStore for FlakyStore {
    async fn create_conversation(&self, new: &NewConversation) -> StoreResult<(Conversation, Vec<ConversationEvent>)> {
        self.inner.create_conversation(new).await
    }
    async fn conversation(&self, id: ConversationId) -> StoreResult<Option<Conversation>> {
        self.inner.conversation(id).await
    }
    async fn conversation_by_dm_key(&self, dm_key: &str) -> StoreResult<Option<Conversation>> {
        self.inner.conversation_by_dm_key(dm_key).await
    }
    async fn conversations_of(&self, user: UserId) -> StoreResult<Vec<ConversationSummary>> {
        self.inner.conversations_of(user).await
    }
    async fn public_channels(&self, ws: WorkspaceId, limit: i64) -> StoreResult<Vec<Conversation>> {
        self.inner.public_channels(ws, limit).await
    }
    async fn member(&self, conv: ConversationId, user: UserId) -> StoreResult<Option<Member>> {
        self.inner.member(conv, user).await
    }
    async fn conversation_with_member(
        &self,
        conv: ConversationId,
        user: UserId,
    ) -> StoreResult<Option<(Conversation, Option<Member>)>> {
        self.inner.conversation_with_member(conv, user).await
    }
    async fn members(&self, conv: ConversationId) -> StoreResult<Vec<Member>> {
        self.inner.members(conv).await
    }
    async fn co_member_ids(&self, user: UserId, limit: usize) -> StoreResult<Vec<UserId>> {
        self.inner.co_member_ids(user, limit).await
    }
    async fn member_ids(&self, conv: ConversationId) -> StoreResult<Vec<UserId>> {
        self.inner.member_ids(conv).await
    }
    async fn member_ids_of(
        &self,
        convs: &[ConversationId],
    ) -> StoreResult<std::collections::HashMap<ConversationId, Vec<UserId>>> {
        self.inner.member_ids_of(convs).await
    }
    async fn update_conversation(&self, update: &ConversationUpdate) -> StoreResult<(Conversation, ConversationEvent)> {
        self.inner.update_conversation(update).await
    }
    async fn add_member(
        &self,
        conv: ConversationId,
        actor: UserId,
        user: UserId,
        role: MemberRole,
        at: Millis,
    ) -> StoreResult<ConversationEvent> {
        self.inner.add_member(conv, actor, user, role, at).await
    }
    async fn remove_member(
        &self,
        conv: ConversationId,
        actor: UserId,
        user: UserId,
        at: Millis,
    ) -> StoreResult<ConversationEvent> {
        self.inner.remove_member(conv, actor, user, at).await
    }
    async fn set_read_position(
        &self,
        conv: ConversationId,
        user: UserId,
        delivered: Option<i64>,
        seen: Option<i64>,
        at: Millis,
    ) -> StoreResult<Member> {
        self.inner.set_read_position(conv, user, delivered, seen, at).await
    }
    async fn last_message_at(&self, conv: ConversationId, user: UserId) -> StoreResult<Option<Millis>> {
        self.inner.last_message_at(conv, user).await
    }
}

#[async_trait]
impl MessageStore for FlakyStore {
    async fn append_messages(&self, batch: &[NewMessage]) -> StoreResult<Vec<StoreResult<SendOutcome>>> {
        self.check()?;
        // A message the database refuses (as PostgreSQL refuses some bytes) fails the whole
        // transaction it is in.
        if batch.iter().any(|m| m.text == "poison") {
            return Err(StoreError::Unexpected(anyhow::anyhow!("injected data error")));
        }
        self.inner.append_messages(batch).await
    }
    async fn message(&self, id: MessageId) -> StoreResult<Option<Message>> {
        self.inner.message(id).await
    }
    async fn message_by_client_id(
        &self,
        conv: ConversationId,
        author: UserId,
        client_msg_id: &str,
    ) -> StoreResult<Option<Message>> {
        self.inner.message_by_client_id(conv, author, client_msg_id).await
    }
    async fn messages(&self, conv: ConversationId, window: SeqWindow) -> StoreResult<Vec<Message>> {
        self.inner.messages(conv, window).await
    }
    async fn thread_replies(&self, root: MessageId, window: SeqWindow) -> StoreResult<Vec<Message>> {
        self.inner.thread_replies(root, window).await
    }
    async fn edit_message(&self, edit: &MessageEdit) -> StoreResult<(Message, ConversationEvent)> {
        self.inner.edit_message(edit).await
    }
    async fn delete_message(
        &self,
        id: MessageId,
        actor: UserId,
        at: Millis,
    ) -> StoreResult<Option<(Message, ConversationEvent)>> {
        self.inner.delete_message(id, actor, at).await
    }
    async fn versions(&self, id: MessageId) -> StoreResult<Vec<MessageVersion>> {
        self.inner.versions(id).await
    }
    async fn add_reaction(
        &self,
        msg: &Message,
        user: UserId,
        emoji: &str,
        at: Millis,
    ) -> StoreResult<Option<ConversationEvent>> {
        self.inner.add_reaction(msg, user, emoji, at).await
    }
    async fn remove_reaction(
        &self,
        msg: &Message,
        user: UserId,
        emoji: &str,
        at: Millis,
    ) -> StoreResult<Option<ConversationEvent>> {
        self.inner.remove_reaction(msg, user, emoji, at).await
    }
    async fn reactions(&self, id: MessageId) -> StoreResult<Vec<Reaction>> {
        self.inner.reactions(id).await
    }
    async fn pin(&self, msg: &Message, by: UserId, at: Millis) -> StoreResult<Option<ConversationEvent>> {
        self.inner.pin(msg, by, at).await
    }
    async fn unpin(&self, msg: &Message, by: UserId, at: Millis) -> StoreResult<Option<ConversationEvent>> {
        self.inner.unpin(msg, by, at).await
    }
    async fn pins(&self, conv: ConversationId) -> StoreResult<Vec<Pin>> {
        self.inner.pins(conv).await
    }
}

#[async_trait]
impl EventStore for FlakyStore {
    async fn events_after(
        &self,
        conv: ConversationId,
        after_seq: i64,
        limit: i64,
    ) -> StoreResult<Vec<ConversationEvent>> {
        self.inner.events_after(conv, after_seq, limit).await
    }
}

#[async_trait]
impl OutboxStore for FlakyStore {
    async fn pending_outbox(&self, limit: i64) -> StoreResult<Vec<OutboxRow>> {
        self.inner.pending_outbox(limit).await
    }
    async fn mark_outbox_processed(&self, ids: &[i64], at: Millis) -> StoreResult<()> {
        self.inner.mark_outbox_processed(ids, at).await
    }
}

#[async_trait]
impl AttachmentStore for FlakyStore {
    async fn insert_attachment(&self, a: &chat_domain::Attachment) -> StoreResult<()> {
        self.inner.insert_attachment(a).await
    }
    async fn complete_upload(&self, a: &chat_domain::Attachment) -> StoreResult<bool> {
        self.inner.complete_upload(a).await
    }
    async fn attachment(&self, id: chat_domain::AttachmentId) -> StoreResult<Option<chat_domain::Attachment>> {
        self.inner.attachment(id).await
    }
    async fn set_attachment_status(
        &self,
        id: chat_domain::AttachmentId,
        from: chat_domain::AttachmentStatus,
        to: chat_domain::AttachmentStatus,
    ) -> StoreResult<bool> {
        self.inner.set_attachment_status(id, from, to).await
    }
    async fn remove_attachment(
        &self,
        id: chat_domain::AttachmentId,
        status: chat_domain::AttachmentStatus,
    ) -> StoreResult<bool> {
        self.inner.remove_attachment(id, status).await
    }
    async fn stale_attachments(
        &self,
        unattached_before: Millis,
        limit: i64,
    ) -> StoreResult<Vec<chat_domain::Attachment>> {
        self.inner.stale_attachments(unattached_before, limit).await
    }
}
