//! In-memory connection registry: TTL, online users, unregister, lookups.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chat_domain::{Millis, UserId, WorkspaceId};
use chat_pipeline::{Connection, ConnectionRegistry, InMemoryRegistry, SessionState};

fn conn(id: &str, user: UserId, ws: WorkspaceId, gateway: &str, at: i64) -> Connection {
    Connection {
        connection_id: id.into(),
        user_id: user,
        workspace_id: ws,
        gateway_node_id: gateway.into(),
        connected_at: Millis(at),
        last_ping_at: Millis(at),
        device_type: "web".into(),
        ip_address: "10.0.0.1".into(),
        state: SessionState::Unknown,
    }
}

fn clocked(ttl_ms: u64) -> (Arc<AtomicI64>, InMemoryRegistry) {
    let now = Arc::new(AtomicI64::new(1_000_000));
    let clock = now.clone();
    let reg = InMemoryRegistry::with_clock(
        Duration::from_millis(ttl_ms),
        Arc::new(move || Millis(clock.load(Ordering::SeqCst))),
    );
    (now, reg)
}

#[tokio::test]
async fn connections_expire_after_the_ttl_unless_touched_and_are_swept() {
    let (now, reg) = clocked(30_000);
    let u = UserId::new();
    let t0 = now.load(Ordering::SeqCst);
    reg.register(conn("c1", u, WorkspaceId::DEFAULT, "g1", t0)).await.unwrap();
    reg.register(conn("c2", u, WorkspaceId::DEFAULT, "g2", t0)).await.unwrap();
    let got = reg.connections_of_user(u).await.unwrap();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|c| c.state == SessionState::Connected));

    now.store(t0 + 20_000, Ordering::SeqCst);
    assert!(reg.touch("c1", Millis(t0 + 20_000)).await.unwrap());
    now.store(t0 + 40_000, Ordering::SeqCst);
    // c2 was not touched: expired, excluded from every lookup.
    let ids = |v: Vec<Connection>| v.into_iter().map(|c| c.connection_id).collect::<Vec<_>>();
    assert_eq!(ids(reg.connections_of_user(u).await.unwrap()), vec!["c1"]);
    assert_eq!(ids(reg.connections_of_users(&[u, u]).await.unwrap()), vec!["c1"]);
    assert!(reg.connections_of_gateway("g2").await.unwrap().is_empty());
    assert_eq!(ids(reg.all_connections().await.unwrap()), vec!["c1"]);
    assert!(!reg.touch("c2", Millis(t0 + 40_000)).await.unwrap(), "an expired connection cannot be revived");

    now.store(t0 + 60_000, Ordering::SeqCst);
    let swept = reg.sweep_expired();
    assert_eq!(ids(swept.clone()), vec!["c1"]);
    assert!(swept.iter().all(|c| c.state == SessionState::Expired));
    assert!(reg.is_empty());
    assert!(reg.online_users(None).await.unwrap().is_empty());
}

#[tokio::test]
async fn online_users_by_workspace() {
    let (now, reg) = clocked(30_000);
    let t = now.load(Ordering::SeqCst);
    let ws2 = WorkspaceId::new();
    let (a, b, c) = (UserId::new(), UserId::new(), UserId::new());
    reg.register(conn("a1", a, WorkspaceId::DEFAULT, "g1", t)).await.unwrap();
    reg.register(conn("a2", a, WorkspaceId::DEFAULT, "g2", t)).await.unwrap();
    reg.register(conn("b1", b, WorkspaceId::DEFAULT, "g1", t)).await.unwrap();
    reg.register(conn("c1", c, ws2, "g1", t)).await.unwrap();
    let mut default_ws = vec![a, b];
    default_ws.sort();
    assert_eq!(reg.online_users(Some(WorkspaceId::DEFAULT)).await.unwrap(), default_ws);
    assert_eq!(reg.online_users(Some(ws2)).await.unwrap(), vec![c]);
    let mut all = vec![a, b, c];
    all.sort();
    assert_eq!(reg.online_users(None).await.unwrap(), all);
    assert_eq!(reg.connections_of_gateway("g1").await.unwrap().len(), 3);
}

#[tokio::test]
async fn unregister_removes_from_every_index() {
    let (now, reg) = clocked(30_000);
    let t = now.load(Ordering::SeqCst);
    let a = UserId::new();
    reg.register(conn("a1", a, WorkspaceId::DEFAULT, "g1", t)).await.unwrap();
    reg.register(conn("a2", a, WorkspaceId::DEFAULT, "g1", t)).await.unwrap();
    assert!(reg.unregister("a1").await.unwrap());
    assert!(!reg.unregister("a1").await.unwrap(), "second unregister reports unknown");
    assert_eq!(reg.connections_of_gateway("g1").await.unwrap().len(), 1);
    assert!(reg.unregister("a2").await.unwrap());
    assert!(reg.connections_of_user(a).await.unwrap().is_empty());
    assert!(reg.connections_of_gateway("g1").await.unwrap().is_empty());
    assert!(reg.online_users(None).await.unwrap().is_empty());
    assert!(!reg.touch("a2", Millis(t)).await.unwrap());
    // Re-registering the same id on another gateway moves it.
    reg.register(conn("a1", a, WorkspaceId::DEFAULT, "g1", t)).await.unwrap();
    reg.register(conn("a1", a, WorkspaceId::DEFAULT, "g2", t)).await.unwrap();
    assert!(reg.connections_of_gateway("g1").await.unwrap().is_empty());
    assert_eq!(reg.connections_of_gateway("g2").await.unwrap().len(), 1);
    assert_eq!(reg.len(), 1);
}
