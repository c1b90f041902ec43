//! Mechanics of the in-process event log and delivery streams: bounds, back-pressure,
//! at-least-once redelivery, fencing and gap notices.

use std::sync::Arc;
use std::time::Duration;

use chat_domain::{ConversationEvent, ConversationId, EventId, EventPayload, Millis, UserId};
use chat_pipeline::{
    DeliveryStreams, EventLog, GatewayDelivery, InProcessLog, InProcessStreams, PipelineError, StreamsConfig,
};

fn event(conv: ConversationId, seq: i64) -> ConversationEvent {
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

fn delivery(conv: ConversationId, seq: i64) -> GatewayDelivery {
    GatewayDelivery::Event { event: Arc::new(event(conv, seq)), recipients: vec![UserId::new()] }
}

#[tokio::test]
async fn log_publish_waits_for_space_until_the_consumer_commits() {
    let log = Arc::new(InProcessLog::new(1, 3));
    let mut consumer = log.subscribe("g").await.unwrap();
    let conv = ConversationId::new();
    log.publish(&[event(conv, 1), event(conv, 2), event(conv, 3)]).await.unwrap();
    let blocked = {
        let log = log.clone();
        tokio::spawn(async move { log.publish(&[event(conv, 4)]).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!blocked.is_finished(), "publish waits while the partition is full");
    let batch = consumer.next_batch(10).await.unwrap();
    assert_eq!(batch.iter().map(|r| r.event.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!blocked.is_finished(), "reading is not enough: only a commit frees space");
    consumer.commit(&batch[..1]).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), blocked).await.unwrap().unwrap().unwrap();
    assert_eq!(log.retained(), 3);
    let next = consumer.next_batch(10).await.unwrap();
    assert_eq!(next[0].event.seq, 4);
    assert_eq!(next[0].position.offset, 3);
}

#[tokio::test]
async fn uncommitted_records_go_to_the_groups_next_consumer_and_the_old_one_is_fenced() {
    let log = InProcessLog::new(2, 100);
    let mut first = log.subscribe("fanout").await.unwrap();
    let mut other_group = log.subscribe("audit").await.unwrap();
    let (c1, c2) = (ConversationId::new(), ConversationId::new());
    let events: Vec<_> = (1..=5).flat_map(|s| [event(c1, s), event(c2, s)]).collect();
    log.publish(&events).await.unwrap();
    let mut got = Vec::new();
    while got.len() < 10 {
        got.extend(first.next_batch(3).await.unwrap());
    }
    // Per conversation, log order = publish order.
    for c in [c1, c2] {
        let seqs: Vec<i64> = got.iter().filter(|r| r.event.conversation_id == c).map(|r| r.event.seq).collect();
        assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    }
    let committed: Vec<_> = got.iter().filter(|r| r.event.seq <= 2).cloned().collect();
    first.commit(&committed).await.unwrap();

    let mut second = log.subscribe("fanout").await.unwrap();
    assert!(matches!(first.next_batch(10).await, Err(PipelineError::Fenced(_))));
    assert!(matches!(first.commit(&got).await, Err(PipelineError::Fenced(_))));
    let mut again = Vec::new();
    while again.len() < 6 {
        again.extend(second.next_batch(100).await.unwrap());
    }
    assert!(again.iter().all(|r| r.event.seq >= 3), "only uncommitted records are redelivered");
    assert_eq!(again.len(), 6);
    // Another group is independent: it reads everything, and the log keeps the records until
    // every group committed them.
    let mut audit = Vec::new();
    while audit.len() < 10 {
        audit.extend(other_group.next_batch(100).await.unwrap());
    }
    second.commit(&again).await.unwrap();
    assert_eq!(log.retained(), 10, "the audit group has not committed yet");
    other_group.commit(&audit).await.unwrap();
    assert_eq!(log.retained(), 0);
    log.close();
    assert!(matches!(second.next_batch(1).await, Err(PipelineError::Closed)));
    assert!(matches!(log.publish(&[event(c1, 6)]).await, Err(PipelineError::Closed)));
}

#[tokio::test]
async fn stream_overflow_drops_the_oldest_and_reports_a_gap() {
    let streams = InProcessStreams::new(StreamsConfig { capacity: 2, max_wait: Duration::from_millis(20) });
    let (c1, c2) = (ConversationId::new(), ConversationId::new());
    streams.publish("g1", vec![delivery(c1, 1), delivery(c2, 1)]).await.unwrap();
    // Full and nobody reads: after max_wait the oldest entry (c1) is dropped.
    streams.publish("g1", vec![delivery(c2, 2)]).await.unwrap();
    assert_eq!(streams.len_of("g1"), 2);
    let mut consumer = streams.consume("g1").await.unwrap();
    let batch = consumer.next_batch(10).await.unwrap();
    let gap = batch.gap.expect("gap reported");
    assert_eq!(gap.lost, Some(1));
    assert_eq!(gap.conversations, vec![c1]);
    let seqs: Vec<_> = batch
        .entries
        .iter()
        .map(|e| match &e.delivery {
            GatewayDelivery::Event { event, .. } => (event.conversation_id, event.seq),
            GatewayDelivery::Ephemeral { .. } => unreachable!(),
        })
        .collect();
    assert_eq!(seqs, vec![(c2, 1), (c2, 2)]);
    assert_eq!(batch.entries[0].id + 1, batch.entries[1].id);
}

#[tokio::test]
async fn a_stream_no_gateway_ever_consumed_never_makes_publish_wait() {
    // A node id nobody runs (e.g. registered by a misbehaving client) must not slow the fanout
    // by `max_wait` per event: its stream just keeps the newest entries.
    let streams = InProcessStreams::new(StreamsConfig { capacity: 1, max_wait: Duration::from_secs(30) });
    let conv = ConversationId::new();
    for seq in 1..=3 {
        tokio::time::timeout(Duration::from_secs(5), streams.publish("nobody", vec![delivery(conv, seq)]))
            .await
            .expect("publish to a never-consumed full stream does not wait for max_wait")
            .unwrap();
    }
    assert_eq!(streams.len_of("nobody"), 1);
}

#[tokio::test]
async fn stream_publish_waits_for_acks_within_max_wait() {
    let streams = Arc::new(InProcessStreams::new(StreamsConfig { capacity: 1, max_wait: Duration::from_secs(30) }));
    let conv = ConversationId::new();
    let mut consumer = streams.consume("g1").await.unwrap();
    streams.publish("g1", vec![delivery(conv, 1)]).await.unwrap();
    let blocked = {
        let streams = streams.clone();
        tokio::spawn(async move { streams.publish("g1", vec![delivery(conv, 2)]).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!blocked.is_finished());
    let b = consumer.next_batch(10).await.unwrap();
    consumer.ack(&[b.entries[0].id]).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), blocked).await.unwrap().unwrap().unwrap();
    let b = consumer.next_batch(10).await.unwrap();
    assert!(b.gap.is_none());
    assert_eq!(b.entries.len(), 1);
}

#[tokio::test]
async fn unacknowledged_entries_are_redelivered_to_the_gateways_next_consumer() {
    let streams = InProcessStreams::new(StreamsConfig::default());
    let conv = ConversationId::new();
    streams.publish("g1", (1..=4).map(|s| delivery(conv, s)).collect()).await.unwrap();
    let mut first = streams.consume("g1").await.unwrap();
    let b = first.next_batch(10).await.unwrap();
    assert_eq!(b.entries.len(), 4);
    first.ack(&[b.entries[0].id, b.entries[2].id]).await.unwrap();
    assert_eq!(streams.len_of("g1"), 3, "only the acknowledged prefix is removed");
    let mut second = streams.consume("g1").await.unwrap();
    assert!(matches!(first.next_batch(1).await, Err(PipelineError::Fenced(_))));
    let again = second.next_batch(10).await.unwrap();
    let ids: Vec<u64> = again.entries.iter().map(|e| e.id).collect();
    assert_eq!(ids, vec![b.entries[1].id, b.entries[3].id]);
    second.ack(&ids).await.unwrap();
    assert_eq!(streams.len_of("g1"), 0);
    streams.close();
    assert!(matches!(second.next_batch(1).await, Err(PipelineError::Closed)));
}
