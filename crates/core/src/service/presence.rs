//! Presence: online / offline and last seen per user, derived from the connection registry.
//!
//! [`PresenceRegistry`] wraps a [`ConnectionRegistry`] (gateways and gRPC register through
//! it, see [`super::Realtime::registry`]) and watches connections come and go:
//! * a user's first connection registered through it makes the user `ONLINE`;
//! * when a connection is unregistered and the registry holds no other live connection of
//!   its user, the user becomes `OFFLINE` after `presence_offline_grace` (default 10 s) with
//!   `lastSeenAt` = the instant the last connection closed, unless a connection of the user
//!   registers within the grace period: then nothing is announced at all (a page reload, a
//!   network switch or a gateway restart makes no OFFLINE/ONLINE pair for every co-member;
//!   reads report the user `ONLINE` with 0 connections meanwhile). A grace of zero announces
//!   at once;
//! * when the sweeper (every `presence_sweep_interval`) finds that all of an online user's
//!   connections expired (no heart-beat within the registry TTL, which already served as the
//!   grace period), the user becomes `OFFLINE` at once with `lastSeenAt` = its latest
//!   heart-beat. The sweeper is also the backstop of grace periods whose timer failed (the
//!   registry was unreachable).
//!
//! Each change is pushed, in order, as an ephemeral signal (no seq)
//! `{eventType:"PRESENCE", userId, status:"ONLINE"|"OFFLINE", lastSeenAt}` to the live
//! connections of every user who shares a conversation with that user (at most
//! `max_presence_recipients`). Reads ([`PresenceRegistry::presence_of`]) combine the
//! registry (online, latest heart-beat, number of connections) with the remembered last-seen
//! instants of offline users.
//!
//! Limits of this design: last-seen instants are kept in memory (at most
//! [`MAX_LAST_SEEN`] users; a restart forgets them: `lastSeenAt` is then `null` until the user
//! is seen again); with several gateway processes each tracker announces the users that
//! connected through it, so a user connected on two nodes may be announced `ONLINE` twice
//! (clients treat presence as state, not as a count).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use chat_domain::{ConversationId, DomainError, Millis, PresenceStatus, UserId, UserPresence, WorkspaceId};
use chat_pipeline::{Connection, ConnectionRegistry, DeliveryStreams, EphemeralSignal};
use chat_storage::Store;
use tokio::sync::{Mutex, mpsc};

use super::realtime::RealtimeConfig;
use super::{ChatService, ServiceResult};

/// Most offline users whose last-seen instant is remembered; beyond it the oldest tenth is
/// forgotten.
pub const MAX_LAST_SEEN: usize = 1_000_000;

/// Presence changes waiting to be pushed; beyond it changes are dropped (metric
/// `core_presence_dropped_total`; clients read presence over REST after a reconnect).
const ANNOUNCE_QUEUE: usize = 10_000;

/// A presence change to push.
#[derive(Debug)]
struct Change {
    user: UserId,
    status: PresenceStatus,
    last_seen: Millis,
}

/// A user whose last connection closed, within the grace period (still announced online).
#[derive(Clone, Copy, Debug)]
struct Pending {
    /// When the last connection closed (the `lastSeenAt` of the coming `OFFLINE`).
    since: Millis,
    /// Identifies this grace period: a timer whose generation no longer matches (the user
    /// reconnected, maybe left again) does nothing.
    generation: u64,
}

/// What the tracker knows; one async lock, held across the wrapped registry's calls so that
/// the decisions "first connection" / "last connection" are made one at a time.
#[derive(Default)]
struct State {
    /// Connections registered through this tracker, to their user.
    conns: HashMap<String, UserId>,
    /// Users announced online (including those in `pending`).
    online: HashSet<UserId>,
    /// Online users without a connection, within their grace period.
    pending: HashMap<UserId, Pending>,
    /// Last [`Pending::generation`] handed out.
    generation: u64,
    /// Latest heart-beat (or registration) seen per online user.
    pings: HashMap<UserId, Millis>,
    /// Last-seen instants of users that went offline.
    last_seen: HashMap<UserId, Millis>,
}

impl State {
    fn went_offline(&mut self, user: UserId, at: Millis) -> Change {
        self.online.remove(&user);
        self.pending.remove(&user);
        self.pings.remove(&user);
        if self.last_seen.len() >= MAX_LAST_SEEN {
            let mut instants: Vec<Millis> = self.last_seen.values().copied().collect();
            instants.sort_unstable();
            let cut = instants[instants.len() / 10];
            self.last_seen.retain(|_, at| *at > cut);
        }
        self.last_seen.insert(user, at);
        Change { user, status: PresenceStatus::Offline, last_seen: at }
    }
}

/// A [`ConnectionRegistry`] that tracks and announces presence (see the module docs).
pub struct PresenceRegistry {
    inner: Arc<dyn ConnectionRegistry>,
    state: Mutex<State>,
    changes: mpsc::Sender<Change>,
    /// How long a user without connections stays online ([`RealtimeConfig::presence_offline_grace`]).
    grace: Duration,
    /// This registry, for the grace timers (they must not keep it alive).
    me: Weak<PresenceRegistry>,
}

impl PresenceRegistry {
    /// Wraps `inner` and spawns the announcer (pushing changes through `streams` to the
    /// co-members found in `store`) and the expiry sweeper; both end when the returned
    /// registry is dropped.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn start(
        inner: Arc<dyn ConnectionRegistry>,
        streams: Arc<dyn DeliveryStreams>,
        store: Arc<dyn Store>,
        cfg: &RealtimeConfig,
    ) -> Arc<PresenceRegistry> {
        let (tx, rx) = mpsc::channel(ANNOUNCE_QUEUE);
        let this = Arc::new_cyclic(|me| PresenceRegistry {
            inner: inner.clone(),
            state: Mutex::new(State::default()),
            changes: tx,
            grace: cfg.presence_offline_grace,
            me: me.clone(),
        });
        tokio::spawn(announce(rx, inner, streams, store, cfg.max_presence_recipients));
        tokio::spawn(sweep_loop(Arc::downgrade(&this), cfg.presence_sweep_interval));
        this
    }

    /// The wrapped registry.
    pub fn inner(&self) -> &Arc<dyn ConnectionRegistry> {
        &self.inner
    }

    /// Presence of each of `users`, in the given order.
    ///
    /// # Errors
    /// The registry is unreachable.
    pub async fn presence_of(&self, users: &[UserId]) -> chat_pipeline::Result<Vec<UserPresence>> {
        let conns = self.inner.connections_of_users(users).await?;
        let mut live: HashMap<UserId, (u32, Millis)> = HashMap::new();
        for c in &conns {
            let e = live.entry(c.user_id).or_insert((0, c.last_seen()));
            e.0 += 1;
            e.1 = e.1.max(c.last_seen());
        }
        let state = self.state.lock().await;
        Ok(users
            .iter()
            .map(|u| match live.get(u) {
                Some((n, seen)) => UserPresence {
                    user_id: *u,
                    status: PresenceStatus::Online,
                    last_seen_at: Some(*seen),
                    connections: *n,
                },
                None => match state.pending.get(u) {
                    Some(p) => UserPresence {
                        user_id: *u,
                        status: PresenceStatus::Online,
                        last_seen_at: Some(p.since),
                        connections: 0,
                    },
                    None => UserPresence {
                        user_id: *u,
                        status: PresenceStatus::Offline,
                        last_seen_at: state.last_seen.get(u).copied(),
                        connections: 0,
                    },
                },
            })
            .collect())
    }

    /// Marks offline every online user without a live connection left (their connections
    /// expired, or their grace period ended and its timer did not announce it); returns how
    /// many went offline. Users within their grace period are left to their timer. Called by
    /// the sweeper.
    ///
    /// # Errors
    /// The registry is unreachable (nothing changes).
    pub async fn sweep(&self) -> chat_pipeline::Result<usize> {
        let mut state = self.state.lock().await;
        let online: Vec<UserId> = state.online.iter().copied().collect();
        let live: HashSet<UserId> = self.inner.gateways_of_users(&online).await?.into_iter().map(|(u, _)| u).collect();
        let now = Millis::now();
        let grace_ms = i64::try_from(self.grace.as_millis()).unwrap_or(i64::MAX);
        let mut n = 0;
        for user in online.into_iter().filter(|u| !live.contains(u)) {
            let at = match state.pending.get(&user) {
                Some(p) if now.0.saturating_sub(p.since.0) < grace_ms => continue,
                Some(p) => p.since,
                None => state.pings.get(&user).copied().unwrap_or(now),
            };
            state.conns.retain(|_, u| *u != user);
            let change = state.went_offline(user, at);
            self.announce(change);
            n += 1;
        }
        Ok(n)
    }

    /// Whether the registry holds a live connection of `user` (through any tracker), without
    /// copying its connections.
    async fn has_live_connection(&self, user: UserId) -> chat_pipeline::Result<bool> {
        Ok(!self.inner.gateways_of_users(&[user]).await?.is_empty())
    }

    /// Ends the grace period `generation` of `user`: `OFFLINE` unless the user reconnected
    /// meanwhile (here or, as the registry shows, through another tracker).
    async fn grace_ended(&self, user: UserId, generation: u64) -> chat_pipeline::Result<()> {
        let mut state = self.state.lock().await;
        let Some(p) = state.pending.get(&user).copied() else { return Ok(()) };
        if p.generation != generation {
            return Ok(());
        }
        if self.has_live_connection(user).await? {
            // Connected through another node: still online; the sweeper sees it expire.
            state.pending.remove(&user);
            return Ok(());
        }
        let change = state.went_offline(user, p.since);
        self.announce(change);
        Ok(())
    }

    /// The user's last connection closed at `at`: `OFFLINE` now (no grace) or when the grace
    /// period ends.
    fn last_connection_closed(&self, state: &mut State, user: UserId, at: Millis) {
        if self.grace.is_zero() {
            let change = state.went_offline(user, at);
            self.announce(change);
            return;
        }
        state.generation += 1;
        let generation = state.generation;
        state.pending.insert(user, Pending { since: at, generation });
        let (me, grace) = (self.me.clone(), self.grace);
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            let Some(this) = me.upgrade() else { return };
            if let Err(e) = this.grace_ended(user, generation).await {
                // The sweeper announces it later.
                tracing::warn!(error = %e, "presence: ending a grace period failed");
            }
        });
    }

    fn announce(&self, change: Change) {
        if self.changes.try_send(change).is_err() {
            metrics::counter!("core_presence_dropped_total").increment(1);
        }
    }
}

#[async_trait]
impl ConnectionRegistry for PresenceRegistry {
    async fn register(&self, conn: Connection) -> chat_pipeline::Result<()> {
        let mut state = self.state.lock().await;
        let (user, seen) = (conn.user_id, conn.last_seen());
        let id = conn.connection_id.clone();
        self.inner.register(conn).await?;
        state.conns.insert(id, user);
        let ping = state.pings.entry(user).or_insert(seen);
        *ping = (*ping).max(seen);
        // Back within the grace period: still online, nothing to announce.
        state.pending.remove(&user);
        if state.online.insert(user) {
            state.last_seen.remove(&user);
            self.announce(Change { user, status: PresenceStatus::Online, last_seen: seen });
        }
        Ok(())
    }

    async fn unregister(&self, connection_id: &str) -> chat_pipeline::Result<bool> {
        let mut state = self.state.lock().await;
        let removed = self.inner.unregister(connection_id).await?;
        if let Some(user) = state.conns.remove(connection_id)
            && state.online.contains(&user)
            && !state.pending.contains_key(&user)
            && !self.has_live_connection(user).await?
        {
            self.last_connection_closed(&mut state, user, Millis::now());
        }
        Ok(removed)
    }

    async fn touch(&self, connection_id: &str, at: Millis) -> chat_pipeline::Result<bool> {
        let live = self.inner.touch(connection_id, at).await?;
        if live {
            let mut state = self.state.lock().await;
            if let Some(user) = state.conns.get(connection_id).copied()
                && let Some(ping) = state.pings.get_mut(&user)
            {
                *ping = (*ping).max(at);
            }
        }
        Ok(live)
    }

    async fn connections_of_user(&self, user: UserId) -> chat_pipeline::Result<Vec<Connection>> {
        self.inner.connections_of_user(user).await
    }

    async fn connections_of_users(&self, users: &[UserId]) -> chat_pipeline::Result<Vec<Connection>> {
        self.inner.connections_of_users(users).await
    }

    async fn gateways_of_users(&self, users: &[UserId]) -> chat_pipeline::Result<Vec<(UserId, Arc<str>)>> {
        self.inner.gateways_of_users(users).await
    }

    async fn connections_of_gateway(&self, gateway_node_id: &str) -> chat_pipeline::Result<Vec<Connection>> {
        self.inner.connections_of_gateway(gateway_node_id).await
    }

    async fn all_connections(&self) -> chat_pipeline::Result<Vec<Connection>> {
        self.inner.all_connections().await
    }

    async fn online_users(&self, workspace: Option<WorkspaceId>) -> chat_pipeline::Result<Vec<UserId>> {
        self.inner.online_users(workspace).await
    }
}

/// Calls [`PresenceRegistry::sweep`] every `every` while the registry lives.
async fn sweep_loop(this: Weak<PresenceRegistry>, every: Duration) {
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(this) = this.upgrade() else { return };
        if let Err(e) = this.sweep().await {
            tracing::warn!(error = %e, "presence sweep failed");
        }
    }
}

/// Pushes presence changes, in order, to the users sharing a conversation with each user.
async fn announce(
    mut rx: mpsc::Receiver<Change>,
    registry: Arc<dyn ConnectionRegistry>,
    streams: Arc<dyn DeliveryStreams>,
    store: Arc<dyn Store>,
    max_recipients: usize,
) {
    while let Some(change) = rx.recv().await {
        let recipients = match store.co_member_ids(change.user, max_recipients).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "presence: reading co-members failed");
                continue;
            }
        };
        if recipients.is_empty() {
            continue;
        }
        let signal = EphemeralSignal {
            conversation_id: None,
            kind: "PRESENCE".into(),
            actor_id: change.user,
            payload: serde_json::json!({
                "status": change.status.as_str(),
                "lastSeenAt": change.last_seen.to_rfc3339(),
            }),
            exclude_connection: None,
            created_at: Millis::now(),
        };
        if let Err(e) = chat_pipeline::deliver_ephemeral(registry.as_ref(), streams.as_ref(), signal, &recipients).await
        {
            metrics::counter!("core_ephemeral_failed_total", "kind" => "PRESENCE").increment(1);
            tracing::debug!(error = %e, "presence signal not delivered");
        }
    }
}

impl ChatService {
    /// Presence of a user of the actor's workspace (presence is visible workspace-wide, like
    /// the user itself).
    ///
    /// # Errors
    /// `NotFound("user")` when unknown or of another workspace; `Unavailable` when presence
    /// is not enabled ([`ChatService::with_realtime`]) or the registry is unreachable.
    pub async fn presence(&self, actor: UserId, user: UserId) -> ServiceResult<UserPresence> {
        self.user(actor, user).await?;
        let mut list = self.presence_list(&[user]).await?;
        list.pop().ok_or_else(|| DomainError::Internal("presence lookup returned nothing".into()))
    }

    /// Presence of every member of a conversation, by join time. Members only.
    ///
    /// # Errors
    /// As [`chat_domain::authz::require_member`]; `Unavailable` as [`ChatService::presence`].
    pub async fn members_presence(&self, actor: UserId, conv: ConversationId) -> ServiceResult<Vec<UserPresence>> {
        self.conv_as_member(actor, conv).await?;
        let ids: Vec<UserId> = self.store.members(conv).await?.into_iter().map(|m| m.user_id).collect();
        self.presence_list(&ids).await
    }

    async fn presence_list(&self, users: &[UserId]) -> ServiceResult<Vec<UserPresence>> {
        let rt = self.realtime.as_ref().ok_or_else(|| DomainError::Unavailable("presence is not enabled".into()))?;
        rt.presence().presence_of(users).await.map_err(|e| DomainError::Unavailable(format!("presence: {e}")))
    }
}
