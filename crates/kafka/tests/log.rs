//! KafkaLog and KafkaConsumer against a real broker (`bash scripts/kafka.sh start`): record
//! format, per-conversation order, commits, redelivery, topic creation, unavailability.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chat_domain::{ConversationEvent, ConversationId};
use chat_kafka::{ConnectError, HEADER_EVENT_ID, HEADER_EVENT_TYPE, KafkaConfig, KafkaConsumer, KafkaLog};
use chat_pipeline::{EventConsumer, EventLog, LogRecord, PipelineError};
use common::{Commit, config, delete_topic, event_ids, events, group, ids, read_until};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

/// Reads until `n` distinct events were seen.
async fn read_n(c: &mut KafkaConsumer, n: usize, commit: Commit) -> Vec<LogRecord> {
    let mut got = Vec::new();
    read_until(c, &mut got, commit, &format!("{n} events"), |_, got| ids(got).len() >= n).await;
    got
}

#[tokio::test]
async fn each_conversation_is_consumed_in_publish_order_from_one_partition() {
    let cfg = config(4);
    let log = KafkaLog::connect(cfg.clone()).await.expect("connect");
    let evs = events(12, 15);
    for chunk in evs.chunks(37) {
        log.publish(chunk).await.expect("publish");
    }
    let mut c = log.consumer(&group()).await.expect("consumer");
    let got = read_n(&mut c, evs.len(), Commit::Never).await;

    assert_eq!(got.len(), evs.len(), "each record once");
    assert_eq!(ids(&got), event_ids(&evs));
    let mut seqs: BTreeMap<ConversationId, Vec<i64>> = BTreeMap::new();
    let mut parts: BTreeMap<ConversationId, BTreeSet<u32>> = BTreeMap::new();
    let mut last_offset: BTreeMap<u32, u64> = BTreeMap::new();
    for r in &got {
        seqs.entry(r.event.conversation_id).or_default().push(r.event.seq);
        parts.entry(r.event.conversation_id).or_default().insert(r.position.partition);
        if let Some(prev) = last_offset.insert(r.position.partition, r.position.offset) {
            assert!(r.position.offset > prev, "offsets grow within partition {}", r.position.partition);
        }
    }
    for (conv, s) in &seqs {
        assert_eq!(s, &(1..=15).collect::<Vec<_>>(), "conversation {conv} in seq order");
        assert_eq!(parts[conv].len(), 1, "conversation {conv} on one partition");
    }
    assert!(parts.values().flatten().all(|p| *p < 4));
    assert_eq!(log.partitions().await.expect("partitions"), 4);
    c.close().await;
    delete_topic(&cfg).await;
}

#[tokio::test]
async fn records_are_keyed_by_conversation_with_json_value_and_event_headers() {
    let cfg = config(2);
    let log = KafkaLog::connect(cfg.clone()).await.expect("connect");
    let conv = ConversationId::new();
    let ev = common::event(conv, 1);
    log.publish(std::slice::from_ref(&ev)).await.expect("publish");

    let raw: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &cfg.bootstrap)
        .set("group.id", group())
        .set("enable.auto.commit", "false")
        .create()
        .expect("raw consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..2 {
        tpl.add_partition_offset(&cfg.topic, p, Offset::Beginning).expect("partition");
    }
    raw.assign(&tpl).expect("assign");
    let msg = tokio::time::timeout(common::PATIENCE, raw.recv()).await.expect("a record in time").expect("recv");
    assert_eq!(msg.key(), Some(conv.to_string().as_bytes()), "key = conversation id");
    let value: ConversationEvent = serde_json::from_slice(msg.payload().expect("value")).expect("JSON value");
    assert_eq!(value, ev);
    let headers = msg.headers().expect("headers");
    let header = |name: &str| headers.iter().find(|h| h.key == name).and_then(|h| h.value).map(<[u8]>::to_vec);
    assert_eq!(header(HEADER_EVENT_ID), Some(ev.event_id.to_string().into_bytes()));
    assert_eq!(header(HEADER_EVENT_TYPE), Some(b"USER_LEFT".to_vec()));
    assert_eq!(header("content-type"), Some(b"application/json".to_vec()));
    drop(msg);
    delete_topic(&cfg).await;
}

#[tokio::test]
async fn a_new_consumer_of_the_group_resumes_after_the_commit() {
    let cfg = config(3);
    let log = KafkaLog::connect(cfg.clone()).await.expect("connect");
    let evs = events(9, 6);
    log.publish(&evs).await.expect("publish");
    let g = group();

    let mut first = log.consumer(&g).await.expect("consumer");
    let got = read_n(&mut first, evs.len(), Commit::Never).await;
    // Commit the first half of every partition (by offset).
    let mut by_partition: BTreeMap<u32, Vec<&LogRecord>> = BTreeMap::new();
    for r in &got {
        by_partition.entry(r.position.partition).or_default().push(r);
    }
    let mut committed = Vec::new();
    let mut expected_after = BTreeSet::new();
    for records in by_partition.values() {
        let half = records.len() / 2;
        committed.extend(records[..half].iter().map(|r| (*r).clone()));
        expected_after.extend(records[half..].iter().map(|r| r.event.event_id));
    }
    first.commit(&committed).await.expect("commit");
    first.close().await;

    let mut second = log.consumer(&g).await.expect("second consumer");
    let again = read_n(&mut second, expected_after.len(), Commit::Never).await;
    assert_eq!(ids(&again), expected_after, "exactly the records after the commit");
    second.close().await;
    delete_topic(&cfg).await;
}

#[tokio::test]
async fn uncommitted_records_are_redelivered_to_the_next_consumer() {
    let cfg = config(2);
    let log = KafkaLog::connect(cfg.clone()).await.expect("connect");
    let evs = events(4, 5);
    log.publish(&evs).await.expect("publish");
    let g = group();

    let mut first = log.consumer(&g).await.expect("consumer");
    let got = read_n(&mut first, evs.len(), Commit::Never).await;
    first.close().await;
    let mut second = log.consumer(&g).await.expect("second consumer");
    let again = read_n(&mut second, evs.len(), Commit::EachBatch).await;
    let positions = |rs: &[LogRecord]| rs.iter().map(|r| (r.position, r.event.event_id)).collect::<BTreeSet<_>>();
    assert_eq!(positions(&again), positions(&got), "same records at the same positions");
    second.close().await;

    // Everything is committed now: a third consumer sees only what is published later.
    let later = common::event(ConversationId::new(), 1);
    log.publish(std::slice::from_ref(&later)).await.expect("publish");
    let mut third = log.consumer(&g).await.expect("third consumer");
    let rest = read_n(&mut third, 1, Commit::Never).await;
    assert_eq!(ids(&rest), event_ids([&later]));
    third.close().await;
    delete_topic(&cfg).await;
}

#[tokio::test]
async fn connect_keeps_an_existing_topic() {
    let cfg = config(3);
    let log = KafkaLog::connect(cfg.clone()).await.expect("connect");
    log.ready().await.expect("ready");
    let again = KafkaLog::connect(KafkaConfig { partitions: 5, ..cfg.clone() }).await.expect("connect again");
    assert_eq!(again.partitions().await.expect("partitions"), 3, "existing topic used as it is");
    delete_topic(&cfg).await;
}

#[tokio::test]
async fn an_unreachable_broker_is_unavailable() {
    // A port nothing listens on: bind, note it, release it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let cfg =
        KafkaConfig { bootstrap: format!("127.0.0.1:{port}"), request_timeout: Duration::from_secs(2), ..config(1) };
    let err = match KafkaLog::connect(cfg.clone()).await {
        Ok(_) => panic!("connected to a closed port"),
        Err(e) => e,
    };
    assert!(matches!(err, ConnectError::Unavailable { .. }), "got {err:?}");
    assert!(matches!(PipelineError::from(err), PipelineError::Unavailable(_)));
    let joined = KafkaConsumer::join(&cfg, &group()).await;
    assert!(matches!(joined, Err(PipelineError::Unavailable(_))), "consumer join: {:?}", joined.err());
}

#[tokio::test]
async fn publish_is_unavailable_when_the_topic_cannot_take_records() {
    let cfg = KafkaConfig { delivery_timeout: Duration::from_secs(3), ..config(1) };
    let log = KafkaLog::connect(cfg.clone()).await.expect("connect");
    log.publish(&[common::event(ConversationId::new(), 1)]).await.expect("publish while the topic exists");
    delete_topic(&cfg).await;
    // Deletion is applied asynchronously: wait until the broker no longer lists the topic.
    let deadline = std::time::Instant::now() + common::PATIENCE;
    while log.ready().await.is_ok() {
        assert!(std::time::Instant::now() < deadline, "topic still listed after deletion");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(matches!(log.ready().await, Err(PipelineError::Unavailable(_))), "not ready without the topic");
    // The broker does not create topics on demand: no delivery report can be a success.
    let res = log.publish(&[common::event(ConversationId::new(), 1)]).await;
    assert!(matches!(res, Err(PipelineError::Unavailable(_))), "got {res:?}");
}

#[tokio::test]
async fn invalid_settings_are_refused_before_connecting() {
    let cfg = KafkaConfig { topic: "no spaces".to_owned(), ..KafkaConfig::default() };
    let err = KafkaLog::connect(cfg).await.err().expect("refused");
    assert!(matches!(err, ConnectError::Config(chat_kafka::ConfigError::Topic(_))), "got {err:?}");
}
