//! Delivery to local connections: the [`Hub`] of live sessions, the consumer task that reads
//! this node's delivery stream and pushes each delivery to every local connection of each
//! recipient, and the member cache behind `conversationMemberIds` and typing.
//!
//! Back-pressure: each connection has a bounded outbound queue
//! ([`crate::GatewayConfig::outbound_queue_len`]). The consumer never waits on a connection:
//! when a queue is full the connection is closed as a slow consumer (ERROR frame if the socket
//! still takes it, metric `gateway_slow_consumer_closed_total`), so one stalled reader can
//! neither grow memory nor delay anyone else.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chat_domain::{ConversationEvent, ConversationId, DomainError, EventPayload, UserId};
use chat_pipeline::{DeliveryBatch, DeliveryEntry, GapNotice, GatewayDelivery, PipelineError};
use chat_stomp::Version;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::Shared;
use crate::core::{GatewayCore, Identity};
use crate::destinations::SubscribeDestination;
use crate::json;

/// Name of the slow-consumer metric (counter).
pub const SLOW_CONSUMER_METRIC: &str = "gateway_slow_consumer_closed_total";

/// A conversation event rendered once for every local recipient.
#[derive(Debug)]
pub(crate) struct RenderedEvent {
    /// Conversation of the event.
    pub conversation_id: ConversationId,
    /// Its seq.
    pub seq: i64,
    /// JSON body ([`json::event_body`]).
    pub body: Bytes,
    /// The same body without `conversationMemberIds`, when `body` carries them (for
    /// subscriptions with [`MemberIdsField::Omit`]).
    pub without_member_ids: Option<Bytes>,
}

impl RenderedEvent {
    /// The body for a subscription's [`MemberIdsField`].
    pub fn body_for(&self, field: MemberIdsField) -> &Bytes {
        match (field, &self.without_member_ids) {
            (MemberIdsField::Omit, Some(bare)) => bare,
            _ => &self.body,
        }
    }
}

/// Whether a `/user/queue/messages` subscription's message events carry
/// `conversationMemberIds` (SUBSCRIBE header `conversation-member-ids: include | omit`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MemberIdsField {
    /// The seed's shape: every message event lists the conversation's member ids (default).
    #[default]
    Include,
    /// Left out: a channel of N members otherwise adds ~37·N bytes to every message frame;
    /// clients that track membership themselves (from `USER_JOINED`/`USER_LEFT` events and
    /// `GET /api/v1/conversations/{id}/members`) opt out.
    Omit,
}

/// A SUBSCRIBE as the writer needs it.
#[derive(Debug)]
pub(crate) struct SubscribeCmd {
    /// Subscription id.
    pub id: String,
    /// Destination.
    pub destination: SubscribeDestination,
    /// Whether MESSAGE frames carry an `ack` header (client / client-individual modes).
    pub ack_header: bool,
    /// Whether message events carry `conversationMemberIds`.
    pub member_ids: MemberIdsField,
    /// `resume` positions: replay every event after each seq first.
    pub resume: Vec<(ConversationId, i64)>,
    /// Encoded RECEIPT to write after the replay, if asked.
    pub receipt: Option<Bytes>,
}

/// CONNECTED as the writer needs it.
#[derive(Debug)]
pub(crate) struct ConnectedCmd {
    /// The encoded CONNECTED frame.
    pub frame: Bytes,
    /// The negotiated STOMP version.
    pub version: Version,
    /// Who the session is.
    pub identity: Identity,
    /// How often the server must send something (heart-beat), if at all.
    pub send_interval: Option<Duration>,
}

/// Work for a connection's writer task, in order. The one queue per connection carries
/// session replies and deliveries alike, so a connection's output keeps its order.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// CONNECTED was accepted (boxed: rare, and it would double the size of every item).
    Connected(Box<ConnectedCmd>),
    /// An encoded frame (RECEIPT, ...).
    Frame(Bytes),
    /// Write everything queued, then this frame (ERROR) if any, then close the socket.
    Close(Option<Bytes>),
    /// A conversation event for the `/user/queue/messages` subscriptions.
    Event(Arc<RenderedEvent>),
    /// An ephemeral body (typing) for the `/user/queue/messages` subscriptions.
    Ephemeral(Bytes),
    /// An ack offset for the `/user/queue/notifications/private` subscriptions.
    Notification(Bytes),
    /// Add a subscription (and replay its `resume` positions).
    Subscribe(Box<SubscribeCmd>),
    /// Remove a subscription (by id), then write the encoded RECEIPT if any.
    Unsubscribe(Box<(String, Option<Bytes>)>),
    /// Delivery entries were lost: repair these conversations from the store (empty = all).
    Resync(Arc<Vec<ConversationId>>),
    /// Write what is buffered, then a liveness probe (a WebSocket Ping, see
    /// [`crate::session::OutboundSink`]).
    Probe,
}

/// A live local connection as the hub sees it.
#[derive(Clone, Debug)]
pub(crate) struct ConnHandle {
    /// Session (= registry connection) id.
    pub session_id: Arc<str>,
    /// The connection's outbound queue.
    pub tx: crate::queue::OutboundTx,
    /// Cancelled to stop the connection (either half ended, or slow consumer).
    pub stop: CancellationToken,
    /// The WebSocket close status the connection ends with.
    pub close: Arc<CloseStatus>,
}

impl ConnHandle {
    /// Queues without waiting; a full queue closes the connection as a slow consumer.
    /// `false` when the item was not queued (queue full, or the connection is gone).
    pub fn offer(&self, item: Outbound) -> bool {
        match self.tx.try_send(item) {
            Ok(()) => true,
            Err(crate::queue::TrySendError::Full) => {
                self.close_slow();
                false
            }
            Err(crate::queue::TrySendError::Closed) => false,
        }
    }

    fn close_slow(&self) {
        self.close.set(close_code::POLICY, "slow consumer");
        if !self.close.slow.swap(true, Ordering::AcqRel) {
            metrics::counter!(SLOW_CONSUMER_METRIC).increment(1);
            tracing::info!(session = %self.session_id, "closing slow consumer");
        }
        self.stop.cancel();
    }
}

/// WebSocket close status codes (RFC 6455 section 7.4.1) the gateway sends.
pub(crate) mod close_code {
    /// DISCONNECT: normal closure.
    pub const NORMAL: u16 = 1000;
    /// Server shutdown.
    pub const GOING_AWAY: u16 = 1001;
    /// An ERROR frame (protocol, limit or authorization failure) or a slow consumer.
    pub const POLICY: u16 = 1008;
    /// A frame or WebSocket message over a size limit.
    pub const TOO_BIG: u16 = 1009;
}

/// The WebSocket close status a connection ends with: the first status set wins (the cause),
/// default 1000. Raw WebSocket sessions send it in their Close frame; SockJS ignores it.
#[derive(Debug, Default)]
pub(crate) struct CloseStatus {
    status: Mutex<Option<(u16, String)>>,
    /// Set by the WebSocket transport when the client sent a message over the size limit
    /// (the inbound stream then ends).
    pub too_big: AtomicBool,
    /// Set before the connection's `stop` when it is closed for being a slow consumer.
    pub slow: AtomicBool,
}

impl CloseStatus {
    /// Sets the status unless one is set already; `reason` is cut to fit a Close frame.
    pub fn set(&self, code: u16, reason: &str) {
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        if status.is_none() {
            let mut end = reason.len().min(120);
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            *status = Some((code, reason[..end].to_owned()));
        }
    }

    /// The status to send (1000 and no reason when none was set).
    pub fn get(&self) -> (u16, String) {
        self.status.lock().unwrap_or_else(|e| e.into_inner()).clone().unwrap_or((close_code::NORMAL, String::new()))
    }
}

/// The live sessions of this node, by user.
///
/// Concurrency: one `std::sync::RwLock` over the map. Readers (the delivery consumer, typing)
/// only look up and `try_send`, never `.await` while holding it; writers (connect/close) hold
/// it for one insert/remove. The per-user session cap is checked under the write lock, so two
/// concurrent CONNECTs cannot both take the last slot.
#[derive(Debug, Default)]
pub(crate) struct Hub {
    by_user: RwLock<HashMap<UserId, Vec<ConnHandle>>>,
}

impl Hub {
    /// Adds a session; `false` when the user already has `max` sessions here.
    pub fn add(&self, user: UserId, handle: ConnHandle, max: usize) -> bool {
        let mut map = self.by_user.write().unwrap_or_else(|e| e.into_inner());
        let list = map.entry(user).or_default();
        if list.len() >= max {
            return false;
        }
        list.push(handle);
        true
    }

    /// Removes a session.
    pub fn remove(&self, user: UserId, session_id: &str) {
        let mut map = self.by_user.write().unwrap_or_else(|e| e.into_inner());
        if let Some(list) = map.get_mut(&user) {
            list.retain(|h| &*h.session_id != session_id);
            if list.is_empty() {
                map.remove(&user);
            }
        }
    }

    /// Offers `make()` to every session of each user, except `exclude` (a session id).
    pub fn push(&self, users: &[UserId], exclude: Option<&str>, mut make: impl FnMut() -> Outbound) {
        let map = self.by_user.read().unwrap_or_else(|e| e.into_inner());
        for user in users {
            for h in map.get(user).into_iter().flatten() {
                if exclude != Some(&*h.session_id) {
                    h.offer(make());
                }
            }
        }
    }

    /// Every session (for resync and shutdown).
    pub fn all(&self) -> Vec<ConnHandle> {
        let map = self.by_user.read().unwrap_or_else(|e| e.into_inner());
        map.values().flatten().cloned().collect()
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.by_user.read().unwrap_or_else(|e| e.into_inner()).values().map(Vec::len).sum()
    }
}

/// A cached member list and when it was fetched.
type CachedMembers = (Instant, Arc<Vec<UserId>>);

/// Member lists of conversations, cached for `conversationMemberIds` and typing.
///
/// Concurrency: a `std::sync::Mutex` held only for map access; fetches happen outside it (two
/// concurrent misses may both fetch; the later insert wins, which is harmless). Entries expire
/// after the TTL and are invalidated at once by `USER_JOINED`/`USER_LEFT` events.
#[derive(Debug)]
pub(crate) struct MemberCache {
    map: Mutex<HashMap<ConversationId, CachedMembers>>,
    ttl: Duration,
}

impl MemberCache {
    /// Empty cache.
    pub fn new(ttl: Duration) -> Self {
        MemberCache { map: Mutex::new(HashMap::new()), ttl }
    }

    /// The members of `conv`, as seen by `actor` (who must be a member: a cached list
    /// without the actor is fetched again, so the core authorizes).
    ///
    /// # Errors
    /// The core's refusal when the actor is not a member.
    pub async fn get(
        &self,
        core: &dyn GatewayCore,
        actor: UserId,
        conv: ConversationId,
    ) -> Result<Arc<Vec<UserId>>, DomainError> {
        if let Some(ids) = self.cached(actor, conv) {
            return Ok(ids);
        }
        self.fetch(core, actor, conv).await
    }

    /// The members of `conv` read from the core now (which authorizes `actor`), cached for
    /// later [`MemberCache::get`]s. For decisions a stale list must not make: a member removed
    /// while no `USER_LEFT` passed through this gateway is still in a cached list until the
    /// TTL.
    ///
    /// # Errors
    /// The core's refusal when the actor is not a member.
    pub async fn fetch(
        &self,
        core: &dyn GatewayCore,
        actor: UserId,
        conv: ConversationId,
    ) -> Result<Arc<Vec<UserId>>, DomainError> {
        let ids = Arc::new(core.member_ids(actor, conv).await?);
        if !ids.contains(&actor) {
            return Err(DomainError::Forbidden("not a member of this conversation".into()));
        }
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 100_000 {
            map.clear();
        }
        map.insert(conv, (Instant::now(), ids.clone()));
        Ok(ids)
    }

    /// The cached, unexpired members of `conv` if they include `actor`.
    fn cached(&self, actor: UserId, conv: ConversationId) -> Option<Arc<Vec<UserId>>> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&conv).filter(|(at, ids)| at.elapsed() < self.ttl && ids.contains(&actor)).map(|(_, ids)| ids.clone())
    }

    /// Loads the members of every conversation in `wanted` ((actor, conversation) pairs, as
    /// [`MemberCache::get`] takes them) that is not cached yet, with at most
    /// [`PREFETCH_CONCURRENCY`] core calls in flight instead of one after another. Returns how
    /// many lists were loaded. Failures are not reported here: the later [`MemberCache::get`]
    /// of that pair asks again and sees the refusal.
    pub async fn prefetch(
        &self,
        core: &dyn GatewayCore,
        wanted: impl IntoIterator<Item = (UserId, ConversationId)>,
    ) -> usize {
        let missing: Vec<(UserId, ConversationId)> =
            wanted.into_iter().filter(|(actor, conv)| self.cached(*actor, *conv).is_none()).collect();
        futures::stream::iter(missing)
            .map(|(actor, conv)| self.get(core, actor, conv))
            .buffer_unordered(PREFETCH_CONCURRENCY)
            .filter(|r| std::future::ready(r.is_ok()))
            .count()
            .await
    }

    /// Forgets `conv` (membership changed).
    pub fn invalidate(&self, conv: ConversationId) {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).remove(&conv);
    }
}

/// Most member-list loads in flight while [`MemberCache::prefetch`] warms the cache for a
/// delivery batch (each is one core call: one gRPC request, or the in-process service's
/// membership check and member read).
pub(crate) const PREFETCH_CONCURRENCY: usize = 16;

/// Whether the rendered body of an event with this payload carries `conversationMemberIds`.
fn carries_members(payload: &EventPayload) -> bool {
    matches!(
        payload,
        EventPayload::Message { .. } | EventPayload::MessageEdited { .. } | EventPayload::MessageDeleted { .. }
    )
}

/// The (actor, conversation) pairs whose member lists [`render`] will need for `entries`, one
/// per conversation, in order: the first recipient of each message event, up to the
/// conversation's first membership event in the batch (which invalidates the cache, so loading
/// before it would be wasted).
fn members_needed(entries: &[DeliveryEntry]) -> Vec<(UserId, ConversationId)> {
    let mut seen: HashSet<ConversationId> = HashSet::new();
    let mut out = Vec::new();
    for entry in entries {
        let GatewayDelivery::Event { event, recipients } = &entry.delivery else { continue };
        let conv = event.conversation_id;
        match &event.payload {
            EventPayload::UserJoined { .. } | EventPayload::UserLeft { .. } => {
                seen.insert(conv);
            }
            p if carries_members(p) => {
                if let Some(actor) = recipients.first()
                    && seen.insert(conv)
                {
                    out.push((*actor, conv));
                }
            }
            _ => {}
        }
    }
    out
}

/// Renders an event once. `actor` is a member used to read the member list (message events
/// carry `conversationMemberIds`); when that fails the field is left out.
pub(crate) async fn render(shared: &Shared, event: &ConversationEvent, actor: Option<UserId>) -> Arc<RenderedEvent> {
    let members = match (&event.payload, actor) {
        (EventPayload::UserJoined { .. } | EventPayload::UserLeft { .. }, _) => {
            shared.members.invalidate(event.conversation_id);
            None
        }
        (p, Some(a)) if carries_members(p) => {
            shared.members.get(shared.core.as_ref(), a, event.conversation_id).await.ok()
        }
        _ => None,
    };
    let body = json::event_body(event, members.as_deref().map(Vec::as_slice));
    let without_member_ids = members.is_some().then(|| json::event_body(event, None));
    Arc::new(RenderedEvent { conversation_id: event.conversation_id, seq: event.seq, body, without_member_ids })
}

/// Pushes one batch read from the stream to the local connections.
async fn dispatch(shared: &Shared, batch: DeliveryBatch) {
    if let Some(GapNotice { conversations, lost }) = batch.gap {
        tracing::warn!(?lost, conversations = conversations.len(), "delivery stream lost entries: resyncing");
        let convs = Arc::new(conversations);
        for h in shared.hub.all() {
            h.offer(Outbound::Resync(convs.clone()));
        }
    }
    // A cold cache would otherwise cost one core call per conversation, one after another.
    shared.members.prefetch(shared.core.as_ref(), members_needed(&batch.entries)).await;
    for entry in batch.entries {
        match entry.delivery {
            GatewayDelivery::Event { event, recipients } => {
                let rendered = render(shared, &event, recipients.first().copied()).await;
                shared.hub.push(&recipients, None, || Outbound::Event(rendered.clone()));
            }
            GatewayDelivery::Ephemeral { signal, recipients } => {
                let mut body = serde_json::Map::new();
                if let serde_json::Value::Object(fields) = &signal.payload {
                    body.extend(fields.clone());
                }
                body.insert("eventType".into(), signal.kind.clone().into());
                body.insert("userId".into(), signal.actor_id.to_string().into());
                if let Some(c) = signal.conversation_id {
                    body.insert("conversationId".into(), c.to_string().into());
                }
                let bytes = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
                shared
                    .hub
                    .push(&recipients, signal.exclude_connection.as_deref(), || Outbound::Ephemeral(bytes.clone()));
            }
        }
    }
}

/// The consumer task: reads this node's delivery stream until shutdown (or the streams
/// close), dispatching each batch and acknowledging it once queued to the connections.
/// Transient stream errors are retried with backoff; a fenced consumer re-subscribes.
pub(crate) async fn run_consumer(shared: Arc<Shared>) {
    const BATCH: usize = 256;
    let cancel = shared.shutdown.clone();
    let mut backoff = Duration::from_millis(50);
    'outer: loop {
        let consumer = match cancel.run_until_cancelled(shared.streams.consume(&shared.cfg.node_id)).await {
            None => return,
            Some(Ok(c)) => c,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "gateway: opening the delivery stream failed");
                if cancel.run_until_cancelled(tokio::time::sleep(backoff)).await.is_none() {
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        let mut consumer = consumer;
        loop {
            let batch = match cancel.run_until_cancelled(consumer.next_batch(BATCH)).await {
                None | Some(Err(PipelineError::Closed)) => return,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "gateway: reading the delivery stream failed");
                    if cancel.run_until_cancelled(tokio::time::sleep(backoff)).await.is_none() {
                        return;
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue 'outer;
                }
                Some(Ok(b)) => b,
            };
            backoff = Duration::from_millis(50);
            let ids: Vec<u64> = batch.entries.iter().map(|e| e.id).collect();
            dispatch(&shared, batch).await;
            if !ids.is_empty()
                && let Err(e) = consumer.ack(&ids).await
            {
                tracing::warn!(error = %e, "gateway: acknowledging deliveries failed");
                continue 'outer;
            }
        }
    }
}

#[cfg(test)]
mod tests;
