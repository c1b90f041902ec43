//! Shared flows of the integration tests, run against any `UserStore + AuthStore`.

#![allow(dead_code)]

use std::sync::Arc;

use chat_auth::{AuthConfig, Authenticator, ClientSpec, OAuthErrorCode, Subject};
use chat_domain::{DomainError, WorkspaceId};
use chat_storage::{AuthStore, UserStore};

/// The test configuration: tiny Argon2id parameters and one bootstrap client.
pub fn config() -> AuthConfig {
    AuthConfig {
        bootstrap_clients: vec![ClientSpec {
            client_id: "svc-bot".into(),
            client_secret: "bot-secret-123".into(),
            scopes: vec!["messages.write".into(), "users.read".into()],
        }],
        ..AuthConfig::for_tests()
    }
}

/// Anything that is both stores.
pub trait Stores: UserStore + AuthStore + 'static {}
impl<T: UserStore + AuthStore + 'static> Stores for T {}

pub async fn auth<S: Stores>(store: Arc<S>) -> Authenticator {
    Authenticator::new(config(), store.clone(), store).await.unwrap()
}

fn unauthenticated(e: DomainError) -> String {
    match e {
        DomainError::Unauthenticated(why) => why,
        other => panic!("expected Unauthenticated, got {other:?}"),
    }
}

pub async fn register_validates_and_detects_conflicts<S: Stores>(store: Arc<S>) {
    let a = auth(store).await;
    let ws = WorkspaceId::DEFAULT;
    let u = a.register(ws, "Alice.B", "password1", None).await.unwrap();
    assert_eq!(u.username, "alice.b");
    assert_eq!(u.display_name, "alice.b");
    assert_eq!(u.workspace_id, ws);
    let u2 = a.register(ws, "bob", "password1", Some("  Bob B ")).await.unwrap();
    assert_eq!(u2.display_name, "Bob B");
    assert!(matches!(a.register(ws, "ALICE.b", "password2", None).await, Err(DomainError::Conflict(_))));
    for bad in ["ab", "a b c", "ünï", &"x".repeat(33), "semi;colon", ""] {
        let e = a.register(ws, bad, "password1", None).await.unwrap_err();
        assert!(matches!(e, DomainError::Invalid { field: "username", .. }), "{bad:?}: {e:?}");
    }
    for bad in ["short", &"p".repeat(257)] {
        let e = a.register(ws, "carol", bad, None).await.unwrap_err();
        assert!(matches!(e, DomainError::Invalid { field: "password", .. }), "{e:?}");
    }
    assert!(a.register(ws, "carol", &"p".repeat(256), None).await.is_ok());
}

pub async fn login_and_no_user_enumeration<S: Stores>(store: Arc<S>) {
    let a = auth(store).await;
    let ws = WorkspaceId::DEFAULT;
    let u = a.register(ws, "dave", "hunter2hunter2", None).await.unwrap();
    let pair = a.login(ws, "DAVE", "hunter2hunter2").await.unwrap();
    assert_eq!(pair.token_type, "Bearer");
    assert_eq!(pair.expires_in, 900);
    assert!(pair.refresh_token.is_some());
    let p = a.verify_access_token(&pair.access_token).unwrap();
    assert_eq!(p.subject, Subject::User(u.id));
    assert_eq!(p.workspace_id, ws);
    let wrong_pw = unauthenticated(a.login(ws, "dave", "wrong-password").await.unwrap_err());
    let no_user = unauthenticated(a.login(ws, "nobody", "hunter2hunter2").await.unwrap_err());
    let bad_name = unauthenticated(a.login(ws, "x", "hunter2hunter2").await.unwrap_err());
    assert_eq!(wrong_pw, "invalid username or password");
    assert_eq!(no_user, wrong_pw);
    assert_eq!(bad_name, wrong_pw);
    // Another workspace does not know the user.
    assert!(a.login(WorkspaceId::new(), "dave", "hunter2hunter2").await.is_err());
    // The refresh token is not an access token.
    assert!(a.verify_access_token(pair.refresh_token.as_deref().unwrap()).is_err());
}

pub async fn refresh_rotates_and_detects_reuse<S: Stores>(store: Arc<S>) {
    let a = auth(store).await;
    let ws = WorkspaceId::DEFAULT;
    let u = a.register(ws, "erin", "password-erin", None).await.unwrap();
    let first = a.login(ws, "erin", "password-erin").await.unwrap();
    let other_device = a.login(ws, "erin", "password-erin").await.unwrap().refresh_token.unwrap();
    let r1 = first.refresh_token.unwrap();
    let second = a.refresh(&r1).await.unwrap();
    let r2 = second.refresh_token.clone().unwrap();
    assert_ne!(r1, r2);
    assert_eq!(a.verify_access_token(&second.access_token).unwrap().user_id(), Some(u.id));
    // The new one works once.
    let third = a.refresh_grant(&r2).await.unwrap();
    let r3 = third.refresh_token.clone().unwrap();
    assert!(a.refresh(&r2).await.is_err());
    // Reusing a rotated token fails, and so does the grant form; it also revokes the
    // token its family holds now (RFC 9700 section 4.14.2: r3 may be an attacker's).
    assert_eq!(unauthenticated(a.refresh(&r1).await.unwrap_err()), "refresh token revoked or already used");
    assert_eq!(unauthenticated(a.refresh(&r3).await.unwrap_err()), "refresh token revoked or already used");
    let e = a.refresh_grant(&r1).await.unwrap_err();
    assert_eq!(e.error, OAuthErrorCode::InvalidGrant);
    assert_eq!(e.error.http_status(), 400);
    // Another login is another family: untouched.
    assert!(a.refresh(&other_device).await.is_ok(), "the other device's session stays");
    // An access token is not a refresh token.
    assert!(a.refresh(&third.access_token).await.is_err());
    assert!(a.refresh("garbage").await.is_err());
}

pub async fn logout_revokes<S: Stores>(store: Arc<S>) {
    let a = auth(store).await;
    let ws = WorkspaceId::DEFAULT;
    a.register(ws, "frank", "password-frank", None).await.unwrap();
    let pair = a.login(ws, "frank", "password-frank").await.unwrap();
    let r = pair.refresh_token.unwrap();
    a.logout(&r).await.unwrap();
    a.logout(&r).await.unwrap(); // idempotent
    assert_eq!(unauthenticated(a.refresh(&r).await.unwrap_err()), "refresh token revoked or already used");
    assert!(a.logout("garbage").await.is_err());
    assert!(a.logout(&pair.access_token).await.is_err());
}

pub async fn client_credentials_grant<S: Stores>(store: Arc<S>) {
    let a = auth(store.clone()).await;
    // Bootstrap client exists: all its scopes when none are requested.
    let pair = a.client_credentials("svc-bot", "bot-secret-123", None).await.unwrap();
    assert!(pair.refresh_token.is_none());
    assert_eq!(pair.scope.as_deref(), Some("messages.write users.read"));
    let p = a.verify_access_token(&pair.access_token).unwrap();
    assert_eq!(p.subject, Subject::Service { client_id: "svc-bot".into() });
    assert_eq!(p.user_id(), None);
    assert_eq!(p.workspace_id, WorkspaceId::DEFAULT);
    assert_eq!(p.scopes, ["messages.write", "users.read"]);
    // A subset.
    let pair = a.client_credentials("svc-bot", "bot-secret-123", Some("users.read")).await.unwrap();
    assert_eq!(pair.scope.as_deref(), Some("users.read"));
    // Errors.
    let e = a.client_credentials("svc-bot", "wrong-secret", None).await.unwrap_err();
    assert_eq!(
        (e.error, e.error.as_str(), e.error.http_status()),
        (OAuthErrorCode::InvalidClient, "invalid_client", 401)
    );
    let e2 = a.client_credentials("nobody", "bot-secret-123", None).await.unwrap_err();
    assert_eq!(e2, e, "unknown client and wrong secret look the same");
    let e = a.client_credentials("svc-bot", "bot-secret-123", Some("admin")).await.unwrap_err();
    assert_eq!(e.error.as_str(), "invalid_scope");
    assert_eq!(e.to_json()["error"], "invalid_scope");
    // create_client: validation and conflicts; a second start does not recreate bootstrap clients.
    let spec = ClientSpec { client_id: "svc-2".into(), client_secret: "another-secret".into(), scopes: vec![] };
    a.create_client(&spec).await.unwrap();
    assert!(matches!(a.create_client(&spec).await, Err(DomainError::Conflict(_))));
    let bad = ClientSpec { client_id: "bad id".into(), ..spec.clone() };
    assert!(matches!(a.create_client(&bad).await, Err(DomainError::Invalid { field: "clientId", .. })));
    let bad = ClientSpec { client_id: "svc-3".into(), client_secret: "short".into(), scopes: vec![] };
    assert!(matches!(a.create_client(&bad).await, Err(DomainError::Invalid { field: "clientSecret", .. })));
    let pair = a.client_credentials("svc-2", "another-secret", None).await.unwrap();
    assert_eq!(pair.scope, None);
    let again = auth(store).await;
    assert!(again.client_credentials("svc-bot", "bot-secret-123", None).await.is_ok());
}

pub async fn password_grant_errors<S: Stores>(store: Arc<S>) {
    let a = auth(store).await;
    let ws = WorkspaceId::DEFAULT;
    a.register(ws, "gina", "password-gina", None).await.unwrap();
    assert!(a.password_grant(ws, "gina", "password-gina").await.is_ok());
    let e = a.password_grant(ws, "gina", "nope-nope").await.unwrap_err();
    assert_eq!(e.error, OAuthErrorCode::InvalidGrant);
    assert_eq!(e.description, "invalid username or password");
}

pub async fn signing_key_is_persisted_and_shared<S: Stores>(store: Arc<S>) {
    let a = auth(store.clone()).await;
    let b = auth(store.clone()).await;
    assert_eq!(a.key_id(), b.key_id());
    assert_eq!(a.jwks(), b.jwks());
    let stored = store.signing_key().await.unwrap().unwrap();
    assert_eq!(stored.kid, a.key_id());
    assert!(stored.private_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    // Tokens of one instance verify on the other (another node).
    let ws = WorkspaceId::DEFAULT;
    a.register(ws, "hank", "password-hank", None).await.unwrap();
    let pair = a.login(ws, "hank", "password-hank").await.unwrap();
    assert!(b.verify_access_token(&pair.access_token).is_ok());
    assert!(b.refresh(pair.refresh_token.as_deref().unwrap()).await.is_ok());
    // A configured key wins over the stored one.
    let cfg = AuthConfig { private_key_pem: Some(stored.private_pem.clone()), ..config() };
    let c = Authenticator::new(cfg, store.clone(), store.clone()).await.unwrap();
    assert_eq!(c.key_id(), a.key_id());
    let jwks = a.jwks();
    assert_eq!(jwks["keys"][0]["kid"], a.key_id());
    let doc = a.openid_configuration();
    assert_eq!(doc["issuer"], "http://localhost:8081");
    assert_eq!(doc["jwks_uri"], "http://localhost:8081/.well-known/jwks.json");
    assert_eq!(doc["token_endpoint"], "http://localhost:8081/oauth2/token");
    assert_eq!(doc["id_token_signing_alg_values_supported"], serde_json::json!(["RS256"]));
    // Bad configuration is refused.
    let bad = AuthConfig { private_key_pem: Some("nope".into()), ..config() };
    assert!(Authenticator::new(bad, store.clone(), store.clone()).await.is_err());
    let bad = AuthConfig { access_ttl_secs: 0, ..config() };
    assert!(Authenticator::new(bad, store.clone(), store).await.is_err());
}
