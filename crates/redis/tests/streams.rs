//! RedisStreams against a real Redis (CHAT_TEST_REDIS_URL, default redis://127.0.0.1:6379):
//! order, acknowledgement, restart/fencing, gap notices for trimmed and vanished entries.
//! Each test uses its own gateway id, so tests share the server safely.

mod common;

use std::time::Duration;

use chat_domain::ConversationId;
use chat_pipeline::{DeliveryStreams, GapNotice, GatewayDelivery, PipelineError};
use chat_redis::{CONSUMER_GROUP, StreamKeys};
use common::*;
use redis::AsyncCommands;

async fn pending_count(raw: &mut redis::aio::MultiplexedConnection, gateway: &str) -> i64 {
    let reply: redis::Value =
        redis::cmd("XPENDING").arg(StreamKeys::of(gateway).stream).arg(CONSUMER_GROUP).query_async(raw).await.unwrap();
    match reply {
        redis::Value::Array(v) => match &v[0] {
            redis::Value::Int(n) => *n,
            other => panic!("XPENDING count {other:?}"),
        },
        other => panic!("XPENDING {other:?}"),
    }
}

async fn xtrim(raw: &mut redis::aio::MultiplexedConnection, gateway: &str, keep: u64) {
    let _: i64 =
        redis::cmd("XTRIM").arg(StreamKeys::of(gateway).stream).arg("MAXLEN").arg(keep).query_async(raw).await.unwrap();
}

#[tokio::test]
async fn published_entries_arrive_in_order_with_consecutive_ids_and_acks_clear_the_pending_list() {
    let url = redis_url();
    let mut raw = raw(&url).await;
    let streams = streams(&url, 10_000).await;
    streams.ping().await.unwrap();
    let gw = unique("order");
    let (c1, c2) = (ConversationId::new(), ConversationId::new());
    let mut sent = vec![delivery(c1, 1), delivery(c2, 1), typing(c1), delivery(c1, 2)];
    streams.publish(&gw, sent.clone()).await.unwrap();
    let mut consumer = streams.consume(&gw).await.unwrap();
    let batch = consumer.next_batch(100).await.unwrap();
    assert_eq!(batch.gap, None);
    let got: Vec<GatewayDelivery> = batch.entries.iter().map(|e| e.delivery.clone()).collect();
    assert_eq!(got, sent, "payloads round-trip, in publish order");
    let ids: Vec<u64> = batch.entries.iter().map(|e| e.id).collect();
    assert_eq!(ids, vec![1, 2, 3, 4], "entry ids are the stream's sequence numbers");
    assert_eq!(pending_count(&mut raw, &gw).await, 4, "read but not acknowledged");
    consumer.ack(&ids).await.unwrap();
    assert_eq!(pending_count(&mut raw, &gw).await, 0);

    // A publish while the consumer waits wakes it.
    let later = vec![delivery(c2, 2)];
    let publisher = {
        let streams = streams.clone();
        let gw = gw.clone();
        let later = later.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            streams.publish(&gw, later).await
        })
    };
    let batch = tokio::time::timeout(Duration::from_secs(10), consumer.next_batch(100)).await.unwrap().unwrap();
    publisher.await.unwrap().unwrap();
    assert_eq!(batch.gap, None);
    assert_eq!(batch.entries.len(), 1);
    assert_eq!(batch.entries[0].id, 5);
    sent.extend(later);
    assert_eq!(batch.entries[0].delivery, sent[4]);
    assert_eq!(streams.len_of(&gw).await.unwrap(), 5, "acknowledged entries stay until trimmed");

    // The documented entry shape.
    let entries: redis::streams::StreamRangeReply = raw.xrange_all(StreamKeys::of(&gw).stream).await.unwrap();
    assert_eq!(entries.ids[0].id, "1-0");
    let payload: String = entries.ids[0].get("payload").unwrap();
    let json: serde_json::Value = serde_json::from_str(&payload).unwrap();
    assert_eq!(json["type"], "EVENT");
    assert_eq!(json["messageEvent"]["conversationId"], c1.to_string());
    assert_eq!(json["recipientIds"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_restarted_gateway_gets_its_unacknowledged_entries_first_and_fences_the_old_consumer() {
    let url = redis_url();
    let streams = streams(&url, 10_000).await;
    let gw = unique("restart");
    let conv = ConversationId::new();
    streams.publish(&gw, (1..=4).map(|s| delivery(conv, s)).collect()).await.unwrap();
    let mut first = streams.consume(&gw).await.unwrap();
    let b = first.next_batch(10).await.unwrap();
    assert_eq!(b.entries.len(), 4);
    first.ack(&[b.entries[0].id, b.entries[2].id]).await.unwrap();

    let mut second = streams.consume(&gw).await.unwrap();
    assert!(matches!(first.next_batch(1).await, Err(PipelineError::Fenced(_))));
    assert!(matches!(first.ack(&[b.entries[1].id]).await, Err(PipelineError::Fenced(_))));
    streams.publish(&gw, vec![delivery(conv, 5)]).await.unwrap();
    let again = second.next_batch(10).await.unwrap();
    assert_eq!(again.gap, None);
    let ids: Vec<u64> = again.entries.iter().map(|e| e.id).collect();
    assert_eq!(ids, vec![2, 4], "pending entries come first, acknowledged ones never again");
    second.ack(&ids).await.unwrap();
    let new = second.next_batch(10).await.unwrap();
    assert_eq!(seqs(&new.entries), vec![(conv, 5)]);
    assert_eq!(new.gap, None);
}

#[tokio::test]
async fn trimming_below_the_read_position_is_reported_as_a_gap_with_the_lost_count() {
    let url = redis_url();
    let mut raw = raw(&url).await;
    let streams = streams(&url, 10_000).await;
    let gw = unique("trim");
    let conv = ConversationId::new();
    streams.publish(&gw, (1..=10).map(|s| delivery(conv, s)).collect()).await.unwrap();
    let mut consumer = streams.consume(&gw).await.unwrap();
    let b = consumer.next_batch(3).await.unwrap();
    assert_eq!(b.entries.iter().map(|e| e.id).collect::<Vec<_>>(), vec![1, 2, 3]);
    consumer.ack(&[1, 2, 3]).await.unwrap();

    // Ids 4..=8 vanish unread (MAXLEN ignores the consumer group).
    xtrim(&mut raw, &gw, 2).await;
    streams.publish(&gw, vec![delivery(conv, 11)]).await.unwrap();
    let b = consumer.next_batch(100).await.unwrap();
    assert_eq!(b.gap, Some(GapNotice { lost: Some(5), conversations: vec![conv] }));
    assert_eq!(seqs(&b.entries), vec![(conv, 9), (conv, 10), (conv, 11)]);
    let ids: Vec<u64> = b.entries.iter().map(|e| e.id).collect();
    consumer.ack(&ids).await.unwrap();

    // Trimmed while idle, with nothing new arriving: the idle check reports it.
    streams.publish(&gw, (12..=14).map(|s| delivery(conv, s)).collect()).await.unwrap();
    xtrim(&mut raw, &gw, 0).await;
    let b = tokio::time::timeout(Duration::from_secs(10), consumer.next_batch(100)).await.unwrap().unwrap();
    assert_eq!(b.gap, Some(GapNotice { lost: Some(3), conversations: vec![conv] }));
    assert!(b.entries.is_empty());
    // Reported once: the next entry follows without another gap.
    streams.publish(&gw, vec![delivery(conv, 15)]).await.unwrap();
    let b = consumer.next_batch(100).await.unwrap();
    assert_eq!(b.gap, None);
    assert_eq!(seqs(&b.entries), vec![(conv, 15)]);
}

#[tokio::test]
async fn a_gap_lists_the_conversations_with_entries_from_the_lost_range_on() {
    let url = redis_url();
    let mut raw = raw(&url).await;
    let streams = streams(&url, 10_000).await;
    let gw = unique("convs");
    let (c1, c2, c3) = (ConversationId::new(), ConversationId::new(), ConversationId::new());
    streams.publish(&gw, (1..=5).map(|s| delivery(c1, s)).collect()).await.unwrap();
    let mut consumer = streams.consume(&gw).await.unwrap();
    let b = consumer.next_batch(100).await.unwrap();
    consumer.ack(&b.entries.iter().map(|e| e.id).collect::<Vec<_>>()).await.unwrap();
    // Ids 6..=8 (c2) will be lost; 9 (c3, typing) and 10 (c3) remain.
    streams.publish(&gw, vec![delivery(c2, 1), delivery(c2, 2), delivery(c2, 3), typing(c3)]).await.unwrap();
    xtrim(&mut raw, &gw, 1).await;
    streams.publish(&gw, vec![delivery(c3, 1)]).await.unwrap();
    let b = consumer.next_batch(100).await.unwrap();
    let mut expected = vec![c2, c3];
    expected.sort();
    assert_eq!(
        b.gap,
        Some(GapNotice { lost: Some(3), conversations: expected }),
        "c1 was read before the gap: not listed"
    );
    assert_eq!(b.entries.iter().map(|e| e.id).collect::<Vec<_>>(), vec![9, 10]);
}

#[tokio::test]
async fn entries_trimmed_while_the_gateway_was_down_are_reported_when_it_comes_back() {
    let url = redis_url();
    let mut raw = raw(&url).await;
    let streams = streams(&url, 10_000).await;
    let gw = unique("down");
    let conv = ConversationId::new();
    streams.publish(&gw, (1..=4).map(|s| delivery(conv, s)).collect()).await.unwrap();
    let mut first = streams.consume(&gw).await.unwrap();
    let b = first.next_batch(2).await.unwrap();
    assert_eq!(b.entries.len(), 2);
    // Entry 1 handled, entry 2 read but not acknowledged when the gateway dies.
    first.ack(&[1]).await.unwrap();
    drop(first);
    streams.publish(&gw, (5..=8).map(|s| delivery(conv, s)).collect()).await.unwrap();
    xtrim(&mut raw, &gw, 3).await; // keeps 6, 7, 8: pending 2 and unread 3, 4, 5 are gone

    let mut second = streams.consume(&gw).await.unwrap();
    let mut lost = 0;
    let mut got = Vec::new();
    while got.len() < 3 {
        let b = tokio::time::timeout(Duration::from_secs(10), second.next_batch(100)).await.unwrap().unwrap();
        if let Some(gap) = b.gap {
            assert!(gap.conversations.is_empty(), "a lost pending entry's conversation is unknown: all");
            lost += gap.lost.expect("counted");
        }
        got.extend(seqs(&b.entries));
    }
    assert_eq!(lost, 4, "one pending and three unread entries");
    assert_eq!(got, vec![(conv, 6), (conv, 7), (conv, 8)]);
    assert_eq!(pending_count(&mut raw, &gw).await, 3, "the lost pending entry was acknowledged");
}

#[tokio::test]
async fn approximate_max_len_bounds_the_stream_and_the_overflow_is_a_gap() {
    let url = redis_url();
    let streams = streams(&url, 10).await;
    let gw = unique("maxlen");
    let conv = ConversationId::new();
    for chunk in 0..30 {
        streams.publish(&gw, (1..=10).map(|s| delivery(conv, chunk * 10 + s)).collect()).await.unwrap();
    }
    let held = streams.len_of(&gw).await.unwrap();
    assert!(held < 300, "trimmed to about max_len (one radix node of slack), held {held}");
    let mut consumer = streams.consume(&gw).await.unwrap();
    let b = consumer.next_batch(1000).await.unwrap();
    let first = b.entries.first().expect("the newest entries remain").id;
    assert_eq!(b.gap, Some(GapNotice { lost: Some(first - 1), conversations: vec![conv] }));
    assert_eq!(b.entries.last().unwrap().id, 300);
    assert_eq!(b.entries.len() as u64, held);
}

#[tokio::test]
async fn a_deleted_stream_is_a_gap_of_unknown_size_and_the_consumer_keeps_working() {
    let url = redis_url();
    let mut raw = raw(&url).await;
    let streams = streams(&url, 10_000).await;
    let gw = unique("deleted");
    let conv = ConversationId::new();
    streams.publish(&gw, vec![delivery(conv, 1)]).await.unwrap();
    let mut consumer = streams.consume(&gw).await.unwrap();
    let b = consumer.next_batch(10).await.unwrap();
    consumer.ack(&[b.entries[0].id]).await.unwrap();

    // Like a flush of this gateway's keys: stream, group and epoch are gone.
    let keys = StreamKeys::of(&gw);
    let _: i64 = raw.del(&[&keys.stream, &keys.epoch]).await.unwrap();
    let b = tokio::time::timeout(Duration::from_secs(10), consumer.next_batch(10)).await.unwrap().unwrap();
    assert_eq!(b.gap, Some(GapNotice { lost: None, conversations: vec![] }));

    streams.publish(&gw, vec![delivery(conv, 2), delivery(conv, 3)]).await.unwrap();
    let b = consumer.next_batch(10).await.unwrap();
    assert_eq!(b.gap, None, "reported once");
    assert_eq!(seqs(&b.entries), vec![(conv, 2), (conv, 3)]);
    assert_eq!(b.entries[0].id, 1, "the recreated stream numbers from 1 again");
    consumer.ack(&[1, 2]).await.unwrap();
    assert_eq!(pending_count(&mut raw, &gw).await, 0);

    // Deleted again and published to before the consumer notices: the new entries are read.
    let _: i64 = raw.del(&keys.stream).await.unwrap();
    streams.publish(&gw, vec![delivery(conv, 4)]).await.unwrap();
    let mut got = Vec::new();
    let mut gaps = 0;
    while got.is_empty() {
        let b = tokio::time::timeout(Duration::from_secs(10), consumer.next_batch(10)).await.unwrap().unwrap();
        gaps += usize::from(b.gap.is_some());
        got.extend(seqs(&b.entries));
    }
    assert_eq!(gaps, 1);
    assert_eq!(got, vec![(conv, 4)]);
}

#[tokio::test]
async fn close_stops_publishers_and_consumers() {
    let url = redis_url();
    let streams = streams(&url, 10_000).await;
    let gw = unique("close");
    let mut consumer = streams.consume(&gw).await.unwrap();
    let waiting = tokio::spawn(async move { consumer.next_batch(10).await.map(|_| ()) });
    tokio::time::sleep(Duration::from_millis(100)).await;
    streams.close();
    let r = tokio::time::timeout(Duration::from_secs(10), waiting).await.unwrap().unwrap();
    assert!(matches!(r, Err(PipelineError::Closed)), "{r:?}");
    assert!(matches!(streams.publish(&gw, vec![delivery(ConversationId::new(), 1)]).await, Err(PipelineError::Closed)));
    assert!(matches!(streams.consume(&gw).await, Err(PipelineError::Closed)));
}

#[tokio::test]
async fn the_conversation_index_is_bounded_and_a_gap_beyond_it_means_all_conversations() {
    let url = redis_url();
    let mut raw = raw(&url).await;
    let streams = streams(&url, 100_000).await;
    let gw = unique("cap");
    streams.publish(&gw, vec![delivery(ConversationId::new(), 1)]).await.unwrap();
    let mut consumer = streams.consume(&gw).await.unwrap();
    let b = consumer.next_batch(10).await.unwrap();
    consumer.ack(&[b.entries[0].id]).await.unwrap();
    let cap = chat_redis::streams::CONVERSATION_INDEX_CAP;
    streams.publish(&gw, (0..cap + 10).map(|_| delivery(ConversationId::new(), 1)).collect()).await.unwrap();
    let indexed: usize = raw.zcard(StreamKeys::of(&gw).conversations).await.unwrap();
    assert_eq!(indexed, cap, "bounded");
    xtrim(&mut raw, &gw, 1).await;
    let b = consumer.next_batch(10).await.unwrap();
    let lost = cap as u64 + 9;
    assert_eq!(b.gap, Some(GapNotice { lost: Some(lost), conversations: vec![] }), "too many to list: all");
    assert_eq!(b.entries.len(), 1);
}
