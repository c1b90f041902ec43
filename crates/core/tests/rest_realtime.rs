//! Presence (REST reads, ONLINE/OFFLINE signals, expiry by the sweeper, the offline grace period) and "seen by"
//! receipts pushed on REST acks, against a real registry and real delivery streams.

mod common;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chat_core::service::{Realtime, RealtimeConfig};
use chat_domain::{Millis, UserId, WorkspaceId};
use chat_pipeline::{
    Connection, DeliveryConsumer, DeliveryStreams, GatewayDelivery, InMemoryRegistry, InProcessStreams, SessionState,
    StreamsConfig,
};
use common::{TestApp, TestUser, assert_problem, spawn_app, spawn_app_with};
use serde_json::{Value, json};

/// A stack whose registry clock the test moves.
struct Env {
    app: TestApp,
    clock: Arc<AtomicI64>,
    streams: Arc<InProcessStreams>,
}

const TTL: Duration = Duration::from_secs(30);

async fn env() -> Env {
    let clock = Arc::new(AtomicI64::new(Millis::now().0));
    let c = clock.clone();
    let registry = Arc::new(InMemoryRegistry::with_clock(TTL, Arc::new(move || Millis(c.load(Ordering::SeqCst)))));
    let streams = Arc::new(InProcessStreams::new(StreamsConfig::default()));
    let (reg, st) = (registry.clone(), streams.clone());
    // A long sweep interval: the test sweeps by hand.
    let cfg = RealtimeConfig { presence_sweep_interval: Duration::from_secs(3600), ..RealtimeConfig::default() };
    let app = spawn_app_with(Default::default(), move |s| {
        let rt = Realtime::start(reg, st, s.store().clone(), cfg);
        s.with_realtime(rt)
    })
    .await;
    Env { app, clock, streams }
}

impl Env {
    fn realtime(&self) -> &Arc<Realtime> {
        self.app.service.realtime().expect("realtime enabled")
    }

    fn now(&self) -> Millis {
        Millis(self.clock.load(Ordering::SeqCst))
    }

    async fn connect(&self, user: &TestUser, id: &str, gateway: &str) {
        let now = self.now();
        let conn = Connection {
            connection_id: id.into(),
            user_id: UserId::from(user.id),
            workspace_id: WorkspaceId::DEFAULT,
            gateway_node_id: gateway.into(),
            connected_at: now,
            last_ping_at: now,
            device_type: "test".into(),
            ip_address: "127.0.0.1".into(),
            state: SessionState::Connected,
        };
        self.realtime().registry().register(conn).await.unwrap();
    }

    async fn signals(&self, gateway: &str) -> Signals {
        Signals { consumer: self.streams.consume(gateway).await.unwrap(), pending: VecDeque::new() }
    }
}

/// The ephemeral signals written to one gateway's stream, in order.
struct Signals {
    consumer: Box<dyn DeliveryConsumer>,
    pending: VecDeque<(String, UserId, Value)>,
}

impl Signals {
    /// The next signal of `kind`, as (actor, payload with `conversationId`); others are skipped.
    async fn next(&mut self, kind: &str) -> (UserId, Value) {
        loop {
            while let Some((k, actor, payload)) = self.pending.pop_front() {
                if k == kind {
                    return (actor, payload);
                }
            }
            self.fill().await;
        }
    }

    /// The next signal of any kind, as (kind, actor).
    async fn next_any(&mut self) -> (String, UserId) {
        loop {
            if let Some((k, actor, _)) = self.pending.pop_front() {
                return (k, actor);
            }
            self.fill().await;
        }
    }

    /// Reads the next batch of signals into `pending`.
    async fn fill(&mut self) {
        let batch = tokio::time::timeout(Duration::from_secs(10), self.consumer.next_batch(16)).await;
        let batch = batch.expect("a signal within 10 s").unwrap();
        let ids: Vec<u64> = batch.entries.iter().map(|e| e.id).collect();
        self.consumer.ack(&ids).await.unwrap();
        for e in batch.entries {
            if let GatewayDelivery::Ephemeral { signal, .. } = e.delivery {
                let mut payload = signal.payload.clone();
                if let Some(c) = signal.conversation_id {
                    payload["conversationId"] = json!(c.to_string());
                }
                self.pending.push_back((signal.kind.clone(), signal.actor_id, payload));
            }
        }
    }
}

#[tokio::test]
async fn presence_online_offline_and_expiry_over_rest_and_signals() {
    let env = env().await;
    let app = &env.app;
    let (alice, bob, carol) = (app.user("alice").await, app.user("bob").await, app.user("carol").await);
    let ch = app.channel(&alice, "general", false).await;
    let res = app.post(&format!("/api/v1/conversations/{ch}/members"), &alice.token, json!({"userId": bob.id})).await;
    assert_eq!(res.status(), 201);
    let mut bob_gw = env.signals("gw-bob").await;

    let p: Value = app.get(&format!("/api/v1/users/{}/presence", alice.id), &bob.token).await.json().await.unwrap();
    assert_eq!(p["status"], "OFFLINE");
    assert_eq!(p["lastSeenAt"], Value::Null);
    assert_eq!(p["connections"], 0);

    env.connect(&bob, "b-1", "gw-bob").await;
    env.connect(&alice, "a-1", "gw-alice").await;
    let (who, payload) = bob_gw.next("PRESENCE").await;
    assert_eq!((who, payload["status"].as_str()), (UserId::from(alice.id), Some("ONLINE")));
    env.connect(&alice, "a-2", "gw-alice").await;
    let p: Value = app.get(&format!("/api/v1/users/{}/presence", alice.id), &bob.token).await.json().await.unwrap();
    assert_eq!((p["status"].as_str(), p["connections"].as_i64()), (Some("ONLINE"), Some(2)));

    // Disconnecting one device changes nothing; then alice's connections expire.
    assert!(env.realtime().registry().unregister("a-2").await.unwrap());
    let expired_at = env.now();
    env.clock.fetch_add(TTL.as_millis() as i64 / 2, Ordering::SeqCst);
    assert!(env.realtime().registry().touch("b-1", env.now()).await.unwrap(), "bob heart-beats");
    env.clock.fetch_add(TTL.as_millis() as i64 / 2 + 1_000, Ordering::SeqCst);
    assert_eq!(env.realtime().presence().sweep().await.unwrap(), 1);
    let (who, payload) = bob_gw.next("PRESENCE").await;
    assert_eq!((who, payload["status"].as_str()), (UserId::from(alice.id), Some("OFFLINE")));
    assert_eq!(payload["lastSeenAt"], expired_at.to_rfc3339());

    let list: Value = app.get(&format!("/api/v1/conversations/{ch}/presence"), &bob.token).await.json().await.unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["userId"], alice.id.to_string());
    assert_eq!(list[0]["status"], "OFFLINE");
    assert_eq!(list[0]["lastSeenAt"], expired_at.to_rfc3339());
    assert_eq!(list[1]["status"], "ONLINE");

    // Denials: a non-member's list, an unknown user.
    let res = app.get(&format!("/api/v1/conversations/{ch}/presence"), &carol.token).await;
    assert_problem(res, 403).await;
    let res = app.get(&format!("/api/v1/users/{}/presence", uuid::Uuid::now_v7()), &bob.token).await;
    assert_problem(res, 404).await;
    let res = app.get(&format!("/api/v1/users/{}/presence", alice.id), "not-a-token").await;
    assert_problem(res, 401).await;
}

#[tokio::test]
async fn a_user_without_connections_stays_online_through_the_grace_period_and_the_sweeper() {
    let env = env().await; // the default grace period: 10 s
    let app = &env.app;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let ch = app.channel(&alice, "general", false).await;
    let res = app.post(&format!("/api/v1/conversations/{ch}/members"), &alice.token, json!({"userId": bob.id})).await;
    assert_eq!(res.status(), 201);
    let mut bob_gw = env.signals("gw-bob").await;
    env.connect(&bob, "b-1", "gw-bob").await;
    env.connect(&alice, "a-1", "gw-alice").await;
    let (who, payload) = bob_gw.next("PRESENCE").await;
    assert_eq!((who, payload["status"].as_str()), (UserId::from(alice.id), Some("ONLINE")));

    assert!(env.realtime().registry().unregister("a-1").await.unwrap());
    assert_eq!(env.realtime().presence().sweep().await.unwrap(), 0, "the sweeper leaves the grace period alone");
    let p: Value = app.get(&format!("/api/v1/users/{}/presence", alice.id), &bob.token).await.json().await.unwrap();
    assert_eq!((p["status"].as_str(), p["connections"].as_i64()), (Some("ONLINE"), Some(0)));
    assert!(p["lastSeenAt"].is_string(), "when the last connection closed: {p}");

    // Back within the grace period, then a marker signal: no PRESENCE came before it.
    env.connect(&alice, "a-2", "gw-alice").await;
    let seq = app.say(&alice, ch, "marker").await["serverSeq"].as_i64().unwrap();
    let res = app.post(&format!("/api/v1/conversations/{ch}/ack"), &bob.token, json!({"seenSeq": seq})).await;
    assert_eq!(res.status(), 200);
    let (kind, who) = bob_gw.next_any().await;
    assert_eq!((kind.as_str(), who), ("SEEN", UserId::from(bob.id)), "no OFFLINE or second ONLINE");
}

#[tokio::test]
async fn presence_without_a_registry_is_503() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let res = app.get(&format!("/api/v1/users/{}/presence", alice.id), &alice.token).await;
    assert_problem(res, 503).await;
}

#[tokio::test]
async fn rest_acks_push_seen_to_dm_members_and_to_the_reader_only_in_channels() {
    let env = env().await;
    let app = &env.app;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let dm: Value = app
        .post("/api/v1/conversations", &alice.token, json!({"type": "DM", "memberIds": [bob.id]}))
        .await
        .json()
        .await
        .unwrap();
    let dm = dm["conversationId"].as_str().unwrap().to_string();
    let ch = app.channel(&alice, "general", false).await;
    let res = app.post(&format!("/api/v1/conversations/{ch}/members"), &alice.token, json!({"userId": bob.id})).await;
    assert_eq!(res.status(), 201);
    env.connect(&alice, "a-1", "gw-alice").await;
    env.connect(&bob, "b-1", "gw-bob").await;
    let mut alice_gw = env.signals("gw-alice").await;
    let mut bob_gw = env.signals("gw-bob").await;

    let sent = app.say(&alice, dm.parse().unwrap(), "hello").await;
    let seq = sent["serverSeq"].as_i64().unwrap();
    let res = app.post(&format!("/api/v1/conversations/{dm}/ack"), &bob.token, json!({"seenSeq": seq})).await;
    assert_eq!(res.status(), 200);
    let (who, payload) = alice_gw.next("SEEN").await;
    assert_eq!(who, UserId::from(bob.id));
    assert_eq!(payload["seenSeq"], seq);
    assert_eq!(payload["conversationId"], dm);

    // A channel ack reaches the reader's own devices, not the author's.
    let sent = app.say(&alice, ch, "hi all").await;
    let seq = sent["serverSeq"].as_i64().unwrap();
    let res = app.post(&format!("/api/v1/conversations/{ch}/ack"), &bob.token, json!({"seenSeq": seq})).await;
    assert_eq!(res.status(), 200);
    // Bob's devices get both of his receipts (pushed concurrently: in either order).
    let mut got = Vec::new();
    for _ in 0..2 {
        got.push(bob_gw.next("SEEN").await.1["conversationId"].as_str().unwrap().to_string());
    }
    got.sort();
    let mut want = vec![dm.clone(), ch.to_string()];
    want.sort();
    assert_eq!(got, want);
    // Then a DM ack again: the next SEEN alice's gateway sees is that one, not the channel's.
    let sent = app.say(&alice, dm.parse().unwrap(), "again").await;
    let seq = sent["serverSeq"].as_i64().unwrap();
    app.post(&format!("/api/v1/conversations/{dm}/ack"), &bob.token, json!({"seenSeq": seq})).await;
    let (_, payload) = alice_gw.next("SEEN").await;
    assert_eq!((payload["conversationId"].as_str(), payload["seenSeq"].as_i64()), (Some(dm.as_str()), Some(seq)));
}
