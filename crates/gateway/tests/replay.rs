//! Replays longer than one store page: a resume across many pages (read ahead of the writer)
//! arrives complete, once and in order, with redactions and `conversationMemberIds`.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use chat_core::service::SendMessage;
use chat_domain::{ConversationId, MessageId};
use chat_gateway::GatewayConfig;
use common::{Stack, TestUser, message_body, test_config};
use serde_json::Value;

/// Small pages and several reads ahead, so a short log spans many pages.
fn paged_config() -> GatewayConfig {
    GatewayConfig { replay_page_size: 7, replay_read_ahead: 3, ..test_config() }
}

async fn send(stack: &Stack, user: &TestUser, conv: ConversationId, text: &str) -> MessageId {
    let req = SendMessage {
        conversation_id: conv,
        client_msg_id: Some(text.into()),
        text: text.into(),
        kind: None,
        thread_root_id: None,
        attachment_ids: Vec::new(),
    };
    match stack.service.send(user.id, req).await.expect("send") {
        chat_core::service::SendOutcome::Created { message, .. } => message.id,
        other => panic!("not created: {other:?}"),
    }
}

/// Resumes `user` in `conv` after `position` and collects the replay up to seq `last`.
async fn resume(stack: &Stack, user: &TestUser, conv: ConversationId, position: i64, last: i64) -> Vec<Value> {
    let mut c = stack.ws("/ws").await;
    c.connect(&[("authorization", &format!("Bearer {}", user.token))]).await;
    let resume = format!("{conv}:{position}");
    let mut got: Vec<Value> = c
        .subscribe("m", "/user/queue/messages", &[("resume", &resume)])
        .await
        .iter()
        .filter_map(|f| message_body(f, "/user/queue/messages"))
        .collect();
    while got.last().and_then(|m| m["seq"].as_i64()).is_none_or(|s| s < last) {
        got.extend(c.messages(1).await);
    }
    assert!(c.messages_within(Duration::from_millis(300)).await.is_empty(), "events after the replay");
    got
}

#[tokio::test]
async fn a_resume_spanning_many_pages_arrives_complete_and_in_order() {
    let stack = Stack::start(paged_config()).await;
    let (a, b, c) = (stack.user("alice").await, stack.user("bob").await, stack.user("carol").await);
    let ch = stack.channel(&a, "paged", &[&b]).await;
    let position = stack.last_seq(&b, ch).await;

    // Bob is offline: 30 messages, Carol joins, 30 more, one edited, one deleted.
    let mut ids = Vec::new();
    for i in 0..30 {
        ids.push(send(&stack, &a, ch, &format!("m{i}")).await);
    }
    stack.service.add_member(a.id, ch, c.id).await.expect("add carol");
    for i in 30..60 {
        ids.push(send(&stack, &a, ch, &format!("m{i}")).await);
    }
    stack.service.edit_message(a.id, ids[5], "m5 edited".into()).await.expect("edit");
    stack.service.delete_message(a.id, ids[6]).await.expect("delete");
    let last = stack.last_seq(&b, ch).await;

    let got = resume(&stack, &b, ch, position, last).await;
    let seqs: Vec<i64> = got.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (position + 1..=last).collect::<Vec<_>>(), "gap, duplicate or disorder");
    let kinds: Vec<&str> = got.iter().map(|m| m["eventType"].as_str().unwrap()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "MESSAGE").count(), 60);
    assert_eq!(kinds.iter().filter(|k| **k == "USER_JOINED").count(), 1);
    assert_eq!(kinds[kinds.len() - 2..], ["MESSAGE_EDITED", "MESSAGE_DELETED"]);

    // The log's texts in order; the deleted message is redacted in its MESSAGE event.
    let texts: Vec<&str> =
        got.iter().filter(|m| m["eventType"] == "MESSAGE").map(|m| m["text"].as_str().unwrap()).collect();
    for (i, text) in texts.iter().enumerate() {
        match i {
            6 => assert_eq!(*text, "", "deleted message not redacted"),
            _ => assert_eq!(*text, format!("m{i}")),
        }
    }
    assert_eq!(got[got.len() - 2]["text"], "m5 edited");

    // Every message event names the current members.
    let members: BTreeSet<String> = [&a, &b, &c].iter().map(|u| u.id.to_string()).collect();
    for m in got.iter().filter(|m| m["eventType"].as_str().unwrap().starts_with("MESSAGE")) {
        let ids: BTreeSet<String> = m["conversationMemberIds"]
            .as_array()
            .expect("conversationMemberIds")
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids, members, "{m}");
    }
}

#[tokio::test]
async fn a_resume_from_zero_replays_the_whole_log_across_pages() {
    let stack = Stack::start(paged_config()).await;
    let (a, b) = (stack.user("alice").await, stack.user("bob").await);
    let dm = stack.dm(&a, &b).await;
    for i in 0..23 {
        send(&stack, &a, dm, &format!("m{i}")).await;
    }
    let last = stack.last_seq(&b, dm).await;
    let got = resume(&stack, &b, dm, 0, last).await;
    let seqs: Vec<i64> = got.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=last).collect::<Vec<_>>());
    assert_eq!(got.iter().filter(|m| m["eventType"] == "MESSAGE").count(), 23);
}
