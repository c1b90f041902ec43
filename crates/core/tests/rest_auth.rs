//! Authentication endpoints: registration errors, login failures, JWKS, OpenID discovery
//! and the OAuth2 token endpoint (RFC 6749 success and error bodies).

mod common;

use common::{assert_problem, spawn_app};
use serde_json::{Value, json};

#[tokio::test]
async fn duplicate_username_is_409_and_stores_nothing() {
    let app = spawn_app().await;
    assert_eq!(app.register_raw("carol").await.status(), 201);
    assert_problem(app.register_raw("carol").await, 409).await;
    assert_eq!(app.user_count("carol").await, 1);
}

#[tokio::test]
async fn invalid_username_is_422_and_stores_nothing() {
    let app = spawn_app().await;
    let res = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .json(&json!({"username": "No Spaces!", "password": "long-enough-password"}))
        .send()
        .await
        .unwrap();
    let p = assert_problem(res, 422).await;
    assert_eq!(p["field"], "username");
    assert_eq!(app.user_count("").await, 0);
}

#[tokio::test]
async fn wrong_password_is_401_problem() {
    let app = spawn_app().await;
    app.user("dave").await;
    let res = app
        .client
        .post(app.url("/auth/login"))
        .json(&json!({"username": "dave", "password": "wrong"}))
        .send()
        .await
        .unwrap();
    assert_problem(res, 401).await;
}

#[tokio::test]
async fn jwks_and_openid_configuration_describe_the_signing_key() {
    let app = spawn_app().await;
    let user = app.user("erin").await;
    let jwks: Value = app.client.get(app.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    let header = user.token.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, header).unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "RS256");
    let keys = jwks["keys"].as_array().unwrap();
    assert!(keys.iter().any(|k| k["kid"] == header["kid"] && k["kty"] == "RSA"), "{jwks}");
    let oidc: Value =
        app.client.get(app.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert!(oidc["jwks_uri"].as_str().unwrap().ends_with("/.well-known/jwks.json"), "{oidc}");
    assert!(oidc["token_endpoint"].as_str().unwrap().ends_with("/oauth2/token"), "{oidc}");
}

#[tokio::test]
async fn password_and_refresh_grants_follow_rfc_6749() {
    let app = spawn_app().await;
    app.user("frank").await;
    let res = app
        .client
        .post(app.url("/oauth2/token"))
        .form(&[("grant_type", "password"), ("username", "frank"), ("password", "password-frank")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers().get("cache-control").unwrap(), "no-store");
    let tok: Value = res.json().await.unwrap();
    assert_eq!(tok["token_type"].as_str().unwrap().to_ascii_lowercase(), "bearer");
    assert!(tok["expires_in"].as_u64().unwrap() > 0);
    let access = tok["access_token"].as_str().unwrap();
    assert_eq!(app.get("/api/v1/users/me", access).await.status(), 200);
    let refresh = tok["refresh_token"].as_str().unwrap();
    let res = app
        .client
        .post(app.url("/oauth2/token"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = app
        .client
        .post(app.url("/oauth2/token"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"], "invalid_grant");
}

#[tokio::test]
async fn token_endpoint_errors_are_rfc_6749_json() {
    let app = spawn_app().await;
    let res = app.client.post(app.url("/oauth2/token")).form(&[("grant_type", "magic")]).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("content-type").unwrap().to_str().unwrap().starts_with("application/json"));
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"], "unsupported_grant_type");
    assert!(err["error_description"].is_string());

    let res = app.client.post(app.url("/oauth2/token")).json(&json!({"grant_type": "password"})).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_request");

    let res = app
        .client
        .post(app.url("/oauth2/token"))
        .basic_auth("nobody", Some("nothing"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_client");
}
