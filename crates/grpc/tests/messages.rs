//! `message.v1.MessageService`: `CreateMessage` and `StreamCreateMessages` over a real server.

mod common;

use std::time::Duration;

use chat_grpc::GrpcConfig;
use chat_grpc::pb::message::v1::{CreateMessageRequest, CreateMessageResponse, Message};
use common::{Stack, WAIT, authed, create_req};
use futures::StreamExt;
use tonic::Code;

#[tokio::test]
async fn create_message_answers_after_commit_and_is_idempotent() {
    let s = Stack::start().await;
    let (alice, bob) = (s.user("alice").await, s.user("bob").await);
    let conv = s.channel_with(&alice, &[&bob]).await;
    let mut c = s.msg_client();

    let out = c.create_message(authed(&alice.token, create_req(conv, "hello", Some("k-1")))).await.expect("create");
    let out = out.into_inner();
    assert!(out.success);
    let m = out.message.expect("message");
    assert_eq!(m.conversation_id, conv.to_string());
    assert_eq!(m.user_id, alice.id.to_string());
    assert_eq!((m.text.as_str(), m.r#type.as_str(), m.client_msg_id.as_str()), ("hello", "default", "k-1"));
    assert!(m.server_seq > 0 && m.created_at.is_some() && !m.edited && !m.deleted);
    let ack = out.ack_offset.expect("ack offset");
    assert_eq!((ack.acked_seq, ack.status.as_str(), ack.client_msg_id.as_str()), (m.server_seq, "PERSISTED", "k-1"));
    assert_eq!(ack.user_id, alice.id.to_string());

    // Committed: visible through the service.
    let stored = s.service.message(bob.id, m.message_id.parse().expect("uuid")).await.expect("stored");
    assert_eq!(stored.server_seq, m.server_seq);

    // Retry: the original, nothing new stored.
    let again = c.create_message(authed(&alice.token, create_req(conv, "hello", Some("k-1")))).await.expect("retry");
    let again = again.into_inner();
    assert_eq!(again.message.as_ref().expect("message").message_id, m.message_id);
    assert_eq!(again.ack_offset.expect("ack").status, "DUPLICATE");

    // Seed clients put their own id in message.message_id: used as the key.
    let seed_style = || CreateMessageRequest {
        message: Some(Message {
            message_id: "client-chosen-id".into(),
            conversation_id: conv.to_string(),
            user_id: alice.id.to_string(),
            text: "seed".into(),
            r#type: "text".into(),
            ..Default::default()
        }),
        client_msg_id: String::new(),
        attachment_ids: Vec::new(),
    };
    let first = c.create_message(authed(&alice.token, seed_style())).await.expect("seed style").into_inner();
    let second = c.create_message(authed(&alice.token, seed_style())).await.expect("seed retry").into_inner();
    assert_eq!(first.message.expect("m").server_seq, second.message.expect("m").server_seq);
    assert_eq!(second.ack_offset.expect("ack").status, "DUPLICATE");
}

#[tokio::test]
async fn a_service_acts_for_the_named_user() {
    let s = Stack::start().await;
    let alice = s.user("alice").await;
    let conv = s.channel_with(&alice, &[]).await;
    let svc = s.service_token().await;
    let mut req = create_req(conv, "via gateway", None);
    req.message.as_mut().expect("message").user_id = alice.id.to_string();
    let out = s.msg_client().create_message(authed(&svc, req)).await.expect("service send").into_inner();
    assert_eq!(out.message.expect("message").user_id, alice.id.to_string());

    let err = s
        .msg_client()
        .create_message(authed(&svc, create_req(conv, "whose?", None)))
        .await
        .expect_err("a service must name the user");
    assert_eq!(err.code(), Code::InvalidArgument);
}

/// Sends `reqs` on one stream and collects every response.
async fn stream_all(s: &Stack, token: &str, reqs: Vec<CreateMessageRequest>) -> Vec<CreateMessageResponse> {
    let n = reqs.len();
    let out = s
        .msg_client()
        .stream_create_messages(authed(token, tokio_stream::iter(reqs)))
        .await
        .expect("stream")
        .into_inner();
    let got: Vec<_> = tokio::time::timeout(WAIT * 3, out.collect::<Vec<_>>()).await.expect("stream completes");
    let got: Vec<_> = got.into_iter().map(|r| r.expect("response")).collect();
    assert_eq!(got.len(), n, "one response per request");
    got
}

#[tokio::test]
async fn stream_answers_in_request_order_with_increasing_seqs_and_idempotent_retries() {
    let s = Stack::start().await;
    let alice = s.user("alice").await;
    let conv = s.channel_with(&alice, &[]).await;
    let mut reqs: Vec<_> = (0..200).map(|i| create_req(conv, &format!("m{i}"), Some(&format!("k{i}")))).collect();
    reqs.insert(150, create_req(conv, "m10", Some("k10"))); // a retry inside the stream
    let got = stream_all(&s, &alice.token, reqs).await;

    let mut last = 0;
    for (i, r) in got.iter().enumerate() {
        assert!(r.success, "request {i}: {}", r.error_message);
        assert_eq!(r.request_index, i as i64, "responses in request order");
        let m = r.message.as_ref().expect("message");
        if i == 150 {
            assert_eq!(m.text, "m10");
            assert_eq!(r.ack_offset.as_ref().expect("ack").status, "DUPLICATE");
            assert_eq!(m.server_seq, got[10].message.as_ref().expect("m").server_seq, "the original seq");
            continue;
        }
        let want = if i < 150 { i } else { i - 1 };
        assert_eq!(m.text, format!("m{want}"));
        assert!(m.server_seq > last, "seq increases with request order");
        last = m.server_seq;
    }
}

#[tokio::test]
async fn a_refused_request_is_answered_in_place_and_the_stream_goes_on() {
    let s = Stack::start().await;
    let (alice, bob, carol) = (s.user("alice").await, s.user("bob").await, s.user("carol").await);
    let conv = s.channel_with(&alice, &[]).await;
    let bobs = s.channel_with(&bob, &[]).await; // alice is not a member
    let mut as_carol = create_req(conv, "spoof", None);
    as_carol.message.as_mut().expect("m").user_id = carol.id.to_string();
    let mut bad_conv = create_req(conv, "x", None);
    bad_conv.message.as_mut().expect("m").conversation_id = "not-a-uuid".into();
    let reqs = vec![
        create_req(conv, "one", None),
        bad_conv,
        create_req(bobs, "not mine", None),
        as_carol,
        create_req(conv, "   ", None),
        CreateMessageRequest::default(),
        create_req(conv, "two", None),
    ];
    let got = stream_all(&s, &alice.token, reqs).await;
    let codes: Vec<i32> = got.iter().map(|r| r.error_code).collect();
    assert!(got[0].success && got[6].success);
    assert_eq!(codes[1], Code::InvalidArgument as i32);
    assert!(codes[2] == Code::PermissionDenied as i32 || codes[2] == Code::NotFound as i32, "{codes:?}");
    assert_eq!(codes[3], Code::PermissionDenied as i32);
    assert_eq!(codes[4], Code::InvalidArgument as i32);
    assert_eq!(codes[5], Code::InvalidArgument as i32);
    for r in &got[1..6] {
        assert!(!r.success && !r.error_message.is_empty() && r.message.is_none());
    }
    assert!(got[6].message.as_ref().expect("m").server_seq > got[0].message.as_ref().expect("m").server_seq);
}

#[tokio::test]
async fn a_client_that_does_not_read_holds_the_server_back_without_deadlock() {
    let cfg = GrpcConfig { stream_window: 8, stream_buffer: 4, ..GrpcConfig::default() };
    let s = Stack::start_with(cfg, None).await;
    let alice = s.user("alice").await;
    let mut convs = Vec::new();
    for _ in 0..4 {
        convs.push(s.channel_with(&alice, &[]).await);
    }
    const N: usize = 2000;
    let reqs: Vec<_> =
        (0..N).map(|i| create_req(convs[i % convs.len()], &format!("m{i}"), Some(&format!("k{i}")))).collect();
    // A client with small HTTP/2 receive windows, so unread responses are not all absorbed by
    // the client's buffers.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", s.addr))
        .expect("uri")
        .initial_stream_window_size(Some(16 * 1024))
        .initial_connection_window_size(Some(16 * 1024))
        .connect()
        .await
        .expect("connect");
    let mut client = chat_grpc::pb::message::v1::message_service_client::MessageServiceClient::new(channel);
    let mut out = client
        .stream_create_messages(authed(&alice.token, tokio_stream::iter(reqs)))
        .await
        .expect("stream")
        .into_inner();

    // The client sends as fast as it can but reads nothing for a while.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut committed = 0;
    for conv in &convs {
        committed += s.store.events_after(*conv, 0, 10_000).await.expect("events").len();
    }
    committed -= convs.len(); // each channel's creation event
    eprintln!("committed while unread: {committed} of {N}");
    assert!(committed < 400, "the server stopped reading: {committed} of {N} committed while unread");

    // Then it reads everything: all answered, in request order, seqs increasing per conversation.
    let mut seen = 0usize;
    let mut last = vec![0; convs.len()];
    while let Some(r) = tokio::time::timeout(WAIT * 3, out.next()).await.expect("no deadlock") {
        let r = r.expect("response");
        assert!(r.success, "{}", r.error_message);
        assert_eq!(r.request_index, seen as i64);
        let seq = r.message.expect("m").server_seq;
        let c = seen % convs.len();
        assert!(seq > last[c]);
        last[c] = seq;
        seen += 1;
    }
    assert_eq!(seen, N);
}
