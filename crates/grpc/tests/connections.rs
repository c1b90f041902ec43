//! `connection.v1.ConnectionManager` over a real server.

mod common;

use chat_domain::WorkspaceId;
use chat_grpc::pb::connection::v1::{
    Connection, GetAllConnectionsRequest, GetConnectionsByGatewayNodeRequest, GetConnectionsByUserRequest,
    GetOnlineUsersRequest, RegisterConnectionRequest, SessionState, UnregisterConnectionRequest, UpdateLastPingRequest,
};
use common::{Stack, TestUser, authed};
use prost_types::Timestamp;
use tonic::Code;

fn conn(id: &str, user: &TestUser, node: &str) -> Connection {
    Connection {
        connection_id: id.into(),
        user_id: user.id.to_string(),
        gateway_node_id: node.into(),
        device_type: "web".into(),
        ip_address: "127.0.0.1".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn every_rpc_with_a_service_credential() {
    let s = Stack::start().await;
    let (alice, bob) = (s.user("alice").await, s.user("bob").await);
    let svc = s.service_token().await;
    let mut c = s.conn_client();
    for (id, user, node) in [("c1", &alice, "gw-1"), ("c2", &alice, "gw-2"), ("c3", &bob, "gw-1")] {
        let req = RegisterConnectionRequest { connection: Some(conn(id, user, node)), user_id: user.id.to_string() };
        assert!(c.register_connection(authed(&svc, req)).await.expect("register").into_inner().success);
    }

    let by_user = c
        .get_connections_by_user(authed(&svc, GetConnectionsByUserRequest { user_id: alice.id.to_string() }))
        .await
        .expect("by user")
        .into_inner()
        .connections;
    assert_eq!(by_user.iter().map(|c| c.connection_id.as_str()).collect::<Vec<_>>(), ["c1", "c2"]);
    let first = &by_user[0];
    assert_eq!(first.workspace_id, WorkspaceId::DEFAULT.to_string(), "filled in from the user");
    assert_eq!(first.session_state, SessionState::Connected as i32);
    assert_eq!((first.device_type.as_str(), first.ip_address.as_str()), ("web", "127.0.0.1"));
    assert!(first.connected_at.is_some() && first.last_ping_at.is_some());

    let node = c
        .get_connections_by_gateway_node(authed(
            &svc,
            GetConnectionsByGatewayNodeRequest { gateway_node_id: "gw-1".into() },
        ))
        .await
        .expect("by node")
        .into_inner()
        .connections;
    assert_eq!(node.iter().map(|c| c.connection_id.as_str()).collect::<Vec<_>>(), ["c1", "c3"]);

    let all = c.get_all_connections(authed(&svc, GetAllConnectionsRequest {})).await.expect("all").into_inner();
    assert_eq!(all.connections.len(), 3);

    let mut online = c
        .get_online_users(authed(&svc, GetOnlineUsersRequest::default()))
        .await
        .expect("online, all workspaces")
        .into_inner()
        .user_ids;
    online.sort();
    let mut expected = vec![alice.id.to_string(), bob.id.to_string()];
    expected.sort();
    assert_eq!(online, expected);
    let other_ws = c
        .get_online_users(authed(
            &svc,
            GetOnlineUsersRequest { workspace_id: chat_domain::WorkspaceId::new().to_string() },
        ))
        .await
        .expect("online, other workspace")
        .into_inner();
    assert!(other_ws.user_ids.is_empty());

    let ping = UpdateLastPingRequest {
        connection_id: "c1".into(),
        last_ping_at: Some(Timestamp { seconds: chat_domain::Millis::now().0 / 1000 + 5, nanos: 0 }),
    };
    assert!(c.update_last_ping(authed(&svc, ping)).await.expect("ping").into_inner().success);
    let unknown = UpdateLastPingRequest { connection_id: "nope".into(), last_ping_at: None };
    assert!(!c.update_last_ping(authed(&svc, unknown)).await.expect("ping unknown").into_inner().success);

    let un = UnregisterConnectionRequest { connection_id: "c1".into(), user_id: String::new() };
    assert!(c.unregister_connection(authed(&svc, un.clone())).await.expect("unregister").into_inner().success);
    assert!(!c.unregister_connection(authed(&svc, un)).await.expect("unregister again").into_inner().success);
    let all = c.get_all_connections(authed(&svc, GetAllConnectionsRequest {})).await.expect("all").into_inner();
    assert_eq!(all.connections.len(), 2);
}

/// Registers a connection of `user` on `node` with a service credential (as a gateway does),
/// which makes `node` a live gateway.
async fn gateway_registers(s: &Stack, user: &TestUser, id: &str, node: &str) {
    let svc = s.service_token().await;
    let req = RegisterConnectionRequest { connection: Some(conn(id, user, node)), user_id: user.id.to_string() };
    assert!(
        s.conn_client().register_connection(authed(&svc, req)).await.expect("gateway registers").into_inner().success
    );
}

#[tokio::test]
async fn a_user_cannot_name_a_gateway_node_that_no_gateway_registered() {
    let s = Stack::start().await;
    let (alice, carol) = (s.user("alice").await, s.user("carol").await);
    let mut c = s.conn_client();
    let req = RegisterConnectionRequest { connection: Some(conn("a1", &alice, "invented")), user_id: String::new() };
    let err = c.register_connection(authed(&alice.token, req)).await.expect_err("an invented node");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    gateway_registers(&s, &carol, "c1", "gw-real").await;
    let req = RegisterConnectionRequest { connection: Some(conn("a1", &alice, "gw-real")), user_id: String::new() };
    assert!(c.register_connection(authed(&alice.token, req)).await.expect("a live node").into_inner().success);
}

#[tokio::test]
async fn a_user_manages_only_its_own_connections() {
    let s = Stack::start().await;
    let (alice, bob, carol) = (s.user("alice").await, s.user("bob").await, s.user("carol").await);
    gateway_registers(&s, &carol, "c1", "gw-1").await;
    let mut c = s.conn_client();
    // userId empty: the token's user.
    let mut mine = conn("a1", &alice, "gw-1");
    mine.user_id.clear();
    let req = RegisterConnectionRequest { connection: Some(mine), user_id: String::new() };
    assert!(c.register_connection(authed(&alice.token, req)).await.expect("register own").into_inner().success);
    let req = RegisterConnectionRequest { connection: Some(conn("b1", &bob, "gw-1")), user_id: String::new() };
    assert!(c.register_connection(authed(&bob.token, req)).await.expect("bob registers").into_inner().success);

    let own = c
        .get_connections_by_user(authed(&alice.token, GetConnectionsByUserRequest::default()))
        .await
        .expect("own connections")
        .into_inner()
        .connections;
    assert_eq!(own.len(), 1);
    assert_eq!(own[0].user_id, alice.id.to_string());

    // Someone else's connection: not visible, not removable, not pingable.
    let err = c
        .get_connections_by_user(authed(&alice.token, GetConnectionsByUserRequest { user_id: bob.id.to_string() }))
        .await
        .expect_err("other user's connections");
    assert_eq!(err.code(), Code::PermissionDenied);
    let un = UnregisterConnectionRequest { connection_id: "b1".into(), user_id: String::new() };
    assert!(!c.unregister_connection(authed(&alice.token, un)).await.expect("answer").into_inner().success);
    let ping = UpdateLastPingRequest { connection_id: "b1".into(), last_ping_at: None };
    assert!(!c.update_last_ping(authed(&alice.token, ping)).await.expect("answer").into_inner().success);
    let ping = UpdateLastPingRequest { connection_id: "a1".into(), last_ping_at: None };
    assert!(c.update_last_ping(authed(&alice.token, ping)).await.expect("own ping").into_inner().success);

    // Online users: own workspace (empty means it for a user).
    let online = c
        .get_online_users(authed(&alice.token, GetOnlineUsersRequest::default()))
        .await
        .expect("online")
        .into_inner()
        .user_ids;
    assert_eq!(online.len(), 3, "alice, bob and carol (the gateway's user)");
    let err = c
        .get_online_users(authed(&alice.token, GetOnlineUsersRequest { workspace_id: WorkspaceId::new().to_string() }))
        .await
        .expect_err("other workspace");
    assert_eq!(err.code(), Code::PermissionDenied);

    // Service-only listings.
    let err = c.get_all_connections(authed(&alice.token, GetAllConnectionsRequest {})).await.expect_err("all");
    assert_eq!(err.code(), Code::PermissionDenied);
    let req = GetConnectionsByGatewayNodeRequest { gateway_node_id: "gw-1".into() };
    let err = c.get_connections_by_gateway_node(authed(&alice.token, req)).await.expect_err("by node");
    assert_eq!(err.code(), Code::PermissionDenied);

    let un = UnregisterConnectionRequest { connection_id: "a1".into(), user_id: alice.id.to_string() };
    assert!(c.unregister_connection(authed(&alice.token, un)).await.expect("own unregister").into_inner().success);
}

#[tokio::test]
async fn a_user_holds_a_bounded_number_of_connections_on_the_servers_clock() {
    let s = Stack::start().await;
    let (alice, carol) = (s.user("alice").await, s.user("carol").await);
    gateway_registers(&s, &carol, "c1", "gw-fake").await;
    let mut c = s.conn_client();
    // A ping "from the year 9999" must not keep the connection alive forever.
    let far_future = Some(Timestamp { seconds: 253_402_300_799, nanos: 0 });
    for i in 0..16 {
        let mut one = conn(&format!("a{i}"), &alice, "gw-fake");
        one.last_ping_at = far_future;
        one.connected_at = far_future;
        let req = RegisterConnectionRequest { connection: Some(one), user_id: String::new() };
        c.register_connection(authed(&alice.token, req)).await.expect("within the cap");
    }
    let req = RegisterConnectionRequest { connection: Some(conn("a16", &alice, "gw-fake")), user_id: String::new() };
    let err = c.register_connection(authed(&alice.token, req)).await.expect_err("the 17th connection");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    // Re-registering an existing id is a replacement, not a new connection.
    let req = RegisterConnectionRequest { connection: Some(conn("a3", &alice, "gw-fake")), user_id: String::new() };
    c.register_connection(authed(&alice.token, req)).await.expect("replace an own connection");

    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let own = c
        .get_connections_by_user(authed(&alice.token, GetConnectionsByUserRequest::default()))
        .await
        .expect("own connections")
        .into_inner()
        .connections;
    assert_eq!(own.len(), 16);
    for x in &own {
        let ping = x.last_ping_at.as_ref().expect("last ping").seconds;
        assert!(ping <= now + 1, "a user's ping instant is the server's, not {ping}");
    }
    let ping = UpdateLastPingRequest { connection_id: "a0".into(), last_ping_at: far_future };
    assert!(c.update_last_ping(authed(&alice.token, ping)).await.expect("ping").into_inner().success);
    let own = c
        .get_connections_by_user(authed(&alice.token, GetConnectionsByUserRequest::default()))
        .await
        .expect("own connections")
        .into_inner()
        .connections;
    let a0 = own.iter().find(|x| x.connection_id == "a0").expect("a0");
    assert!(a0.last_ping_at.as_ref().expect("last ping").seconds <= now + 1);
}
