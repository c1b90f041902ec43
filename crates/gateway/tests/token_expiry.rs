//! A session never outlives its access token: at the token's `exp` the gateway sends an ERROR
//! and closes the connection; the client reconnects with a fresh token.

mod common;

use std::time::Duration;

use chat_auth::{AuthConfig, Authenticator};
use chat_domain::WorkspaceId;
use chat_stomp::Command;
use common::{Stack, test_config};

#[tokio::test]
async fn the_session_is_closed_when_its_access_token_expires() {
    let s = Stack::start(test_config()).await;
    s.user("alice").await;
    // A second authenticator on the same store signs with the same persisted key, but issues
    // access tokens that live 2 seconds.
    let short = Authenticator::new(
        AuthConfig { access_ttl_secs: 2, ..AuthConfig::for_tests() },
        s.store.clone(),
        s.store.clone(),
    )
    .await
    .expect("authenticator");
    let token = short.login(WorkspaceId::DEFAULT, "alice", "password-alice").await.expect("login").access_token;

    let mut c = s.ws("/ws").await;
    let connected = c.connect(&[("Authorization", &format!("Bearer {token}"))]).await;
    assert_eq!(connected.command, Command::Connected);
    let error = c.until_error().await;
    let message = error.header("message").unwrap_or_default().to_owned();
    assert!(message.contains("access token expired"), "ERROR message: {message}");
    assert!(c.wait_closed(Duration::from_secs(10)).await, "the connection is closed after the ERROR");
}
