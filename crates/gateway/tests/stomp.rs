//! The gateway against a real in-process stack.

mod common;

use std::time::Duration;

use chat_stomp::{Command, Frame};
use std::sync::Arc;

use chat_core::service::SendMessage;
use chat_pipeline::{DeliveryStreams, GatewayDelivery};
use common::{Client, Stack, WAIT, message_body, test_config};
use serde_json::{Value, json};

#[tokio::test]
async fn connect_with_token_in_query_header_or_passcode() {
    let stack = Stack::start(test_config()).await;
    let alice = stack.user("alice").await;

    let mut c = stack.ws(&format!("/ws?token={}", alice.token)).await;
    let connected = c.connect(&[]).await;
    assert_eq!(connected.header("version"), Some("1.2"));
    assert!(connected.header("server").unwrap().starts_with("chat-sys/"));
    assert!(connected.header("session").is_some());
    assert!(connected.header("heart-beat").is_some());

    let mut c = stack.ws("/ws/websocket").await;
    c.connect(&[("Authorization", &format!("Bearer {}", alice.token))]).await;

    let mut c = stack.ws("/ws").await;
    c.connect(&[("login", "alice"), ("passcode", &alice.token)]).await;
    assert_eq!(stack.gateway.session_count(), 3);
}

#[tokio::test]
async fn bad_or_missing_token_is_an_error() {
    let stack = Stack::start(test_config()).await;
    let mut c = stack.ws("/ws?token=not-a-jwt").await;
    let f = c.connect_raw(&[]).await;
    assert_eq!(f.command, Command::Error);
    assert!(f.header("message").unwrap().contains("authentication failed"), "{f:?}");
    assert!(c.wait_closed(WAIT).await);

    let mut c = stack.ws("/ws").await;
    let f = c.connect_raw(&[]).await;
    assert_eq!(f.command, Command::Error);
    assert!(f.header("message").unwrap().contains("authentication required"));

    // A frame other than CONNECT first.
    let mut c = stack.ws("/ws").await;
    c.send_frame(&Frame::new(Command::Subscribe).with_header("id", "1").with_header("destination", "/x")).await;
    assert!(c.until_error().await.header("message").unwrap().contains("CONNECT"));
}

#[tokio::test]
async fn subprotocol_v12_is_selected_and_origin_is_checked() {
    let cfg = chat_gateway::GatewayConfig { allowed_origins: vec!["https://ok.example".into()], ..test_config() };
    let stack = Stack::start(cfg).await;
    let (_c, resp) = Client::open(stack.addr, "/ws", Some("v10.stomp, v11.stomp, v12.stomp")).await.unwrap();
    assert_eq!(resp.headers().get("sec-websocket-protocol").unwrap(), "v12.stomp");
    let (_c, resp) = Client::open(stack.addr, "/ws", None).await.unwrap();
    assert!(resp.headers().get("sec-websocket-protocol").is_none());

    let url = format!("ws://{}/ws", stack.addr);
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url).unwrap();
    req.headers_mut().insert("Origin", "https://evil.example".parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 403),
        other => panic!("expected 403, got {other:?}"),
    }
    let url = format!("ws://{}/ws", stack.addr);
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url).unwrap();
    req.headers_mut().insert("Origin", "https://ok.example".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(req).await.is_ok());
}

/// Each member device gets `n` MESSAGE events of `conv`, seq strictly increasing.
async fn expect_messages(c: &mut Client, n: usize) -> Vec<Value> {
    let msgs = c.events("MESSAGE", n).await;
    let seqs: Vec<i64> = msgs.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "not increasing: {seqs:?}");
    msgs
}

#[tokio::test]
async fn dm_and_channel_reach_every_device_once_in_order() {
    let stack = Stack::start(test_config()).await;
    let (a, b, c) = (stack.user("alice").await, stack.user("bob").await, stack.user("carol").await);
    let dm = stack.dm(&a, &b).await;
    let ch = stack.channel(&a, "general", &[&b, &c]).await;

    let mut a1 = stack.client(&a).await;
    let mut a2 = stack.client(&a).await;
    let mut b1 = stack.client(&b).await;
    let mut c1 = stack.client(&c).await;

    // Deliveries that arrive before a sender's receipts are kept.
    let mut early: [Vec<Value>; 2] = [Vec::new(), Vec::new()];
    for i in 0..5 {
        let r = a1.send_chat(dm, a.id, &format!("dm-{i}"), &format!("dm {i} héllo")).await;
        early[0].extend(a1.until_receipt(&r).await.iter().filter_map(|f| message_body(f, "/user/queue/messages")));
    }
    for i in 0..5 {
        let r = b1.send_chat(ch, b.id, &format!("ch-{i}"), &format!("channel {i}")).await;
        early[1].extend(b1.until_receipt(&r).await.iter().filter_map(|f| message_body(f, "/user/queue/messages")));
    }
    // a1, a2 and b1 get the DM and the channel messages; c1 only the channel's.
    let [early_a1, early_b1] = early;
    for (client, early) in [(&mut a1, early_a1), (&mut a2, Vec::new()), (&mut b1, early_b1)] {
        let mut msgs: Vec<Value> = early.into_iter().filter(|m| m["eventType"] == "MESSAGE").collect();
        let missing = 10 - msgs.len();
        msgs.extend(client.events("MESSAGE", missing).await);
        let dm_msgs: Vec<_> = msgs.iter().filter(|m| m["conversationId"] == dm.to_string()).collect();
        let ch_msgs: Vec<_> = msgs.iter().filter(|m| m["conversationId"] == ch.to_string()).collect();
        assert_eq!((dm_msgs.len(), ch_msgs.len()), (5, 5));
        for group in [dm_msgs, ch_msgs] {
            let seqs: Vec<i64> = group.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
            assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
        }
        assert!(client.events_within("MESSAGE", Duration::from_millis(300)).await.is_empty(), "duplicates");
    }
    let msgs = expect_messages(&mut c1, 5).await;
    let first = &msgs[0];
    for key in ["messageId", "userId", "serverSeq", "threadRootId", "text", "type", "createdAt", "updatedAt"] {
        assert!(first.get(key).is_some(), "missing {key}");
    }
    assert_eq!(first["conversationMemberIds"].as_array().unwrap().len(), 3);
    assert_eq!(first["type"], "default");
    assert_eq!(first["text"], "channel 0");
    assert!(c1.events_within("MESSAGE", Duration::from_millis(300)).await.is_empty());
}

#[tokio::test]
async fn receipt_after_commit_with_ack_offset_and_idempotent_retry() {
    let stack = Stack::start(test_config()).await;
    let (a, b) = (stack.user("alice").await, stack.user("bob").await);
    let dm = stack.dm(&a, &b).await;
    let mut a1 = stack.client(&a).await;
    let mut b1 = stack.client(&b).await;

    let r = a1.send_chat(dm, a.id, "client-1", "hello").await;
    let before = a1.until_receipt(&r).await;
    // Stored by the time the RECEIPT arrives.
    assert_eq!(stack.message_count(&a, dm).await, 1);
    let ack = before
        .iter()
        .find_map(|f| message_body(f, "/user/queue/notifications/private"))
        .expect("ack offset before the receipt");
    assert_eq!(ack["status"], "PERSISTED");
    assert_eq!(ack["clientMsgId"], "client-1");
    assert_eq!(ack["userId"], a.id.to_string());
    assert!(ack["ackedAt"].is_string());
    let seq = ack["ackedSeq"].as_i64().unwrap();

    // Retry with the same messageId: same seq, DUPLICATE, nothing new stored or delivered.
    let r = a1.send_chat(dm, a.id, "client-1", "hello").await;
    let before = a1.until_receipt(&r).await;
    let acks: Vec<Value> = before.iter().filter_map(|f| message_body(f, "/user/queue/notifications/private")).collect();
    let retry = acks.last().expect("ack offset for the retry");
    assert_eq!(retry["status"], "DUPLICATE");
    assert_eq!(retry["ackedSeq"].as_i64(), Some(seq));
    assert_eq!(stack.message_count(&a, dm).await, 1);

    let msgs = expect_messages(&mut b1, 1).await;
    assert_eq!(msgs[0]["serverSeq"].as_i64(), Some(seq));
    assert_eq!(msgs[0]["seq"].as_i64(), Some(seq));
    assert!(b1.events_within("MESSAGE", Duration::from_millis(300)).await.is_empty());
}

#[tokio::test]
async fn typing_reaches_others_not_the_sender() {
    let stack = Stack::start(test_config()).await;
    let (a, b, c) = (stack.user("alice").await, stack.user("bob").await, stack.user("carol").await);
    let ch = stack.channel(&a, "general", &[&b, &c]).await;
    let mut a1 = stack.client(&a).await;
    let mut a2 = stack.client(&a).await;
    let mut b1 = stack.client(&b).await;
    let mut c1 = stack.client(&c).await;

    let r = a1.receipt_id();
    a1.send_json("/app/typing", &json!({"conversationId": ch, "typing": true}), Some(&r)).await;
    a1.until_receipt(&r).await;
    for client in [&mut b1, &mut c1] {
        let got = client.events("TYPING", 1).await;
        assert_eq!(got[0]["userId"], a.id.to_string());
        assert_eq!(got[0]["typing"], true);
        assert!(got[0].get("seq").is_none());
    }
    assert!(a1.events_within("TYPING", Duration::from_millis(300)).await.is_empty());
    assert!(a2.events_within("TYPING", Duration::from_millis(100)).await.is_empty());
}

#[tokio::test]
async fn spoofed_user_id_is_refused_and_nothing_stored() {
    let stack = Stack::start(test_config()).await;
    let (a, b) = (stack.user("alice").await, stack.user("bob").await);
    let dm = stack.dm(&a, &b).await;
    let mut a1 = stack.client(&a).await;
    let r = a1.send_chat(dm, b.id, "spoof", "I am bob").await;
    let err = a1.until_error().await;
    assert!(err.header("message").unwrap().contains("userId"), "{err:?}");
    assert_eq!(err.header("receipt-id"), Some(r.as_str()));
    assert!(a1.wait_closed(WAIT).await);
    assert_eq!(stack.message_count(&a, dm).await, 0);
}

#[tokio::test]
async fn forbidden_destinations_are_errors() {
    let stack = Stack::start(test_config()).await;
    let (a, b, c) = (stack.user("alice").await, stack.user("bob").await, stack.user("carol").await);
    let dm = stack.dm(&a, &b).await;

    // Another user's queue.
    let mut a1 = stack.client(&a).await;
    a1.send_frame(
        &Frame::new(Command::Subscribe)
            .with_header("id", "x")
            .with_header("destination", format!("/user/{}/queue/messages", b.id)),
    )
    .await;
    assert!(a1.until_error().await.header("message").unwrap().contains("another user's queue"));
    assert!(a1.wait_closed(WAIT).await);

    // A broker destination subscription.
    let mut a1 = stack.client(&a).await;
    a1.send_frame(&Frame::new(Command::Subscribe).with_header("id", "x").with_header("destination", "/topic/x")).await;
    assert!(a1.until_error().await.header("message").unwrap().contains("forbidden"));

    // SEND to a broker destination.
    let mut a1 = stack.client(&a).await;
    a1.send_json("/topic/x", &json!({"text": "forged"}), None).await;
    assert!(a1.until_error().await.header("message").unwrap().contains("/app"));

    // SEND to a conversation the user is not a member of.
    let mut c1 = stack.client(&c).await;
    c1.send_chat(dm, c.id, "intruder", "hi").await;
    let err = c1.until_error().await;
    assert!(
        err.header("message").unwrap().contains("not found") || err.header("message").unwrap().contains("forbidden")
    );
    assert_eq!(stack.message_count(&a, dm).await, 0);

    // Duplicate subscription id.
    let mut a1 = stack.client(&a).await;
    a1.send_frame(
        &Frame::new(Command::Subscribe).with_header("id", "m").with_header("destination", "/user/queue/messages"),
    )
    .await;
    assert!(a1.until_error().await.header("message").unwrap().contains("already in use"));
}

#[tokio::test]
async fn resume_replays_missed_events_before_live_ones() {
    let stack = Stack::start(test_config()).await;
    let (a, b) = (stack.user("alice").await, stack.user("bob").await);
    let dm = stack.dm(&a, &b).await;
    let mut a1 = stack.client(&a).await;
    let r = a1.send_chat(dm, a.id, "first", "first").await;
    a1.until_receipt(&r).await;
    let last_seen = stack.last_seq(&a, dm).await;

    // Bob is offline for 50 messages.
    for i in 0..50 {
        let r = a1.send_chat(dm, a.id, &format!("offline-{i}"), &format!("offline {i}")).await;
        a1.until_receipt(&r).await;
    }
    // Live messages keep coming while Bob resumes.
    let mut a2 = stack.client(&a).await;
    let sender = tokio::spawn(async move {
        for i in 0..30 {
            let r = a2.send_chat(dm, a.id, &format!("live-{i}"), &format!("live {i}")).await;
            a2.until_receipt(&r).await;
        }
        a2
    });
    let mut b1 = stack.ws("/ws").await;
    b1.connect(&[("authorization", &format!("Bearer {}", b.token))]).await;
    let resume = format!("{dm}:{last_seen}");
    let mut got: Vec<Value> = b1
        .subscribe("m", "/user/queue/messages", &[("resume", &resume)])
        .await
        .iter()
        .filter_map(|f| message_body(f, "/user/queue/messages"))
        .collect();
    let _a2 = sender.await.unwrap();
    let last = stack.last_seq(&a, dm).await;
    while got.last().and_then(|m| m["seq"].as_i64()) != Some(last) {
        got.extend(b1.messages(1).await);
    }
    let seqs: Vec<i64> = got.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    let expected: Vec<i64> = (last_seen + 1..=last).collect();
    assert_eq!(seqs, expected, "gap or duplicate at the seam");
    assert_eq!(seqs.len(), 80);
    let texts: Vec<&str> = got.iter().take(50).map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(texts[0], "offline 0");
    assert_eq!(texts[49], "offline 49");
    assert!(b1.messages_within(Duration::from_millis(300)).await.is_empty());
}

#[tokio::test]
async fn heart_beats_are_negotiated_and_idle_connections_closed() {
    let cfg = chat_gateway::GatewayConfig {
        heartbeat_send_ms: 200,
        heartbeat_receive_ms: 200,
        heartbeat_min_ms: 100,
        heartbeat_grace_factor: 2,
        ..test_config()
    };
    let stack = Stack::start(cfg).await;
    let a = stack.user("alice").await;
    let mut c = stack.ws("/ws").await;
    let connected = c.connect(&[("authorization", &format!("Bearer {}", a.token)), ("heart-beat", "300,300")]).await;
    assert_eq!(connected.header("heart-beat"), Some("200,200"));

    // The client heart-beats every 200 ms: the connection stays up, the server beats too.
    for _ in 0..6 {
        c.send_raw(b"\n").await;
        assert!(c.next_frame_within(Duration::from_millis(200)).await.is_none());
        assert!(!c.closed);
    }
    assert!(c.heartbeats >= 2, "server heart-beats: {}", c.heartbeats);
    // Silence: closed after 2 × 300 ms with an ERROR.
    let start = std::time::Instant::now();
    let err = c.until_error().await;
    assert!(err.header("message").unwrap().contains("heart-beat"), "{err:?}");
    assert!(c.wait_closed(WAIT).await);
    assert!(start.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn oversize_frame_is_an_error() {
    let cfg = chat_gateway::GatewayConfig { max_frame_bytes: 4096, max_body_bytes: 2048, ..test_config() };
    let stack = Stack::start(cfg).await;
    let a = stack.user("alice").await;
    let mut c = stack.client(&a).await;
    let big = Frame::new(Command::Send).with_header("destination", "/app/chat").with_body("x".repeat(3000));
    c.send_frame(&big).await;
    let err = c.until_error().await;
    assert!(err.header("message").unwrap().contains("2048"), "{err:?}");
    assert!(c.wait_closed(WAIT).await);
}

#[tokio::test]
async fn frames_batched_and_split_across_websocket_messages() {
    let stack = Stack::start(test_config()).await;
    let (a, b) = (stack.user("alice").await, stack.user("bob").await);
    let dm = stack.dm(&a, &b).await;
    let mut b1 = stack.client(&b).await;
    let mut c = stack.ws("/ws").await;
    // CONNECT + SUBSCRIBE in one message.
    let batch = format!(
        "CONNECT\naccept-version:1.2\nhost:x\nauthorization:Bearer {}\n\n\0SUBSCRIBE\nid:n\ndestination:/user/queue/notifications/private\nreceipt:s\n\n\0",
        a.token
    );
    c.send_raw(batch.as_bytes()).await;
    assert_eq!(c.next_frame().await.command, Command::Connected);
    c.until_receipt("s").await;
    // A SEND split inside a multi-byte character, as binary messages.
    let body = json!({"messageId": "split", "conversationId": dm, "userId": a.id, "text": "añ€😀"}).to_string();
    let frame = format!("SEND\ndestination:/app/chat\nreceipt:r\ncontent-length:{}\n\n{}\0", body.len(), body);
    let bytes = frame.as_bytes();
    let cut = frame.find('😀').unwrap() + 2;
    for part in [&bytes[..10], &bytes[10..cut], &bytes[cut..]] {
        c.send_binary(part).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    c.until_receipt("r").await;
    let got = b1.events("MESSAGE", 1).await;
    assert_eq!(got[0]["text"], "añ€😀");
}

#[tokio::test]
async fn transactions_buffer_until_commit() {
    let stack = Stack::start(test_config()).await;
    let (a, b) = (stack.user("alice").await, stack.user("bob").await);
    let dm = stack.dm(&a, &b).await;
    let mut a1 = stack.client(&a).await;
    let send = |tx: &str, id: &str| {
        Frame::new(Command::Send)
            .with_header("destination", "/app/chat")
            .with_header("transaction", tx)
            .with_body(json!({"messageId": id, "conversationId": dm, "userId": a.id, "text": id}).to_string())
    };
    a1.send_frame(&Frame::new(Command::Begin).with_header("transaction", "t1")).await;
    a1.send_frame(&send("t1", "m1")).await;
    a1.send_frame(&send("t1", "m2")).await;
    a1.send_frame(&Frame::new(Command::Abort).with_header("transaction", "t1").with_header("receipt", "ab")).await;
    a1.until_receipt("ab").await;
    assert_eq!(stack.message_count(&a, dm).await, 0);

    a1.send_frame(&Frame::new(Command::Begin).with_header("transaction", "t2")).await;
    a1.send_frame(&send("t2", "m3")).await;
    a1.send_frame(&send("t2", "m4")).await;
    assert_eq!(stack.message_count(&a, dm).await, 0);
    a1.send_frame(&Frame::new(Command::Commit).with_header("transaction", "t2").with_header("receipt", "c")).await;
    a1.until_receipt("c").await;
    assert_eq!(stack.message_count(&a, dm).await, 2);

    a1.send_frame(&Frame::new(Command::Commit).with_header("transaction", "nope")).await;
    assert!(a1.until_error().await.header("message").unwrap().contains("unknown transaction"));
}

#[tokio::test]
async fn client_ack_mode_and_disconnect_receipt() {
    let stack = Stack::start(test_config()).await;
    let (a, b) = (stack.user("alice").await, stack.user("bob").await);
    let dm = stack.dm(&a, &b).await;
    let mut a1 = stack.client(&a).await;
    let mut b1 = stack.ws("/ws").await;
    b1.connect(&[("authorization", &format!("Bearer {}", b.token))]).await;
    b1.subscribe("m", "/user/queue/messages", &[("ack", "client-individual")]).await;
    let r = a1.send_chat(dm, a.id, "x", "x").await;
    a1.until_receipt(&r).await;
    let f = b1.next_frame().await;
    assert_eq!(f.command, Command::Message);
    let ack = f.header("ack").expect("ack header").to_owned();
    b1.send_frame(&Frame::new(Command::Ack).with_header("id", ack.as_str()).with_header("receipt", "k")).await;
    b1.until_receipt("k").await;
    b1.send_frame(&Frame::new(Command::Nack).with_header("id", ack.as_str()).with_header("receipt", "k2")).await;
    b1.until_receipt("k2").await;
    b1.send_frame(&Frame::new(Command::Disconnect).with_header("receipt", "bye")).await;
    b1.until_receipt("bye").await;
    assert!(b1.wait_closed(WAIT).await);
}

#[tokio::test]
async fn app_ack_updates_read_position() {
    let stack = Stack::start(test_config()).await;
    let (a, b) = (stack.user("alice").await, stack.user("bob").await);
    let dm = stack.dm(&a, &b).await;
    let mut a1 = stack.client(&a).await;
    let r = a1.send_chat(dm, a.id, "x", "x").await;
    a1.until_receipt(&r).await;
    let last = stack.last_seq(&a, dm).await;
    let mut b1 = stack.client(&b).await;
    b1.send_json("/app/ack", &json!({"conversationId": dm, "deliveredSeq": last, "seenSeq": last}), Some("k")).await;
    b1.until_receipt("k").await;
    let members = stack.service.members(b.id, dm).await.unwrap();
    let me = members.iter().find(|m| m.user_id == b.id).unwrap();
    assert_eq!((me.delivered_seq, me.seen_seq), (last, last));
}

#[tokio::test]
async fn slow_consumer_is_closed_while_others_keep_receiving() {
    // A queue the reading client keeps below even on a loaded machine, and that 1,200
    // deliveries of 12 KB (14 MB, beyond any socket buffer) overflow for the one that stops.
    let cfg = chat_gateway::GatewayConfig { outbound_queue_len: 64, ..test_config() };
    let stack = Stack::start(cfg).await;
    let (a, b, c) = (stack.user("alice").await, stack.user("bob").await, stack.user("carol").await);
    let ch = stack.channel(&a, "general", &[&b, &c]).await;
    let mut slow = stack.client(&b).await; // never reads again
    let mut fast = stack.client(&c).await;
    let (total, n_senders) = (1200, 6);
    let text = "z".repeat(12_000);
    let mut senders = Vec::new();
    for s in 0..n_senders {
        // Senders do not subscribe to deliveries: under the tiny queue of this test a busy
        // machine could otherwise make them slow consumers too.
        let mut sender = stack.ws("/ws").await;
        sender.connect(&[("authorization", &format!("Bearer {}", a.token))]).await;
        let text = text.clone();
        senders.push(tokio::spawn(async move {
            for i in 0..total / n_senders {
                let r = sender.send_chat(ch, a.id, &format!("s{s}-{i}"), &text).await;
                sender.until_receipt(&r).await;
            }
            sender
        }));
    }
    let reader = tokio::spawn(async move {
        let got = fast.events("MESSAGE", total).await;
        assert_eq!(got.len(), total);
        fast
    });
    for s in senders {
        s.await.unwrap();
    }
    reader.await.unwrap();
    // The slow reader was closed (with an ERROR if its socket took it) before it got them all.
    let mut received = 0;
    let mut error = None;
    while let Some(f) = slow.next_frame_within(Duration::from_secs(30)).await {
        if f.command == Command::Error {
            error = f.header("message").map(str::to_owned);
        }
        received += usize::from(message_body(&f, "/user/queue/messages").is_some_and(|m| m["eventType"] == "MESSAGE"));
    }
    assert!(slow.closed, "slow consumer still open");
    assert!(received < total, "the slow consumer got everything ({received})");
    if let Some(message) = error {
        assert!(message.contains("slow consumer"), "{message}");
    }
}

#[tokio::test]
async fn live_gaps_are_filled_from_the_store_and_duplicates_dropped() {
    let stack = Stack::start(test_config()).await;
    let (a, b) = (stack.user("alice").await, stack.user("bob").await);
    let dm = stack.dm(&a, &b).await;
    for i in 0..3 {
        let req = SendMessage {
            conversation_id: dm,
            client_msg_id: Some(format!("m{i}")),
            text: format!("m{i}"),
            kind: None,
            thread_root_id: None,
            attachment_ids: Vec::new(),
        };
        stack.service.send(a.id, req).await.unwrap();
    }
    let events = stack.service.events_after(a.id, dm, 0, 100).await.unwrap();
    let seq_of = |i: usize| events[events.len() - 3 + i].seq;
    let event = |i: usize| Arc::new(events[events.len() - 3 + i].clone());

    let (addr, streams, gateway) = stack.private_gateway().await;
    let mut b1 = Client::open(addr, "/ws", None).await.unwrap().0;
    b1.connect(&[("authorization", &format!("Bearer {}", b.token))]).await;
    b1.subscribe("m", "/user/queue/messages", &[]).await;
    let publish = |i: usize| {
        let streams = streams.clone();
        let node = gateway.node_id().to_owned();
        let delivery = GatewayDelivery::Event { event: event(i), recipients: vec![b.id] };
        async move { streams.publish(&node, vec![delivery]).await.unwrap() }
    };
    publish(0).await;
    let got = b1.events("MESSAGE", 1).await;
    assert_eq!(got[0]["seq"].as_i64(), Some(seq_of(0)));
    // The next live event skips one: the gateway fetches it from the store first.
    publish(2).await;
    let got = b1.events("MESSAGE", 2).await;
    let seqs: Vec<i64> = got.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, vec![seq_of(1), seq_of(2)]);
    // Re-deliveries are dropped.
    publish(1).await;
    publish(2).await;
    assert!(b1.events_within("MESSAGE", Duration::from_millis(300)).await.is_empty());
}

#[tokio::test]
async fn graceful_shutdown_closes_sessions() {
    let stack = Stack::start(test_config()).await;
    let a = stack.user("alice").await;
    let mut a1 = stack.client(&a).await;
    stack.gateway.shutdown().await;
    assert!(a1.wait_closed(WAIT).await);
    assert_eq!(stack.gateway.session_count(), 0);
    assert!(Client::open(stack.addr, "/ws", None).await.is_err());
}

#[tokio::test]
async fn send_rate_and_sessions_per_user_are_limited() {
    let cfg =
        // The burst covers the two SUBSCRIBEs of `client` and two SENDs: every frame counts.
        chat_gateway::GatewayConfig { send_rate_per_sec: 1, send_burst: 4, max_sessions_per_user: 2, ..test_config() };
    let stack = Stack::start(cfg).await;
    let (a, b) = (stack.user("alice").await, stack.user("bob").await);
    let dm = stack.dm(&a, &b).await;
    let mut a1 = stack.client(&a).await;
    for i in 0..2 {
        let r = a1.send_chat(dm, a.id, &format!("m{i}"), "hi").await;
        a1.until_receipt(&r).await;
    }
    a1.send_chat(dm, a.id, "m3", "hi").await;
    assert!(a1.until_error().await.header("message").unwrap().contains("send_rate_per_sec = 1"));
    assert!(a1.wait_closed(WAIT).await);
    assert_eq!(stack.message_count(&a, dm).await, 2);

    let _b1 = stack.client(&b).await;
    let _b2 = stack.client(&b).await;
    let mut b3 = stack.ws("/ws").await;
    let f = b3.connect_raw(&[("authorization", &format!("Bearer {}", b.token))]).await;
    assert_eq!(f.command, Command::Error);
    assert!(f.header("message").unwrap().contains("max_sessions_per_user"));
}
