//! `auth.v1.AuthService` over a real server.

mod common;

use chat_grpc::pb::auth::v1::{HelloRequest, VerifyRequest};
use common::{Stack, authed};
use tonic::Code;

#[tokio::test]
async fn hello_is_open() {
    let s = Stack::start().await;
    let out = s.auth_client().hello(HelloRequest { name: "grpc".into() }).await.expect("hello").into_inner();
    assert_eq!(out.message, "Hello, grpc!");
    let out = s.auth_client().hello(HelloRequest::default()).await.expect("hello").into_inner();
    assert_eq!(out.message, "Hello, world!");
}

#[tokio::test]
async fn verify_valid_user_token() {
    let s = Stack::start().await;
    let alice = s.user("alice").await;
    let req = VerifyRequest { access_token: alice.token.clone() };
    let out = s.auth_client().verify_access_token(authed(&alice.token, req)).await.expect("verify").into_inner();
    assert!(out.valid);
    assert_eq!(out.user_id, alice.id.to_string());
    assert_eq!(out.workspace_id, chat_domain::WorkspaceId::DEFAULT.to_string());
    assert!(out.expires_at.is_some());
    assert!(out.reason.is_empty());
}

#[tokio::test]
async fn verify_invalid_tokens_answer_valid_false_not_an_error() {
    let s = Stack::start().await;
    let alice = s.user("alice").await;
    let service = s.service_token().await;
    let mut tampered = alice.token.clone();
    tampered.pop();
    tampered.push(if alice.token.ends_with('A') { 'B' } else { 'A' });
    for (token, why) in [
        ("garbage".to_owned(), "malformed"),
        (tampered, "signature"),
        (String::new(), "empty"),
        (service.clone(), "service credential"),
    ] {
        let out = s
            .auth_client()
            .verify_access_token(authed(&service, VerifyRequest { access_token: token }))
            .await
            .expect("verify answers")
            .into_inner();
        assert!(!out.valid, "{why}");
        assert!(out.user_id.is_empty(), "{why}");
        assert!(!out.reason.is_empty(), "{why}: a reason is given");
    }
}

#[tokio::test]
async fn verify_needs_a_caller_credential() {
    let s = Stack::start().await;
    let alice = s.user("alice").await;
    let err = s
        .auth_client()
        .verify_access_token(VerifyRequest { access_token: alice.token })
        .await
        .expect_err("no caller credential");
    assert_eq!(err.code(), Code::Unauthenticated);
}
