//! [`RedisRegistry`]: the connection registry in Redis, in the seed's layout.
//!
//! Keys (all times in ms of Redis's own clock, `TIME`; see `docs/ops/redis.md`):
//!
//! | key | type | holds | expiry |
//! |---|---|---|---|
//! | `connection:{connectionId}` | hash | the seed's `Connection` fields, camelCase | TTL, renewed by every heart-beat |
//! | `user:{userId}:connections` | set | connection ids of the user | extended to the TTL by register/touch |
//! | `gatewayId:{gatewayNodeId}:connections` | set | connection ids on the gateway node | likewise |
//! | `workspace:{workspaceId}:users:online` | sorted set | user id → expiry deadline | members pruned by score |
//! | `users:online` | sorted set | user id → expiry deadline (all workspaces) | likewise |
//! | `connections:live` | sorted set | connection id → expiry deadline | likewise |
//! | `user:{userId}:lastSeen` | string | last register/heart-beat/unregister instant | `last_seen_retention` |
//!
//! The hash's key TTL is the liveness rule: a connection not touched within the TTL expires by
//! itself, so a gateway that dies leaves nothing behind that lookups would return. The index
//! sets may briefly list expired ids; every lookup skips them and removes them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chat_domain::{Millis, UserId, WorkspaceId};
use chat_pipeline::{Connection, ConnectionRegistry, Result, SessionState};
use redis::aio::ConnectionManager;

use crate::conn::bad_reply;
use crate::{ConnectError, RedisConnectConfig, connect_manager, map_err, scripts};

/// Key names of the registry (the Lua scripts build the same ones).
pub mod keys {
    use chat_domain::{UserId, WorkspaceId};

    /// `connection:{connectionId}`: the connection's hash.
    pub fn connection(connection_id: &str) -> String {
        format!("connection:{connection_id}")
    }

    /// `user:{userId}:connections`: set of the user's connection ids.
    pub fn user_connections(user: UserId) -> String {
        format!("user:{user}:connections")
    }

    /// `gatewayId:{gatewayNodeId}:connections`: set of the node's connection ids.
    pub fn gateway_connections(gateway_node_id: &str) -> String {
        format!("gatewayId:{gateway_node_id}:connections")
    }

    /// `workspace:{workspaceId}:users:online`: sorted set, user id → expiry deadline (ms).
    pub fn workspace_online(workspace: WorkspaceId) -> String {
        format!("workspace:{workspace}:users:online")
    }

    /// `users:online`: sorted set of every workspace's online users → expiry deadline (ms).
    pub const ALL_ONLINE: &str = "users:online";

    /// `connections:live`: sorted set, connection id → expiry deadline (ms).
    pub const LIVE_CONNECTIONS: &str = "connections:live";

    /// `user:{userId}:lastSeen`: the user's last-seen instant, decimal ms.
    pub fn last_seen(user: UserId) -> String {
        format!("user:{user}:lastSeen")
    }
}

/// Settings of [`RedisRegistry`].
#[derive(Clone, Debug)]
pub struct RedisRegistryConfig {
    /// Heart-beat TTL: a connection not touched for this long expires; default 30 s (three
    /// 10 s STOMP heart-beats). At least 1 ms.
    pub ttl: Duration,
    /// How long `user:{userId}:lastSeen` is kept after the user's last activity; default 30
    /// days. At least 1 ms.
    pub last_seen_retention: Duration,
    /// Connection settings.
    pub connect: RedisConnectConfig,
}

impl Default for RedisRegistryConfig {
    fn default() -> Self {
        RedisRegistryConfig {
            ttl: Duration::from_secs(30),
            last_seen_retention: Duration::from_secs(30 * 24 * 3600),
            connect: RedisConnectConfig::default(),
        }
    }
}

/// The scale-out [`ConnectionRegistry`] on Redis (see the module doc for the keys). Cheap to
/// clone; clones share one multiplexed connection.
#[derive(Clone)]
pub struct RedisRegistry {
    conn: ConnectionManager,
    ttl_ms: u64,
    last_seen_ms: u64,
}

fn millis(d: Duration, name: &str) -> Result<u64, ConnectError> {
    match u64::try_from(d.as_millis()) {
        Ok(ms) if ms >= 1 => Ok(ms),
        _ => Err(ConnectError::InvalidConfig(format!("{name} must be between 1 ms and u64::MAX ms, got {d:?}"))),
    }
}

impl RedisRegistry {
    /// Connects to `url` (`redis://[user:password@]host[:port][/db]`) with heart-beat `ttl`
    /// and default settings otherwise.
    ///
    /// # Errors
    /// [`ConnectError::InvalidUrl`], [`ConnectError::InvalidConfig`] (a zero TTL), or
    /// [`chat_pipeline::PipelineError::Unavailable`] when Redis does not answer.
    pub async fn connect(url: &str, ttl: Duration) -> Result<Self, ConnectError> {
        Self::connect_with(url, RedisRegistryConfig { ttl, ..RedisRegistryConfig::default() }).await
    }

    /// Connects with explicit settings; see [`RedisRegistry::connect`].
    ///
    /// # Errors
    /// As [`RedisRegistry::connect`].
    pub async fn connect_with(url: &str, cfg: RedisRegistryConfig) -> Result<Self, ConnectError> {
        let ttl_ms = millis(cfg.ttl, "registry ttl")?;
        let last_seen_ms = millis(cfg.last_seen_retention, "last_seen_retention")?;
        let conn = connect_manager(url, &cfg.connect, Duration::ZERO).await?;
        Ok(RedisRegistry { conn, ttl_ms, last_seen_ms })
    }

    /// The heart-beat TTL.
    pub fn ttl(&self) -> Duration {
        Duration::from_millis(self.ttl_ms)
    }

    /// Readiness: `PING`.
    ///
    /// # Errors
    /// [`chat_pipeline::PipelineError::Unavailable`] when Redis does not answer.
    pub async fn ping(&self) -> Result<()> {
        let mut conn = self.conn.clone();
        redis::cmd("PING").query_async::<()>(&mut conn).await.map_err(map_err)
    }

    /// When the user was last seen: the latest register, heart-beat or unregister of any of
    /// its connections (Redis clock), kept for `last_seen_retention` after it; `None` when
    /// unknown. For presence's "last seen" of an offline user.
    ///
    /// # Errors
    /// [`chat_pipeline::PipelineError::Unavailable`]; [`chat_pipeline::PipelineError::Unexpected`] when the key does not
    /// hold a decimal number.
    pub async fn last_seen(&self, user: UserId) -> Result<Option<Millis>> {
        let mut conn = self.conn.clone();
        let v: Option<String> =
            redis::cmd("GET").arg(keys::last_seen(user)).query_async(&mut conn).await.map_err(map_err)?;
        v.map(|s| s.parse::<i64>().map(Millis).map_err(|_| bad_reply(&format!("lastSeen of {user} is {s:?}"))))
            .transpose()
    }

    async fn hashes(&self, script: &redis::Script, args: &[String]) -> Result<Vec<Connection>> {
        let mut conn = self.conn.clone();
        let mut inv = script.prepare_invoke();
        for a in args {
            inv.arg(a);
        }
        let rows: Vec<Vec<String>> = inv.invoke_async(&mut conn).await.map_err(map_err)?;
        rows.iter().map(|r| parse_connection(r)).collect()
    }
}

/// Builds a [`Connection`] from a hash's flat field/value list.
fn parse_connection(flat: &[String]) -> Result<Connection> {
    let get = |name: &str| -> Result<&str> {
        flat.chunks_exact(2)
            .find(|kv| kv[0] == name)
            .map(|kv| kv[1].as_str())
            .ok_or_else(|| bad_reply(&format!("connection hash without field {name}")))
    };
    let id = get("connectionId")?;
    let bad = |field: &str, v: &str| bad_reply(&format!("connection {id}: field {field} = {v:?}"));
    let ms = |field: &str| -> Result<Millis> {
        let v = get(field)?;
        v.parse::<i64>().map(Millis).map_err(|_| bad(field, v))
    };
    Ok(Connection {
        connection_id: id.to_owned(),
        user_id: get("userId")?.parse().map_err(|_| bad("userId", get("userId").unwrap_or_default()))?,
        workspace_id: get("workspaceId")?
            .parse()
            .map_err(|_| bad("workspaceId", get("workspaceId").unwrap_or_default()))?,
        gateway_node_id: get("gatewayNodeId")?.to_owned(),
        connected_at: ms("connectedAt")?,
        last_ping_at: ms("lastPingAt")?,
        device_type: get("deviceType")?.to_owned(),
        ip_address: get("ipAddress")?.to_owned(),
        state: SessionState::Connected,
    })
}

fn ms_arg(m: Millis) -> String {
    m.0.to_string()
}

#[async_trait]
impl ConnectionRegistry for RedisRegistry {
    async fn register(&self, conn: Connection) -> Result<()> {
        let mut c = self.conn.clone();
        scripts::REGISTER
            .arg(self.ttl_ms)
            .arg(self.last_seen_ms)
            .arg(&conn.connection_id)
            .arg(conn.user_id.to_string())
            .arg(conn.workspace_id.to_string())
            .arg(&conn.gateway_node_id)
            .arg(ms_arg(conn.connected_at))
            .arg(ms_arg(conn.last_ping_at))
            .arg(&conn.device_type)
            .arg(&conn.ip_address)
            .invoke_async::<i64>(&mut c)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn unregister(&self, connection_id: &str) -> Result<bool> {
        let mut c = self.conn.clone();
        let n: i64 = scripts::UNREGISTER
            .arg(self.last_seen_ms)
            .arg(connection_id)
            .invoke_async(&mut c)
            .await
            .map_err(map_err)?;
        Ok(n == 1)
    }

    async fn touch(&self, connection_id: &str, at: Millis) -> Result<bool> {
        let mut c = self.conn.clone();
        let n: i64 = scripts::TOUCH
            .arg(self.ttl_ms)
            .arg(self.last_seen_ms)
            .arg(connection_id)
            .arg(ms_arg(at))
            .invoke_async(&mut c)
            .await
            .map_err(map_err)?;
        Ok(n == 1)
    }

    async fn connections_of_user(&self, user: UserId) -> Result<Vec<Connection>> {
        self.hashes(&scripts::BY_SETS, &[keys::user_connections(user)]).await
    }

    async fn connections_of_users(&self, users: &[UserId]) -> Result<Vec<Connection>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let mut distinct = users.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        let set_keys: Vec<String> = distinct.into_iter().map(keys::user_connections).collect();
        self.hashes(&scripts::BY_SETS, &set_keys).await
    }

    /// One script call reading only `gatewayNodeId` of each listed connection hash (no whole
    /// hashes, no [`Connection`]s); equal gateway ids share one `Arc<str>` per call.
    async fn gateways_of_users(&self, users: &[UserId]) -> Result<Vec<(UserId, Arc<str>)>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let mut distinct = users.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        let mut c = self.conn.clone();
        let mut inv = scripts::GATEWAYS_OF_USERS.prepare_invoke();
        for u in &distinct {
            inv.arg(u.to_string());
        }
        let flat: Vec<String> = inv.invoke_async(&mut c).await.map_err(map_err)?;
        if !flat.len().is_multiple_of(2) {
            return Err(bad_reply("gateways of users: odd reply length"));
        }
        let mut interned: HashMap<String, Arc<str>> = HashMap::new();
        let mut out = Vec::with_capacity(flat.len() / 2);
        let mut it = flat.into_iter();
        while let (Some(u), Some(g)) = (it.next(), it.next()) {
            let user = u.parse::<UserId>().map_err(|_| bad_reply(&format!("gateways of users: user id {u:?}")))?;
            let gateway = interned.entry(g).or_insert_with_key(|g| Arc::from(g.as_str()));
            out.push((user, Arc::clone(gateway)));
        }
        Ok(out)
    }

    async fn connections_of_gateway(&self, gateway_node_id: &str) -> Result<Vec<Connection>> {
        self.hashes(&scripts::BY_SETS, &[keys::gateway_connections(gateway_node_id)]).await
    }

    async fn all_connections(&self) -> Result<Vec<Connection>> {
        self.hashes(&scripts::ALL, &[]).await
    }

    async fn online_users(&self, workspace: Option<WorkspaceId>) -> Result<Vec<UserId>> {
        let key = workspace.map_or_else(|| keys::ALL_ONLINE.to_owned(), keys::workspace_online);
        let mut c = self.conn.clone();
        let ids: Vec<String> = scripts::ONLINE.arg(key).invoke_async(&mut c).await.map_err(map_err)?;
        let mut users = ids
            .iter()
            .map(|s| s.parse::<UserId>().map_err(|_| bad_reply(&format!("online user id {s:?}"))))
            .collect::<Result<Vec<_>>>()?;
        users.sort();
        Ok(users)
    }
}

impl std::fmt::Debug for RedisRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRegistry").field("ttl_ms", &self.ttl_ms).finish_non_exhaustive()
    }
}
