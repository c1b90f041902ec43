//! Fanout worker routing, dedupe and order, against a real SQLite store.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chat_domain::{ConversationEvent, ConversationId, EventKind, Millis, UserId};
use chat_pipeline::{
    DeliveryStreams, EphemeralSignal, EventLog, FanoutConfig, FanoutWorker, GatewayDelivery, InMemoryRegistry,
    InProcessLog, InProcessStreams, Pipeline, PipelineConfig, RelayConfig, StreamsConfig, deliver_ephemeral,
};
use chat_storage::{ConversationStore, EventStore};
use common::*;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<chat_storage::SqlStore>,
    registry: Arc<InMemoryRegistry>,
    streams: Arc<InProcessStreams>,
    log: Arc<InProcessLog>,
    cancel: CancellationToken,
}

/// Store, registry, streams, log and a running fanout worker (no relay: tests publish).
async fn fixture() -> Fixture {
    let (dir, store) = store().await;
    let registry = Arc::new(InMemoryRegistry::new(Duration::from_secs(60)));
    let streams = Arc::new(InProcessStreams::new(StreamsConfig::default()));
    let log = Arc::new(InProcessLog::new(4, 10_000));
    let cancel = CancellationToken::new();
    let worker = FanoutWorker::new(store.clone(), registry.clone(), streams.clone(), FanoutConfig::default());
    tokio::spawn(worker.run(log.clone(), cancel.clone()));
    Fixture { _dir: dir, store, registry, streams, log, cancel }
}

fn only_event(deliveries: &[GatewayDelivery], ev: &ConversationEvent) -> Vec<Vec<UserId>> {
    events(deliveries).into_iter().filter(|(e, _)| e.event_id == ev.event_id).map(|(_, r)| r).collect()
}

#[tokio::test]
async fn one_delivery_per_gateway_listing_exactly_its_recipients() {
    let f = fixture().await;
    let a = user(&f.store, "alice").await;
    let b = user(&f.store, "bob").await;
    let c = user(&f.store, "carol").await;
    let d = user(&f.store, "dave").await; // not a member
    let (conv, joins) = channel(&f.store, "general", &[a, b, c]).await;
    // alice: two devices on g1; bob: g2; carol: g1 and g2; dave: g1 and g3.
    connect(f.registry.as_ref(), a, "g1", "a-phone").await;
    connect(f.registry.as_ref(), a, "g1", "a-laptop").await;
    connect(f.registry.as_ref(), b, "g2", "b-1").await;
    connect(f.registry.as_ref(), c, "g1", "c-1").await;
    connect(f.registry.as_ref(), c, "g2", "c-2").await;
    connect(f.registry.as_ref(), d, "g1", "d-1").await;
    connect(f.registry.as_ref(), d, "g3", "d-3").await;

    let msg = send(&f.store, conv, a, "hello").await;
    let mut all = joins.clone();
    all.push(msg.clone());
    f.log.publish(&all).await.unwrap();

    let mut g1 = f.streams.consume("g1").await.unwrap();
    let mut g2 = f.streams.consume("g2").await.unwrap();
    let d1 = collect_until(g1.as_mut(), 5, |d| events(d).iter().any(|(e, _)| e.event_id == msg.event_id)).await;
    let d2 = collect_until(g2.as_mut(), 5, |d| events(d).iter().any(|(e, _)| e.event_id == msg.event_id)).await;
    assert_eq!(only_event(&d1, &msg), vec![sorted(vec![a, c])], "alice listed once for two devices; no dave");
    assert_eq!(only_event(&d2, &msg), vec![sorted(vec![b, c])]);
    // Every event so far went to the same recipients, in seq order.
    let seqs: Vec<i64> = events(&d1).iter().map(|(e, _)| e.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4]);
    for (_, r) in events(&d1) {
        assert!(!r.contains(&d));
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(f.streams.len_of("g3"), 0, "a gateway holding only non-members gets nothing");
    f.cancel.cancel();
}

#[tokio::test]
async fn user_left_reaches_the_leaver_and_later_events_do_not() {
    let f = fixture().await;
    let a = user(&f.store, "alice").await;
    let b = user(&f.store, "bob").await;
    let (conv, _) = channel(&f.store, "general", &[a, b]).await;
    connect(f.registry.as_ref(), a, "g1", "a-1").await;
    connect(f.registry.as_ref(), b, "g2", "b-1").await;
    let left = f.store.remove_member(conv, a, b, Millis::now()).await.unwrap();
    assert_eq!(left.kind(), EventKind::UserLeft);
    let after = send(&f.store, conv, a, "bob is gone").await;
    f.log.publish(&[left.clone(), after.clone()]).await.unwrap();

    let mut g1 = f.streams.consume("g1").await.unwrap();
    let mut g2 = f.streams.consume("g2").await.unwrap();
    let d1 = collect_until(g1.as_mut(), 5, |d| events(d).len() == 2).await;
    let d2 = collect_until(g2.as_mut(), 5, |d| !events(d).is_empty()).await;
    assert_eq!(only_event(&d1, &left), vec![vec![a]]);
    assert_eq!(only_event(&d2, &left), vec![vec![b]], "the leaver learns it left");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(f.streams.len_of("g2"), 0, "the former member gets no later event");
    f.cancel.cancel();
}

#[tokio::test]
async fn an_event_published_twice_is_delivered_once() {
    let f = fixture().await;
    let a = user(&f.store, "alice").await;
    let (conv, _) = channel(&f.store, "general", &[a]).await;
    connect(f.registry.as_ref(), a, "g1", "a-1").await;
    let m1 = send(&f.store, conv, a, "one").await;
    let m2 = send(&f.store, conv, a, "two").await;
    // Twice within one batch, and again later (the relay re-publishing unmarked rows).
    f.log.publish(&[m1.clone(), m1.clone()]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    f.log.publish(&[m1.clone(), m2.clone()]).await.unwrap();
    let mut g1 = f.streams.consume("g1").await.unwrap();
    let d = collect_until(g1.as_mut(), 5, |d| events(d).iter().any(|(e, _)| e.event_id == m2.event_id)).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(f.streams.len_of("g1"), 0);
    let ids: Vec<_> = events(&d).iter().map(|(e, _)| e.event_id).collect();
    assert_eq!(ids, vec![m1.event_id, m2.event_id]);
    f.cancel.cancel();
}

#[tokio::test]
async fn typing_signal_goes_to_every_gateway_of_the_members() {
    let f = fixture().await;
    let a = user(&f.store, "alice").await;
    let b = user(&f.store, "bob").await;
    let (conv, _) = channel(&f.store, "general", &[a, b]).await;
    connect(f.registry.as_ref(), a, "g1", "a-1").await;
    connect(f.registry.as_ref(), b, "g2", "b-1").await;
    let members = f.store.member_ids(conv).await.unwrap();
    let signal = EphemeralSignal {
        conversation_id: Some(conv),
        kind: "TYPING".into(),
        actor_id: a,
        payload: serde_json::json!({ "typing": true }),
        exclude_connection: Some("a-1".into()),
        created_at: Millis::now(),
    };
    let n = deliver_ephemeral(f.registry.as_ref(), f.streams.as_ref(), signal, &members).await.unwrap();
    assert_eq!(n, 2);
    let mut g1 = f.streams.consume("g1").await.unwrap();
    let batch = g1.next_batch(10).await.unwrap();
    match &batch.entries[0].delivery {
        GatewayDelivery::Ephemeral { signal, recipients } => {
            assert_eq!(recipients, &vec![a]);
            assert_eq!(signal.exclude_connection.as_deref(), Some("a-1"));
        }
        other => panic!("expected a signal, got {other:?}"),
    }
    f.cancel.cancel();
}

/// The whole in-process pipeline: 1,000 messages in 10 conversations, sent in interleaved
/// group commits, reach a gateway in per-conversation seq order with no gap and no repeat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_is_preserved_across_1000_events_in_10_conversations() {
    let (_dir, store) = store().await;
    let a = user(&store, "alice").await;
    let b = user(&store, "bob").await;
    let c = user(&store, "carol").await;
    let mut convs: Vec<ConversationId> = Vec::new();
    for i in 0..10 {
        convs.push(channel(&store, &format!("c{i}"), &[a, b, c]).await.0);
    }
    let notify = Arc::new(Notify::new());
    let cfg = PipelineConfig {
        relay: RelayConfig { batch: 64, ..RelayConfig::default() },
        fanout: FanoutConfig { batch: 32, ..FanoutConfig::default() },
        log_partitions: 4,
        log_capacity: 100, // small: exercises back-pressure on the relay
        streams: StreamsConfig { capacity: 50, max_wait: Duration::from_secs(30) },
        ..PipelineConfig::default()
    };
    let pipeline = Pipeline::in_process(store.clone(), notify.clone(), cfg);
    connect(pipeline.registry.as_ref(), a, "g1", "a-1").await;
    connect(pipeline.registry.as_ref(), b, "g2", "b-1").await;
    connect(pipeline.registry.as_ref(), c, "g2", "c-1").await;
    let mut g1 = pipeline.streams.consume("g1").await.unwrap();
    let mut g2 = pipeline.streams.consume("g2").await.unwrap();

    let sender = {
        let store = store.clone();
        let convs = convs.clone();
        let notify = notify.clone();
        tokio::spawn(async move {
            for round in 0..20 {
                // Each group commit: 5 messages to each of the 10 conversations, interleaved.
                let batch: Vec<_> = (0..50).map(|i| new_message(convs[i % 10], a, &format!("{round}-{i}"))).collect();
                send_batch(&store, &batch).await;
                notify.notify_one();
            }
        })
    };
    // 10 x (3 joins + 100 messages).
    let total = 1030;
    let check = |got: &[GatewayDelivery]| {
        let mut last: HashMap<ConversationId, i64> = HashMap::new();
        for (e, _) in events(got) {
            let prev = last.insert(e.conversation_id, e.seq).unwrap_or(0);
            assert_eq!(e.seq, prev + 1, "conversation {} jumped from {prev} to {}", e.conversation_id, e.seq);
        }
        last
    };
    let (d1, d2) = tokio::join!(
        collect_until(g1.as_mut(), 60, |d| d.len() >= total),
        collect_until(g2.as_mut(), 60, |d| d.len() >= total)
    );
    sender.await.unwrap();
    for got in [&d1, &d2] {
        assert_eq!(got.len(), total);
        let last = check(got);
        assert!(convs.iter().all(|c| last[c] == 103));
    }
    assert!(events(&d2).iter().all(|(_, r)| r == &sorted(vec![b, c])));
    // The database agrees: every event was published once.
    assert_eq!(store.events_after(convs[0], 0, 1000).await.unwrap().len(), 103);
    pipeline.shutdown(Duration::from_secs(5)).await;
}
