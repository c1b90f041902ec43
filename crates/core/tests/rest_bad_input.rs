//! Bad input over REST: every case answers the right status with an RFC 9457 problem
//! (`application/problem+json`), and the database is unchanged.

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{TestApp, TestUser, assert_problem, spawn_app};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, Response};
use serde_json::{Value, json};
use uuid::Uuid;

/// An app with a user, a channel and one message.
async fn setup() -> (TestApp, TestUser, Uuid) {
    let app = spawn_app().await;
    let user = app.user("alice").await;
    let conv = app.channel(&user, "room", false).await;
    app.say(&user, conv, "first").await;
    (app, user, conv)
}

/// Asserts the channel still has exactly its one message and its events.
async fn assert_unchanged(app: &TestApp, conv: Uuid, events_before: usize) {
    assert_eq!(app.messages(conv).await.len(), 1, "messages unchanged");
    assert_eq!(app.events(conv).await.len(), events_before, "events unchanged");
}

async fn raw_send(app: &TestApp, user: &TestUser, conv: Uuid, content_type: &str, body: Vec<u8>) -> Response {
    app.req(Method::POST, &format!("/api/v1/conversations/{conv}/messages"), &user.token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn malformed_json_is_400() {
    let (app, user, conv) = setup().await;
    let n = app.events(conv).await.len();
    let res = raw_send(&app, &user, conv, "application/json", br#"{"text": "hi""#.to_vec()).await;
    let p = assert_problem(res, 400).await;
    assert!(p["detail"].as_str().unwrap().contains("JSON"), "{p}");
    assert_unchanged(&app, conv, n).await;
}

#[tokio::test]
async fn unknown_field_is_422_naming_it() {
    let (app, user, conv) = setup().await;
    let n = app.events(conv).await.len();
    let body = json!({"text": "hi", "colour": "red"});
    let res = app.post(&format!("/api/v1/conversations/{conv}/messages"), &user.token, body).await;
    let p = assert_problem(res, 422).await;
    assert_eq!(p["field"], "colour");
    assert_unchanged(&app, conv, n).await;
}

#[tokio::test]
async fn wrong_field_type_is_422_naming_it() {
    let (app, user, conv) = setup().await;
    let n = app.events(conv).await.len();
    let res = app.post(&format!("/api/v1/conversations/{conv}/messages"), &user.token, json!({"text": 5})).await;
    let p = assert_problem(res, 422).await;
    assert_eq!(p["field"], "text");
    assert_unchanged(&app, conv, n).await;
}

#[tokio::test]
async fn oversize_text_is_422_naming_text() {
    let (app, user, conv) = setup().await;
    let n = app.events(conv).await.len();
    let text = "x".repeat(16 * 1024 + 1);
    let res = app.post(&format!("/api/v1/conversations/{conv}/messages"), &user.token, json!({"text": text})).await;
    let p = assert_problem(res, 422).await;
    assert_eq!(p["field"], "text");
    assert_unchanged(&app, conv, n).await;
}

#[tokio::test]
async fn body_over_one_mebibyte_is_413() {
    let (app, user, conv) = setup().await;
    let n = app.events(conv).await.len();
    let body = serde_json::to_vec(&json!({"text": "y".repeat(2 * 1024 * 1024)})).unwrap();
    let res = raw_send(&app, &user, conv, "application/json", body).await;
    assert_problem(res, 413).await;
    assert_unchanged(&app, conv, n).await;
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let (app, user, conv) = setup().await;
    let n = app.events(conv).await.len();
    let res = raw_send(&app, &user, conv, "text/plain", br#"{"text": "hi"}"#.to_vec()).await;
    assert_problem(res, 415).await;
    assert_unchanged(&app, conv, n).await;
}

#[tokio::test]
async fn bad_uuid_in_path_is_400_naming_it() {
    let (app, user, conv) = setup().await;
    let n = app.events(conv).await.len();
    let res = app.post("/api/v1/conversations/not-a-uuid/messages", &user.token, json!({"text": "hi"})).await;
    let p = assert_problem(res, 400).await;
    assert_eq!(p["field"], "id");
    assert_unchanged(&app, conv, n).await;
}

#[tokio::test]
async fn bad_query_param_is_400_naming_it() {
    let (app, user, conv) = setup().await;
    let n = app.events(conv).await.len();
    let res = app.get(&format!("/api/v1/conversations/{conv}/messages?afterSeq=soon"), &user.token).await;
    let p = assert_problem(res, 400).await;
    assert_eq!(p["field"], "afterSeq");
    let res = app.get(&format!("/api/v1/conversations/{conv}/events?after=1"), &user.token).await;
    let p = assert_problem(res, 400).await;
    assert_eq!(p["field"], "after");
    assert_unchanged(&app, conv, n).await;
}

#[tokio::test]
async fn unknown_route_is_404_problem() {
    let (app, user, _) = setup().await;
    assert_problem(app.get("/api/v1/nope", &user.token).await, 404).await;
    assert_problem(app.get("/definitely/not/here", "").await, 404).await;
}

#[tokio::test]
async fn wrong_method_is_405_problem() {
    let (app, user, conv) = setup().await;
    let n = app.events(conv).await.len();
    let res =
        app.req(Method::PUT, &format!("/api/v1/conversations/{conv}/messages"), &user.token).send().await.unwrap();
    assert_problem(res, 405).await;
    assert_unchanged(&app, conv, n).await;
}

/// Sends with `token` and asserts a 401 problem with `WWW-Authenticate: Bearer`, nothing stored.
async fn assert_rejected_token(app: &TestApp, conv: Uuid, token: Option<&str>) {
    let n = app.events(conv).await.len();
    let mut req =
        app.client.post(app.url(&format!("/api/v1/conversations/{conv}/messages"))).json(&json!({"text": "x"}));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.headers().get("www-authenticate").and_then(|v| v.to_str().ok()), Some("Bearer"));
    assert_problem(res, 401).await;
    assert_unchanged(app, conv, n).await;
}

/// The (header, claims) of a JWT.
fn parts(token: &str) -> (Value, Value) {
    let mut it = token.split('.');
    let h = URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap();
    let c = URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap();
    (serde_json::from_slice(&h).unwrap(), serde_json::from_slice(&c).unwrap())
}

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn rs256_header(kid: &str) -> Header {
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some(kid.to_string());
    h
}

#[tokio::test]
async fn missing_token_is_401() {
    let (app, _, conv) = setup().await;
    assert_rejected_token(&app, conv, None).await;
    assert_rejected_token(&app, conv, Some("not.a.jwt")).await;
}

#[tokio::test]
async fn expired_token_is_401() {
    let (app, user, conv) = setup().await;
    let key = app.store.signing_key().await.unwrap().expect("signing key");
    let (header, mut claims) = parts(&user.token);
    claims["iat"] = json!(now_secs() - 7200);
    claims["exp"] = json!(now_secs() - 3600);
    if claims.get("nbf").is_some() {
        claims["nbf"] = json!(now_secs() - 7200);
    }
    let kid = header["kid"].as_str().unwrap_or(&key.kid);
    let enc = EncodingKey::from_rsa_pem(key.private_pem.as_bytes()).unwrap();
    let expired = jsonwebtoken::encode(&rs256_header(kid), &claims, &enc).unwrap();
    assert_rejected_token(&app, conv, Some(&expired)).await;
    // Sanity: the same claims re-signed unexpired are accepted, so only expiry differs.
    claims["exp"] = json!(now_secs() + 600);
    let fresh = jsonwebtoken::encode(&rs256_header(kid), &claims, &enc).unwrap();
    assert_eq!(app.get("/api/v1/users/me", &fresh).await.status(), 200);
}

#[tokio::test]
async fn token_signed_by_another_key_is_401() {
    let (app, user, conv) = setup().await;
    let other = spawn_app().await;
    let other_key = other.store.signing_key().await.unwrap().expect("other key");
    let (header, claims) = parts(&user.token);
    let kid = header["kid"].as_str().unwrap().to_string();
    let enc = EncodingKey::from_rsa_pem(other_key.private_pem.as_bytes()).unwrap();
    let forged = jsonwebtoken::encode(&rs256_header(&kid), &claims, &enc).unwrap();
    assert_rejected_token(&app, conv, Some(&forged)).await;
}

#[tokio::test]
async fn alg_none_token_is_401() {
    let (app, user, conv) = setup().await;
    let (mut header, claims) = parts(&user.token);
    header["alg"] = json!("none");
    let h = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap());
    let c = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    assert_rejected_token(&app, conv, Some(&format!("{h}.{c}."))).await;
}

#[tokio::test]
async fn hs256_token_signed_with_the_public_key_is_401() {
    use rsa::pkcs1::EncodeRsaPublicKey;
    use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey, LineEnding};
    let (app, user, conv) = setup().await;
    let key = app.store.signing_key().await.unwrap().expect("signing key");
    let public = rsa::PrivateKey::from_pkcs8_pem(&key.private_pem).unwrap().to_public_key();
    let spki = public.to_public_key_pem(LineEnding::LF).unwrap();
    let pkcs1 = public.to_pkcs1_pem(LineEnding::LF).unwrap();
    let (header, claims) = parts(&user.token);
    for pem in [spki, pkcs1] {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = header["kid"].as_str().map(str::to_string);
        let forged = jsonwebtoken::encode(&h, &claims, &EncodingKey::from_secret(pem.as_bytes()).unwrap()).unwrap();
        assert_rejected_token(&app, conv, Some(&forged)).await;
    }
}

#[tokio::test]
async fn slow_mode_is_429_with_retry_after() {
    let app = spawn_app().await;
    let user = app.user("alice").await;
    let settings = json!({"allowReactions": true, "allowPins": true, "allowThread": true, "slowModeSeconds": 60});
    let res = app
        .post("/api/v1/conversations", &user.token, json!({"type": "CHANNEL", "name": "slow", "settings": settings}))
        .await;
    assert_eq!(res.status(), 201);
    let conv: Uuid = res.json::<Value>().await.unwrap()["conversationId"].as_str().unwrap().parse().unwrap();
    // Owners are exempt from slow mode: a member joins and sends twice.
    let member = app.user("bob").await;
    assert_eq!(app.post(&format!("/api/v1/conversations/{conv}/join"), &member.token, json!({})).await.status(), 200);
    app.say(&member, conv, "first").await;
    let n = app.events(conv).await.len();
    let res =
        app.post(&format!("/api/v1/conversations/{conv}/messages"), &member.token, json!({"text": "again"})).await;
    let retry_after: u64 = res.headers().get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let p = assert_problem(res, 429).await;
    assert!(p["retryAfterMs"].as_u64().unwrap() > 0, "{p}");
    assert_unchanged(&app, conv, n).await;
}
