//! Authorization and validation rules of `ChatService` (product.md "Authorization", "Bad
//! input"), one test per rule, against a real SQLite `SqlStore`.

use std::sync::Arc;

use chat_core::service::{ChatService, ConversationPatch, CreateChannel, SendMessage, SendOutcome, ServiceConfig};
use chat_domain::{
    ConversationId, ConversationKind, ConversationSettings, DomainError, MemberRole, Message, Millis, SeqWindow, User,
    UserId, Workspace, WorkspaceId,
};
use chat_storage::{ConnectOptions, SqlStore, Store, UserStore};
use tempfile::TempDir;

struct Env {
    _dir: TempDir,
    svc: ChatService,
}

async fn env() -> Env {
    env_with(ServiceConfig::default()).await
}

async fn env_with(cfg: ServiceConfig) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("chat.db").display());
    let store = SqlStore::connect(&url, ConnectOptions::default()).await.unwrap();
    store.migrate().await.unwrap();
    let ws = Workspace { id: WorkspaceId::DEFAULT, name: "default".into(), created_at: Millis::now() };
    store.ensure_workspace(&ws).await.unwrap();
    let store: Arc<dyn Store> = Arc::new(store);
    Env { _dir: dir, svc: ChatService::new(store, cfg) }
}

impl Env {
    async fn user_in(&self, name: &str, ws: WorkspaceId) -> UserId {
        let u = User {
            id: UserId::new(),
            workspace_id: ws,
            username: name.into(),
            display_name: name.into(),
            avatar_url: None,
            created_at: Millis::now(),
        };
        self.svc.store().create_user(&u, "x").await.unwrap();
        u.id
    }

    async fn user(&self, name: &str) -> UserId {
        self.user_in(name, WorkspaceId::DEFAULT).await
    }

    async fn channel_with(
        &self,
        owner: UserId,
        private: bool,
        settings: Option<ConversationSettings>,
        members: &[UserId],
    ) -> ConversationId {
        let req = CreateChannel {
            name: "room".into(),
            topic: None,
            is_private: private,
            settings,
            member_ids: members.to_vec(),
        };
        self.svc.create_channel(owner, req).await.unwrap().id
    }

    async fn private(&self, owner: UserId, members: &[UserId]) -> ConversationId {
        self.channel_with(owner, true, None, members).await
    }

    async fn public(&self, owner: UserId, members: &[UserId]) -> ConversationId {
        self.channel_with(owner, false, None, members).await
    }

    async fn say(&self, who: UserId, conv: ConversationId, text: &str) -> Message {
        self.svc.send(who, msg(conv, text)).await.unwrap().message().clone()
    }
}

fn msg(conv: ConversationId, text: &str) -> SendMessage {
    SendMessage { conversation_id: conv, text: text.into(), ..Default::default() }
}

fn window() -> SeqWindow {
    SeqWindow { after_seq: None, before_seq: None, limit: 50 }
}

#[track_caller]
fn not_found<T: std::fmt::Debug>(r: Result<T, DomainError>) {
    assert!(matches!(r, Err(DomainError::NotFound(_))), "expected NotFound, got {r:?}");
}

#[track_caller]
fn forbidden<T: std::fmt::Debug>(r: Result<T, DomainError>) {
    assert!(matches!(r, Err(DomainError::Forbidden(_))), "expected Forbidden, got {r:?}");
}

#[track_caller]
fn invalid<T: std::fmt::Debug>(r: Result<T, DomainError>, want: &str) {
    match r {
        Err(DomainError::Invalid { field, .. }) => assert_eq!(field, want),
        other => panic!("expected Invalid({want}), got {other:?}"),
    }
}

// ----- non-members of a private channel -----

#[tokio::test]
async fn non_member_cannot_read_private_channel() {
    let env = env().await;
    let (alice, eve) = (env.user("alice").await, env.user("eve").await);
    let conv = env.private(alice, &[]).await;
    env.say(alice, conv, "secret").await;
    not_found(env.svc.messages(eve, conv, window()).await);
    not_found(env.svc.conversation(eve, conv).await);
    not_found(env.svc.events_after(eve, conv, 0, 50).await);
}

#[tokio::test]
async fn non_member_cannot_send_to_private_channel() {
    let env = env().await;
    let (alice, eve) = (env.user("alice").await, env.user("eve").await);
    let conv = env.private(alice, &[]).await;
    not_found(env.svc.send(eve, msg(conv, "hi")).await);
}

#[tokio::test]
async fn non_member_cannot_react_in_private_channel() {
    let env = env().await;
    let (alice, eve) = (env.user("alice").await, env.user("eve").await);
    let conv = env.private(alice, &[]).await;
    let m = env.say(alice, conv, "secret").await;
    not_found(env.svc.add_reaction(eve, m.id, "👍").await);
    not_found(env.svc.reactions(eve, m.id).await);
    not_found(env.svc.message(eve, m.id).await);
}

#[tokio::test]
async fn non_member_cannot_pin_in_private_channel() {
    let env = env().await;
    let (alice, eve) = (env.user("alice").await, env.user("eve").await);
    let conv = env.private(alice, &[]).await;
    let m = env.say(alice, conv, "secret").await;
    not_found(env.svc.pin(eve, m.id).await);
    not_found(env.svc.pins(eve, conv).await);
}

#[tokio::test]
async fn non_member_cannot_list_members_of_private_channel() {
    let env = env().await;
    let (alice, eve) = (env.user("alice").await, env.user("eve").await);
    let conv = env.private(alice, &[]).await;
    not_found(env.svc.members(eve, conv).await);
}

#[tokio::test]
async fn non_member_of_public_channel_is_forbidden_until_joined() {
    let env = env().await;
    let (alice, bob) = (env.user("alice").await, env.user("bob").await);
    let conv = env.public(alice, &[]).await;
    assert_eq!(env.svc.conversation(bob, conv).await.unwrap().id, conv, "public metadata is visible");
    forbidden(env.svc.messages(bob, conv, window()).await);
    forbidden(env.svc.send(bob, msg(conv, "hi")).await);
}

// ----- messages: edit and delete -----

#[tokio::test]
async fn member_cannot_edit_anothers_message() {
    let env = env().await;
    let (alice, bob) = (env.user("alice").await, env.user("bob").await);
    let conv = env.public(alice, &[bob]).await;
    let m = env.say(alice, conv, "mine").await;
    forbidden(env.svc.edit_message(bob, m.id, "hacked".into()).await);
    let own = env.svc.edit_message(alice, m.id, "mine, edited".into()).await.unwrap();
    assert!(own.edited);
    assert_eq!(own.text, "mine, edited");
    let versions = env.svc.versions(bob, m.id).await.unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].old_text, "mine");
}

#[tokio::test]
async fn member_cannot_delete_anothers_message() {
    let env = env().await;
    let (alice, bob, carol) = (env.user("alice").await, env.user("bob").await, env.user("carol").await);
    let conv = env.public(alice, &[bob, carol]).await;
    let m = env.say(carol, conv, "carol's").await;
    forbidden(env.svc.delete_message(bob, m.id).await);
    let own = env.svc.delete_message(carol, m.id).await.unwrap();
    assert!(own.deleted);
}

#[tokio::test]
async fn owner_deletes_any_message() {
    let env = env().await;
    let (alice, bob) = (env.user("alice").await, env.user("bob").await);
    let conv = env.public(alice, &[bob]).await;
    let m = env.say(bob, conv, "bob's").await;
    let tomb = env.svc.delete_message(alice, m.id).await.unwrap();
    assert!(tomb.deleted);
    assert!(tomb.text.is_empty());
    // Idempotent, and a deleted message cannot be edited.
    assert!(env.svc.delete_message(alice, m.id).await.unwrap().deleted);
    assert!(matches!(env.svc.edit_message(bob, m.id, "x".into()).await, Err(DomainError::Conflict(_))));
}

// ----- settings -----

#[tokio::test]
async fn reactions_off_is_forbidden() {
    let env = env().await;
    let alice = env.user("alice").await;
    let settings = ConversationSettings { allow_reactions: false, ..Default::default() };
    let conv = env.channel_with(alice, false, Some(settings), &[]).await;
    let m = env.say(alice, conv, "no reactions").await;
    forbidden(env.svc.add_reaction(alice, m.id, "👍").await);
}

#[tokio::test]
async fn pins_off_is_forbidden() {
    let env = env().await;
    let alice = env.user("alice").await;
    let settings = ConversationSettings { allow_pins: false, ..Default::default() };
    let conv = env.channel_with(alice, false, Some(settings), &[]).await;
    let m = env.say(alice, conv, "no pins").await;
    forbidden(env.svc.pin(alice, m.id).await);
}

#[tokio::test]
async fn threads_off_is_forbidden() {
    let env = env().await;
    let alice = env.user("alice").await;
    let settings = ConversationSettings { allow_thread: false, ..Default::default() };
    let conv = env.channel_with(alice, false, Some(settings), &[]).await;
    let root = env.say(alice, conv, "root").await;
    let reply = SendMessage { thread_root_id: Some(root.id), ..msg(conv, "reply") };
    forbidden(env.svc.send(alice, reply).await);
}

#[tokio::test]
async fn reactions_pins_and_threads_work_when_allowed() {
    let env = env().await;
    let (alice, bob) = (env.user("alice").await, env.user("bob").await);
    let conv = env.public(alice, &[bob]).await;
    let root = env.say(alice, conv, "root").await;
    env.svc.add_reaction(bob, root.id, "👍").await.unwrap();
    env.svc.add_reaction(bob, root.id, "👍").await.unwrap(); // idempotent
    assert_eq!(env.svc.reactions(alice, root.id).await.unwrap().len(), 1);
    env.svc.remove_reaction(bob, root.id, "👍").await.unwrap();
    assert!(env.svc.reactions(alice, root.id).await.unwrap().is_empty());
    env.svc.pin(bob, root.id).await.unwrap();
    assert_eq!(env.svc.pins(alice, conv).await.unwrap().len(), 1);
    env.svc.unpin(bob, root.id).await.unwrap();
    assert!(env.svc.pins(alice, conv).await.unwrap().is_empty());
    let reply = SendMessage { thread_root_id: Some(root.id), ..msg(conv, "reply") };
    let reply = env.svc.send(bob, reply).await.unwrap().message().clone();
    let replies = env.svc.thread_replies(alice, root.id, window()).await.unwrap();
    assert_eq!(replies.iter().map(|m| m.id).collect::<Vec<_>>(), vec![reply.id]);
    // A reply to a reply is refused.
    let nested = SendMessage { thread_root_id: Some(reply.id), ..msg(conv, "nested") };
    invalid(env.svc.send(bob, nested).await, "threadRootId");
}

#[tokio::test]
async fn slow_mode_rate_limits_members_not_owners() {
    let env = env().await;
    let (alice, bob) = (env.user("alice").await, env.user("bob").await);
    let settings = ConversationSettings { slow_mode_seconds: 30, ..Default::default() };
    let conv = env.channel_with(alice, false, Some(settings), &[bob]).await;
    env.say(bob, conv, "first").await;
    match env.svc.send(bob, msg(conv, "second")).await {
        Err(DomainError::RateLimited { retry_after_ms, .. }) => {
            assert!(retry_after_ms > 0 && retry_after_ms <= 30_000, "retry_after_ms = {retry_after_ms}");
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    // Owners are exempt.
    env.say(alice, conv, "one").await;
    env.say(alice, conv, "two").await;
}

#[tokio::test]
async fn sends_past_the_per_user_rate_are_refused_with_the_wait() {
    let limits = chat_domain::Limits { sends_per_user_per_sec: 1, send_burst_per_user: 3, ..Default::default() };
    let env = env_with(ServiceConfig { limits, ..Default::default() }).await;
    let (alice, bob) = (env.user("alice").await, env.user("bob").await);
    let conv = env.channel_with(alice, false, None, &[bob]).await;
    for i in 0..3 {
        env.say(bob, conv, &format!("burst {i}")).await;
    }
    match env.svc.send(bob, msg(conv, "one too many")).await {
        Err(DomainError::RateLimited { retry_after_ms, .. }) => assert!((1..=1000).contains(&retry_after_ms)),
        other => panic!("expected RateLimited, got {other:?}"),
    }
    // The budget is per user: alice is unaffected.
    env.say(alice, conv, "mine").await;
}

#[tokio::test]
async fn the_last_owner_cannot_leave_a_channel_with_members() {
    let env = env().await;
    let (alice, bob) = (env.user("alice").await, env.user("bob").await);
    let conv = env.channel_with(alice, false, None, &[bob]).await;
    assert!(matches!(env.svc.leave(alice, conv).await, Err(DomainError::Conflict(_))));
    assert_eq!(env.svc.members(alice, conv).await.unwrap().len(), 2, "nothing changed");
    // Once alone, the owner may leave.
    env.svc.remove_member(alice, conv, bob).await.unwrap();
    env.svc.leave(alice, conv).await.unwrap();
}

#[tokio::test]
async fn slow_mode_answers_a_retry_with_its_original() {
    let env = env().await;
    let (alice, bob) = (env.user("alice").await, env.user("bob").await);
    let settings = ConversationSettings { slow_mode_seconds: 30, ..Default::default() };
    let conv = env.channel_with(alice, false, Some(settings), &[bob]).await;
    let send = SendMessage { client_msg_id: Some("retry-1".into()), ..msg(conv, "first") };
    let first = env.svc.send(bob, send.clone()).await.unwrap();
    assert!(matches!(first, SendOutcome::Created { .. }));
    match env.svc.send(bob, send).await.unwrap() {
        SendOutcome::Duplicate { message } => assert_eq!(message.server_seq, first.message().server_seq),
        other => panic!("expected the original, got {other:?}"),
    }
    // A new message inside the window is still refused.
    assert!(matches!(env.svc.send(bob, msg(conv, "second")).await, Err(DomainError::RateLimited { .. })));
}

#[tokio::test]
async fn slow_mode_holds_for_concurrent_sends() {
    let env = env().await;
    let (alice, bob) = (env.user("alice").await, env.user("bob").await);
    let settings = ConversationSettings { slow_mode_seconds: 60, ..Default::default() };
    let conv = env.channel_with(alice, false, Some(settings), &[bob]).await;
    let mut tasks = Vec::new();
    for i in 0..10 {
        let svc = env.svc.clone();
        tasks.push(tokio::spawn(async move { svc.send(bob, msg(conv, &format!("m{i}"))).await }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(DomainError::RateLimited { .. }) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(ok, 1, "slow mode let {ok} concurrent sends through");
}

// ----- membership -----

#[tokio::test]
async fn join_private_is_not_found() {
    let env = env().await;
    let (alice, eve) = (env.user("alice").await, env.user("eve").await);
    let conv = env.private(alice, &[]).await;
    not_found(env.svc.join(eve, conv).await);
}

#[tokio::test]
async fn join_public_then_send() {
    let env = env().await;
    let (alice, bob) = (env.user("alice").await, env.user("bob").await);
    let conv = env.public(alice, &[]).await;
    let listed = env.svc.public_channels(bob).await.unwrap();
    assert!(listed.iter().any(|c| c.id == conv));
    env.svc.join(bob, conv).await.unwrap();
    assert!(matches!(env.svc.join(bob, conv).await, Err(DomainError::Conflict(_))));
    env.say(bob, conv, "hello").await;
    let members = env.svc.members(bob, conv).await.unwrap();
    let me = members.iter().find(|m| m.user_id == bob).unwrap();
    assert_eq!(me.role, MemberRole::Member);
}

#[tokio::test]
async fn leave_ends_access() {
    let env = env().await;
    let (alice, bob) = (env.user("alice").await, env.user("bob").await);
    let conv = env.private(alice, &[bob]).await;
    env.say(bob, conv, "bye").await;
    env.svc.leave(bob, conv).await.unwrap();
    not_found(env.svc.messages(bob, conv, window()).await);
    not_found(env.svc.send(bob, msg(conv, "still here?")).await);
    let members = env.svc.members(alice, conv).await.unwrap();
    assert!(members.iter().all(|m| m.user_id != bob));
}

#[tokio::test]
async fn add_member_by_non_owner_is_forbidden() {
    let env = env().await;
    let (alice, bob, carol) = (env.user("alice").await, env.user("bob").await, env.user("carol").await);
    let conv = env.public(alice, &[bob]).await;
    forbidden(env.svc.add_member(bob, conv, carol).await);
    forbidden(env.svc.remove_member(bob, conv, alice).await);
    let m = env.svc.add_member(alice, conv, carol).await.unwrap();
    assert_eq!(m.role, MemberRole::Member);
    env.svc.remove_member(alice, conv, carol).await.unwrap();
    not_found(env.svc.add_member(alice, conv, UserId::new()).await);
}

#[tokio::test]
async fn update_conversation_is_owner_only_and_validated() {
    let env = env().await;
    let (alice, bob) = (env.user("alice").await, env.user("bob").await);
    let conv = env.public(alice, &[bob]).await;
    let patch = ConversationPatch { name: Some("renamed".into()), ..Default::default() };
    forbidden(env.svc.update_conversation(bob, conv, patch.clone()).await);
    let c = env.svc.update_conversation(alice, conv, patch).await.unwrap();
    assert_eq!(c.name.as_deref(), Some("renamed"));
    let blank = ConversationPatch { name: Some("   ".into()), ..Default::default() };
    invalid(env.svc.update_conversation(alice, conv, blank).await, "name");
    let bad = ConversationPatch {
        settings: Some(ConversationSettings { slow_mode_seconds: -5, ..Default::default() }),
        ..Default::default()
    };
    invalid(env.svc.update_conversation(alice, conv, bad).await, "slowModeSeconds");
}

// ----- DMs and workspaces -----

#[tokio::test]
async fn dms_are_private_idempotent_and_fixed() {
    let env = env().await;
    let (alice, bob, eve) = (env.user("alice").await, env.user("bob").await, env.user("eve").await);
    invalid(env.svc.open_dm(alice, alice).await, "userId");
    not_found(env.svc.open_dm(alice, UserId::new()).await);
    let (dm, created) = env.svc.open_dm(alice, bob).await.unwrap();
    assert!(created);
    assert!(dm.is_private);
    assert_eq!(dm.kind, ConversationKind::Dm);
    let (again, created) = env.svc.open_dm(bob, alice).await.unwrap();
    assert!(!created);
    assert_eq!(again.id, dm.id);
    not_found(env.svc.join(eve, dm.id).await);
    not_found(env.svc.messages(eve, dm.id, window()).await);
    forbidden(env.svc.add_member(alice, dm.id, eve).await);
    forbidden(env.svc.leave(bob, dm.id).await);
    let members = env.svc.members(bob, dm.id).await.unwrap();
    assert_eq!(members.len(), 2);
}

#[tokio::test]
async fn group_dm_size_and_members_are_checked() {
    let env = env().await;
    let (alice, bob, carol) = (env.user("alice").await, env.user("bob").await, env.user("carol").await);
    invalid(env.svc.create_group_dm(alice, vec![bob]).await, "memberIds");
    invalid(env.svc.create_group_dm(alice, vec![bob, bob, alice]).await, "memberIds");
    not_found(env.svc.create_group_dm(alice, vec![bob, UserId::new()]).await);
    let many: Vec<UserId> = (0..16).map(|_| UserId::new()).collect();
    invalid(env.svc.create_group_dm(alice, many).await, "memberIds");
    let (g, created) = env.svc.create_group_dm(alice, vec![bob, carol]).await.unwrap();
    assert!(created && g.is_private && g.kind == ConversationKind::GroupDm);
    let (again, created) = env.svc.create_group_dm(carol, vec![alice, bob]).await.unwrap();
    assert!(!created);
    assert_eq!(again.id, g.id);
}

#[tokio::test]
async fn users_act_only_within_their_workspace() {
    let env = env().await;
    let other_ws = WorkspaceId::new();
    env.svc
        .store()
        .ensure_workspace(&Workspace { id: other_ws, name: "other".into(), created_at: Millis::now() })
        .await
        .unwrap();
    let alice = env.user("alice").await;
    let mallory = env.user_in("mallory", other_ws).await;
    not_found(env.svc.user(alice, mallory).await);
    not_found(env.svc.open_dm(alice, mallory).await);
    let conv = env.public(alice, &[]).await;
    not_found(env.svc.conversation(mallory, conv).await);
    not_found(env.svc.join(mallory, conv).await);
    assert!(env.svc.public_channels(mallory).await.unwrap().is_empty());
    let create = CreateChannel { name: "x".into(), member_ids: vec![mallory], ..Default::default() };
    not_found(env.svc.create_channel(alice, create).await);
}

// ----- validation -----

#[tokio::test]
async fn bad_input_gets_specific_errors() {
    let env = env().await;
    let alice = env.user("alice").await;
    let conv = env.public(alice, &[]).await;
    let limits = env.svc.limits().clone();
    invalid(env.svc.send(alice, msg(conv, "")).await, "text");
    invalid(env.svc.send(alice, msg(conv, " \n ")).await, "text");
    invalid(env.svc.send(alice, msg(conv, &"x".repeat(limits.max_message_bytes + 1))).await, "text");
    let long_id = SendMessage { client_msg_id: Some("c".repeat(limits.max_client_msg_id_bytes + 1)), ..msg(conv, "x") };
    invalid(env.svc.send(alice, long_id).await, "clientMsgId");
    let long_kind = SendMessage { kind: Some("k".repeat(65)), ..msg(conv, "x") };
    invalid(env.svc.send(alice, long_kind).await, "type");
    let m = env.say(alice, conv, "ok").await;
    invalid(env.svc.add_reaction(alice, m.id, "thumbs up").await, "emoji");
    invalid(env.svc.add_reaction(alice, m.id, "").await, "emoji");
    invalid(env.svc.add_reaction(alice, m.id, &"e".repeat(limits.max_emoji_bytes + 1)).await, "emoji");
    invalid(env.svc.messages(alice, conv, SeqWindow { limit: 0, ..window() }).await, "limit");
    invalid(env.svc.messages(alice, conv, SeqWindow { limit: limits.max_page + 1, ..window() }).await, "limit");
    invalid(env.svc.events_after(alice, conv, -1, 10).await, "afterSeq");
    let blank = CreateChannel { name: "  ".into(), ..Default::default() };
    invalid(env.svc.create_channel(alice, blank).await, "name");
    let long = CreateChannel { name: "n".repeat(81), ..Default::default() };
    invalid(env.svc.create_channel(alice, long).await, "name");
    let topic = CreateChannel { name: "t".into(), topic: Some("t".repeat(1025)), ..Default::default() };
    invalid(env.svc.create_channel(alice, topic).await, "topic");
    not_found(
        env.svc
            .create_channel(
                alice,
                CreateChannel { name: "u".into(), member_ids: vec![UserId::new()], ..Default::default() },
            )
            .await,
    );
    not_found(env.svc.message(alice, chat_domain::MessageId::new()).await);
}

// ----- mentions and unread counts -----

#[tokio::test]
async fn mentions_are_resolved_and_counted_in_summary() {
    let env = env().await;
    let (alice, bob, carol) = (env.user("alice").await, env.user("bob").await, env.user("carol").await);
    let conv = env.public(alice, &[bob, carol]).await;
    let m1 = env.say(alice, conv, "hey @bob, and @nobody").await;
    assert_eq!(m1.mentions.user_ids, vec![bob]);
    assert!(!m1.mentions.channel);
    let m2 = env.say(alice, conv, "@channel standup").await;
    assert!(m2.mentions.channel);
    env.say(alice, conv, "no mention").await;
    env.say(bob, conv, "my own message is not unread").await;

    let summary = env.svc.conversations(bob).await.unwrap();
    let s = summary.iter().find(|s| s.conversation.id == conv).unwrap();
    assert_eq!(s.unread_count, 3);
    assert_eq!(s.mention_count, 2);
    let s = env.svc.conversations(carol).await.unwrap().into_iter().find(|s| s.conversation.id == conv).unwrap();
    assert_eq!(s.unread_count, 4);
    assert_eq!(s.mention_count, 1, "carol only by @channel");

    // An edit re-parses mentions.
    let edited = env.svc.edit_message(alice, m1.id, "actually @carol".into()).await.unwrap();
    assert_eq!(edited.mentions.user_ids, vec![carol]);
}

#[tokio::test]
async fn unread_counts_move_with_ack() {
    let env = env().await;
    let (alice, bob) = (env.user("alice").await, env.user("bob").await);
    let conv = env.public(alice, &[bob]).await;
    let first = env.say(alice, conv, "one").await;
    let second = env.say(alice, conv, "two @bob").await;
    let unread = |env: &Env| {
        let svc = env.svc.clone();
        async move {
            let s = svc.conversations(bob).await.unwrap().into_iter().find(|s| s.conversation.id == conv).unwrap();
            (s.unread_count, s.mention_count)
        }
    };
    assert_eq!(unread(&env).await, (2, 1));
    let m = env.svc.ack(bob, conv, None, Some(first.server_seq)).await.unwrap();
    assert_eq!(m.seen_seq, first.server_seq);
    assert_eq!(unread(&env).await, (1, 1));
    let m = env.svc.ack(bob, conv, None, Some(second.server_seq)).await.unwrap();
    assert!(m.delivered_seq >= second.server_seq, "seen raises delivered");
    assert_eq!(unread(&env).await, (0, 0));
    // Never lowered.
    let m = env.svc.ack(bob, conv, Some(0), Some(0)).await.unwrap();
    assert_eq!(m.seen_seq, second.server_seq);
    invalid(env.svc.ack(bob, conv, Some(-1), None).await, "deliveredSeq");
    let eve = env.user("eve").await;
    forbidden(env.svc.ack(eve, conv, None, Some(1)).await);
}

#[tokio::test]
async fn send_outcome_carries_the_event() {
    let env = env().await;
    let alice = env.user("alice").await;
    let conv = env.public(alice, &[]).await;
    let out = env.svc.send(alice, msg(conv, "hi")).await.unwrap();
    let SendOutcome::Created { message, event } = out else { panic!("not created") };
    assert_eq!(event.seq, message.server_seq);
    assert_eq!(event.conversation_id, conv);
    assert_eq!(message.kind, "default");
}
