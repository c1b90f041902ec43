//! A `chat_gateway::Gateway` in front of a core it reaches only over gRPC (`GrpcCore`,
//! `GrpcRegistry`): STOMP clients connect, send and receive as with the in-process core;
//! refusals become the same STOMP ERRORs; many sends share one stream; an unreachable core
//! fails sends with a clear `Unavailable` until it is back.

mod remote;

use std::time::Duration;

use chat_core::service::SendMessage;
use chat_domain::{DomainError, UserId};
use chat_gateway::GatewayCore;
use chat_stomp::Command;
use remote::stomp::body;
use remote::{Client, Stack, WAIT};

/// A send request for `conv`.
fn send_req(conv: chat_domain::ConversationId, text: &str, key: &str) -> SendMessage {
    SendMessage {
        conversation_id: conv,
        client_msg_id: Some(key.into()),
        text: text.into(),
        kind: None,
        thread_root_id: None,
        attachment_ids: Vec::new(),
    }
}

/// Polls `check` until it holds (at most [`WAIT`]).
async fn eventually<F: AsyncFnMut() -> bool>(mut check: F) -> bool {
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn stomp_send_is_receipted_after_commit_and_delivered_through_the_remote_core() {
    let s = Stack::start().await;
    let (alice, bob) = (s.user("alice").await, s.user("bob").await);
    let conv = s.channel(&alice, "general", &[&bob]).await;
    let mut a = s.client(&alice).await;
    let mut b = s.client(&bob).await;

    // Registered in the core's registry through ConnectionManager, under this gateway node.
    let on_node = s.pipeline.registry().connections_of_gateway(s.gateway.node_id()).await.expect("registry");
    let mut users: Vec<UserId> = on_node.iter().map(|c| c.user_id).collect();
    users.sort();
    let mut expected = vec![alice.id, bob.id];
    expected.sort();
    assert_eq!(users, expected);

    let receipt = a.send_chat(conv, alice.id, "m-1", "hello over grpc").await;
    let before = a.until_receipt(&receipt).await;
    // Committed before the RECEIPT: the store has it.
    let stored = s.service.events_after(alice.id, conv, 0, 50).await.expect("events");
    let stored_seq = stored.last().expect("an event").seq;
    // The ack offset (notification) carries the committed seq.
    a.unread(before);
    let ack = loop {
        let f = a.next_frame().await;
        if let Some(v) = body(&f, "/user/queue/notifications/private").filter(|v| v["status"] == "PERSISTED") {
            break v;
        }
    };
    assert_eq!(ack["ackedSeq"].as_i64(), Some(stored_seq), "{ack}");

    // Bob gets the MESSAGE, with the member ids the gateway read over gRPC.
    let got = b.events("MESSAGE", 1).await;
    assert_eq!(got[0]["text"], "hello over grpc");
    assert_eq!(got[0]["seq"].as_i64(), Some(stored_seq));
    assert_eq!(got[0]["conversationMemberIds"].as_array().map(Vec::len), Some(2), "{}", got[0]);

    // A retry of the same client message id is a DUPLICATE with the original seq.
    let receipt = a.send_chat(conv, alice.id, "m-1", "hello over grpc").await;
    let frames = a.until_receipt(&receipt).await;
    a.unread(frames);
    let dup = loop {
        let f = a.next_frame().await;
        if let Some(v) = body(&f, "/user/queue/notifications/private").filter(|v| v["status"] == "DUPLICATE") {
            break v;
        }
    };
    assert_eq!(dup["ackedSeq"].as_i64(), Some(stored_seq));

    // Disconnect: unregistered from the core's registry.
    drop(a);
    let registry = s.pipeline.registry();
    assert!(
        eventually(async || registry.connections_of_user(alice.id).await.expect("registry").is_empty()).await,
        "alice's connection was not unregistered"
    );
}

#[tokio::test]
async fn resume_replays_missed_events_read_over_grpc() {
    let s = Stack::start().await;
    let (alice, bob) = (s.user("alice").await, s.user("bob").await);
    let conv = s.channel(&alice, "general", &[&bob]).await;
    for i in 0..30 {
        s.service.send(alice.id, send_req(conv, &format!("offline {i}"), &format!("k-{i}"))).await.expect("send");
    }
    let last = s.service.events_after(bob.id, conv, 0, 500).await.expect("events").last().expect("some").seq;

    let mut b = Client::open(s.gateway_addr, "/ws").await;
    b.connect(&[("authorization", &format!("Bearer {}", bob.token))]).await;
    let resume = format!("{conv}:0");
    let frames = b.subscribe("m", "/user/queue/messages", &[("resume", &resume)]).await;
    let mut got: Vec<serde_json::Value> = frames.iter().filter_map(|f| body(f, "/user/queue/messages")).collect();
    while got.last().and_then(|v| v["seq"].as_i64()) != Some(last) {
        let f = b.next_frame().await;
        got.extend(body(&f, "/user/queue/messages"));
    }
    let seqs: Vec<i64> = got.iter().map(|v| v["seq"].as_i64().expect("seq")).collect();
    assert_eq!(seqs, (1..=last).collect::<Vec<_>>(), "replay from the core has a gap or duplicate");
    let texts: Vec<&str> =
        got.iter().filter(|v| v["eventType"] == "MESSAGE").map(|v| v["text"].as_str().unwrap()).collect();
    assert_eq!(texts.len(), 30);
    assert_eq!((texts[0], texts[29]), ("offline 0", "offline 29"));
}

#[tokio::test]
async fn refusals_become_the_same_stomp_errors_as_in_process() {
    let s = Stack::start().await;
    let (alice, bob, carol) = (s.user("alice").await, s.user("bob").await, s.user("carol").await);
    let conv = s.channel(&alice, "general", &[&bob]).await;

    // Not a member: the core's own reason.
    let in_process = s.service.send(carol.id, send_req(conv, "hi", "c-1")).await.expect_err("carol is no member");
    let mut c = s.client(&carol).await;
    c.send_chat(conv, carol.id, "c-1", "hi").await;
    let err = c.until_error().await;
    assert_eq!(err.header("message"), Some(in_process.to_string().as_str()), "{err:?}");

    // Validation: field and reason survive the round trip.
    let mut a = s.client(&alice).await;
    a.send_chat(conv, alice.id, "a-1", "   ").await;
    let err = a.until_error().await;
    assert_eq!(err.header("message"), Some("invalid text: must not be empty or only whitespace"), "{err:?}");

    // Through the trait: the domain error itself.
    let e = s.core.send(carol.id, send_req(conv, "hi", "c-2")).await.expect_err("refused");
    assert_eq!(e, in_process);
    let e = s.core.member_ids(carol.id, conv).await.expect_err("not a member");
    assert_eq!(e, s.service.members(carol.id, conv).await.expect_err("not a member"));

    // A bad token is refused at CONNECT.
    let mut x = Client::open(s.gateway_addr, "/ws").await;
    let f = x.connect_raw(&[("authorization", "Bearer not-a-jwt")]).await;
    assert_eq!(f.command, Command::Error);
    let message = f.header("message").expect("message");
    assert!(message.starts_with("authentication failed - "), "{message}");
    let e = s.core.verify_token("not-a-jwt").await.expect_err("invalid");
    assert!(matches!(e, DomainError::Unauthenticated(_)), "{e:?}");
    // A service token is not a user token.
    let service = s.auth.client_credentials(remote::CLIENT_ID, remote::CLIENT_SECRET, None).await.expect("cc");
    let e = s.core.verify_token(&service.access_token).await.expect_err("service token");
    assert!(matches!(e, DomainError::Unauthenticated(ref m) if m.contains("service")), "{e:?}");
    assert_eq!(s.core.verify_token(&alice.token).await.expect("valid").user_id, alice.id);
}

#[tokio::test]
async fn many_concurrent_sends_over_the_one_stream_are_answered_in_order_per_conversation() {
    let s = Stack::start().await;
    let (alice, bob) = (s.user("alice").await, s.user("bob").await);
    let convs = [
        s.channel(&alice, "one", &[&bob]).await,
        s.channel(&alice, "two", &[&bob]).await,
        s.channel(&alice, "three", &[&bob]).await,
    ];
    // 240 sends issued in order without waiting; all in flight together on the stream.
    let sends = (0..240).map(|i| {
        let conv = convs[i % convs.len()];
        let core = s.core.clone();
        let user = if i % 2 == 0 { alice.id } else { bob.id };
        async move { (i, conv, core.send(user, send_req(conv, &format!("n {i}"), &format!("k-{i}"))).await) }
    });
    // Poll each once, in order: each enqueues its request (the queue has room for all), so
    // the stream carries them in issue order; then wait for all. (Unconstrained: tokio's
    // cooperative budget would otherwise make later first polls yield and enqueue later.)
    let mut sends: Vec<_> = sends.map(|f| Box::pin(tokio::task::unconstrained(f))).collect();
    for send in &mut sends {
        assert!(futures::poll!(send.as_mut()).is_pending());
    }
    let results = futures::future::join_all(sends).await;
    for conv in convs {
        let seqs: Vec<i64> = results
            .iter()
            .filter(|(_, c, _)| *c == conv)
            .map(|(i, _, r)| r.as_ref().unwrap_or_else(|e| panic!("send {i}: {e}")).message().server_seq)
            .collect();
        assert_eq!(seqs.len(), 80);
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "seqs out of request order: {seqs:?}");
        let stored = s.service.events_after(alice.id, conv, 0, 500).await.expect("events");
        let stored: Vec<i64> =
            stored.iter().filter(|e| e.kind() == chat_domain::EventKind::Message).map(|e| e.seq).collect();
        assert_eq!(stored, seqs, "stored messages differ from the answers");
    }

    // And through STOMP: 8 clients sending concurrently, every send receipted.
    let mut tasks = Vec::new();
    for n in 0..8 {
        let user = if n % 2 == 0 { alice.clone() } else { bob.clone() };
        let mut c = s.client(&user).await;
        let conv = convs[n % convs.len()];
        tasks.push(tokio::spawn(async move {
            for i in 0..15 {
                let r = c.send_chat(conv, user.id, &format!("stomp-{n}-{i}"), &format!("stomp {n} {i}")).await;
                c.until_receipt(&r).await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("client task");
    }
}
