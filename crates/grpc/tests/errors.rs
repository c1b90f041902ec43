//! Every status code of the gRPC API, one test each, over a real server.

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use chat_domain::{ConversationId, ConversationSettings, DomainError, Millis, UserId, WorkspaceId};
use chat_grpc::pb::connection::v1::{Connection as PbConnection, GetAllConnectionsRequest, RegisterConnectionRequest};
use chat_grpc::{GrpcConfig, domain_status};
use chat_pipeline::{Connection, ConnectionRegistry, PipelineError};
use common::{Stack, authed, create_req};
use tonic::Code;

#[tokio::test]
async fn unauthenticated_without_or_with_a_bad_token() {
    let s = Stack::start().await;
    let alice = s.user("alice").await;
    let conv = s.channel_with(&alice, &[]).await;
    let err = s.msg_client().create_message(create_req(conv, "x", None)).await.expect_err("no token");
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(err.message().contains("authorization"), "{}", err.message());
    let err = s.msg_client().create_message(authed("not-a-jwt", create_req(conv, "x", None))).await.expect_err("bad");
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(err.message().contains("malformed"), "{}", err.message());
    let mut basic = tonic::Request::new(create_req(conv, "x", None));
    basic.metadata_mut().insert("authorization", "Basic dXNlcjpwYXNz".parse().expect("ascii"));
    assert_eq!(s.msg_client().create_message(basic).await.expect_err("basic").code(), Code::Unauthenticated);
}

#[tokio::test]
async fn permission_denied_when_a_user_acts_as_another() {
    let s = Stack::start().await;
    let (alice, bob) = (s.user("alice").await, s.user("bob").await);
    let conv = s.channel_with(&alice, &[&bob]).await;
    let mut req = create_req(conv, "spoof", None);
    req.message.as_mut().expect("m").user_id = bob.id.to_string();
    let err = s.msg_client().create_message(authed(&alice.token, req)).await.expect_err("spoof");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(err.message().contains("user_id"), "{}", err.message());
}

#[tokio::test]
async fn invalid_argument_for_malformed_input() {
    let s = Stack::start().await;
    let alice = s.user("alice").await;
    let mut req = create_req(ConversationId::new(), "x", None);
    req.message.as_mut().expect("m").conversation_id = "not-a-uuid".into();
    let err = s.msg_client().create_message(authed(&alice.token, req)).await.expect_err("bad id");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("conversation_id"), "{}", err.message());
    let conv = s.channel_with(&alice, &[]).await;
    let long = "x".repeat(1_000_000);
    let err =
        s.msg_client().create_message(authed(&alice.token, create_req(conv, &long, None))).await.expect_err("long");
    assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());
}

#[tokio::test]
async fn not_found_for_an_unknown_conversation() {
    let s = Stack::start().await;
    let alice = s.user("alice").await;
    let req = create_req(ConversationId::new(), "x", None);
    let err = s.msg_client().create_message(authed(&alice.token, req)).await.expect_err("unknown");
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.message().contains("conversation"), "{}", err.message());
}

#[tokio::test]
async fn already_exists_for_another_users_connection_id() {
    let s = Stack::start().await;
    let (alice, bob) = (s.user("alice").await, s.user("bob").await);
    let conn = |u: UserId| PbConnection {
        connection_id: "shared-id".into(),
        user_id: u.to_string(),
        gateway_node_id: "gw".into(),
        ..Default::default()
    };
    // The node is live: a gateway (service credential) registered a connection on it.
    let mut gateway_conn = conn(alice.id);
    gateway_conn.connection_id = "gateway-registered".into();
    let req = RegisterConnectionRequest { connection: Some(gateway_conn), user_id: alice.id.to_string() };
    s.conn_client().register_connection(authed(&s.service_token().await, req)).await.expect("a gateway registers");
    let req = RegisterConnectionRequest { connection: Some(conn(alice.id)), user_id: String::new() };
    s.conn_client().register_connection(authed(&alice.token, req)).await.expect("alice registers");
    let req = RegisterConnectionRequest { connection: Some(conn(bob.id)), user_id: String::new() };
    let err = s.conn_client().register_connection(authed(&bob.token, req)).await.expect_err("taken");
    assert_eq!(err.code(), Code::AlreadyExists);
    assert_eq!(domain_status(DomainError::Conflict("x".into())).code(), Code::AlreadyExists);
}

#[tokio::test]
async fn resource_exhausted_in_slow_mode() {
    let s = Stack::start().await;
    let (owner, alice) = (s.user("owner").await, s.user("alice").await);
    let settings = ConversationSettings { slow_mode_seconds: 60, ..Default::default() };
    let conv = s.channel_with_settings(&owner, &[&alice], settings).await;
    s.msg_client().create_message(authed(&alice.token, create_req(conv, "one", None))).await.expect("first");
    let err =
        s.msg_client().create_message(authed(&alice.token, create_req(conv, "two", None))).await.expect_err("slow");
    assert_eq!(err.code(), Code::ResourceExhausted);
    let retry: u64 =
        err.metadata().get("retry-after-ms").expect("retry-after-ms").to_str().expect("ascii").parse().expect("n");
    assert!(retry > 0 && retry <= 60_000, "{retry}");
}

/// A registry whose backend always fails with `make()`.
struct Failing(fn() -> PipelineError);

#[async_trait]
impl ConnectionRegistry for Failing {
    async fn register(&self, _: Connection) -> chat_pipeline::Result<()> {
        Err((self.0)())
    }
    async fn unregister(&self, _: &str) -> chat_pipeline::Result<bool> {
        Err((self.0)())
    }
    async fn touch(&self, _: &str, _: Millis) -> chat_pipeline::Result<bool> {
        Err((self.0)())
    }
    async fn connections_of_user(&self, _: UserId) -> chat_pipeline::Result<Vec<Connection>> {
        Err((self.0)())
    }
    async fn connections_of_users(&self, _: &[UserId]) -> chat_pipeline::Result<Vec<Connection>> {
        Err((self.0)())
    }
    async fn connections_of_gateway(&self, _: &str) -> chat_pipeline::Result<Vec<Connection>> {
        Err((self.0)())
    }
    async fn all_connections(&self) -> chat_pipeline::Result<Vec<Connection>> {
        Err((self.0)())
    }
    async fn online_users(&self, _: Option<WorkspaceId>) -> chat_pipeline::Result<Vec<UserId>> {
        Err((self.0)())
    }
}

#[tokio::test]
async fn unavailable_when_the_registry_backend_is_down() {
    let failing = Arc::new(Failing(|| PipelineError::Unavailable("redis: connection refused".into())));
    let s = Stack::start_with(GrpcConfig::default(), Some(failing)).await;
    let svc = s.service_token().await;
    let err = s.conn_client().get_all_connections(authed(&svc, GetAllConnectionsRequest {})).await.expect_err("down");
    assert_eq!(err.code(), Code::Unavailable);
    assert!(err.message().contains("connection refused"), "{}", err.message());
}

#[tokio::test]
async fn internal_hides_the_detail() {
    let failing = Arc::new(Failing(|| PipelineError::Unexpected(anyhow::anyhow!("secret stack detail"))));
    let s = Stack::start_with(GrpcConfig::default(), Some(failing)).await;
    let svc = s.service_token().await;
    let err = s.conn_client().get_all_connections(authed(&svc, GetAllConnectionsRequest {})).await.expect_err("bug");
    assert_eq!(err.code(), Code::Internal);
    assert!(!err.message().contains("secret"), "{}", err.message());
}

#[tokio::test]
async fn out_of_range_for_an_oversized_request() {
    let cfg = GrpcConfig { max_message_bytes: 4096, ..GrpcConfig::default() };
    let s = Stack::start_with(cfg, None).await;
    let alice = s.user("alice").await;
    let conv = s.channel_with(&alice, &[]).await;
    let big = "y".repeat(10_000);
    let err = s.msg_client().create_message(authed(&alice.token, create_req(conv, &big, None))).await.expect_err("big");
    // tonic's decoder answers OUT_OF_RANGE (gRPC core would say RESOURCE_EXHAUSTED).
    assert_eq!(err.code(), Code::OutOfRange, "{}", err.message());
}

#[tokio::test]
async fn service_scope_is_enforced_when_configured() {
    let cfg = GrpcConfig { service_scope: Some("chat.act-as-user".into()), ..GrpcConfig::default() };
    let s = Stack::start_with(cfg, None).await;
    let svc = s.service_token().await; // granted only "internal"
    let err = s.conn_client().get_all_connections(authed(&svc, GetAllConnectionsRequest {})).await.expect_err("scope");
    assert_eq!(err.code(), Code::PermissionDenied);
}
