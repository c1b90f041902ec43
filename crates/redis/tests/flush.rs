//! FLUSHDB of the whole key space: the registry forgets every connection, each gateway's
//! consumer reports a gap of unknown size and keeps consuming. Runs on its own Redis database
//! (index 5 of CHAT_TEST_REDIS_URL's server) so flushing it touches no other test; this file
//! holds the only test using that database.

mod common;

use std::time::Duration;

use chat_domain::{ConversationId, Millis, UserId, WorkspaceId};
use chat_pipeline::{ConnectionRegistry, DeliveryStreams, GapNotice};
use chat_redis::RedisRegistry;
use common::*;

/// The test server's URL with database index 5.
fn db5_url() -> String {
    let base = redis_url();
    let trimmed = match base.rsplit_once('/') {
        Some((head, db)) if !db.is_empty() && db.chars().all(|c| c.is_ascii_digit()) && !head.ends_with('/') => {
            head.to_owned()
        }
        _ => base.trim_end_matches('/').to_owned(),
    };
    format!("{trimmed}/5")
}

#[tokio::test]
async fn after_a_flush_clients_are_told_to_resync_and_delivery_goes_on() {
    let url = db5_url();
    let mut raw = raw(&url).await;
    let reg = RedisRegistry::connect(&url, Duration::from_secs(30)).await.unwrap();
    let streams = streams(&url, 10_000).await;
    let (u, ws, id, gw) = (UserId::new(), WorkspaceId::new(), unique("c"), unique("g"));
    reg.register(conn(&id, u, ws, &gw)).await.unwrap();
    let conv = ConversationId::new();
    streams.publish(&gw, (1..=3).map(|s| delivery(conv, s)).collect()).await.unwrap();
    let mut consumer = streams.consume(&gw).await.unwrap();
    let b = consumer.next_batch(10).await.unwrap();
    assert_eq!(seqs(&b.entries).len(), 3);
    consumer.ack(&[1, 2, 3]).await.unwrap();

    // The consumer is blocked waiting for entries when the flush happens.
    let waiting = tokio::spawn(async move {
        let b = consumer.next_batch(10).await;
        (consumer, b)
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _: () = redis::cmd("FLUSHDB").query_async(&mut raw).await.unwrap();
    let (mut consumer, b) = tokio::time::timeout(Duration::from_secs(10), waiting).await.unwrap().unwrap();
    let b = b.unwrap();
    assert_eq!(b.gap, Some(GapNotice { lost: None, conversations: vec![] }));

    // The registry forgot the connection; the gateway registers it again.
    assert!(!reg.touch(&id, Millis::now()).await.unwrap());
    assert!(reg.connections_of_user(u).await.unwrap().is_empty());
    reg.register(conn(&id, u, ws, &gw)).await.unwrap();
    assert_eq!(reg.online_users(Some(ws)).await.unwrap(), vec![u]);

    streams.publish(&gw, vec![delivery(conv, 4)]).await.unwrap();
    let b = tokio::time::timeout(Duration::from_secs(10), consumer.next_batch(10)).await.unwrap().unwrap();
    assert_eq!(b.gap, None);
    assert_eq!(seqs(&b.entries), vec![(conv, 4)]);
    consumer.ack(&[b.entries[0].id]).await.unwrap();
}
