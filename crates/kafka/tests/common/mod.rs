//! Shared helpers of chat-kafka's tests: the broker address, a fresh topic and group per test,
//! events, and bounded read loops.
#![allow(dead_code)] // each test binary uses a different subset

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use chat_domain::{ConversationEvent, ConversationId, EventId, EventPayload, Millis, UserId};
use chat_kafka::{KafkaConfig, KafkaConsumer};
use chat_pipeline::{EventConsumer, LogRecord, PipelineError};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;

/// How long a test waits for something before it fails (a bound, not a speed requirement).
pub const PATIENCE: Duration = Duration::from_secs(90);

/// The broker under test: `CHAT_TEST_KAFKA_BOOTSTRAP`, else 127.0.0.1:9092 when something
/// listens there; otherwise the test fails telling how to start one.
pub fn bootstrap() -> String {
    if let Ok(b) = std::env::var("CHAT_TEST_KAFKA_BOOTSTRAP")
        && !b.trim().is_empty()
    {
        return b;
    }
    let default = "127.0.0.1:9092";
    let addr = default.parse().expect("socket address");
    if std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err() {
        panic!(
            "no Kafka broker for chat-kafka's tests: CHAT_TEST_KAFKA_BOOTSTRAP is unset and nothing listens on \
             {default}. Start one with `bash scripts/kafka.sh start` (then `eval \"$(bash scripts/kafka.sh env)\"`)."
        );
    }
    default.to_owned()
}

/// A config for a fresh topic `test.<uuid>` with `partitions` partitions on the test broker;
/// 6 s session timeout (the broker's minimum) so a killed consumer is replaced quickly.
pub fn config(partitions: u32) -> KafkaConfig {
    KafkaConfig {
        bootstrap: bootstrap(),
        topic: format!("test.{}", uuid::Uuid::new_v4().simple()),
        partitions,
        client_id: "chat-kafka-test".to_owned(),
        session_timeout: Duration::from_secs(6),
        delivery_timeout: Duration::from_secs(20),
        request_timeout: Duration::from_secs(15),
        ..KafkaConfig::default()
    }
}

/// A fresh consumer group id.
pub fn group() -> String {
    format!("g-{}", uuid::Uuid::new_v4().simple())
}

/// Deletes the test topic (keeps the test broker small across runs).
pub async fn delete_topic(cfg: &KafkaConfig) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", &cfg.bootstrap).create().expect("admin client");
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let res = admin.delete_topics(&[&cfg.topic], &opts).await.expect("delete topic");
    for r in res {
        r.expect("topic deleted");
    }
}

/// Event `seq` of conversation `conv`.
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

/// `per` events (seq 1..=per) of each of `convs` fresh conversations, interleaved round-robin
/// across conversations (so each conversation's events are in seq order).
pub fn events(convs: usize, per: i64) -> Vec<ConversationEvent> {
    let ids: Vec<ConversationId> = (0..convs).map(|_| ConversationId::new()).collect();
    (1..=per).flat_map(|seq| ids.iter().map(move |c| event(*c, seq))).collect()
}

/// What to do with each batch read by [`read_until`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Commit {
    /// Leave the group's offsets alone.
    Never,
    /// Commit each batch right after reading it.
    EachBatch,
}

/// Reads batches into `got` until `done(consumer, got)`; fails after [`PATIENCE`]. Checks on
/// the way that every batch is non-empty and of one assignment epoch.
pub async fn read_until(
    c: &mut KafkaConsumer,
    got: &mut Vec<LogRecord>,
    commit: Commit,
    what: &str,
    mut done: impl FnMut(&KafkaConsumer, &[LogRecord]) -> bool,
) {
    let deadline = Instant::now() + PATIENCE;
    while !done(c, got) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {} records read, assignment {:?}, epoch {}",
            got.len(),
            c.assignment(),
            c.epoch()
        );
        if let Ok(batch) = tokio::time::timeout(Duration::from_millis(200), c.next_batch(100)).await {
            let batch = match batch {
                Ok(b) => b,
                // Retryable, as the fanout worker treats it (e.g. a broker connection reset).
                Err(PipelineError::Unavailable(e)) => {
                    eprintln!("next_batch: {e} (retrying)");
                    continue;
                }
                Err(e) => panic!("next_batch: {e}"),
            };
            assert!(!batch.is_empty(), "next_batch returns at least one record");
            assert!(batch.iter().all(|r| r.epoch == batch[0].epoch), "one batch, one assignment epoch");
            if commit == Commit::EachBatch {
                c.commit(&batch).await.expect("commit");
            }
            got.extend(batch);
        }
    }
}

/// Distinct event ids of `records`.
pub fn ids(records: &[LogRecord]) -> BTreeSet<EventId> {
    records.iter().map(|r| r.event.event_id).collect()
}

/// Distinct event ids of `events`.
pub fn event_ids<'a>(events: impl IntoIterator<Item = &'a ConversationEvent>) -> BTreeSet<EventId> {
    events.into_iter().map(|e| e.event_id).collect()
}

/// Partition of each event id, as read.
pub fn partitions_of(records: &[LogRecord]) -> BTreeMap<EventId, u32> {
    records.iter().map(|r| (r.event.event_id, r.position.partition)).collect()
}
