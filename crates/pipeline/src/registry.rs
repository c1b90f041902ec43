//! The connection registry: which live connection of which user is on which gateway node.
//!
//! Follows the seed's `connection.v1.ConnectionManager` service (`Connection`, `SessionState`,
//! `RegisterConnection`, `UnregisterConnection`, `UpdateLastPing`, `GetConnectionsByUser`,
//! `GetOnlineUsers`, `GetConnectionsByGatewayNode`, `GetAllConnections`). In serve mode the
//! implementation is [`InMemoryRegistry`]; in scale-out mode a Redis implementation keeps the
//! seed's layout (a hash per connection id, a set of connection ids per user and per gateway
//! node) behind the same [`ConnectionRegistry`] trait.
//!
//! Liveness is a heartbeat TTL: a connection whose last ping (or, before the first ping, its
//! connect instant) is older than the TTL counts as expired: it is excluded from every lookup
//! and removed by [`InMemoryRegistry::sweep_expired`]. Gateways call
//! [`ConnectionRegistry::touch`] on every heart-beat (well within the TTL).
//!
//! Bounds: the registry holds one entry per live connection. Capping connections per user
//! (and per node) is the gateway's job, at handshake, before it registers a connection
//! (`Limits`, "connections per user"); the registry itself accepts whatever it is given.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use chat_domain::{Millis, UserId, WorkspaceId};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::Result;

/// Seed `connection.v1.SessionState`; the discriminants are the proto enum numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SessionState {
    /// `SESSION_STATE_UNKNOWN = 0`.
    #[default]
    Unknown = 0,
    /// `CONNECTED = 1`: registered and heart-beating.
    Connected = 1,
    /// `DISCONNECTED = 2`: closed by the client or the gateway.
    Disconnected = 2,
    /// `EXPIRED = 3`: no heart-beat within the TTL.
    Expired = 3,
}

impl SessionState {
    /// The proto enum number.
    pub fn as_i32(self) -> i32 {
        self as i32
    }

    /// Inverse of [`SessionState::as_i32`]; unknown numbers map to [`SessionState::Unknown`].
    pub fn from_i32(n: i32) -> Self {
        match n {
            1 => SessionState::Connected,
            2 => SessionState::Disconnected,
            3 => SessionState::Expired,
            _ => SessionState::Unknown,
        }
    }
}

/// One live WebSocket connection (seed `connection.v1.Connection`, same fields; camelCase JSON
/// as the seed's Redis hash stores it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    /// `connection_id = 1`: unique per connection (the gateway's session id).
    pub connection_id: String,
    /// `user_id = 2`: the authenticated user.
    pub user_id: UserId,
    /// `workspace_id = 3`: the user's workspace.
    pub workspace_id: WorkspaceId,
    /// `gateway_node_id = 4`: the gateway node holding the socket; names its delivery stream.
    pub gateway_node_id: String,
    /// `connected_at = 5`: handshake instant.
    pub connected_at: Millis,
    /// `last_ping_at = 6`: latest heart-beat (equal to `connected_at` until the first one).
    pub last_ping_at: Millis,
    /// `device_type = 7`: free-form client kind (`web`, `ios`, ...), may be empty.
    pub device_type: String,
    /// `ip_address = 8`: the client's address as the gateway saw it.
    pub ip_address: String,
    /// `session_state = 9`. Lookups only return live connections; they report
    /// [`SessionState::Connected`].
    pub state: SessionState,
}

impl Connection {
    /// The instant liveness is measured from: the later of `connected_at` and `last_ping_at`.
    pub fn last_seen(&self) -> Millis {
        self.connected_at.max(self.last_ping_at)
    }
}

/// Where live connections are (seed `ConnectionManager`). All methods are cheap enough to call
/// per event; [`ConnectionRegistry::gateways_of_users`] is the batch lookup of the fanout.
///
/// Errors: [`crate::PipelineError::Unavailable`] when the backing store (Redis) cannot be
/// reached; the in-memory implementation never fails.
#[async_trait]
pub trait ConnectionRegistry: Send + Sync {
    /// Registers (or replaces, by `connection_id`) a connection; it is stored as
    /// [`SessionState::Connected`] (seed `RegisterConnection`).
    async fn register(&self, conn: Connection) -> Result<()>;
    /// Removes a connection; `false` when it was unknown (seed `UnregisterConnection`).
    async fn unregister(&self, connection_id: &str) -> Result<bool>;
    /// Records a heart-beat at `at` (seed `UpdateLastPing`); `false` when the connection is
    /// unknown or already expired (the gateway then registers it again or closes it).
    async fn touch(&self, connection_id: &str, at: Millis) -> Result<bool>;
    /// Live connections of one user, all devices and gateways (seed `GetConnectionsByUser`).
    async fn connections_of_user(&self, user: UserId) -> Result<Vec<Connection>>;
    /// Live connections of many users in one call, in no particular order.
    async fn connections_of_users(&self, users: &[UserId]) -> Result<Vec<Connection>>;
    /// Where the live connections of many users are, in one call (the fanout's lookup): one
    /// `(user, gateway node id)` pair per user of `users` and gateway node holding at least one
    /// live connection of that user. Each pair appears once (a user listed twice in `users`,
    /// or with several connections on one gateway, still yields one pair per gateway); users
    /// without a live connection yield nothing; no particular order. Liveness is that of
    /// [`ConnectionRegistry::connections_of_users`].
    ///
    /// Unlike `connections_of_users` it builds no [`Connection`]: a gateway id is an
    /// `Arc<str>`, and implementations that keep ids in memory hand out clones of one shared
    /// allocation per gateway. The default derives the pairs from `connections_of_users`
    /// (correct for every implementation, no cheaper); [`InMemoryRegistry`] and the Redis
    /// registry override it.
    async fn gateways_of_users(&self, users: &[UserId]) -> Result<Vec<(UserId, Arc<str>)>> {
        let mut interned: HashMap<String, Arc<str>> = HashMap::new();
        let mut pairs: HashSet<(UserId, Arc<str>)> = HashSet::new();
        for c in self.connections_of_users(users).await? {
            let g = interned.entry(c.gateway_node_id).or_insert_with_key(|g| Arc::from(g.as_str()));
            pairs.insert((c.user_id, Arc::clone(g)));
        }
        Ok(pairs.into_iter().collect())
    }
    /// Live connections held by one gateway node (seed `GetConnectionsByGatewayNode`).
    async fn connections_of_gateway(&self, gateway_node_id: &str) -> Result<Vec<Connection>>;
    /// Every live connection (seed `GetAllConnections`).
    async fn all_connections(&self) -> Result<Vec<Connection>>;
    /// Distinct users with at least one live connection, in `workspace` or in all workspaces
    /// for `None` (seed `GetOnlineUsers`, where an empty workspace id means all).
    async fn online_users(&self, workspace: Option<WorkspaceId>) -> Result<Vec<UserId>>;
}

/// A stored connection with its gateway id interned: the same `Arc<str>` as the key of
/// [`Maps::by_gateway`], so [`ConnectionRegistry::gateways_of_users`] hands out reference
/// counts, not copies.
struct Slot {
    conn: Connection,
    gateway: Arc<str>,
}

/// The maps of [`InMemoryRegistry`], kept consistent with each other under one lock.
#[derive(Default)]
struct Maps {
    by_id: HashMap<String, Slot>,
    by_user: HashMap<UserId, HashSet<String>>,
    by_gateway: HashMap<Arc<str>, HashSet<String>>,
}

impl Maps {
    fn insert(&mut self, conn: Connection) {
        self.remove(&conn.connection_id);
        let gateway = match self.by_gateway.get_key_value(conn.gateway_node_id.as_str()) {
            Some((g, _)) => Arc::clone(g),
            None => Arc::from(conn.gateway_node_id.as_str()),
        };
        self.by_user.entry(conn.user_id).or_default().insert(conn.connection_id.clone());
        self.by_gateway.entry(Arc::clone(&gateway)).or_default().insert(conn.connection_id.clone());
        self.by_id.insert(conn.connection_id.clone(), Slot { conn, gateway });
    }

    fn remove(&mut self, id: &str) -> Option<Connection> {
        let Slot { conn, gateway } = self.by_id.remove(id)?;
        if let Some(set) = self.by_user.get_mut(&conn.user_id) {
            set.remove(id);
            if set.is_empty() {
                self.by_user.remove(&conn.user_id);
            }
        }
        if let Some(set) = self.by_gateway.get_mut(&gateway) {
            set.remove(id);
            if set.is_empty() {
                self.by_gateway.remove(&gateway);
            }
        }
        Some(conn)
    }
}

/// A clock returning the current instant (injectable for tests).
pub type Clock = Arc<dyn Fn() -> Millis + Send + Sync>;

/// The serve-mode [`ConnectionRegistry`]: three maps in memory with a heartbeat TTL.
pub struct InMemoryRegistry {
    /// All maps under one `std` lock: every operation is a few map lookups with no `.await`
    /// inside, so readers (fanout) and writers (gateways) never hold it long; a read-write lock
    /// lets concurrent fanout lookups proceed together.
    maps: RwLock<Maps>,
    /// Heart-beat TTL: a connection not seen for longer than this is expired.
    ttl: Duration,
    /// Source of "now" for expiry decisions.
    clock: Clock,
}

impl InMemoryRegistry {
    /// An empty registry whose connections expire `ttl` after their last heart-beat (the seed
    /// and our gateways heart-beat every 10 s; a TTL of 3 intervals, 30 s, is a good default).
    pub fn new(ttl: Duration) -> Self {
        Self::with_clock(ttl, Arc::new(Millis::now))
    }

    /// Like [`InMemoryRegistry::new`] with an explicit clock (tests).
    pub fn with_clock(ttl: Duration, clock: Clock) -> Self {
        InMemoryRegistry { maps: RwLock::new(Maps::default()), ttl, clock }
    }

    /// The heart-beat TTL.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn is_live(&self, conn: &Connection, now: Millis) -> bool {
        let ttl_ms = i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX);
        now.0.saturating_sub(conn.last_seen().0) <= ttl_ms
    }

    fn live_of<'a>(&self, maps: &'a Maps, ids: Option<&'a HashSet<String>>, now: Millis) -> Vec<Connection> {
        ids.into_iter()
            .flatten()
            .filter_map(|id| maps.by_id.get(id))
            .filter(|s| self.is_live(&s.conn, now))
            .map(|s| s.conn.clone())
            .collect()
    }

    /// Removes every expired connection and returns them (with [`SessionState::Expired`]).
    pub fn sweep_expired(&self) -> Vec<Connection> {
        let now = (self.clock)();
        let mut maps = self.maps.write().unwrap_or_else(|e| e.into_inner());
        let expired: Vec<String> =
            maps.by_id.values().filter(|s| !self.is_live(&s.conn, now)).map(|s| s.conn.connection_id.clone()).collect();
        expired
            .iter()
            .filter_map(|id| maps.remove(id))
            .map(|mut c| {
                c.state = SessionState::Expired;
                c
            })
            .collect()
    }

    /// Number of stored connections, expired-but-not-yet-swept ones included.
    pub fn len(&self) -> usize {
        self.maps.read().unwrap_or_else(|e| e.into_inner()).by_id.len()
    }

    /// True when no connection is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Spawns a task that calls [`InMemoryRegistry::sweep_expired`] every `every` until
    /// `cancel` fires. Needs a tokio runtime.
    pub fn spawn_sweeper(self: &Arc<Self>, every: Duration, cancel: CancellationToken) -> tokio::task::JoinHandle<()> {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tick.tick() => {
                        let gone = this.sweep_expired();
                        if !gone.is_empty() {
                            tracing::debug!(count = gone.len(), "swept expired connections");
                        }
                    }
                }
            }
        })
    }
}

#[async_trait]
impl ConnectionRegistry for InMemoryRegistry {
    async fn register(&self, mut conn: Connection) -> Result<()> {
        conn.state = SessionState::Connected;
        self.maps.write().unwrap_or_else(|e| e.into_inner()).insert(conn);
        Ok(())
    }

    async fn unregister(&self, connection_id: &str) -> Result<bool> {
        Ok(self.maps.write().unwrap_or_else(|e| e.into_inner()).remove(connection_id).is_some())
    }

    async fn touch(&self, connection_id: &str, at: Millis) -> Result<bool> {
        let now = (self.clock)();
        let mut maps = self.maps.write().unwrap_or_else(|e| e.into_inner());
        let Some(conn) = maps.by_id.get_mut(connection_id).map(|s| &mut s.conn) else { return Ok(false) };
        if !self.is_live(conn, now) {
            maps.remove(connection_id);
            return Ok(false);
        }
        conn.last_ping_at = conn.last_ping_at.max(at);
        Ok(true)
    }

    async fn connections_of_user(&self, user: UserId) -> Result<Vec<Connection>> {
        let now = (self.clock)();
        let maps = self.maps.read().unwrap_or_else(|e| e.into_inner());
        Ok(self.live_of(&maps, maps.by_user.get(&user), now))
    }

    async fn connections_of_users(&self, users: &[UserId]) -> Result<Vec<Connection>> {
        let now = (self.clock)();
        let maps = self.maps.read().unwrap_or_else(|e| e.into_inner());
        let mut seen = HashSet::with_capacity(users.len());
        let mut out = Vec::new();
        for u in users {
            if seen.insert(*u) {
                out.extend(self.live_of(&maps, maps.by_user.get(u), now));
            }
        }
        Ok(out)
    }

    async fn gateways_of_users(&self, users: &[UserId]) -> Result<Vec<(UserId, Arc<str>)>> {
        let now = (self.clock)();
        let maps = self.maps.read().unwrap_or_else(|e| e.into_inner());
        let mut seen = HashSet::with_capacity(users.len());
        let mut out = Vec::with_capacity(users.len());
        for u in users {
            let Some(ids) = maps.by_user.get(u) else { continue };
            if !seen.insert(*u) {
                continue;
            }
            let first = out.len();
            for slot in ids.iter().filter_map(|id| maps.by_id.get(id)) {
                // A user has a handful of connections: a linear scan dedupes its gateways.
                if self.is_live(&slot.conn, now) && !out[first..].iter().any(|(_, g)| *g == slot.gateway) {
                    out.push((*u, Arc::clone(&slot.gateway)));
                }
            }
        }
        Ok(out)
    }

    async fn connections_of_gateway(&self, gateway_node_id: &str) -> Result<Vec<Connection>> {
        let now = (self.clock)();
        let maps = self.maps.read().unwrap_or_else(|e| e.into_inner());
        Ok(self.live_of(&maps, maps.by_gateway.get(gateway_node_id), now))
    }

    async fn all_connections(&self) -> Result<Vec<Connection>> {
        let now = (self.clock)();
        let maps = self.maps.read().unwrap_or_else(|e| e.into_inner());
        Ok(maps.by_id.values().filter(|s| self.is_live(&s.conn, now)).map(|s| s.conn.clone()).collect())
    }

    async fn online_users(&self, workspace: Option<WorkspaceId>) -> Result<Vec<UserId>> {
        let now = (self.clock)();
        let maps = self.maps.read().unwrap_or_else(|e| e.into_inner());
        let mut users: Vec<UserId> = maps
            .by_id
            .values()
            .map(|s| &s.conn)
            .filter(|c| workspace.is_none_or(|w| c.workspace_id == w) && self.is_live(c, now))
            .map(|c| c.user_id)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        users.sort();
        Ok(users)
    }
}
