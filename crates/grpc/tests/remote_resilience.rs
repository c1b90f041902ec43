//! The remote core client when things go wrong or change: the core unreachable (sends fail
//! with `Unavailable`, in-flight ones included, and work again once it is back), the service
//! token refreshed before it expires, bad client credentials and settings; and the
//! `GrpcRegistry` calls against the core's registry.

mod remote;

use std::sync::atomic::Ordering;
use std::time::Duration;

use chat_core::service::SendMessage;
use chat_domain::{ConversationId, DomainError, Millis, WorkspaceId};
use chat_gateway::GatewayCore;
use chat_grpc::client::ClientError;
use chat_grpc::{GrpcCore, GrpcCoreConfig};
use chat_pipeline::{Connection, ConnectionRegistry, PipelineError, SessionState};
use chat_stomp::Command;
use remote::proxy::Mode;
use remote::{Client, CoreOptions, Stack, WAIT};

fn send_req(conv: ConversationId, text: &str, key: &str) -> SendMessage {
    SendMessage {
        conversation_id: conv,
        client_msg_id: Some(key.into()),
        text: text.into(),
        kind: None,
        thread_root_id: None,
        attachment_ids: Vec::new(),
    }
}

fn is_unavailable(e: &DomainError) -> bool {
    matches!(e, DomainError::Unavailable(_))
}

#[tokio::test]
async fn core_down_fails_sends_with_unavailable_and_they_recover_when_it_is_back() {
    let s = Stack::start().await;
    let (alice, bob) = (s.user("alice").await, s.user("bob").await);
    let conv = s.channel(&alice, "general", &[&bob]).await;
    let mut a = s.client(&alice).await;
    let r = a.send_chat(conv, alice.id, "before", "before the outage").await;
    a.until_receipt(&r).await;

    // Sends in flight when the connection dies fail with Unavailable.
    s.proxy.set(Mode::Stalled);
    let in_flight: Vec<_> = (0..5)
        .map(|i| {
            let core = s.core.clone();
            let user = alice.id;
            tokio::spawn(async move { core.send(user, send_req(conv, "stalled", &format!("stalled-{i}"))).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await; // let them reach the stream
    s.proxy.set(Mode::Down);
    for t in in_flight {
        let e = t.await.expect("task").expect_err("the stream broke");
        assert!(is_unavailable(&e), "{e:?}");
    }

    // While down: the trait and STOMP both say unavailable.
    let e = s.core.send(alice.id, send_req(conv, "down", "down-1")).await.expect_err("core down");
    assert!(is_unavailable(&e) && e.to_string().contains("core"), "{e}");
    let e = s.core.member_ids(alice.id, conv).await.expect_err("core down");
    assert!(is_unavailable(&e), "{e:?}");
    a.send_chat(conv, alice.id, "down-2", "while down").await;
    let err = a.until_error().await;
    let message = err.header("message").expect("message");
    assert!(message.starts_with("unavailable: "), "{message}");
    let mut x = Client::open(s.gateway_addr, "/ws").await;
    let f = x.connect_raw(&[("authorization", &format!("Bearer {}", bob.token))]).await;
    assert_eq!(f.command, Command::Error, "{f:?}");
    assert!(f.header("message").expect("message").contains("unavailable"), "{f:?}");

    // Back up: the stream reopens, sends and connects work again.
    s.proxy.set(Mode::Up);
    let deadline = tokio::time::Instant::now() + WAIT;
    let outcome = loop {
        match s.core.send(alice.id, send_req(conv, "after", "after-1")).await {
            Ok(o) => break o,
            Err(e) if is_unavailable(&e) && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("no recovery: {e}"),
        }
    };
    assert_eq!(outcome.message().text, "after");
    let mut b = s.client(&bob).await;
    let r = b.send_chat(conv, bob.id, "b-after", "bob after the outage").await;
    let before = b.until_receipt(&r).await;
    b.unread(before);
    let mut texts = Vec::new();
    while !texts.iter().any(|t| t == "bob after the outage") {
        texts.extend(b.events("MESSAGE", 1).await.iter().map(|v| v["text"].as_str().unwrap_or_default().to_owned()));
    }
}

#[tokio::test]
async fn the_service_token_is_refreshed_before_it_expires() {
    let s = Stack::start_with(CoreOptions { access_ttl_secs: 2 }, |c| c).await;
    let alice = s.user("alice").await;
    assert_eq!(s.core.verify_token(&alice.token).await.expect("valid").user_id, alice.id);
    assert_eq!(s.core.verify_token(&alice.token).await.expect("valid").user_id, alice.id);
    assert_eq!(s.token_requests.load(Ordering::SeqCst), 1, "one token serves many calls");
    // Three quarters of the 2 s lifetime later the next call fetches a new one.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let alice2 = s.user("alice2").await;
    assert_eq!(s.core.verify_token(&alice2.token).await.expect("valid").user_id, alice2.id);
    assert_eq!(s.token_requests.load(Ordering::SeqCst), 2, "refreshed");
}

#[tokio::test]
async fn bad_client_credentials_and_settings_are_reported() {
    let s = Stack::start().await;
    let alice = s.user("alice").await;
    let mut cfg = remote::core_config(s.grpc_addr, s.rest_addr);
    cfg.client_secret = "wrong-secret".into();
    let core = GrpcCore::connect(cfg).expect("settings are well-formed");
    let e = core.verify_token(&alice.token).await.expect_err("refused");
    assert!(matches!(&e, DomainError::Unavailable(m) if m.contains("invalid_client")), "{e:?}");

    let bad = |f: fn(&mut GrpcCoreConfig)| {
        let mut cfg = remote::core_config(s.grpc_addr, s.rest_addr);
        f(&mut cfg);
        GrpcCore::connect(cfg).expect_err("refused")
    };
    assert!(matches!(bad(|c| c.endpoint = "not a uri".into()), ClientError::Endpoint(_)));
    assert!(matches!(bad(|c| c.endpoint = "127.0.0.1:9090".into()), ClientError::Endpoint(_)));
    assert!(matches!(bad(|c| c.token_url = "ftp://x/token".into()), ClientError::TokenUrl(_)));
    assert!(matches!(bad(|c| c.client_id = String::new()), ClientError::Credentials(_)));
    assert!(matches!(bad(|c| c.request_timeout = Duration::ZERO), ClientError::Settings(_)));
    assert!(matches!(bad(|c| c.max_in_flight_sends = 0), ClientError::Settings(_)));
    let shown = format!("{:?}", remote::core_config(s.grpc_addr, s.rest_addr));
    assert!(!shown.contains(remote::CLIENT_SECRET), "{shown}");
}

#[tokio::test]
async fn grpc_registry_reads_and_writes_the_cores_registry() {
    let s = Stack::start().await;
    let (alice, bob) = (s.user("alice").await, s.user("bob").await);
    let reg = s.core.registry();
    let core_reg = s.pipeline.registry();
    let conn = |id: &str, user: chat_domain::UserId, node: &str| Connection {
        connection_id: id.into(),
        user_id: user,
        workspace_id: WorkspaceId::DEFAULT,
        gateway_node_id: node.into(),
        connected_at: Millis::now(),
        last_ping_at: Millis::now(),
        device_type: "web".into(),
        ip_address: "127.0.0.1".into(),
        state: SessionState::Connected,
    };
    reg.register(conn("c-a1", alice.id, "gw-1")).await.expect("register");
    reg.register(conn("c-a2", alice.id, "gw-2")).await.expect("register");
    reg.register(conn("c-b1", bob.id, "gw-1")).await.expect("register");

    let mine = core_reg.connections_of_user(alice.id).await.expect("core registry");
    assert_eq!(mine.len(), 2);
    let got = reg.connections_of_user(alice.id).await.expect("by user");
    let mut ids: Vec<String> = got.iter().map(|c| c.connection_id.clone()).collect();
    ids.sort();
    assert_eq!(ids, ["c-a1", "c-a2"]);
    assert!(got.iter().all(|c| c.user_id == alice.id && c.state == SessionState::Connected && c.device_type == "web"));
    assert_eq!(reg.connections_of_users(&[alice.id, bob.id, alice.id]).await.expect("by users").len(), 3);
    assert!(reg.connections_of_users(&[]).await.expect("none").is_empty());
    assert_eq!(reg.connections_of_gateway("gw-1").await.expect("by node").len(), 2);
    assert_eq!(reg.all_connections().await.expect("all").len(), 3);
    let mut online = vec![alice.id, bob.id];
    online.sort();
    assert_eq!(reg.online_users(None).await.expect("online"), online);
    assert_eq!(reg.online_users(Some(WorkspaceId::DEFAULT)).await.expect("online"), online);

    // A later heart-beat (the core keeps a service's instant unless it lies in the future).
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let later = Millis::now();
    assert!(reg.touch("c-a1", later).await.expect("touch"));
    assert!(!reg.touch("nope", later).await.expect("touch unknown"));
    let a1 =
        core_reg.connections_of_user(alice.id).await.expect("core").into_iter().find(|c| c.connection_id == "c-a1");
    assert_eq!(a1.expect("c-a1").last_ping_at, later);

    assert!(reg.unregister("c-a1").await.expect("unregister"));
    assert!(!reg.unregister("c-a1").await.expect("again"));
    assert_eq!(core_reg.connections_of_user(alice.id).await.expect("core").len(), 1);

    // Unreachable core: retryable Unavailable.
    s.proxy.set(Mode::Down);
    let e = reg.all_connections().await.expect_err("down");
    assert!(matches!(e, PipelineError::Unavailable(_)), "{e:?}");
}
