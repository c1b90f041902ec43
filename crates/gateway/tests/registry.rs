//! The gateway and the connection registry: a session the registry forgot (Redis flushed,
//! the entry expired) registers again at its next touch and resyncs, so the events routed
//! while it was missing still reach the client.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chat_domain::{Millis, UserId, WorkspaceId};
use chat_gateway::GatewayConfig;
use chat_pipeline::{Connection, ConnectionRegistry};
use common::{Stack, test_config};

/// The stack's registry as the gateway sees it, with touches held back on demand: while
/// `hold` is set a touch answers `true` without reaching the registry, so the test decides
/// when the gateway notices that its entry is gone.
struct HeldTouches {
    inner: Arc<dyn ConnectionRegistry>,
    hold: Arc<AtomicBool>,
}

#[async_trait]
impl ConnectionRegistry for HeldTouches {
    async fn register(&self, conn: Connection) -> chat_pipeline::Result<()> {
        self.inner.register(conn).await
    }
    async fn unregister(&self, connection_id: &str) -> chat_pipeline::Result<bool> {
        self.inner.unregister(connection_id).await
    }
    async fn touch(&self, connection_id: &str, at: Millis) -> chat_pipeline::Result<bool> {
        if self.hold.load(Ordering::Acquire) {
            return Ok(true);
        }
        self.inner.touch(connection_id, at).await
    }
    async fn connections_of_user(&self, user: UserId) -> chat_pipeline::Result<Vec<Connection>> {
        self.inner.connections_of_user(user).await
    }
    async fn connections_of_users(&self, users: &[UserId]) -> chat_pipeline::Result<Vec<Connection>> {
        self.inner.connections_of_users(users).await
    }
    async fn connections_of_gateway(&self, gateway_node_id: &str) -> chat_pipeline::Result<Vec<Connection>> {
        self.inner.connections_of_gateway(gateway_node_id).await
    }
    async fn all_connections(&self) -> chat_pipeline::Result<Vec<Connection>> {
        self.inner.all_connections().await
    }
    async fn online_users(&self, workspace: Option<WorkspaceId>) -> chat_pipeline::Result<Vec<UserId>> {
        self.inner.online_users(workspace).await
    }
}

#[tokio::test]
async fn a_session_the_registry_forgot_registers_again_and_resyncs_what_it_missed() {
    let hold = Arc::new(AtomicBool::new(false));
    let wrap_hold = hold.clone();
    let cfg = GatewayConfig { registry_touch_interval_ms: 100, ..test_config() };
    let stack = Stack::start_with_registry(cfg, &move |inner| {
        Arc::new(HeldTouches { inner, hold: wrap_hold.clone() }) as Arc<dyn ConnectionRegistry>
    })
    .await;
    let (a, b) = (stack.user("alice").await, stack.user("bob").await);
    let dm = stack.dm(&a, &b).await;
    let mut a1 = stack.client(&a).await;
    let mut b1 = stack.ws("/ws").await;
    let connected = b1.connect(&[("authorization", &format!("Bearer {}", b.token))]).await;
    let session = connected.header("session").expect("CONNECTED names the session").to_owned();
    b1.subscribe("m", "/user/queue/messages", &[]).await;

    let r = a1.send_chat(dm, a.id, "m1", "one").await;
    a1.until_receipt(&r).await;
    let got = b1.events("MESSAGE", 1).await;
    assert_eq!(got[0]["text"], "one");

    // The registry forgets bob's connection behind the session's back (as a Redis flush
    // would); the session does not notice yet.
    hold.store(true, Ordering::Release);
    let registry = stack.pipeline.registry();
    assert!(registry.unregister(&session).await.unwrap());
    let r = a1.send_chat(dm, a.id, "m2", "two").await;
    // Alice's own copy arriving means the fanout has routed the event: not to bob's gateway.
    a1.until_receipt_and_own_copy(&r, "two").await;
    assert!(registry.connections_of_user(b.id).await.unwrap().is_empty());

    // The next touch finds the entry gone: the session registers again, the missed event is
    // replayed from the store, then RESYNC (all conversations) tells the client to refresh.
    hold.store(false, Ordering::Release);
    let mut got = Vec::new();
    while !got.iter().any(|m: &serde_json::Value| m["eventType"] == "RESYNC") {
        got.extend(b1.messages(1).await);
    }
    let texts: Vec<&str> =
        got.iter().filter(|m| m["eventType"] == "MESSAGE").filter_map(|m| m["text"].as_str()).collect();
    assert_eq!(texts, vec!["two"], "the missed event, before RESYNC: {got:?}");
    let resync = got.last().unwrap();
    assert_eq!(resync["conversationIds"], serde_json::json!([]), "empty = every conversation");
    let again = registry.connections_of_user(b.id).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].connection_id, session);

    // Registered again: live delivery resumes, without duplicates.
    let r = a1.send_chat(dm, a.id, "m3", "three").await;
    a1.until_receipt(&r).await;
    let next = b1.events("MESSAGE", 1).await;
    assert_eq!(next[0]["text"], "three");
    assert!(b1.events_within("MESSAGE", Duration::from_millis(300)).await.is_empty());
}

#[tokio::test]
async fn registry_touches_do_not_postpone_the_heart_beat_timeout() {
    // Touches every 100 ms; the client promises a heart-beat every second and sends none.
    let cfg = GatewayConfig {
        registry_touch_interval_ms: 100,
        heartbeat_receive_ms: 500,
        heartbeat_min_ms: 100,
        ..test_config()
    };
    let stack = Stack::start(cfg).await;
    let a = stack.user("alice").await;
    let mut a1 = stack.ws("/ws").await;
    a1.connect(&[("authorization", &format!("Bearer {}", a.token)), ("heart-beat", "1000,0")]).await;
    let err = a1.until_error().await;
    assert!(err.header("message").unwrap_or("").contains("heart-beat timeout"), "{err:?}");
    assert!(a1.wait_closed(common::WAIT).await);
}

/// A client without heart-beats gets a WebSocket Ping once nothing arrived for
/// `liveness_probe_ms`; its WebSocket's Pong keeps the session; a client that answers nothing
/// (frozen, gone without a FIN) is closed, so it does not stay registered forever.
#[tokio::test]
async fn clients_without_heart_beats_are_probed_with_websocket_pings() {
    let cfg = GatewayConfig { liveness_probe_ms: 300, ..test_config() };
    let stack = Stack::start(cfg).await;
    let a = stack.user("alice").await;
    let auth = format!("Bearer {}", a.token);

    // Keeps reading (its WebSocket answers each Ping with a Pong): still served after 5
    // probe intervals.
    let mut alive = stack.ws("/ws").await;
    alive.connect(&[("authorization", &auth), ("heart-beat", "0,0")]).await;
    assert!(alive.events_within("MESSAGE", Duration::from_millis(1_500)).await.is_empty());
    alive.subscribe("m", "/user/queue/messages", &[]).await;
    let r = alive.receipt_id();
    alive.send_frame(&chat_stomp::Frame::new(chat_stomp::Command::Disconnect).with_header("receipt", &r)).await;
    alive.until_receipt(&r).await;

    // Reads nothing (no Pong): closed after the probe went unanswered.
    let mut frozen = stack.ws("/ws").await;
    frozen.connect(&[("authorization", &auth), ("heart-beat", "0,0")]).await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let err = frozen.until_error().await;
    assert!(err.header("message").unwrap_or("").contains("liveness timeout"), "{err:?}");
    assert!(frozen.wait_closed(Duration::from_secs(5)).await);
}
