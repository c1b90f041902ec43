//! Ephemeral signals over STOMP: typing (TTL, rate limit, stop at session end), presence
//! (first connection up, last connection gone after a grace period) and "seen by" receipts.

mod common;

use std::time::Duration;

use chat_core::service::{RealtimeConfig, ReceiptScope};
use chat_domain::PresenceStatus;
use common::{Stack, TestUser, test_config};
use serde_json::json;

const QUIET: Duration = Duration::from_millis(400);

#[tokio::test]
async fn typing_start_has_a_ttl_repeats_are_dropped_and_stop_is_forwarded() {
    let stack = Stack::start(test_config()).await;
    let (a, b) = (stack.user("alice").await, stack.user("bob").await);
    let ch = stack.channel(&a, "general", &[&b]).await;
    let mut a1 = stack.client(&a).await;
    let mut b1 = stack.client(&b).await;
    let mut b2 = stack.client(&b).await;

    // A stop with no start before it is dropped.
    let r = a1.receipt_id();
    a1.send_json("/app/typing", &json!({"conversationId": ch, "typing": false}), Some(&r)).await;
    a1.until_receipt(&r).await;
    // Three starts in a row: one is forwarded (the others are within the refresh interval).
    for _ in 0..3 {
        let r = a1.receipt_id();
        a1.send_json("/app/typing", &json!({"conversationId": ch, "typing": true}), Some(&r)).await;
        a1.until_receipt(&r).await;
    }
    for device in [&mut b1, &mut b2] {
        let got = device.events_within("TYPING", QUIET).await;
        assert_eq!(got.len(), 1, "one start per refresh interval: {got:?}");
        assert_eq!(got[0]["typing"], true);
        assert_eq!(got[0]["ttlMs"], 5000);
        assert_eq!(got[0]["userId"], a.id.to_string());
        assert_eq!(got[0]["conversationId"], ch.to_string());
        assert!(got[0].get("seq").is_none(), "ephemeral: no seq");
    }
    let r = a1.receipt_id();
    a1.send_json("/app/typing", &json!({"conversationId": ch, "typing": false}), Some(&r)).await;
    a1.until_receipt(&r).await;
    for device in [&mut b1, &mut b2] {
        let got = device.events("TYPING", 1).await;
        assert_eq!(got[0]["typing"], false);
        assert!(got[0].get("ttlMs").is_none());
    }
    assert!(a1.events_within("TYPING", QUIET).await.is_empty(), "never to the typist");
}

#[tokio::test]
async fn a_session_that_ends_while_typing_sends_the_stop() {
    let stack = Stack::start(test_config()).await;
    let (a, b) = (stack.user("alice").await, stack.user("bob").await);
    let dm = stack.dm(&a, &b).await;
    let mut a1 = stack.client(&a).await;
    let mut b1 = stack.client(&b).await;
    let r = a1.receipt_id();
    a1.send_json("/app/typing", &json!({"conversationId": dm, "typing": true}), Some(&r)).await;
    a1.until_receipt(&r).await;
    assert_eq!(b1.events("TYPING", 1).await[0]["typing"], true);
    a1.close().await;
    let stop = b1.events("TYPING", 1).await;
    assert_eq!(stop[0]["typing"], false);
    assert_eq!(stop[0]["userId"], a.id.to_string());
}

/// The gateway caches member lists; a member removed while no `USER_LEFT` passed through it
/// (every device offline) is still in the cached list, but a forwarded typing signal is
/// authorized against the core's current list.
#[tokio::test]
async fn a_removed_member_cannot_type_while_the_gateway_still_caches_the_old_list() {
    let stack = Stack::start(test_config()).await;
    let (a, b, c) = (stack.user("alice").await, stack.user("bob").await, stack.user("carol").await);
    let ch = stack.channel(&a, "general", &[&b, &c]).await;
    let mut b1 = stack.client(&b).await;
    b1.send_json("/app/typing", &json!({"conversationId": ch, "typing": true}), Some("warm")).await;
    b1.until_receipt("warm").await;
    b1.close().await;
    stack.service.remove_member(a.id, ch, b.id).await.unwrap();

    let mut c1 = stack.client(&c).await;
    let mut b2 = stack.client(&b).await;
    // Past the gate's start interval, so this start would be forwarded.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    b2.send_json("/app/typing", &json!({"conversationId": ch, "typing": true}), None).await;
    let err = b2.until_error().await;
    assert!(err.header("message").unwrap_or("").contains("member"), "{err:?}");
    assert!(c1.events_within("TYPING", QUIET).await.is_empty(), "nothing from a removed member reaches the members");
}

#[tokio::test]
async fn typing_in_a_conversation_of_others_is_an_error() {
    let stack = Stack::start(test_config()).await;
    let (a, b, c) = (stack.user("alice").await, stack.user("bob").await, stack.user("carol").await);
    let dm = stack.dm(&a, &b).await;
    let mut c1 = stack.client(&c).await;
    c1.send_json("/app/typing", &json!({"conversationId": dm, "typing": true}), None).await;
    let err = c1.until_error().await;
    assert!(err.header("message").unwrap_or("").contains("not found"), "{err:?}");
}

/// The offline grace period of the presence tests.
const GRACE: Duration = Duration::from_millis(1000);

#[tokio::test]
async fn presence_goes_online_with_the_first_connection_and_offline_a_grace_period_after_the_last() {
    let cfg = RealtimeConfig { presence_offline_grace: GRACE, ..RealtimeConfig::default() };
    let stack = Stack::start_realtime(test_config(), cfg).await;
    let (a, b) = (stack.user("alice").await, stack.user("bob").await);
    let (c, outsider) = (stack.user("carol").await, stack.user("dave").await);
    stack.channel(&a, "general", &[&b, &c]).await;
    let mut b1 = stack.client(&b).await;
    let mut d1 = stack.client(&outsider).await;
    assert_eq!(stack.service.presence(b.id, a.id).await.unwrap().status, PresenceStatus::Offline);

    let a1 = stack.client(&a).await;
    let online = b1.events("PRESENCE", 1).await;
    assert_eq!(online[0]["userId"], a.id.to_string());
    assert_eq!(online[0]["status"], "ONLINE");
    assert!(online[0].get("seq").is_none());
    let a2 = stack.client(&a).await;
    let p = stack.service.presence(b.id, a.id).await.unwrap();
    assert_eq!((p.status, p.connections), (PresenceStatus::Online, 2));

    // Every device goes and one comes back within the grace period (a reload): nothing is
    // announced.
    a1.close().await;
    a2.close().await;
    wait_for_connections(&stack, &b, &a, 0).await;
    let p = stack.service.presence(b.id, a.id).await.unwrap();
    assert_eq!(p.status, PresenceStatus::Online, "online with no connection within the grace period");
    let a3 = stack.client(&a).await;
    let quiet = b1.events_within("PRESENCE", GRACE + QUIET).await;
    assert!(quiet.iter().all(|v| v["userId"] != a.id.to_string()), "no OFFLINE/ONLINE pair: {quiet:?}");

    // The last device goes for good: OFFLINE once the grace period ends.
    a3.close().await;
    wait_for_connections(&stack, &b, &a, 0).await;
    let closed = std::time::Instant::now();
    let offline = b1.events("PRESENCE", 1).await;
    assert!(closed.elapsed() >= GRACE - Duration::from_millis(100), "not before the grace period");
    assert_eq!(offline[0]["userId"], a.id.to_string());
    assert_eq!(offline[0]["status"], "OFFLINE", "no second ONLINE, and OFFLINE only after the last device");
    assert!(offline[0]["lastSeenAt"].is_string());
    let p = stack.service.presence(b.id, a.id).await.unwrap();
    assert_eq!((p.status, p.connections), (PresenceStatus::Offline, 0));
    assert_eq!(p.last_seen_at.map(|t| t.to_rfc3339()).as_deref(), offline[0]["lastSeenAt"].as_str());
    let members =
        stack.service.members_presence(b.id, stack.service.conversations(b.id).await.unwrap()[0].conversation.id);
    assert_eq!(members.await.unwrap().len(), 3);
    assert!(
        d1.events_within("PRESENCE", QUIET).await.iter().all(|v| v["userId"] != a.id.to_string()),
        "no presence of users who share no conversation"
    );
}

#[tokio::test]
async fn presence_without_a_grace_period_goes_offline_at_once() {
    let cfg = RealtimeConfig { presence_offline_grace: Duration::ZERO, ..RealtimeConfig::default() };
    let stack = Stack::start_realtime(test_config(), cfg).await;
    let (a, b) = (stack.user("alice").await, stack.user("bob").await);
    stack.channel(&a, "general", &[&b]).await;
    let mut b1 = stack.client(&b).await;
    let a1 = stack.client(&a).await;
    assert_eq!(b1.events("PRESENCE", 1).await[0]["status"], "ONLINE");
    a1.close().await;
    let offline = b1.events("PRESENCE", 1).await;
    assert_eq!(
        (offline[0]["userId"].as_str(), offline[0]["status"].as_str()),
        (Some(&*a.id.to_string()), Some("OFFLINE"))
    );
    assert_eq!(stack.service.presence(b.id, a.id).await.unwrap().status, PresenceStatus::Offline);
}

/// Waits until `user`'s presence (as `reader` sees it) counts `n` connections.
async fn wait_for_connections(stack: &Stack, reader: &TestUser, user: &TestUser, n: u32) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while stack.service.presence(reader.id, user.id).await.unwrap().connections != n {
        assert!(std::time::Instant::now() < deadline, "{n} connections within 5 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn seen_receipts_reach_dm_members_and_only_the_reader_in_channels() {
    let stack = Stack::start_realtime(test_config(), RealtimeConfig::default()).await;
    let (a, b, c) = (stack.user("alice").await, stack.user("bob").await, stack.user("carol").await);
    let dm = stack.dm(&a, &b).await;
    let ch = stack.channel(&a, "general", &[&b, &c]).await;
    let mut a1 = stack.client(&a).await;
    let mut a2 = stack.client(&a).await;
    let mut b1 = stack.client(&b).await;
    let mut b2 = stack.client(&b).await;
    let r = a1.send_chat(dm, a.id, "m-1", "hello").await;
    a1.until_receipt(&r).await;
    let seq = stack.last_seq(&a, dm).await;

    let r = b1.receipt_id();
    b1.send_json("/app/ack", &json!({"conversationId": dm, "seenSeq": seq}), Some(&r)).await;
    b1.until_receipt(&r).await;
    for device in [&mut a1, &mut a2, &mut b2] {
        let seen = device.events("SEEN", 1).await;
        assert_eq!(seen[0]["userId"], b.id.to_string());
        assert_eq!(seen[0]["conversationId"], dm.to_string());
        assert_eq!(seen[0]["seenSeq"], seq);
        assert!(seen[0].get("seq").is_none());
    }
    // The same position again changes nothing: no second receipt.
    let r = b1.receipt_id();
    b1.send_json("/app/ack", &json!({"conversationId": dm, "seenSeq": seq}), Some(&r)).await;
    b1.until_receipt(&r).await;
    assert!(a1.events_within("SEEN", QUIET).await.is_empty());

    // Channels (default scope): the reader's own devices only.
    let r = a1.send_chat(ch, a.id, "m-2", "hi all").await;
    a1.until_receipt(&r).await;
    let seq = stack.last_seq(&a, ch).await;
    let r = b1.receipt_id();
    b1.send_json("/app/ack", &json!({"conversationId": ch, "seenSeq": seq}), Some(&r)).await;
    b1.until_receipt(&r).await;
    assert_eq!(b2.events("SEEN", 1).await[0]["conversationId"], ch.to_string());
    assert!(a2.events_within("SEEN", QUIET).await.is_empty(), "channel receipts are off by default");
}

#[tokio::test]
async fn seen_receipts_in_channels_when_configured() {
    let cfg = RealtimeConfig { seen_by: ReceiptScope::AllConversations, ..RealtimeConfig::default() };
    let stack = Stack::start_realtime(test_config(), cfg).await;
    let (a, b) = (stack.user("alice").await, stack.user("bob").await);
    let ch = stack.channel(&a, "general", &[&b]).await;
    let mut a1 = stack.client(&a).await;
    let seq = stack.last_seq(&a, ch).await;
    stack.service.ack(b.id, ch, None, Some(seq)).await.unwrap();
    let seen = a1.events("SEEN", 1).await;
    assert_eq!(seen[0]["userId"], b.id.to_string());
    assert_eq!(seen[0]["seenSeq"], seq);
}
