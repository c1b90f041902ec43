//! Shared fixtures: the Redis URL, unique names per test, deliveries, raw commands.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use chat_domain::{ConversationEvent, ConversationId, EventId, EventPayload, Millis, UserId, WorkspaceId};
use chat_pipeline::{Connection, EphemeralSignal, GatewayDelivery, SessionState};
use chat_redis::{RedisStreams, RedisStreamsConfig};

/// `CHAT_TEST_REDIS_URL`, or the local server `scripts/services.sh` starts.
pub fn redis_url() -> String {
    std::env::var("CHAT_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A name no other test (or run) uses: keys of different tests never collide.
pub fn unique(prefix: &str) -> String {
    format!("test-{prefix}-{}", uuid_like())
}

fn uuid_like() -> String {
    UserId::new().to_string()
}

/// A raw connection for inspecting and damaging keys.
pub async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(url).expect("valid CHAT_TEST_REDIS_URL");
    client.get_multiplexed_async_connection().await.unwrap_or_else(|e| {
        panic!("Redis at {url} is not reachable ({e}); run `bash scripts/services.sh` or set CHAT_TEST_REDIS_URL")
    })
}

/// Streams with a short block so idle checks run quickly in tests.
pub async fn streams(url: &str, max_len: u64) -> RedisStreams {
    let cfg = RedisStreamsConfig { max_len, block: Duration::from_millis(200), ..RedisStreamsConfig::default() };
    RedisStreams::connect(url, cfg).await.unwrap_or_else(|e| panic!("connect to Redis at {url}: {e}"))
}

pub fn event(conv: ConversationId, seq: i64) -> ConversationEvent {
    let user = UserId::new();
    ConversationEvent {
        event_id: EventId::new(),
        conversation_id: conv,
        seq,
        actor_id: user,
        created_at: Millis::now(),
        payload: EventPayload::UserLeft { user_id: user },
    }
}

pub fn delivery(conv: ConversationId, seq: i64) -> GatewayDelivery {
    GatewayDelivery::Event { event: Arc::new(event(conv, seq)), recipients: vec![UserId::new(), UserId::new()] }
}

pub fn typing(conv: ConversationId) -> GatewayDelivery {
    let actor = UserId::new();
    GatewayDelivery::Ephemeral {
        signal: Arc::new(EphemeralSignal {
            conversation_id: Some(conv),
            kind: "TYPING".into(),
            actor_id: actor,
            payload: serde_json::json!({"typing": true}),
            exclude_connection: Some("conn-1".into()),
            created_at: Millis::now(),
        }),
        recipients: vec![UserId::new()],
    }
}

/// (conversation, seq) of event deliveries.
pub fn seqs(entries: &[chat_pipeline::DeliveryEntry]) -> Vec<(ConversationId, i64)> {
    entries
        .iter()
        .filter_map(|e| match &e.delivery {
            GatewayDelivery::Event { event, .. } => Some((event.conversation_id, event.seq)),
            GatewayDelivery::Ephemeral { .. } => None,
        })
        .collect()
}

pub fn conn(id: &str, user: UserId, ws: WorkspaceId, gateway: &str) -> Connection {
    let at = Millis::now();
    Connection {
        connection_id: id.into(),
        user_id: user,
        workspace_id: ws,
        gateway_node_id: gateway.into(),
        connected_at: at,
        last_ping_at: at,
        device_type: "web".into(),
        ip_address: "10.0.0.1".into(),
        state: SessionState::Unknown,
    }
}
