//! Authenticator flows against `chat_storage::SqlStore` on a temporary SQLite file.

mod common;

use std::sync::Arc;

use chat_storage::SqlStore;

async fn store() -> (Arc<SqlStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("auth.db").display());
    let store = SqlStore::connect(&url, Default::default()).await.unwrap();
    store.migrate().await.unwrap();
    (Arc::new(store), dir)
}

#[tokio::test]
async fn register_validates_and_detects_conflicts() {
    let (s, _dir) = store().await;
    common::register_validates_and_detects_conflicts(s).await;
}

#[tokio::test]
async fn login_and_no_user_enumeration() {
    let (s, _dir) = store().await;
    common::login_and_no_user_enumeration(s).await;
}

#[tokio::test]
async fn refresh_rotates_and_detects_reuse() {
    let (s, _dir) = store().await;
    common::refresh_rotates_and_detects_reuse(s).await;
}

#[tokio::test]
async fn logout_revokes() {
    let (s, _dir) = store().await;
    common::logout_revokes(s).await;
}

#[tokio::test]
async fn client_credentials_grant() {
    let (s, _dir) = store().await;
    common::client_credentials_grant(s).await;
}

#[tokio::test]
async fn password_grant_errors() {
    let (s, _dir) = store().await;
    common::password_grant_errors(s).await;
}

#[tokio::test]
async fn signing_key_is_persisted_and_shared() {
    let (s, _dir) = store().await;
    common::signing_key_is_persisted_and_shared(s).await;
}

#[tokio::test]
async fn concurrent_first_starts_agree_on_one_key() {
    let (s, _dir) = store().await;
    let (a, b) = tokio::join!(common::auth(s.clone()), common::auth(s.clone()));
    assert_eq!(a.key_id(), b.key_id());
}
