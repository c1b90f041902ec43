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

/// A registry that forwards everything but `gateways_of_users`, which it leaves to the trait's
/// default (derived from `connections_of_users`).
struct DefaultGateways(InMemoryRegistry);

#[async_trait::async_trait]
impl ConnectionRegistry for DefaultGateways {
    async fn register(&self, conn: Connection) -> chat_pipeline::Result<()> {
        self.0.register(conn).await
    }
    async fn unregister(&self, connection_id: &str) -> chat_pipeline::Result<bool> {
        self.0.unregister(connection_id).await
    }
    async fn touch(&self, connection_id: &str, at: Millis) -> chat_pipeline::Result<bool> {
        self.0.touch(connection_id, at).await
    }
    async fn connections_of_user(&self, user: UserId) -> chat_pipeline::Result<Vec<Connection>> {
        self.0.connections_of_user(user).await
    }
    async fn connections_of_users(&self, users: &[UserId]) -> chat_pipeline::Result<Vec<Connection>> {
        self.0.connections_of_users(users).await
    }
    async fn connections_of_gateway(&self, gateway_node_id: &str) -> chat_pipeline::Result<Vec<Connection>> {
        self.0.connections_of_gateway(gateway_node_id).await
    }
    async fn all_connections(&self) -> chat_pipeline::Result<Vec<Connection>> {
        self.0.all_connections().await
    }
    async fn online_users(&self, workspace: Option<WorkspaceId>) -> chat_pipeline::Result<Vec<UserId>> {
        self.0.online_users(workspace).await
    }
}

fn pairs(mut v: Vec<(UserId, Arc<str>)>) -> Vec<(UserId, String)> {
    v.sort();
    v.into_iter().map(|(u, g)| (u, g.to_string())).collect()
}

#[tokio::test]
async fn gateways_of_users_lists_each_live_user_and_gateway_once_with_shared_ids() {
    let (now, reg) = clocked(30_000);
    let t = now.load(Ordering::SeqCst);
    let (a, b, c, d) = (UserId::new(), UserId::new(), UserId::new(), UserId::new());
    let ws = WorkspaceId::DEFAULT;
    reg.register(conn("a1", a, ws, "g1", t)).await.unwrap();
    reg.register(conn("a2", a, ws, "g1", t)).await.unwrap(); // a second device on g1
    reg.register(conn("a3", a, ws, "g2", t)).await.unwrap();
    reg.register(conn("b1", b, ws, "g1", t)).await.unwrap();
    reg.register(conn("c1", c, ws, "g3", t - 20_000)).await.unwrap(); // expires first
    reg.register(conn("d1", d, ws, "g2", t)).await.unwrap(); // not asked for
    now.store(t + 15_000, Ordering::SeqCst);

    let got = reg.gateways_of_users(&[a, b, c, a, UserId::new()]).await.unwrap();
    let mut want = vec![(a, "g1".to_owned()), (a, "g2".to_owned()), (b, "g1".to_owned())];
    want.sort();
    assert_eq!(pairs(got.clone()), want, "c expired, d not asked, unknown user absent, repeats once");
    let g1: Vec<&Arc<str>> = got.iter().filter(|(_, g)| &**g == "g1").map(|(_, g)| g).collect();
    assert!(Arc::ptr_eq(g1[0], g1[1]), "one shared allocation per gateway id");
    assert!(reg.gateways_of_users(&[]).await.unwrap().is_empty());

    // The trait's default gives the same pairs; both follow unregister and moves.
    let wrapped = DefaultGateways(reg);
    assert_eq!(pairs(wrapped.gateways_of_users(&[a, b, c, a]).await.unwrap()), want);
    wrapped.unregister("a3").await.unwrap();
    wrapped.register(conn("b1", b, ws, "g3", t + 15_000)).await.unwrap();
    let mut want = vec![(a, "g1".to_owned()), (b, "g3".to_owned())];
    want.sort();
    assert_eq!(pairs(wrapped.gateways_of_users(&[a, b]).await.unwrap()), want);
    assert_eq!(pairs(wrapped.0.gateways_of_users(&[a, b]).await.unwrap()), want);
}
