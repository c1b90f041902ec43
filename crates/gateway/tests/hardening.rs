//! Regression tests for findings of an adversarial test of the STOMP gateway: memory held by
//! transactions, a reader stalled on its outbound queue, half-applied COMMITs, ERROR frames
//! lost to a reset, resume positions beyond the conversation, escaped pre-CONNECT errors.

mod common;

use std::time::Duration;

use chat_stomp::{Command, Frame};
use common::{Client, Stack, WAIT, test_config};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

fn begin(tx: &str, receipt: Option<&str>) -> Frame {
    let f = Frame::new(Command::Begin).with_header("transaction", tx);
    match receipt {
        Some(r) => f.with_header("receipt", r),
        None => f,
    }
}

fn tx_send(tx: &str, body: String) -> Frame {
    Frame::new(Command::Send).with_header("destination", "/app/chat").with_header("transaction", tx).with_body(body)
}

fn error_message(f: &Frame) -> String {
    assert_eq!(f.command, Command::Error, "expected ERROR, got {f:?}");
    f.header("message").unwrap_or_default().to_owned()
}

#[tokio::test]
async fn transactions_are_capped_in_number_and_buffered_bytes() {
    let stack = Stack::start(test_config()).await;
    let (a, b) = (stack.user("alice").await, stack.user("bob").await);
    let dm = stack.dm(&a, &b).await;

    // At most 4 open transactions per session (default).
    let mut c = stack.client(&a).await;
    for t in 0..4 {
        c.send_frame(&begin(&format!("t{t}"), Some(&format!("b{t}")))).await;
        c.until_receipt(&format!("b{t}")).await;
    }
    c.send_frame(&begin("t4", None)).await;
    let m = error_message(&c.until_error().await);
    assert!(m.contains("max_transactions_per_session = 4"), "{m}");
    assert!(c.wait_closed(WAIT).await);

    // At most 256 KiB of buffered SEND bodies per session, over all its transactions; ABORT
    // (and COMMIT) give the budget back.
    let mut c = stack.client(&a).await;
    let body = |id: &str| {
        json!({"messageId": id, "conversationId": dm, "userId": a.id, "text": "x".repeat(60_000)}).to_string()
    };
    for round in 0..2 {
        c.send_frame(&begin("t", None)).await;
        for i in 0..4 {
            c.send_frame(&tx_send("t", body(&format!("r{round}-{i}")))).await;
        }
        c.send_frame(&Frame::new(Command::Abort).with_header("transaction", "t").with_header("receipt", "ab")).await;
        c.until_receipt("ab").await;
    }
    c.send_frame(&begin("t1", None)).await;
    c.send_frame(&begin("t2", Some("b"))).await;
    c.until_receipt("b").await;
    for i in 0..2 {
        c.send_frame(&tx_send("t1", body(&format!("a{i}")))).await;
        c.send_frame(&tx_send("t2", body(&format!("b{i}")))).await;
    }
    c.send_frame(&tx_send("t1", body("over"))).await;
    let m = error_message(&c.until_error().await);
    assert!(m.contains("max_transaction_bytes = 262144"), "{m}");
    assert!(c.wait_closed(WAIT).await);
    assert_eq!(stack.message_count(&a, dm).await, 0);
}

#[tokio::test]
async fn receipt_flood_without_reading_is_disconnected() {
    let cfg = chat_gateway::GatewayConfig { outbound_queue_len: 16, ..test_config() };
    let stack = Stack::start(cfg).await;
    let a = stack.user("alice").await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", stack.addr)).await.unwrap();
    let connect = format!("CONNECT\naccept-version:1.2\nhost:x\nauthorization:Bearer {}\n\n\0", a.token);
    ws.send(Message::text(connect)).await.unwrap();
    let first = tokio::time::timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap();
    assert!(first.to_text().unwrap().starts_with("CONNECTED"), "{first:?}");
    assert_eq!(stack.gateway.session_count(), 1);

    // Receipt-bearing frames (not SENDs) in big batches; the client never reads again, so
    // the socket buffers fill and then the outbound queue.
    let receipt = "r".repeat(200);
    let mut batch = String::new();
    for i in 0..200 {
        batch.push_str(&format!("UNSUBSCRIBE\nid:s{i}\nreceipt:{receipt}\n\n\0"));
    }
    let flood = tokio::spawn(async move {
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            match tokio::time::timeout(Duration::from_secs(2), ws.send(Message::text(batch.clone()))).await {
                Ok(Ok(())) => {}
                _ => break,
            }
        }
        ws
    });
    let start = std::time::Instant::now();
    while stack.gateway.session_count() > 0 && start.elapsed() < Duration::from_secs(25) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stack.gateway.session_count(), 0, "the non-reading client is still connected");
    drop(flood.await.unwrap());
}

#[tokio::test]
async fn every_client_frame_is_rate_limited_and_receipts_are_bounded() {
    let cfg = chat_gateway::GatewayConfig { send_rate_per_sec: 1, send_burst: 10, ..test_config() };
    let stack = Stack::start(cfg).await;
    let a = stack.user("alice").await;
    let mut c = stack.ws("/ws").await;
    c.connect(&[("authorization", &format!("Bearer {}", a.token))]).await;
    for i in 0..20 {
        c.send_frame(&Frame::new(Command::Unsubscribe).with_header("id", format!("s{i}").as_str())).await;
    }
    let m = error_message(&c.until_error().await);
    assert!(m.contains("rate limit") && m.contains("send_burst = 10"), "{m}");
    assert!(c.wait_closed(WAIT).await);

    let stack = Stack::start(test_config()).await;
    let a = stack.user("alice").await;
    let mut c = stack.client(&a).await;
    let long = "r".repeat(257);
    c.send_frame(&begin("t", Some(&"r".repeat(256)))).await;
    c.until_receipt(&"r".repeat(256)).await;
    c.send_frame(&Frame::new(Command::Abort).with_header("transaction", "t").with_header("receipt", long.as_str()))
        .await;
    let err = c.until_error().await;
    assert!(error_message(&err).contains("max_receipt_bytes = 256"), "{err:?}");
    assert!(err.header("receipt-id").is_none());
    assert!(c.wait_closed(WAIT).await);
}

#[tokio::test]
async fn transactional_sends_are_validated_when_buffered() {
    let stack = Stack::start(test_config()).await;
    let (a, b, c) = (stack.user("alice").await, stack.user("bob").await, stack.user("carol").await);
    let dm = stack.dm(&a, &b).await;
    let other = stack.dm(&b, &c).await;
    let good = |id: &str| json!({"messageId": id, "conversationId": dm, "userId": a.id, "text": id}).to_string();

    // BEGIN; SEND ok; SEND bad JSON -> ERROR at once, nothing stored (no COMMIT ever ran).
    let mut a1 = stack.client(&a).await;
    a1.send_frame(&begin("t1", None)).await;
    a1.send_frame(&tx_send("t1", good("m1"))).await;
    a1.send_frame(&tx_send("t1", "{bad json".into()).with_header("receipt", "bad")).await;
    let err = a1.until_error().await;
    assert!(error_message(&err).contains("invalid /app/chat body"), "{err:?}");
    assert_eq!(err.header("receipt-id"), Some("bad"));
    assert!(a1.wait_closed(WAIT).await);

    // A spoofed userId, and a conversation the user is not a member of: refused at SEND.
    let mut a1 = stack.client(&a).await;
    a1.send_frame(&begin("t1", None)).await;
    let spoofed = json!({"messageId": "s", "conversationId": dm, "userId": b.id, "text": "s"}).to_string();
    a1.send_frame(&tx_send("t1", spoofed)).await;
    assert!(error_message(&a1.until_error().await).contains("userId"));
    let mut a1 = stack.client(&a).await;
    a1.send_frame(&begin("t1", None)).await;
    let foreign = json!({"messageId": "f", "conversationId": other, "userId": a.id, "text": "f"}).to_string();
    a1.send_frame(&tx_send("t1", foreign)).await;
    a1.until_error().await;
    assert_eq!(stack.message_count(&a, dm).await, 0);
    assert_eq!(stack.message_count(&b, other).await, 0);

    // What only the service can refuse (here: text over its limit) does not drop the rest
    // of the COMMIT: every other message is stored and the ERROR lists the refused one.
    let mut a1 = stack.client(&a).await;
    a1.send_frame(&begin("t2", None)).await;
    a1.send_frame(&tx_send("t2", good("m1")).with_header("receipt", "s1")).await;
    let long = json!({"messageId": "m2", "conversationId": dm, "userId": a.id, "text": "y".repeat(20_000)});
    a1.send_frame(&tx_send("t2", long.to_string())).await;
    a1.send_frame(&tx_send("t2", good("m3")).with_header("receipt", "s3")).await;
    a1.send_frame(&Frame::new(Command::Commit).with_header("transaction", "t2").with_header("receipt", "c")).await;
    let mut receipts = Vec::new();
    let err = loop {
        let f = a1.next_frame().await;
        match f.command {
            Command::Receipt => receipts.push(f.header("receipt-id").unwrap().to_owned()),
            Command::Error => break f,
            _ => {}
        }
    };
    let m = error_message(&err);
    assert!(m.contains("1 of 3") && m.contains("#2") && m.contains("m2"), "{m}");
    assert_eq!(err.header("receipt-id"), Some("c"));
    assert_eq!(receipts, vec!["s1", "s3"]);
    assert_eq!(stack.message_count(&a, dm).await, 2);
}

/// Reads a raw WebSocket until the server's Close; returns the STOMP text received and the
/// close code.
async fn read_until_close(
    stream: &mut (impl futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin),
) -> (String, Option<CloseCode>) {
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => text.push_str(t.as_str()),
            Ok(Some(Ok(Message::Binary(b)))) => text.push_str(&String::from_utf8_lossy(&b)),
            Ok(Some(Ok(Message::Close(frame)))) => return (text, frame.map(|f| f.code)),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => panic!("connection failed before the Close ({e}); received {text:?}"),
            Ok(None) => panic!("connection ended without a Close; received {text:?}"),
            Err(_) => panic!("no Close within the wait; received {text:?}"),
        }
    }
}

#[tokio::test]
async fn error_and_close_code_reach_a_client_that_is_still_sending() {
    let stack = Stack::start(test_config()).await;
    let a = stack.user("alice").await;
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", stack.addr)).await.unwrap();
    let (mut sink, mut stream) = ws.split();
    let connect = format!("CONNECT\naccept-version:1.2\nhost:x\nauthorization:Bearer {}\n\n\0", a.token);
    sink.send(Message::text(connect)).await.unwrap();
    // A forbidden SEND, then more data without pause (heart-beat EOLs in 32 KB messages).
    let writer = tokio::spawn(async move {
        let _ = sink.send(Message::text("SEND\ndestination:/topic/x\n\n{}\0")).await;
        let filler = "\n".repeat(32 * 1024);
        for _ in 0..200 {
            if sink.send(Message::text(filler.clone())).await.is_err() {
                break;
            }
        }
    });
    let (text, code) = read_until_close(&mut stream).await;
    assert!(text.contains("CONNECTED") && text.contains("ERROR") && text.contains("/app destinations"), "{text}");
    assert_eq!(code, Some(CloseCode::Policy));
    writer.abort();
}

#[tokio::test]
async fn websocket_message_over_the_limit_gets_an_error_and_1009() {
    let stack = Stack::start(test_config()).await;
    let a = stack.user("alice").await;
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", stack.addr)).await.unwrap();
    let (mut sink, mut stream) = ws.split();
    let connect = format!("CONNECT\naccept-version:1.2\nhost:x\nauthorization:Bearer {}\n\n\0", a.token);
    sink.send(Message::text(connect)).await.unwrap();
    let writer = tokio::spawn(async move {
        let _ = sink.send(Message::binary(vec![b'x'; 300 * 1024])).await;
        sink
    });
    let (text, code) = read_until_close(&mut stream).await;
    assert!(text.contains("ERROR") && text.contains("max_ws_message_bytes"), "{text}");
    assert_eq!(code, Some(CloseCode::Size));
    writer.abort();

    // A STOMP frame over the limit (decoder): also 1009; DISCONNECT: 1000.
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", stack.addr)).await.unwrap();
    let (mut sink, mut stream) = ws.split();
    sink.send(Message::text(format!("CONNECT\naccept-version:1.2\nhost:x\npasscode:{}\n\n\0", a.token))).await.unwrap();
    sink.send(Message::text(format!("SEND\ndestination:/app/chat\n\n{}\0", "x".repeat(70_000)))).await.unwrap();
    let (text, code) = read_until_close(&mut stream).await;
    assert!(text.contains("ERROR"), "{text}");
    assert_eq!(code, Some(CloseCode::Size));

    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", stack.addr)).await.unwrap();
    let (mut sink, mut stream) = ws.split();
    sink.send(Message::text(format!("CONNECT\naccept-version:1.2\nhost:x\npasscode:{}\n\n\0", a.token))).await.unwrap();
    sink.send(Message::text("DISCONNECT\nreceipt:bye\n\n\0")).await.unwrap();
    let (text, code) = read_until_close(&mut stream).await;
    assert!(text.contains("RECEIPT"), "{text}");
    assert_eq!(code, Some(CloseCode::Normal));
}

#[tokio::test]
async fn resume_beyond_the_latest_seq_does_not_mute_the_conversation() {
    let stack = Stack::start(test_config()).await;
    let (a, b) = (stack.user("alice").await, stack.user("bob").await);
    let dm = stack.dm(&a, &b).await;
    let mut a1 = stack.client(&a).await;
    let r = a1.send_chat(dm, a.id, "m1", "one").await;
    // Routed before bob connects (else bob's untracked subscription gets it live).
    a1.until_receipt_and_own_copy(&r, "one").await;
    let last = stack.last_seq(&a, dm).await;

    for position in [i64::MAX, last + 5] {
        let mut b1 = stack.ws("/ws").await;
        b1.connect(&[("authorization", &format!("Bearer {}", b.token))]).await;
        let replayed = b1.subscribe("m", "/user/queue/messages", &[("resume", &format!("{dm}:{position}"))]).await;
        assert!(replayed.is_empty(), "{replayed:?}");
        let id = format!("after-{position}");
        let r = a1.send_chat(dm, a.id, &id, &id).await;
        a1.until_receipt(&r).await;
        let got = b1.events("MESSAGE", 1).await;
        assert_eq!(got[0]["text"], id.as_str());
    }

    // A position at the latest seq still replays nothing and delivers the next one once.
    let last = stack.last_seq(&a, dm).await;
    let mut b1 = stack.ws("/ws").await;
    b1.connect(&[("authorization", &format!("Bearer {}", b.token))]).await;
    assert!(b1.subscribe("m", "/user/queue/messages", &[("resume", &format!("{dm}:{last}"))]).await.is_empty());
    let before = last - 1;
    let replayed = b1.subscribe("m2", "/user/queue/messages", &[("resume", &format!("{dm}:{before}"))]).await;
    assert_eq!(replayed.len(), 1, "{replayed:?}");
}

#[tokio::test]
async fn errors_before_connected_have_nothing_to_unescape() {
    let stack = Stack::start(test_config()).await;
    for path in ["/ws?token=not-a-jwt", "/ws?token=a.b.c", "/ws"] {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{}{path}", stack.addr)).await.unwrap();
        let (mut sink, mut stream) = ws.split();
        sink.send(Message::text("CONNECT\naccept-version:1.2\nhost:x\n\n\0")).await.unwrap();
        let (text, code) = read_until_close(&mut stream).await;
        assert_eq!(code, Some(CloseCode::Policy));
        let message = text.lines().find_map(|l| l.strip_prefix("message:")).expect("message header").to_owned();
        assert!(message.starts_with("authentication"), "{message}");
        assert!(!message.contains('\\') && !message.contains(':'), "{message}");
    }
    let mut c: Client = stack.ws("/ws?token=not-a-jwt").await;
    let f = c.connect_raw(&[]).await;
    assert!(error_message(&f).starts_with("authentication failed - "), "{f:?}");
}
