//! The `MessageService` and `ConnectionManager` extensions a remote gateway uses
//! (`GetEventsAfter`, `GetConversationMemberIds`, `UpdateReadPosition`,
//! `GetConnectionsByUsers`) and the send response's `event` and `message_json`, over a real
//! server.

mod common;

use std::time::Duration;

use chat_grpc::pb::connection::v1::{Connection, GetConnectionsByUsersRequest, RegisterConnectionRequest};
use chat_grpc::pb::message::v1::{
    AckOffset, GetConversationMemberIdsRequest, GetEventsAfterRequest, UpdateReadPositionRequest,
};
use common::{Stack, WAIT, authed, create_req};
use futures::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

fn events_req(conv: chat_domain::ConversationId, user: &str, after_seq: i64, limit: i64) -> GetEventsAfterRequest {
    GetEventsAfterRequest { conversation_id: conv.to_string(), user_id: user.into(), after_seq, limit }
}

#[tokio::test]
async fn send_responses_carry_the_event_and_the_full_message() {
    let s = Stack::start().await;
    let alice = s.user("alice").await;
    let conv = s.channel_with(&alice, &[]).await;
    let out = s.msg_client().create_message(authed(&alice.token, create_req(conv, "hi @alice", Some("k-1")))).await;
    let out = out.expect("create").into_inner();
    let event = out.event.expect("PERSISTED carries the event");
    let m = out.message.expect("message");
    assert_eq!((event.r#type.as_str(), event.seq), ("MESSAGE", m.server_seq));
    assert_eq!(event.actor_id, alice.id.to_string());
    let payload: serde_json::Value = serde_json::from_str(&event.payload_json).expect("payload json");
    assert_eq!(payload["message"]["text"], "hi @alice");
    assert!(payload.get("type").is_none(), "the type tag is the event's: {payload}");
    let full: serde_json::Value = serde_json::from_str(&out.message_json).expect("message json");
    assert_eq!(full["messageId"], m.message_id);
    assert_eq!(full["mentions"]["userIds"][0], alice.id.to_string());
    assert_eq!(full["versionCount"], 0);

    let again = s.msg_client().create_message(authed(&alice.token, create_req(conv, "hi @alice", Some("k-1")))).await;
    let again = again.expect("retry").into_inner();
    assert!(again.event.is_none(), "a DUPLICATE has no new event");
    assert_eq!(again.message_json, out.message_json);

    let mut bad = create_req(conv, "with a file", None);
    bad.attachment_ids = vec!["not-a-uuid".into()];
    let err = s.msg_client().create_message(authed(&alice.token, bad)).await.expect_err("bad attachment id");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("attachment_ids"), "{}", err.message());
}

#[tokio::test]
async fn get_events_after_pages_the_log_for_members_only() {
    let s = Stack::start().await;
    let (alice, bob, carol) = (s.user("alice").await, s.user("bob").await, s.user("carol").await);
    let conv = s.channel_with(&alice, &[&bob]).await;
    for i in 0..5 {
        let req = create_req(conv, &format!("m{i}"), None);
        s.msg_client().create_message(authed(&alice.token, req)).await.expect("send");
    }
    let all = s.msg_client().get_events_after(authed(&bob.token, events_req(conv, "", 0, 0))).await;
    let all = all.expect("events").into_inner();
    assert_eq!(all.max_page, 500);
    let seqs: Vec<i64> = all.events.iter().map(|e| e.seq).collect();
    let last = *seqs.last().expect("some");
    assert_eq!(seqs, (1..=last).collect::<Vec<_>>());
    assert_eq!(all.events.iter().filter(|e| e.r#type == "MESSAGE").count(), 5);

    // A page after a seq; a service acting for bob sees the same.
    let token = s.service_token().await;
    let page =
        s.msg_client().get_events_after(authed(&token, events_req(conv, &bob.id.to_string(), last - 3, 2))).await;
    let page: Vec<i64> = page.expect("page").into_inner().events.iter().map(|e| e.seq).collect();
    assert_eq!(page, [last - 2, last - 1]);

    let err = s.msg_client().get_events_after(authed(&carol.token, events_req(conv, "", 0, 0))).await;
    assert_eq!(err.expect_err("not a member").code(), Code::PermissionDenied);
    let err = s.msg_client().get_events_after(authed(&token, events_req(conv, "", 0, 0))).await;
    assert_eq!(err.expect_err("service without user").code(), Code::InvalidArgument);
    let err = s.msg_client().get_events_after(authed(&bob.token, events_req(conv, "", 0, 501))).await;
    let err = err.expect_err("over the page limit");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("limit"), "{}", err.message());
    let err = s.msg_client().get_events_after(authed(&bob.token, events_req(conv, "", -1, 10))).await;
    assert_eq!(err.expect_err("negative").code(), Code::InvalidArgument);
    let err = s.msg_client().get_events_after(authed(&alice.token, events_req(conv, &bob.id.to_string(), 0, 0))).await;
    assert_eq!(err.expect_err("as another user").code(), Code::PermissionDenied);
}

#[tokio::test]
async fn get_conversation_member_ids_for_members_only() {
    let s = Stack::start().await;
    let (alice, bob, carol) = (s.user("alice").await, s.user("bob").await, s.user("carol").await);
    let conv = s.channel_with(&alice, &[&bob]).await;
    let req = |user: &str| GetConversationMemberIdsRequest { conversation_id: conv.to_string(), user_id: user.into() };
    let out = s.msg_client().get_conversation_member_ids(authed(&bob.token, req(""))).await.expect("members");
    let mut ids = out.into_inner().user_ids;
    ids.sort();
    let mut expected = vec![alice.id.to_string(), bob.id.to_string()];
    expected.sort();
    assert_eq!(ids, expected);
    let token = s.service_token().await;
    let out = s.msg_client().get_conversation_member_ids(authed(&token, req(&alice.id.to_string()))).await;
    assert_eq!(out.expect("as alice").into_inner().user_ids.len(), 2);
    let err = s.msg_client().get_conversation_member_ids(authed(&carol.token, req(""))).await;
    assert_eq!(err.expect_err("not a member").code(), Code::PermissionDenied);
    let bad = GetConversationMemberIdsRequest { conversation_id: "nope".into(), user_id: String::new() };
    let err = s.msg_client().get_conversation_member_ids(authed(&bob.token, bad)).await;
    assert_eq!(err.expect_err("bad id").code(), Code::InvalidArgument);
}

#[tokio::test]
async fn update_read_position_moves_positions_and_reaches_ack_streams() {
    let s = Stack::start().await;
    let (alice, bob) = (s.user("alice").await, s.user("bob").await);
    let conv = s.channel_with(&alice, &[&bob]).await;
    let mut last = 0;
    for i in 0..3 {
        let out = s.msg_client().create_message(authed(&alice.token, create_req(conv, &format!("m{i}"), None))).await;
        last = out.expect("send").into_inner().message.expect("m").server_seq;
    }
    // Alice listens on an ack stream.
    let (_tx, rx) = tokio::sync::mpsc::channel::<AckOffset>(1);
    let mut updates = s
        .msg_client()
        .stream_ack_offsets(authed(&alice.token, ReceiverStream::new(rx)))
        .await
        .expect("open")
        .into_inner();

    let req = |delivered: Option<i64>, seen: Option<i64>| UpdateReadPositionRequest {
        conversation_id: conv.to_string(),
        user_id: String::new(),
        delivered_seq: delivered,
        seen_seq: seen,
    };
    let out = s.msg_client().update_read_position(authed(&bob.token, req(Some(last - 1), None))).await;
    let out = out.expect("ack").into_inner();
    assert_eq!((out.delivered_seq, out.seen_seq, out.user_id.clone()), (last - 1, 0, bob.id.to_string()));
    let update = tokio::time::timeout(WAIT, updates.next()).await.expect("in time").expect("open").expect("ok");
    assert_eq!(
        (update.user_id.as_str(), update.acked_seq, update.status.as_str()),
        (out.user_id.as_str(), last - 1, "DELIVERED")
    );

    // Seen implies delivered; positions never go down; beyond the latest seq is clamped.
    let out = s.msg_client().update_read_position(authed(&bob.token, req(Some(1), Some(last + 10)))).await;
    let out = out.expect("ack").into_inner();
    assert_eq!((out.delivered_seq, out.seen_seq), (last, last));

    let err = s.msg_client().update_read_position(authed(&bob.token, req(None, None))).await;
    assert_eq!(err.expect_err("nothing to move").code(), Code::InvalidArgument);
    let err = s.msg_client().update_read_position(authed(&bob.token, req(Some(-1), None))).await;
    assert_eq!(err.expect_err("negative").code(), Code::InvalidArgument);
    let carol = s.user("carol").await;
    let err = s.msg_client().update_read_position(authed(&carol.token, req(Some(1), None))).await;
    assert_eq!(err.expect_err("not a member").code(), Code::PermissionDenied);
    let _ = tokio::time::timeout(Duration::from_millis(10), updates.next()).await;
}

#[tokio::test]
async fn get_connections_by_users_for_services_and_for_oneself() {
    let s = Stack::start().await;
    let (alice, bob) = (s.user("alice").await, s.user("bob").await);
    let token = s.service_token().await;
    for (id, user) in [("a-1", &alice), ("a-2", &alice), ("b-1", &bob)] {
        let req = RegisterConnectionRequest {
            connection: Some(Connection {
                connection_id: id.into(),
                gateway_node_id: "gw-1".into(),
                ..Default::default()
            }),
            user_id: user.id.to_string(),
        };
        s.conn_client().register_connection(authed(&token, req)).await.expect("register");
    }
    let req = |ids: &[&str]| GetConnectionsByUsersRequest { user_ids: ids.iter().map(|s| (*s).to_owned()).collect() };
    let (a, b) = (alice.id.to_string(), bob.id.to_string());
    let out = s.conn_client().get_connections_by_users(authed(&token, req(&[&a, &b, &a]))).await.expect("lookup");
    let ids: Vec<String> = out.into_inner().connections.into_iter().map(|c| c.connection_id).collect();
    assert_eq!(ids, ["a-1", "a-2", "b-1"]);
    let out = s.conn_client().get_connections_by_users(authed(&alice.token, req(&[&a]))).await.expect("own");
    assert_eq!(out.into_inner().connections.len(), 2);
    let err = s.conn_client().get_connections_by_users(authed(&alice.token, req(&[&a, &b]))).await;
    assert_eq!(err.expect_err("another user").code(), Code::PermissionDenied);
    let err = s.conn_client().get_connections_by_users(authed(&token, req(&["nope"]))).await;
    assert_eq!(err.expect_err("bad id").code(), Code::InvalidArgument);
    let many: Vec<String> = (0..10_001).map(|_| chat_domain::UserId::new().to_string()).collect();
    let many = GetConnectionsByUsersRequest { user_ids: many };
    let err = s.conn_client().get_connections_by_users(authed(&token, many)).await.expect_err("too many");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("10000"), "{}", err.message());
}
