//! Shared test fixtures: a migrated SQLite store in a temp dir, and helpers that create users,
//! conversations and messages through the store traits.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use chat_domain::{
    ConversationEvent, ConversationId, ConversationKind, ConversationSettings, EventId, MemberRole, Mentions,
    MessageId, Millis, User, UserId, Workspace, WorkspaceId,
};
use chat_pipeline::{Connection, ConnectionRegistry, DeliveryConsumer, GatewayDelivery, SessionState};
use chat_storage::{
    ConnectOptions, ConversationStore, MessageStore, NewConversation, NewMessage, SendOutcome, SqlStore, UserStore,
};

/// A migrated store on a fresh SQLite file (kept alive by the returned dir).
pub async fn store() -> (tempfile::TempDir, Arc<SqlStore>) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("chat.db").display());
    let store = SqlStore::connect(&url, ConnectOptions::default()).await.unwrap();
    store.migrate().await.unwrap();
    store
        .ensure_workspace(&Workspace { id: WorkspaceId::DEFAULT, name: "default".into(), created_at: Millis::now() })
        .await
        .unwrap();
    (dir, Arc::new(store))
}

/// Creates a user in the default workspace.
pub async fn user(store: &SqlStore, name: &str) -> UserId {
    let u = User {
        id: UserId::new(),
        workspace_id: WorkspaceId::DEFAULT,
        username: name.to_owned(),
        display_name: name.to_owned(),
        avatar_url: None,
        created_at: Millis::now(),
    };
    store.create_user(&u, "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA").await.unwrap();
    u.id
}

/// Creates a channel with `members` (the first is the owner); returns its id and the
/// `USER_JOINED` events.
pub async fn channel(store: &SqlStore, name: &str, members: &[UserId]) -> (ConversationId, Vec<ConversationEvent>) {
    let roles = members
        .iter()
        .enumerate()
        .map(|(i, u)| (*u, if i == 0 { MemberRole::Owner } else { MemberRole::Member }))
        .collect();
    let new = NewConversation {
        id: ConversationId::new(),
        workspace_id: WorkspaceId::DEFAULT,
        kind: ConversationKind::Channel,
        name: Some(name.to_owned()),
        topic: None,
        is_private: false,
        created_by: members[0],
        settings: ConversationSettings::default(),
        members: roles,
        dm_key: None,
        at: Millis::now(),
    };
    let (conv, events) = store.create_conversation(&new).await.unwrap();
    (conv.id, events)
}

/// A send of `text` by `author` to `conv`.
pub fn new_message(conv: ConversationId, author: UserId, text: &str) -> NewMessage {
    NewMessage {
        id: MessageId::new(),
        event_id: EventId::new(),
        conversation_id: conv,
        user_id: author,
        client_msg_id: None,
        thread_root_id: None,
        text: text.to_owned(),
        kind: "default".to_owned(),
        mentions: Mentions::default(),
        attachment_ids: Vec::new(),
        at: Millis::now(),
    }
}

/// Stores a batch of sends in one transaction; returns their `MESSAGE` events.
pub async fn send_batch(store: &SqlStore, batch: &[NewMessage]) -> Vec<ConversationEvent> {
    store
        .append_messages(batch)
        .await
        .unwrap()
        .into_iter()
        .map(|r| match r.unwrap() {
            SendOutcome::Created { event, .. } => event,
            SendOutcome::Duplicate { .. } => panic!("unexpected duplicate"),
        })
        .collect()
}

/// Stores one message; returns its event.
pub async fn send(store: &SqlStore, conv: ConversationId, author: UserId, text: &str) -> ConversationEvent {
    send_batch(store, &[new_message(conv, author, text)]).await.remove(0)
}

/// Registers a live connection of `user` on `gateway`.
pub async fn connect(registry: &dyn ConnectionRegistry, user: UserId, gateway: &str, id: &str) {
    let now = Millis::now();
    registry
        .register(Connection {
            connection_id: id.to_owned(),
            user_id: user,
            workspace_id: WorkspaceId::DEFAULT,
            gateway_node_id: gateway.to_owned(),
            connected_at: now,
            last_ping_at: now,
            device_type: "web".to_owned(),
            ip_address: "127.0.0.1".to_owned(),
            state: SessionState::Unknown,
        })
        .await
        .unwrap();
}

/// Reads (and acks) deliveries until `done` says the collected ones suffice, or panics after
/// `secs` seconds.
pub async fn collect_until(
    consumer: &mut dyn DeliveryConsumer,
    secs: u64,
    done: impl Fn(&[GatewayDelivery]) -> bool,
) -> Vec<GatewayDelivery> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !done(&got) {
        let batch = tokio::time::timeout_at(deadline, consumer.next_batch(256))
            .await
            .unwrap_or_else(|_| panic!("timed out after {} deliveries", got.len()))
            .unwrap();
        assert!(batch.gap.is_none(), "unexpected gap: {:?}", batch.gap);
        let ids: Vec<u64> = batch.entries.iter().map(|e| e.id).collect();
        got.extend(batch.entries.into_iter().map(|e| e.delivery));
        consumer.ack(&ids).await.unwrap();
    }
    got
}

/// The event deliveries among `deliveries`, as (event, recipients).
pub fn events(deliveries: &[GatewayDelivery]) -> Vec<(Arc<ConversationEvent>, Vec<UserId>)> {
    deliveries
        .iter()
        .filter_map(|d| match d {
            GatewayDelivery::Event { event, recipients } => Some((event.clone(), recipients.clone())),
            GatewayDelivery::Ephemeral { .. } => None,
        })
        .collect()
}

/// `ids` sorted (recipient lists are ascending).
pub fn sorted(mut ids: Vec<UserId>) -> Vec<UserId> {
    ids.sort();
    ids
}
