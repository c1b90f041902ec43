//! Per-gateway delivery streams between the fanout worker and the gateways.
//!
//! The fanout worker writes one [`GatewayDelivery`] per event per gateway node that holds a
//! connection of a recipient; the gateway reads its own stream and writes STOMP `MESSAGE`
//! frames to every live local connection of each listed recipient (all of a user's devices).
//! Serve mode uses [`InProcessStreams`]; scale-out mode uses the seed's Redis stream
//! `gatewayId:{gatewayNodeId}:stream` (consumer group `ephemeral-consumer-group`, approximate
//! max length 10,000; the seed's entry shape `{ "messageEvent": {...}, "recipientId": ... }`
//! carries one recipient, ours lists them) behind the same [`DeliveryStreams`] trait.
//!
//! Streams are a cache, not the source of truth: an entry trimmed before it was read (Redis
//! `MAXLEN`, or [`InProcessStreams`] overflow) is reported to the consumer as a [`GapNotice`],
//! and the gateway tells the affected clients to resync from the database by seq.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chat_domain::{ConversationEvent, ConversationId, Millis, UserId};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::{PipelineError, Result};

/// An ephemeral signal: typing or presence. Not stored, no seq (product.md "Ephemeral events").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EphemeralSignal {
    /// Conversation it concerns (typing), or `None` for workspace-wide signals (presence).
    pub conversation_id: Option<ConversationId>,
    /// Signal type as on the wire: `TYPING` (seed name) or `PRESENCE`.
    pub kind: String,
    /// The user the signal is about (the typist, the user who came online).
    pub actor_id: UserId,
    /// Type-specific JSON body the gateway forwards unchanged (e.g. `{"typing": true}`).
    pub payload: serde_json::Value,
    /// A connection that must not receive it (the typist's own connection), by connection id.
    pub exclude_connection: Option<String>,
    /// Server instant it was emitted.
    pub created_at: Millis,
}

/// What one gateway must deliver: one entry per event (or signal) per gateway, listing that
/// gateway's recipients. The gateway delivers to every live local connection of each listed
/// user (so each user appears at most once per entry).
#[derive(Clone, Debug, PartialEq)]
pub enum GatewayDelivery {
    /// A conversation event (has a seq; clients drop duplicates by (conversation, seq)).
    Event {
        /// The event, shared between all gateways' entries.
        event: Arc<ConversationEvent>,
        /// Recipients with a connection on this gateway, ascending, no duplicates.
        recipients: Vec<UserId>,
    },
    /// An ephemeral signal (no seq, best effort).
    Ephemeral {
        /// The signal, shared between all gateways' entries.
        signal: Arc<EphemeralSignal>,
        /// Recipients with a connection on this gateway, ascending, no duplicates.
        recipients: Vec<UserId>,
    },
}

impl GatewayDelivery {
    /// The listed recipients.
    pub fn recipients(&self) -> &[UserId] {
        match self {
            GatewayDelivery::Event { recipients, .. } | GatewayDelivery::Ephemeral { recipients, .. } => recipients,
        }
    }

    /// The conversation concerned, if any.
    pub fn conversation_id(&self) -> Option<ConversationId> {
        match self {
            GatewayDelivery::Event { event, .. } => Some(event.conversation_id),
            GatewayDelivery::Ephemeral { signal, .. } => signal.conversation_id,
        }
    }
}

/// One entry read from a gateway's stream.
#[derive(Clone, Debug, PartialEq)]
pub struct DeliveryEntry {
    /// Stream-local id, increasing (Redis: the entry id); what [`DeliveryConsumer::ack`] takes.
    pub id: u64,
    /// The delivery.
    pub delivery: GatewayDelivery,
}

/// Entries were lost before this consumer read them (trimmed by a length cap, or a Redis
/// restart). The gateway must tell the affected clients to resync from the database.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GapNotice {
    /// How many entries were lost, when known.
    pub lost: Option<u64>,
    /// Conversations whose events were lost; empty when unknown (then every local client must
    /// resync all its conversations). Ascending, at most [`GAP_CONVERSATIONS_MAX`].
    pub conversations: Vec<ConversationId>,
}

/// Most conversations a [`GapNotice`] lists; beyond it the list is emptied (meaning "all").
pub const GAP_CONVERSATIONS_MAX: usize = 1024;

/// A batch read from a gateway's stream.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeliveryBatch {
    /// Loss detected before `entries` (handle it first: resync, then deliver the entries;
    /// clients drop the duplicates by seq).
    pub gap: Option<GapNotice>,
    /// Entries in stream order (per conversation: seq order).
    pub entries: Vec<DeliveryEntry>,
}

/// The fanout side and the consumer factory of the per-gateway streams.
#[async_trait]
pub trait DeliveryStreams: Send + Sync {
    /// Appends `deliveries`, in order, to the stream of `gateway_id`; returns once stored. May
    /// wait briefly for space (see the implementation for what happens when a gateway lags).
    ///
    /// # Errors
    /// [`PipelineError::Unavailable`] when the backend (Redis) cannot be reached;
    /// [`PipelineError::Closed`] after shutdown.
    async fn publish(&self, gateway_id: &str, deliveries: Vec<GatewayDelivery>) -> Result<()>;

    /// The consumer of `gateway_id`'s stream; it starts at the oldest unacknowledged entry.
    /// A newer consumer of the same gateway fences the previous one.
    ///
    /// # Errors
    /// [`PipelineError::Unavailable`] when the backend cannot be reached.
    async fn consume(&self, gateway_id: &str) -> Result<Box<dyn DeliveryConsumer>>;
}

/// Reads one gateway's stream. Not shared between tasks.
#[async_trait]
pub trait DeliveryConsumer: Send {
    /// The next up to `max` entries, waiting until there is at least one entry or a gap.
    ///
    /// # Errors
    /// [`PipelineError::Closed`] after shutdown once drained; [`PipelineError::Fenced`] when a
    /// newer consumer of the gateway took over; [`PipelineError::Unavailable`].
    async fn next_batch(&mut self, max: usize) -> Result<DeliveryBatch>;

    /// Acknowledges entries by id (they were written to the local sockets); unacknowledged
    /// entries are redelivered to the gateway's next consumer (after a restart).
    ///
    /// # Errors
    /// [`PipelineError::Fenced`]; [`PipelineError::Unavailable`].
    async fn ack(&mut self, ids: &[u64]) -> Result<()>;
}

/// Settings of [`InProcessStreams`].
#[derive(Clone, Debug)]
pub struct StreamsConfig {
    /// Most entries (unread plus read-but-unacknowledged) per gateway stream; default 10,000
    /// (the seed's Redis `MAXLEN`).
    pub capacity: usize,
    /// How long [`DeliveryStreams::publish`] waits for a full stream before dropping its
    /// oldest entries (which the consumer then sees as a [`GapNotice`]); default 2 s. A lagging
    /// gateway thus slows the fanout briefly but never stalls it for the other gateways.
    pub max_wait: Duration,
}

impl Default for StreamsConfig {
    fn default() -> Self {
        StreamsConfig { capacity: 10_000, max_wait: Duration::from_secs(2) }
    }
}

/// One gateway's stream: entries with ids `base..base + entries.len()`.
#[derive(Default)]
struct Stream {
    base: u64,
    entries: VecDeque<GatewayDelivery>,
    /// Acknowledged ids at or above `base` (entries are removed once a prefix is acked).
    acked: BTreeSet<u64>,
    /// Next id the current consumer reads.
    cursor: u64,
    /// Entries dropped unread since the consumer's last batch.
    gap: Option<GapNotice>,
    /// The pending gap's conversation list overflowed: it means "all conversations".
    gap_all: bool,
    generation: u64,
}

impl Stream {
    fn end(&self) -> u64 {
        self.base + self.entries.len() as u64
    }

    fn pop_front(&mut self) -> Option<GatewayDelivery> {
        let d = self.entries.pop_front()?;
        self.acked.remove(&self.base);
        self.base += 1;
        Some(d)
    }

    /// Removes the acknowledged prefix.
    fn trim_acked(&mut self) {
        while !self.entries.is_empty() && self.acked.contains(&self.base) {
            self.pop_front();
        }
    }

    /// Drops the oldest entry to make room; records a gap when the consumer had not read an
    /// event entry (a lost ephemeral signal needs no resync).
    fn drop_oldest(&mut self) {
        let unread = self.base >= self.cursor;
        let Some(d) = self.pop_front() else { return };
        self.cursor = self.cursor.max(self.base);
        let GatewayDelivery::Event { event, .. } = d else { return };
        if !unread {
            return;
        }
        let gap = self.gap.get_or_insert_with(GapNotice::default);
        gap.lost = Some(gap.lost.unwrap_or(0) + 1);
        if !self.gap_all {
            if let Err(pos) = gap.conversations.binary_search(&event.conversation_id) {
                gap.conversations.insert(pos, event.conversation_id);
            }
            if gap.conversations.len() > GAP_CONVERSATIONS_MAX {
                gap.conversations.clear();
                self.gap_all = true;
            }
        }
    }
}

struct StreamsShared {
    /// Every gateway's stream under one `std` mutex (short critical sections, no `.await`).
    /// Streams are created on first use by either side.
    streams: Mutex<HashMap<String, Stream>>,
    closed: Mutex<bool>,
    /// Woken when any stream got entries or a gap, or on close: consumers wait on it.
    data: Notify,
    /// Woken when any stream freed space: publishers wait on it.
    space: Notify,
    cfg: StreamsConfig,
}

impl StreamsShared {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Stream>> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_closed(&self) -> bool {
        *self.closed.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The serve-mode [`DeliveryStreams`]: one bounded in-memory queue per gateway id.
///
/// Bounded by [`StreamsConfig::capacity`] per gateway. When a stream is full, publish waits up
/// to [`StreamsConfig::max_wait`] for the gateway to acknowledge, then drops the oldest entries
/// (Redis `MAXLEN` semantics) and the gateway's consumer receives a [`GapNotice`]. A stream
/// that no consumer ever read drops its oldest entries at once, without waiting.
#[derive(Clone)]
pub struct InProcessStreams {
    shared: Arc<StreamsShared>,
}

impl InProcessStreams {
    /// Empty streams with these settings (capacity at least 1).
    pub fn new(mut cfg: StreamsConfig) -> Self {
        cfg.capacity = cfg.capacity.max(1);
        InProcessStreams {
            shared: Arc::new(StreamsShared {
                streams: Mutex::new(HashMap::new()),
                closed: Mutex::new(false),
                data: Notify::new(),
                space: Notify::new(),
                cfg,
            }),
        }
    }

    /// Closes every stream: publishers get [`PipelineError::Closed`], consumers drain and then
    /// get it too.
    pub fn close(&self) {
        *self.shared.closed.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.shared.data.notify_waiters();
        self.shared.space.notify_waiters();
    }

    /// Entries held for `gateway_id` (unread plus unacknowledged).
    pub fn len_of(&self, gateway_id: &str) -> usize {
        self.shared.lock().get(gateway_id).map_or(0, |s| s.entries.len())
    }
}

#[async_trait]
impl DeliveryStreams for InProcessStreams {
    async fn publish(&self, gateway_id: &str, deliveries: Vec<GatewayDelivery>) -> Result<()> {
        let shared = &self.shared;
        let cap = shared.cfg.capacity;
        let deadline = tokio::time::Instant::now() + shared.cfg.max_wait;
        let mut pending = deliveries.into_iter().peekable();
        while pending.peek().is_some() {
            let space = shared.space.notified();
            tokio::pin!(space);
            space.as_mut().enable();
            if shared.is_closed() {
                return Err(PipelineError::Closed);
            }
            {
                let mut streams = shared.lock();
                let s = streams.entry(gateway_id.to_owned()).or_default();
                // A stream nobody has ever consumed (a node id no gateway runs) never makes
                // the fanout wait: it only keeps its newest `capacity` entries.
                let overdue = s.generation == 0 || tokio::time::Instant::now() >= deadline;
                let mut appended = false;
                while pending.peek().is_some() {
                    if s.entries.len() >= cap {
                        if !overdue {
                            break;
                        }
                        s.drop_oldest();
                        tracing::warn!(gateway_id, "delivery stream full: dropped the oldest entry");
                    }
                    s.entries.extend(pending.next());
                    appended = true;
                }
                if appended {
                    shared.data.notify_waiters();
                }
            }
            if pending.peek().is_some() {
                let _ = tokio::time::timeout_at(deadline, space).await;
            }
        }
        Ok(())
    }

    async fn consume(&self, gateway_id: &str) -> Result<Box<dyn DeliveryConsumer>> {
        let mut streams = self.shared.lock();
        let s = streams.entry(gateway_id.to_owned()).or_default();
        s.generation += 1;
        // Redeliver everything unacknowledged (acked ids inside the window are skipped on read).
        s.cursor = s.base;
        Ok(Box::new(InProcessDeliveryConsumer {
            shared: Arc::clone(&self.shared),
            gateway_id: gateway_id.to_owned(),
            generation: s.generation,
        }))
    }
}

/// The consumer of one gateway's in-process stream.
struct InProcessDeliveryConsumer {
    shared: Arc<StreamsShared>,
    gateway_id: String,
    generation: u64,
}

impl InProcessDeliveryConsumer {
    fn stream<'a>(&self, streams: &'a mut HashMap<String, Stream>) -> Result<&'a mut Stream> {
        match streams.get_mut(&self.gateway_id) {
            Some(s) if s.generation == self.generation => Ok(s),
            _ => Err(PipelineError::Fenced(self.gateway_id.clone())),
        }
    }
}

#[async_trait]
impl DeliveryConsumer for InProcessDeliveryConsumer {
    async fn next_batch(&mut self, max: usize) -> Result<DeliveryBatch> {
        let max = max.max(1);
        loop {
            let data = self.shared.data.notified();
            tokio::pin!(data);
            data.as_mut().enable();
            let closed = self.shared.is_closed();
            {
                let mut streams = self.shared.lock();
                let s = self.stream(&mut streams)?;
                let mut batch = DeliveryBatch { gap: s.gap.take(), entries: Vec::new() };
                s.gap_all = false;
                while s.cursor < s.end() && batch.entries.len() < max {
                    let id = s.cursor;
                    s.cursor += 1;
                    if !s.acked.contains(&id) {
                        let delivery = s.entries[(id - s.base) as usize].clone();
                        batch.entries.push(DeliveryEntry { id, delivery });
                    }
                }
                if batch.gap.is_some() || !batch.entries.is_empty() {
                    return Ok(batch);
                }
                if closed {
                    return Err(PipelineError::Closed);
                }
            }
            data.await;
        }
    }

    async fn ack(&mut self, ids: &[u64]) -> Result<()> {
        {
            let mut streams = self.shared.lock();
            let s = self.stream(&mut streams)?;
            for &id in ids {
                if id >= s.base && id < s.end() {
                    s.acked.insert(id);
                }
            }
            s.trim_acked();
        }
        self.shared.space.notify_waiters();
        Ok(())
    }
}
