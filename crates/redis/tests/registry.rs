//! RedisRegistry against a real Redis (CHAT_TEST_REDIS_URL, default redis://127.0.0.1:6379):
//! the in-memory registry's cases (crates/pipeline/tests/registry.rs) plus what only Redis
//! has: key TTLs, the seed's hash fields, last-seen. Each test uses fresh user, workspace,
//! connection and gateway ids, so tests share the server safely.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use chat_domain::{Millis, UserId, WorkspaceId};
use chat_pipeline::{Connection, ConnectionRegistry, SessionState};
use chat_redis::registry::keys;
use chat_redis::{RedisRegistry, RedisRegistryConfig};
use common::*;
use redis::AsyncCommands;

async fn registry(ttl: Duration) -> RedisRegistry {
    let url = redis_url();
    RedisRegistry::connect(&url, ttl).await.unwrap_or_else(|e| panic!("connect to Redis at {url}: {e}"))
}

fn ids(v: Vec<Connection>) -> Vec<String> {
    let mut ids: Vec<String> = v.into_iter().map(|c| c.connection_id).collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn connections_expire_after_the_ttl_unless_touched() {
    let reg = registry(Duration::from_millis(3000)).await;
    assert_eq!(reg.ttl(), Duration::from_millis(3000));
    let (u, ws) = (UserId::new(), WorkspaceId::new());
    let (c1, c2, g1, g2) = (unique("c1"), unique("c2"), unique("g1"), unique("g2"));
    reg.register(conn(&c1, u, ws, &g1)).await.unwrap();
    reg.register(conn(&c2, u, ws, &g2)).await.unwrap();
    let got = reg.connections_of_user(u).await.unwrap();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|c| c.state == SessionState::Connected));

    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(reg.touch(&c1, Millis::now()).await.unwrap());
    tokio::time::sleep(Duration::from_millis(1800)).await;
    // c2 was not touched within the TTL: its hash expired by itself, no sweeper involved.
    assert_eq!(ids(reg.connections_of_user(u).await.unwrap()), vec![c1.clone()]);
    assert_eq!(ids(reg.connections_of_users(&[u, u]).await.unwrap()), vec![c1.clone()]);
    assert!(reg.connections_of_gateway(&g2).await.unwrap().is_empty());
    assert_eq!(ids(reg.connections_of_gateway(&g1).await.unwrap()), vec![c1.clone()]);
    let all: HashSet<String> = reg.all_connections().await.unwrap().into_iter().map(|c| c.connection_id).collect();
    assert!(all.contains(&c1) && !all.contains(&c2));
    assert!(!reg.touch(&c2, Millis::now()).await.unwrap(), "an expired connection cannot be revived");
    assert_eq!(reg.online_users(Some(ws)).await.unwrap(), vec![u]);

    tokio::time::sleep(Duration::from_millis(3200)).await;
    assert!(reg.connections_of_user(u).await.unwrap().is_empty());
    assert!(reg.online_users(Some(ws)).await.unwrap().is_empty(), "offline once every connection expired");
    assert!(!reg.online_users(None).await.unwrap().contains(&u));
    // Nothing of the user's connections is left in Redis.
    let mut raw = raw(&redis_url()).await;
    for key in [keys::connection(&c1), keys::user_connections(u), keys::gateway_connections(&g1)] {
        assert!(!raw.exists::<_, bool>(&key).await.unwrap(), "{key} expired");
    }
    assert!(reg.last_seen(u).await.unwrap().is_some(), "last seen outlives the connections");
}

#[tokio::test]
async fn online_users_by_workspace() {
    let reg = registry(Duration::from_secs(30)).await;
    let (ws1, ws2) = (WorkspaceId::new(), WorkspaceId::new());
    let (a, b, c) = (UserId::new(), UserId::new(), UserId::new());
    let (g1, g2) = (unique("g1"), unique("g2"));
    reg.register(conn(&unique("a1"), a, ws1, &g1)).await.unwrap();
    reg.register(conn(&unique("a2"), a, ws1, &g2)).await.unwrap();
    reg.register(conn(&unique("b1"), b, ws1, &g1)).await.unwrap();
    reg.register(conn(&unique("c1"), c, ws2, &g1)).await.unwrap();
    let mut in_ws1 = vec![a, b];
    in_ws1.sort();
    assert_eq!(reg.online_users(Some(ws1)).await.unwrap(), in_ws1);
    assert_eq!(reg.online_users(Some(ws2)).await.unwrap(), vec![c]);
    let all = reg.online_users(None).await.unwrap();
    assert!([a, b, c].iter().all(|u| all.contains(u)), "all workspaces");
    assert!(all.windows(2).all(|w| w[0] < w[1]), "sorted, distinct");
    assert_eq!(reg.connections_of_gateway(&g1).await.unwrap().len(), 3);
    assert_eq!(reg.connections_of_users(&[a, c, a]).await.unwrap().len(), 3);
    assert!(reg.connections_of_users(&[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn unregister_removes_from_every_index_and_records_last_seen() {
    let reg = registry(Duration::from_secs(30)).await;
    let (a, ws) = (UserId::new(), WorkspaceId::new());
    let (a1, a2, g1, g2) = (unique("a1"), unique("a2"), unique("g1"), unique("g2"));
    assert_eq!(reg.last_seen(a).await.unwrap(), None);
    reg.register(conn(&a1, a, ws, &g1)).await.unwrap();
    reg.register(conn(&a2, a, ws, &g1)).await.unwrap();
    let seen_at_register = reg.last_seen(a).await.unwrap().expect("set by register");
    assert!(reg.unregister(&a1).await.unwrap());
    assert!(!reg.unregister(&a1).await.unwrap(), "second unregister reports unknown");
    assert_eq!(reg.connections_of_gateway(&g1).await.unwrap().len(), 1);
    assert_eq!(reg.online_users(Some(ws)).await.unwrap(), vec![a], "still online on a2");
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert!(reg.unregister(&a2).await.unwrap());
    assert!(reg.connections_of_user(a).await.unwrap().is_empty());
    assert!(reg.connections_of_gateway(&g1).await.unwrap().is_empty());
    assert!(reg.online_users(Some(ws)).await.unwrap().is_empty(), "offline at once, not after the TTL");
    assert!(!reg.all_connections().await.unwrap().iter().any(|c| c.user_id == a));
    assert!(!reg.touch(&a2, Millis::now()).await.unwrap());
    let seen_at_unregister = reg.last_seen(a).await.unwrap().unwrap();
    assert!(seen_at_unregister > seen_at_register);

    // Re-registering the same id on another gateway moves it.
    reg.register(conn(&a1, a, ws, &g1)).await.unwrap();
    reg.register(conn(&a1, a, ws, &g2)).await.unwrap();
    assert!(reg.connections_of_gateway(&g1).await.unwrap().is_empty());
    assert_eq!(ids(reg.connections_of_gateway(&g2).await.unwrap()), vec![a1.clone()]);
    // ... and to another user: the first one goes offline.
    let b = UserId::new();
    reg.register(conn(&a1, b, ws, &g2)).await.unwrap();
    assert!(reg.connections_of_user(a).await.unwrap().is_empty());
    assert_eq!(reg.online_users(Some(ws)).await.unwrap(), vec![b]);
}

#[tokio::test]
async fn the_connection_hash_has_the_seed_fields_and_a_heartbeat_ttl() {
    let cfg = RedisRegistryConfig { ttl: Duration::from_secs(20), ..RedisRegistryConfig::default() };
    let reg = RedisRegistry::connect_with(&redis_url(), cfg).await.unwrap();
    reg.ping().await.unwrap();
    let (u, ws, id, gw) = (UserId::new(), WorkspaceId::new(), unique("c"), unique("g"));
    let mut c = conn(&id, u, ws, &gw);
    c.connected_at = Millis(1_700_000_000_000);
    c.last_ping_at = Millis(1_700_000_000_000);
    reg.register(c.clone()).await.unwrap();
    let mut raw = raw(&redis_url()).await;
    let hash: std::collections::HashMap<String, String> = raw.hgetall(keys::connection(&id)).await.unwrap();
    let expect = [
        ("connectionId", id.clone()),
        ("userId", u.to_string()),
        ("workspaceId", ws.to_string()),
        ("gatewayNodeId", gw.clone()),
        ("connectedAt", "1700000000000".to_owned()),
        ("lastPingAt", "1700000000000".to_owned()),
        ("deviceType", "web".to_owned()),
        ("ipAddress", "10.0.0.1".to_owned()),
        ("sessionState", "CONNECTED".to_owned()),
    ];
    assert_eq!(hash.len(), expect.len());
    for (k, v) in expect {
        assert_eq!(hash.get(k), Some(&v), "field {k}");
    }
    let pttl: i64 = raw.pttl(keys::connection(&id)).await.unwrap();
    assert!(pttl > 0 && pttl <= 20_000, "hash expires within the TTL, got {pttl}");
    let members: Vec<String> = raw.smembers(keys::user_connections(u)).await.unwrap();
    assert_eq!(members, vec![id.clone()]);
    let members: Vec<String> = raw.smembers(keys::gateway_connections(&gw)).await.unwrap();
    assert_eq!(members, vec![id.clone()]);

    // touch keeps the later ping instant; lookups report it.
    assert!(reg.touch(&id, Millis(1_700_000_005_000)).await.unwrap());
    assert!(reg.touch(&id, Millis(1_700_000_001_000)).await.unwrap());
    let got = reg.connections_of_user(u).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].last_ping_at, Millis(1_700_000_005_000));
    c.last_ping_at = Millis(1_700_000_005_000);
    c.state = SessionState::Connected;
    assert_eq!(got[0], c);
    assert!(!reg.touch(&unique("never-registered"), Millis::now()).await.unwrap());
}

#[tokio::test]
async fn gateways_of_users_lists_each_live_user_and_gateway_once() {
    let reg = registry(Duration::from_millis(1500)).await;
    let ws = WorkspaceId::new();
    let (a, b, c) = (UserId::new(), UserId::new(), UserId::new());
    let (g1, g2, g3) = (unique("g1"), unique("g2"), unique("g3"));
    let (a1, a2, a3, b1, c1) = (unique("a1"), unique("a2"), unique("a3"), unique("b1"), unique("c1"));
    reg.register(conn(&a1, a, ws, &g1)).await.unwrap();
    reg.register(conn(&a2, a, ws, &g1)).await.unwrap(); // a second device on g1
    reg.register(conn(&a3, a, ws, &g2)).await.unwrap();
    reg.register(conn(&b1, b, ws, &g1)).await.unwrap();
    reg.register(conn(&c1, c, ws, &g3)).await.unwrap();
    let pairs = |v: Vec<(UserId, std::sync::Arc<str>)>| {
        let mut v: Vec<(UserId, String)> = v.into_iter().map(|(u, g)| (u, g.to_string())).collect();
        v.sort();
        v
    };
    let want = |mut v: Vec<(UserId, &String)>| {
        v.sort();
        v.into_iter().map(|(u, g)| (u, g.clone())).collect::<Vec<_>>()
    };
    let got = reg.gateways_of_users(&[a, b, a, UserId::new()]).await.unwrap();
    assert_eq!(pairs(got.clone()), want(vec![(a, &g1), (a, &g2), (b, &g1)]), "repeats once, unknown user absent");
    let on_g1: Vec<_> = got.iter().filter(|(_, g)| **g == *g1).map(|(_, g)| g).collect();
    assert!(std::sync::Arc::ptr_eq(on_g1[0], on_g1[1]), "one allocation per gateway id per call");
    assert!(reg.gateways_of_users(&[]).await.unwrap().is_empty());
    // Agrees with the full lookup.
    let mut full: Vec<(UserId, String)> = reg
        .connections_of_users(&[a, b, c])
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.user_id, c.gateway_node_id))
        .collect();
    full.sort();
    full.dedup();
    assert_eq!(pairs(reg.gateways_of_users(&[a, b, c]).await.unwrap()), full);

    // Unregistered and expired connections vanish (c's hash expires; a and b heart-beat).
    assert!(reg.unregister(&a3).await.unwrap());
    tokio::time::sleep(Duration::from_millis(800)).await;
    for id in [&a1, &a2, &b1] {
        assert!(reg.touch(id, Millis::now()).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(pairs(reg.gateways_of_users(&[a, b, c]).await.unwrap()), want(vec![(a, &g1), (b, &g1)]));
    let mut raw = raw(&redis_url()).await;
    let left: Vec<String> = raw.smembers(keys::user_connections(c)).await.unwrap();
    assert!(left.is_empty(), "the expired id was removed from the user's set: {left:?}");
}

#[tokio::test]
async fn a_zero_ttl_is_refused() {
    let err = RedisRegistry::connect(&redis_url(), Duration::ZERO).await.unwrap_err();
    assert!(matches!(err, chat_redis::ConnectError::InvalidConfig(_)), "{err}");
    let err = RedisRegistry::connect("http://not-redis", Duration::from_secs(1)).await.unwrap_err();
    assert!(matches!(err, chat_redis::ConnectError::InvalidUrl(_)), "{err}");
}
