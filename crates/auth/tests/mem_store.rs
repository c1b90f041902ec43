//! Authenticator flows against an in-memory store.

mod common;

use std::sync::Arc;

use common::MemStore;

fn store() -> Arc<MemStore> {
    Arc::new(MemStore::default())
}

#[tokio::test]
async fn register_validates_and_detects_conflicts() {
    common::register_validates_and_detects_conflicts(store()).await;
}

#[tokio::test]
async fn login_and_no_user_enumeration() {
    common::login_and_no_user_enumeration(store()).await;
}

#[tokio::test]
async fn refresh_rotates_and_detects_reuse() {
    common::refresh_rotates_and_detects_reuse(store()).await;
}

#[tokio::test]
async fn logout_revokes() {
    common::logout_revokes(store()).await;
}

#[tokio::test]
async fn client_credentials_grant() {
    common::client_credentials_grant(store()).await;
}

#[tokio::test]
async fn password_grant_errors() {
    common::password_grant_errors(store()).await;
}

#[tokio::test]
async fn signing_key_is_persisted_and_shared() {
    common::signing_key_is_persisted_and_shared(store()).await;
}

#[tokio::test]
async fn concurrent_first_starts_agree_on_one_key() {
    let s = store();
    let (a, b) = tokio::join!(common::auth(s.clone()), common::auth(s.clone()));
    assert_eq!(a.key_id(), b.key_id());
}
