//! The SUBSCRIBE header `conversation-member-ids`: `omit` leaves `conversationMemberIds` out
//! of a subscription's message events (live and replayed), the default keeps the seed's
//! shape, and any other value is an ERROR.

mod common;

use chat_stomp::Command;
use common::{Stack, message_body, test_config};
use serde_json::Value;

/// Collects `n` MESSAGE-type events of subscription `sub` on `/user/queue/messages`.
async fn chat_events(c: &mut common::Client, sub: &str, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    while out.len() < n {
        let f = c.next_frame().await;
        if f.headers.get("subscription") != Some(sub) {
            continue;
        }
        if let Some(v) = message_body(&f, "/user/queue/messages").filter(|v| v["eventType"] == "MESSAGE") {
            out.push(v);
        }
    }
    out
}

#[tokio::test]
async fn omit_leaves_member_ids_out_live_and_replayed_include_keeps_them() {
    let stack = Stack::start(test_config()).await;
    let (a, b, c) = (stack.user("alice").await, stack.user("bob").await, stack.user("carol").await);
    let ch = stack.channel(&a, "general", &[&b, &c]).await;
    let mut sender = stack.client(&a).await;
    let r = sender.send_chat(ch, a.id, "m-1", "before subscribing").await;
    sender.until_receipt(&r).await;

    // One connection, two subscriptions: the default one and one that omits member ids;
    // the second resumes from 0, so the stored message is replayed to it.
    let mut bob = stack.ws("/ws").await;
    bob.connect(&[("authorization", &format!("Bearer {}", b.token))]).await;
    bob.subscribe("full", "/user/queue/messages", &[]).await;
    let resume = format!("{ch}:0");
    let mut replayed: Vec<Value> = bob
        .subscribe("bare", "/user/queue/messages", &[("conversation-member-ids", "omit"), ("resume", &resume)])
        .await
        .iter()
        .filter(|f| f.headers.get("subscription") == Some("bare"))
        .filter_map(|f| message_body(f, "/user/queue/messages"))
        .filter(|v| v["eventType"] == "MESSAGE")
        .collect();
    if replayed.is_empty() {
        replayed = chat_events(&mut bob, "bare", 1).await;
    }
    assert_eq!(replayed[0]["text"], "before subscribing");
    assert!(replayed[0].get("conversationMemberIds").is_none(), "replayed: {}", replayed[0]);

    let r = sender.send_chat(ch, a.id, "m-2", "live").await;
    sender.until_receipt(&r).await;
    let mut seen = std::collections::HashMap::new();
    while seen.len() < 2 {
        let f = bob.next_frame().await;
        if let (Some(sub), Some(v)) = (f.headers.get("subscription"), message_body(&f, "/user/queue/messages"))
            && v["text"] == "live"
        {
            seen.insert(sub.to_owned(), v);
        }
    }
    let full = &seen["full"];
    let bare = &seen["bare"];
    assert_eq!(full["conversationMemberIds"].as_array().map(Vec::len), Some(3), "{full}");
    assert!(bare.get("conversationMemberIds").is_none(), "{bare}");
    // Apart from the member ids the two bodies are the same event.
    let mut without = full.clone();
    without.as_object_mut().unwrap().remove("conversationMemberIds");
    assert_eq!(&without, bare);
}

#[tokio::test]
async fn an_unknown_member_ids_mode_is_an_error() {
    let stack = Stack::start(test_config()).await;
    let a = stack.user("alice").await;
    let mut c = stack.ws("/ws").await;
    c.connect(&[("authorization", &format!("Bearer {}", a.token))]).await;
    let f = chat_stomp::Frame::new(Command::Subscribe)
        .with_header("id", "m")
        .with_header("destination", "/user/queue/messages")
        .with_header("conversation-member-ids", "sometimes");
    c.send_frame(&f).await;
    let err = c.until_error().await;
    let message = err.headers.get("message").unwrap_or_default().to_owned();
    assert!(message.contains("conversation-member-ids"), "{message}");
    assert!(message.contains("include or omit"), "{message}");
}

/// A repeated `conversation-member-ids` header: the first one counts (STOMP 1.2 for
/// repeated headers), so `omit` then `include` omits; a value in another case is an ERROR.
#[tokio::test]
async fn the_first_of_repeated_member_ids_headers_counts_and_values_are_exact() {
    let stack = Stack::start(test_config()).await;
    let (a, b) = (stack.user("alice").await, stack.user("bob").await);
    let ch = stack.channel(&a, "general", &[&b]).await;
    let mut bob = stack.ws("/ws").await;
    bob.connect(&[("authorization", &format!("Bearer {}", b.token))]).await;
    bob.subscribe(
        "m",
        "/user/queue/messages",
        &[("conversation-member-ids", "omit"), ("conversation-member-ids", "include")],
    )
    .await;
    let mut sender = stack.client(&a).await;
    let r = sender.send_chat(ch, a.id, "m-1", "hello").await;
    sender.until_receipt(&r).await;
    let got = chat_events(&mut bob, "m", 1).await;
    assert_eq!(got[0]["text"], "hello");
    assert!(got[0].get("conversationMemberIds").is_none(), "{}", got[0]);

    let mut c = stack.ws("/ws").await;
    c.connect(&[("authorization", &format!("Bearer {}", b.token))]).await;
    let f = chat_stomp::Frame::new(Command::Subscribe)
        .with_header("id", "m")
        .with_header("destination", "/user/queue/messages")
        .with_header("conversation-member-ids", "OMIT");
    c.send_frame(&f).await;
    let err = c.until_error().await;
    assert!(err.headers.get("message").unwrap_or_default().contains("conversation-member-ids"));
}
