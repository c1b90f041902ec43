//! The fanout worker (product.md message path, step 5): consumes the event log in
//! per-conversation order, resolves each event's recipients, finds their live connections and
//! writes one [`GatewayDelivery`] per event per target gateway.
//!
//! Recipients of an event are the conversation's current members ([`ConversationStore::
//! member_ids_of`], one call per batch) plus, for `USER_LEFT`, the user who left (so their devices learn it and drop
//! the conversation). Users without a live connection get nothing live; they catch up from the
//! database by seq. Log records are committed only after their deliveries were written, so a
//! crash redelivers rather than loses. Re-published events (the relay is at-least-once) are
//! dropped by event id against a bounded set of recently delivered ids; duplicates older than
//! that set, or after a restart, reach clients, which drop them by (conversation, seq).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chat_domain::{ConversationEvent, ConversationId, EventId, EventPayload, UserId};
use chat_storage::ConversationStore;
use tokio_util::sync::CancellationToken;

use crate::delivery::{DeliveryStreams, EphemeralSignal, GatewayDelivery};
use crate::log::{EventLog, LogRecord};
use crate::registry::ConnectionRegistry;
use crate::{PipelineError, Result};

/// Settings of [`FanoutWorker`].
#[derive(Clone, Debug)]
pub struct FanoutConfig {
    /// Consumer group on the event log; default `"fanout"`.
    pub group: String,
    /// Most log records per batch (one registry lookup, one stream write per gateway);
    /// default 256.
    pub batch: usize,
    /// How many recently delivered event ids are remembered for dropping duplicates;
    /// default 100,000 (about 1.6 MB).
    pub dedupe_capacity: usize,
    /// First retry delay after a failure, doubling per consecutive failure; default 50 ms.
    pub backoff_min: Duration,
    /// Cap of the retry delay; default 5 s.
    pub backoff_max: Duration,
}

impl Default for FanoutConfig {
    fn default() -> Self {
        FanoutConfig {
            group: "fanout".to_owned(),
            batch: 256,
            dedupe_capacity: 100_000,
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(5),
        }
    }
}

/// A bounded set of event ids: the oldest id is forgotten when a new one exceeds the capacity.
#[derive(Debug, Default)]
pub struct RecentIds {
    set: HashSet<EventId>,
    order: VecDeque<EventId>,
    capacity: usize,
}

impl RecentIds {
    /// An empty set remembering at most `capacity` ids (at least 1).
    pub fn new(capacity: usize) -> Self {
        RecentIds { set: HashSet::new(), order: VecDeque::new(), capacity: capacity.max(1) }
    }

    /// Whether `id` is remembered.
    pub fn contains(&self, id: &EventId) -> bool {
        self.set.contains(id)
    }

    /// Remembers `id`; `false` when it already was.
    pub fn insert(&mut self, id: EventId) -> bool {
        if !self.set.insert(id) {
            return false;
        }
        self.order.push_back(id);
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }

    /// Number of remembered ids.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

/// The gateways holding live connections of each of `recipients` (one batch lookup); users
/// without a live connection are absent.
async fn route(registry: &dyn ConnectionRegistry, recipients: &[UserId]) -> Result<HashMap<UserId, BTreeSet<String>>> {
    let mut gateways_of: HashMap<UserId, BTreeSet<String>> = HashMap::new();
    for c in registry.connections_of_users(recipients).await? {
        gateways_of.entry(c.user_id).or_default().insert(c.gateway_node_id);
    }
    Ok(gateways_of)
}

/// Splits recipients into per-gateway lists using `gateways_of`: gateway id to the recipients
/// on it (ascending, each once), gateways ascending.
fn per_gateway<'a>(
    recipients: impl IntoIterator<Item = &'a UserId>,
    gateways_of: &HashMap<UserId, BTreeSet<String>>,
) -> BTreeMap<String, Vec<UserId>> {
    let mut out: BTreeMap<String, Vec<UserId>> = BTreeMap::new();
    let sorted: BTreeSet<UserId> = recipients.into_iter().copied().collect();
    for u in sorted {
        for g in gateways_of.get(&u).into_iter().flatten() {
            out.entry(g.clone()).or_default().push(u);
        }
    }
    out
}

/// Sends an ephemeral signal (typing, presence) to the live connections of `recipients`
/// (typically the conversation's members, see [`ConversationStore::member_ids`]): one
/// [`GatewayDelivery::Ephemeral`] per gateway holding any of them. The gateway skips
/// [`EphemeralSignal::exclude_connection`]. Returns the number of gateways written to.
///
/// # Errors
/// From the registry or the streams; nothing is retried (signals are best effort).
pub async fn deliver_ephemeral(
    registry: &dyn ConnectionRegistry,
    streams: &dyn DeliveryStreams,
    signal: EphemeralSignal,
    recipients: &[UserId],
) -> Result<usize> {
    let gateways_of = route(registry, recipients).await?;
    let signal = Arc::new(signal);
    let plan = per_gateway(recipients, &gateways_of);
    let n = plan.len();
    for (gateway, recipients) in plan {
        streams.publish(&gateway, vec![GatewayDelivery::Ephemeral { signal: Arc::clone(&signal), recipients }]).await?;
    }
    Ok(n)
}

/// Consumes the event log and writes per-gateway deliveries.
pub struct FanoutWorker {
    members: Arc<dyn ConversationStore>,
    registry: Arc<dyn ConnectionRegistry>,
    streams: Arc<dyn DeliveryStreams>,
    cfg: FanoutConfig,
    /// Ids of events already written to the streams. Owned by the worker's single task
    /// (`&mut self`), so no lock.
    recent: RecentIds,
}

impl FanoutWorker {
    /// A worker reading members from `members` (the store), connections from `registry`, and
    /// writing to `streams`.
    pub fn new(
        members: Arc<dyn ConversationStore>,
        registry: Arc<dyn ConnectionRegistry>,
        streams: Arc<dyn DeliveryStreams>,
        cfg: FanoutConfig,
    ) -> Self {
        let recent = RecentIds::new(cfg.dedupe_capacity);
        FanoutWorker { members, registry, streams, cfg, recent }
    }

    /// The deliveries for `events` (in order), per gateway, gateways ascending; no duplicate
    /// check. Member lists of all the events' conversations are read with one
    /// [`ConversationStore::member_ids_of`] call (not one query per conversation).
    ///
    /// # Errors
    /// Reading members ([`PipelineError::Store`]) or connections failed.
    pub async fn plan(&self, events: &[Arc<ConversationEvent>]) -> Result<Vec<(String, Vec<GatewayDelivery>)>> {
        let convs: Vec<ConversationId> =
            events.iter().map(|e| e.conversation_id).collect::<BTreeSet<_>>().into_iter().collect();
        let members = self.members.member_ids_of(&convs).await?;
        let recipients_of = |ev: &ConversationEvent| -> Vec<UserId> {
            let mut r = members.get(&ev.conversation_id).cloned().unwrap_or_default();
            if let EventPayload::UserLeft { user_id } = &ev.payload {
                r.push(*user_id);
            }
            r
        };
        let all: Vec<UserId> =
            events.iter().flat_map(|e| recipients_of(e)).collect::<BTreeSet<_>>().into_iter().collect();
        let gateways_of = route(self.registry.as_ref(), &all).await?;
        let mut out: BTreeMap<String, Vec<GatewayDelivery>> = BTreeMap::new();
        for ev in events {
            for (gateway, recipients) in per_gateway(&recipients_of(ev), &gateways_of) {
                out.entry(gateway).or_default().push(GatewayDelivery::Event { event: Arc::clone(ev), recipients });
            }
        }
        Ok(out.into_iter().collect())
    }

    /// Drops events already delivered (by event id, also within `events`), writes the rest's
    /// deliveries to the streams in order, and remembers their ids. Returns how many events
    /// were delivered (duplicates excluded).
    ///
    /// # Errors
    /// As [`FanoutWorker::plan`], or writing a stream failed; then nothing is remembered and
    /// the caller retries the same events (gateways written before the failure get the events
    /// twice; clients drop duplicates by seq).
    pub async fn deliver(&mut self, events: &[Arc<ConversationEvent>]) -> Result<usize> {
        let mut batch_ids = HashSet::new();
        let fresh: Vec<Arc<ConversationEvent>> = events
            .iter()
            .filter(|e| !self.recent.contains(&e.event_id) && batch_ids.insert(e.event_id))
            .cloned()
            .collect();
        if fresh.is_empty() {
            return Ok(0);
        }
        for (gateway, deliveries) in self.plan(&fresh).await? {
            self.streams.publish(&gateway, deliveries).await?;
        }
        for e in &fresh {
            self.recent.insert(e.event_id);
        }
        Ok(fresh.len())
    }

    /// Sleeps for the current backoff (doubling it for next time); `false` when cancelled.
    async fn back_off(&self, backoff: &mut Duration, cancel: &CancellationToken) -> bool {
        let wait = *backoff;
        *backoff = (*backoff * 2).min(self.cfg.backoff_max);
        tokio::select! {
            _ = cancel.cancelled() => false,
            _ = tokio::time::sleep(wait) => true,
        }
    }

    /// Consumes `log` as group [`FanoutConfig::group`] until `cancel` fires or the log closes
    /// (then returns `Ok` after delivering and committing everything read). Each batch:
    /// [`FanoutWorker::deliver`] (retried with backoff until it succeeds), then commit.
    ///
    /// # Errors
    /// [`PipelineError::Fenced`] when another consumer of the group took over.
    pub async fn run(mut self, log: Arc<dyn EventLog>, cancel: CancellationToken) -> Result<()> {
        let mut backoff = self.cfg.backoff_min;
        let mut consumer = loop {
            match log.subscribe(&self.cfg.group).await {
                Ok(c) => break c,
                Err(e) => {
                    tracing::warn!(error = %e, "fanout: subscribe failed");
                    if !self.back_off(&mut backoff, &cancel).await {
                        return Ok(());
                    }
                }
            }
        };
        loop {
            backoff = self.cfg.backoff_min;
            let records: Vec<LogRecord> = match cancel.run_until_cancelled(consumer.next_batch(self.cfg.batch)).await {
                None | Some(Err(PipelineError::Closed)) => return Ok(()),
                Some(Err(e @ PipelineError::Fenced(_))) => return Err(e),
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "fanout: reading the log failed");
                    if !self.back_off(&mut backoff, &cancel).await {
                        return Ok(());
                    }
                    continue;
                }
                Some(Ok(r)) => r,
            };
            let events: Vec<_> = records.iter().map(|r| Arc::clone(&r.event)).collect();
            loop {
                match self.deliver(&events).await {
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, events = events.len(), "fanout: delivery failed, retrying");
                        if !self.back_off(&mut backoff, &cancel).await {
                            return Ok(());
                        }
                    }
                }
            }
            loop {
                match consumer.commit(&records).await {
                    Ok(()) => break,
                    Err(e @ PipelineError::Fenced(_)) => return Err(e),
                    Err(e) => {
                        tracing::warn!(error = %e, "fanout: commit failed, retrying");
                        if !self.back_off(&mut backoff, &cancel).await {
                            return Ok(());
                        }
                    }
                }
            }
        }
    }
}
