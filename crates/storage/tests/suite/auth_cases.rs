//! Users, refresh tokens, signing keys, OAuth clients.

use chat_domain::{Millis, User, UserId, Workspace, WorkspaceId};
use chat_storage::{AuthStore, OAuthClientRecord, RefreshTokenRecord, SigningKeyRecord, StoreError, UserStore};

use super::{Harness, user};

fn token(jti: &str, user: UserId) -> RefreshTokenRecord {
    RefreshTokenRecord {
        jti: jti.into(),
        user_id: user,
        workspace_id: WorkspaceId::DEFAULT,
        issued_at: Millis(1),
        expires_at: Millis(1_000_000),
        revoked_at: None,
        family_id: jti.into(),
    }
}

/// A token of `family`.
fn in_family(jti: &str, user: UserId, family: &str) -> RefreshTokenRecord {
    RefreshTokenRecord { family_id: family.into(), ..token(jti, user) }
}

/// Revoking a family revokes its unrevoked tokens (the first one included, whose jti names
/// the family), leaves revocation instants already set and other families alone.
pub async fn refresh_family_revocation_spares_other_families(h: &Harness) {
    let s = &h.store;
    let u = UserId::new();
    s.insert_refresh_token(&token("f1", u)).await.unwrap();
    assert!(s.rotate_refresh_token("f1", &in_family("f1-b", u, "f1"), Millis(5)).await.unwrap());
    assert!(s.rotate_refresh_token("f1-b", &in_family("f1-c", u, "f1"), Millis(6)).await.unwrap());
    s.insert_refresh_token(&token("f2", u)).await.unwrap();
    assert_eq!(s.refresh_token("f1-c").await.unwrap().unwrap().family_id, "f1");

    assert_eq!(s.revoke_refresh_family("f1", Millis(9)).await.unwrap(), 1, "only f1-c was live");
    assert_eq!(s.refresh_token("f1-c").await.unwrap().unwrap().revoked_at, Some(Millis(9)));
    assert_eq!(s.refresh_token("f1").await.unwrap().unwrap().revoked_at, Some(Millis(5)), "kept");
    assert_eq!(s.refresh_token("f2").await.unwrap().unwrap().revoked_at, None, "another family");
    assert_eq!(s.revoke_refresh_family("f1", Millis(10)).await.unwrap(), 0);
    // A token stored before families were recorded (NULL) is its own family.
    s.insert_refresh_token(&token("legacy", u)).await.unwrap();
    super::admin_exec(&h.url, "UPDATE refresh_tokens SET family_id = NULL WHERE jti = 'legacy'", "database").await;
    assert_eq!(s.refresh_token("legacy").await.unwrap().unwrap().family_id, "legacy");
    assert_eq!(s.revoke_refresh_family("legacy", Millis(11)).await.unwrap(), 1);
}

/// 8 concurrent rotations of one refresh token: exactly one succeeds.
pub async fn refresh_token_rotation_is_single_use(h: &Harness) {
    let s = &h.store;
    let u = UserId::new();
    s.insert_refresh_token(&token("old", u)).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.rotate_refresh_token("old", &token(&format!("new{i}"), u), Millis(5)).await.unwrap()
        }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    assert_eq!(wins, 1);
    assert_eq!(s.refresh_token("old").await.unwrap().unwrap().revoked_at, Some(Millis(5)));
    let mut stored = 0;
    for i in 0..8 {
        stored += usize::from(s.refresh_token(&format!("new{i}")).await.unwrap().is_some());
    }
    assert_eq!(stored, 1);
    assert!(!s.rotate_refresh_token("unknown", &token("x", u), Millis(6)).await.unwrap());
    s.insert_refresh_token(&token("t2", u)).await.unwrap();
    assert!(s.revoke_refresh_token("t2", Millis(7)).await.unwrap());
    assert!(!s.revoke_refresh_token("t2", Millis(8)).await.unwrap());
    assert_eq!(
        s.refresh_token("t2").await.unwrap().unwrap(),
        RefreshTokenRecord { revoked_at: Some(Millis(7)), ..token("t2", u) }
    );
}

/// Concurrent first starts agree on one signing key.
pub async fn signing_key_insert_if_absent_agrees(h: &Harness) {
    let s = &h.store;
    assert!(s.signing_key().await.unwrap().is_none());
    let mut tasks = Vec::new();
    for i in 0..4 {
        let s = s.clone();
        let key = SigningKeyRecord { kid: format!("k{i}"), private_pem: format!("pem{i}"), created_at: Millis(i) };
        tasks.push(tokio::spawn(async move { s.insert_signing_key_if_absent(&key).await.unwrap() }));
    }
    let mut keys = Vec::new();
    for t in tasks {
        keys.push(t.await.unwrap());
    }
    assert!(keys.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(s.signing_key().await.unwrap().unwrap(), keys[0]);
}

/// A taken username is a Conflict; lookups by id, name and prefix work.
pub async fn username_conflict_and_lookup(h: &Harness) {
    let s = &h.store;
    let ws = Workspace { id: WorkspaceId::DEFAULT, name: "default".into(), created_at: Millis(1) };
    s.ensure_workspace(&ws).await.unwrap();
    s.ensure_workspace(&ws).await.unwrap();
    let a = user(s, "alice").await;
    let dup = User { id: UserId::new(), ..a.clone() };
    assert!(matches!(s.create_user(&dup, "h").await, Err(StoreError::Conflict(_))));
    let other_ws = User { id: UserId::new(), workspace_id: WorkspaceId::new(), ..a.clone() };
    s.create_user(&other_ws, "h2").await.unwrap();
    assert_eq!(s.user(a.id).await.unwrap().unwrap(), a);
    let (u, hash) = s.user_credentials(WorkspaceId::DEFAULT, "alice").await.unwrap().unwrap();
    assert_eq!((u, hash.as_str()), (a.clone(), "$argon2id$fake"));
    assert!(s.user_credentials(WorkspaceId::DEFAULT, "nobody").await.unwrap().is_none());
    let al_b = user(s, "al_b").await;
    user(s, "alxb").await;
    let found = s.search_users(WorkspaceId::DEFAULT, "al_", 10).await.unwrap();
    assert_eq!(found, vec![al_b.clone()]);
    let found = s.search_users(WorkspaceId::DEFAULT, "al", 2).await.unwrap();
    assert_eq!(found.iter().map(|u| u.username.as_str()).collect::<Vec<_>>(), vec!["al_b", "alice"]);
    let mut got = s.users(&[a.id, al_b.id, UserId::new()]).await.unwrap();
    got.sort_by(|x, y| x.username.cmp(&y.username));
    assert_eq!(got, vec![al_b, a]);
    assert!(s.users(&[]).await.unwrap().is_empty());
    let client = OAuthClientRecord {
        client_id: "svc".into(),
        secret_hash: "h".into(),
        scopes: "a b".into(),
        created_at: Millis(1),
    };
    s.create_oauth_client(&client).await.unwrap();
    assert!(matches!(s.create_oauth_client(&client).await, Err(StoreError::Conflict(_))));
    assert_eq!(s.oauth_client("svc").await.unwrap().unwrap(), client);
}
