//! Authorization matrix over REST: non-members of private channels get 404 (invisible),
//! of public channels 403; authors alone edit; nobody acts as another user; service
//! principals are refused on user endpoints. Each refusal leaves the database unchanged.

mod common;

use common::{TestApp, TestUser, assert_problem, spawn_app};
use reqwest::{Method, Response};
use serde_json::{Value, json};
use uuid::Uuid;

#[derive(Clone, Copy, Debug)]
enum Action {
    Read,
    Send,
    React,
    Pin,
    Members,
}

async fn attempt(app: &TestApp, who: &TestUser, action: Action, conv: Uuid, msg: &str) -> Response {
    match action {
        Action::Read => app.get(&format!("/api/v1/conversations/{conv}/messages"), &who.token).await,
        Action::Send => {
            app.post(&format!("/api/v1/conversations/{conv}/messages"), &who.token, json!({"text": "x"})).await
        }
        Action::React => app
            .req(Method::PUT, &format!("/api/v1/messages/{msg}/reactions/%F0%9F%91%8D"), &who.token)
            .send()
            .await
            .unwrap(),
        Action::Pin => app.req(Method::PUT, &format!("/api/v1/messages/{msg}/pin"), &who.token).send().await.unwrap(),
        Action::Members => app.get(&format!("/api/v1/conversations/{conv}/members"), &who.token).await,
    }
}

/// An outsider tries `action` on a channel of `owner`: the status is `expected` and nothing
/// is written.
async fn outsider_case(action: Action, private: bool, expected: u16) {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    let outsider = app.user("outsider").await;
    let conv = app.channel(&owner, "room", private).await;
    let msg = app.say(&owner, conv, "secret").await;
    let msg_id = msg["messageId"].as_str().unwrap();
    let events_before = app.events(conv).await;
    let res = attempt(&app, &outsider, action, conv, msg_id).await;
    assert_problem(res, expected).await;
    assert_eq!(app.events(conv).await, events_before, "no event appended");
    assert_eq!(app.messages(conv).await.len(), 1, "no message stored");
}

#[tokio::test]
async fn non_member_cannot_read_messages_of_private_channel() {
    outsider_case(Action::Read, true, 404).await;
}

#[tokio::test]
async fn non_member_cannot_send_to_private_channel() {
    outsider_case(Action::Send, true, 404).await;
}

#[tokio::test]
async fn non_member_cannot_react_in_private_channel() {
    outsider_case(Action::React, true, 404).await;
}

#[tokio::test]
async fn non_member_cannot_pin_in_private_channel() {
    outsider_case(Action::Pin, true, 404).await;
}

#[tokio::test]
async fn non_member_cannot_list_members_of_private_channel() {
    outsider_case(Action::Members, true, 404).await;
}

#[tokio::test]
async fn non_member_cannot_read_messages_of_public_channel() {
    outsider_case(Action::Read, false, 403).await;
}

#[tokio::test]
async fn non_member_cannot_send_to_public_channel() {
    outsider_case(Action::Send, false, 403).await;
}

#[tokio::test]
async fn non_member_cannot_react_in_public_channel() {
    outsider_case(Action::React, false, 403).await;
}

#[tokio::test]
async fn non_member_cannot_pin_in_public_channel() {
    outsider_case(Action::Pin, false, 403).await;
}

#[tokio::test]
async fn non_member_cannot_list_members_of_public_channel() {
    outsider_case(Action::Members, false, 403).await;
}

/// A channel of `owner` with `member` added and a message by `owner`.
async fn shared_channel(app: &TestApp, owner: &TestUser, member: &TestUser) -> (Uuid, String) {
    let conv = app.channel(owner, "team", true).await;
    let res =
        app.post(&format!("/api/v1/conversations/{conv}/members"), &owner.token, json!({"userId": member.id})).await;
    assert_eq!(res.status(), 201);
    let msg = app.say(owner, conv, "original").await;
    (conv, msg["messageId"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn member_cannot_edit_another_members_message() {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let (conv, msg) = shared_channel(&app, &owner, &member).await;
    let before = app.events(conv).await;
    let res = app
        .send_json(Method::PATCH, &format!("/api/v1/messages/{msg}"), &member.token, json!({"text": "hacked"}))
        .await;
    assert_problem(res, 403).await;
    assert_eq!(app.events(conv).await, before);
    assert_eq!(app.messages(conv).await[0].text, "original");
}

#[tokio::test]
async fn member_cannot_delete_another_members_message() {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let (conv, msg) = shared_channel(&app, &owner, &member).await;
    let before = app.events(conv).await;
    let res = app.req(Method::DELETE, &format!("/api/v1/messages/{msg}"), &member.token).send().await.unwrap();
    assert_problem(res, 403).await;
    assert_eq!(app.events(conv).await, before);
    assert!(!app.messages(conv).await[0].deleted);
}

#[tokio::test]
async fn body_field_naming_another_user_is_rejected() {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let (conv, _) = shared_channel(&app, &owner, &member).await;
    let before = app.events(conv).await;
    let body = json!({"text": "as owner", "userId": owner.id});
    let res = app.post(&format!("/api/v1/conversations/{conv}/messages"), &member.token, body).await;
    let problem = assert_problem(res, 422).await;
    assert_eq!(problem["field"], "userId");
    assert_eq!(app.events(conv).await, before);
}

#[tokio::test]
async fn actor_is_always_the_token_subject() {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let (conv, _) = shared_channel(&app, &owner, &member).await;
    let sent = app.say(&member, conv, "mine").await;
    assert_eq!(sent["userId"], member.id.to_string());
    let stored = app.messages(conv).await;
    assert_eq!(stored.last().unwrap().user_id.uuid(), member.id);
    // A member cannot remove another member (only owners can).
    let before = app.events(conv).await;
    let res = app
        .req(Method::DELETE, &format!("/api/v1/conversations/{conv}/members/{}", owner.id), &member.token)
        .send()
        .await
        .unwrap();
    assert_problem(res, 403).await;
    assert_eq!(app.events(conv).await, before);
}

#[tokio::test]
async fn service_token_is_refused_on_user_endpoints() {
    let app = spawn_app().await;
    app.auth
        .create_client(&chat_auth::ClientSpec {
            client_id: "svc".into(),
            client_secret: "svc-secret".into(),
            scopes: vec!["internal".into()],
        })
        .await
        .unwrap();
    let res = app
        .client
        .post(app.url("/oauth2/token"))
        .basic_auth("svc", Some("svc-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let tok: Value = res.json().await.unwrap();
    let token = tok["access_token"].as_str().unwrap();
    for path in ["/api/v1/users/me", "/api/v1/conversations"] {
        assert_problem(app.get(path, token).await, 403).await;
    }
    let res = app.post("/api/v1/conversations", token, json!({"type": "CHANNEL", "name": "svc"})).await;
    assert_problem(res, 403).await;
}
