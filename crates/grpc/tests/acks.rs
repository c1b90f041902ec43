//! `message.v1.MessageService.StreamAckOffsets` over a real server.

mod common;

use std::time::Duration;

use chat_grpc::pb::message::v1::AckOffset;
use common::{Stack, TestUser, WAIT, authed, create_req};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Status, Streaming};

/// An open ack stream: the request sender and the response stream.
struct AckStream {
    tx: mpsc::Sender<AckOffset>,
    rx: Streaming<AckOffset>,
}

impl AckStream {
    async fn open(s: &Stack, token: &str) -> AckStream {
        let (tx, rx) = mpsc::channel(16);
        let rx = s
            .msg_client()
            .stream_ack_offsets(authed(token, ReceiverStream::new(rx)))
            .await
            .expect("open ack stream")
            .into_inner();
        AckStream { tx, rx }
    }

    async fn ack(&self, conv: chat_domain::ConversationId, seq: i64, status: &str) {
        let ack = AckOffset {
            conversation_id: conv.to_string(),
            acked_seq: seq,
            status: status.into(),
            client_msg_id: format!("ack-{seq}"),
            ..Default::default()
        };
        self.tx.send(ack).await.expect("send ack");
    }

    async fn next(&mut self) -> Result<AckOffset, Status> {
        tokio::time::timeout(WAIT, self.rx.next()).await.expect("an item in time").expect("stream open")
    }

    async fn nothing_within(&mut self, d: Duration) {
        if let Ok(item) = tokio::time::timeout(d, self.rx.next()).await {
            panic!("unexpected item: {item:?}");
        }
    }
}

/// Sends three messages; returns the last one's seq (the conversation's latest).
async fn send_three(s: &Stack, user: &TestUser, conv: chat_domain::ConversationId) -> i64 {
    let mut last = 0;
    for i in 0..3 {
        let mut client = s.msg_client();
        let out = client.create_message(authed(&user.token, create_req(conv, &format!("m{i}"), None))).await;
        last = out.expect("send").into_inner().message.expect("message").server_seq;
    }
    last
}

#[tokio::test]
async fn acks_are_echoed_and_forwarded_to_members_only() {
    let s = Stack::start().await;
    let (alice, bob, carol) = (s.user("alice").await, s.user("bob").await, s.user("carol").await);
    let conv = s.channel_with(&alice, &[&bob]).await;
    let latest = send_three(&s, &alice, conv).await;

    let mut a = AckStream::open(&s, &alice.token).await;
    let mut b = AckStream::open(&s, &bob.token).await;
    let mut c = AckStream::open(&s, &carol.token).await;

    a.ack(conv, 2, "SEEN").await;
    let echo = a.next().await.expect("echo");
    assert_eq!(echo.conversation_id, conv.to_string());
    assert_eq!(echo.user_id, alice.id.to_string());
    assert_eq!((echo.acked_seq, echo.status.as_str(), echo.client_msg_id.as_str()), (2, "SEEN", "ack-2"));
    assert!(echo.acked_at.is_some());

    let update = b.next().await.expect("update for a member");
    assert_eq!(
        (update.user_id.as_str(), update.acked_seq, update.status.as_str()),
        (alice.id.to_string().as_str(), 2, "SEEN")
    );
    c.nothing_within(Duration::from_millis(300)).await;

    // Positions are recorded (ChatService::ack) and clamped to the latest seq.
    b.ack(conv, latest + 100, "").await;
    let echo = b.next().await.expect("echo");
    assert_eq!((echo.acked_seq, echo.status.as_str()), (latest, "DELIVERED"));
    let member = s.store.member(conv, bob.id).await.expect("member").expect("is member");
    assert_eq!(member.delivered_seq, latest);
    let update = a.next().await.expect("alice sees bob's update");
    assert_eq!(update.user_id, bob.id.to_string());

    // Never lowered.
    a.ack(conv, 1, "read").await;
    let echo = a.next().await.expect("echo");
    assert_eq!((echo.acked_seq, echo.status.as_str()), (2, "SEEN"));
}

#[tokio::test]
async fn a_service_stream_acks_for_users_and_sees_all_updates() {
    let s = Stack::start().await;
    let (alice, bob) = (s.user("alice").await, s.user("bob").await);
    let conv = s.channel_with(&alice, &[&bob]).await;
    let latest = send_three(&s, &alice, conv).await;
    let svc = s.service_token().await;
    let mut gw = AckStream::open(&s, &svc).await;
    let mut b = AckStream::open(&s, &bob.token).await;

    b.ack(conv, 1, "DELIVERED").await;
    b.next().await.expect("echo");
    let seen_by_service = gw.next().await.expect("service sees the update");
    assert_eq!(seen_by_service.user_id, bob.id.to_string());

    let for_alice = AckOffset {
        conversation_id: conv.to_string(),
        user_id: alice.id.to_string(),
        acked_seq: latest,
        status: "SEEN".into(),
        ..Default::default()
    };
    gw.tx.send(for_alice).await.expect("send");
    let echo = gw.next().await.expect("echo");
    assert_eq!((echo.user_id.as_str(), echo.acked_seq), (alice.id.to_string().as_str(), latest));
    assert_eq!(b.next().await.expect("bob sees alice's update").user_id, alice.id.to_string());
}

#[tokio::test]
async fn a_refused_ack_ends_the_stream_with_its_code() {
    let s = Stack::start().await;
    let (alice, bob) = (s.user("alice").await, s.user("bob").await);
    let conv = s.channel_with(&alice, &[]).await;

    let mut a = AckStream::open(&s, &alice.token).await;
    a.ack(conv, 1, "SOMETIMES").await;
    assert_eq!(a.next().await.expect_err("bad status").code(), Code::InvalidArgument);

    let mut b = AckStream::open(&s, &bob.token).await;
    b.ack(conv, 1, "SEEN").await;
    let code = b.next().await.expect_err("not a member").code();
    assert!(code == Code::PermissionDenied || code == Code::NotFound, "{code:?}");

    let mut a = AckStream::open(&s, &alice.token).await;
    let spoof = AckOffset {
        conversation_id: conv.to_string(),
        user_id: bob.id.to_string(),
        acked_seq: 1,
        ..Default::default()
    };
    a.tx.send(spoof).await.expect("send");
    assert_eq!(a.next().await.expect_err("acting as another user").code(), Code::PermissionDenied);
}

#[tokio::test]
async fn shutdown_ends_open_ack_streams() {
    let s = Stack::start().await;
    let alice = s.user("alice").await;
    let mut a = AckStream::open(&s, &alice.token).await;
    s.stop.cancel();
    let err = a.next().await.expect_err("ended by shutdown");
    assert_eq!(err.code(), Code::Unavailable);
    tokio::time::timeout(WAIT, s.server).await.expect("server stops").expect("join").expect("clean stop");
}
