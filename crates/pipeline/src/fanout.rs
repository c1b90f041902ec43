//! The fanout worker (product.md message path, step 5): consumes the event log in
//! per-conversation order, resolves each event's recipients, finds their live connections and
//! writes one [`GatewayDelivery`] per event per target gateway.
//!
//! Recipients of an event are the conversation's members plus, for `USER_LEFT`, the user who
//! left (so their devices learn it and drop the conversation). Members come from the worker's
//! member cache when the conversation's membership cannot have changed since the last event
//! this worker fanned out (the next seq, not `USER_JOINED`/`USER_LEFT`; rule and bound in
//! [`members`]); the batch's other events read them with one
//! [`ConversationStore::member_ids_of`] call. Where the recipients' connections are is one
//! [`ConnectionRegistry::gateways_of_users`] call per batch. Users without a live connection
//! get nothing live; they catch up from the database by seq. Log records are committed only
//! after their deliveries were written, so a crash redelivers rather than loses. Re-published
//! events (the relay is at-least-once) are dropped by event id against a bounded set of
//! recently delivered ids; duplicates older than that set, or after a restart, reach clients,
//! which drop them by (conversation, seq).

pub mod members;
mod routes;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chat_domain::{ConversationEvent, ConversationId, EventId, EventPayload, UserId};
use chat_storage::{ConversationStore, Store, StoreResult};
use tokio_util::sync::CancellationToken;

use self::members::{MemberCache, Members, Source, Update};
use self::routes::Routes;
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
    /// Most conversations whose member lists the worker keeps ([`members`]); the least
    /// recently fanned-out are evicted. Default 10,000; 0 disables the cache (every event's
    /// members are read).
    pub member_cache_conversations: usize,
    /// Most member ids kept over all cached conversations (16 bytes each; default 1,000,000,
    /// about 16 MB, plus about 100 bytes per cached conversation). A conversation with more
    /// members than this is never cached; 0 disables the cache.
    pub member_cache_ids: usize,
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
            member_cache_conversations: 10_000,
            member_cache_ids: 1_000_000,
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

/// `members` (ascending, distinct) with `extra` added in its place (once), shared when there is
/// nothing to add.
fn with_user(members: &Members, extra: Option<UserId>) -> Members {
    match extra.map(|u| (u, members.binary_search(&u))) {
        Some((u, Err(at))) => {
            let mut v = Vec::with_capacity(members.len() + 1);
            v.extend_from_slice(&members[..at]);
            v.push(u);
            v.extend_from_slice(&members[at..]);
            v.into()
        }
        _ => Arc::clone(members),
    }
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
    let mut sorted = recipients.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let routes = Routes::lookup(registry, &sorted).await?;
    let signal = Arc::new(signal);
    let plan = routes.split(sorted);
    let n = plan.len();
    for (gateway, recipients) in plan {
        let delivery = GatewayDelivery::Ephemeral { signal: Arc::clone(&signal), recipients };
        streams.publish(routes.gateway(gateway), vec![delivery]).await?;
    }
    Ok(n)
}

/// The deliveries of a batch per gateway (gateways ascending), and the member cache update
/// to apply once they are written.
type Planned = (Vec<(String, Vec<GatewayDelivery>)>, Update);

/// What the fanout worker reads from storage: the member ids of conversations. The worker's
/// whole storage seam; every [`ConversationStore`] is one (`Arc<SqlStore>` passes as it is;
/// wrap an `Arc<dyn Store>` in [`StoreMembers`]).
#[async_trait]
pub trait MemberDirectory: Send + Sync {
    /// The member ids of each of `convs`, as [`ConversationStore::member_ids_of`] (one read
    /// for all; conversations without members are absent).
    ///
    /// # Errors
    /// The store's error.
    async fn member_ids_of(&self, convs: &[ConversationId]) -> StoreResult<HashMap<ConversationId, Vec<UserId>>>;
}

#[async_trait]
impl<T: ConversationStore + ?Sized> MemberDirectory for T {
    async fn member_ids_of(&self, convs: &[ConversationId]) -> StoreResult<HashMap<ConversationId, Vec<UserId>>> {
        ConversationStore::member_ids_of(self, convs).await
    }
}

/// A shared store as a [`MemberDirectory`] (an `Arc<dyn Store>` does not coerce to
/// `Arc<dyn MemberDirectory>` by itself).
pub struct StoreMembers(pub Arc<dyn Store>);

#[async_trait]
impl MemberDirectory for StoreMembers {
    async fn member_ids_of(&self, convs: &[ConversationId]) -> StoreResult<HashMap<ConversationId, Vec<UserId>>> {
        ConversationStore::member_ids_of(self.0.as_ref(), convs).await
    }
}

/// Consumes the event log and writes per-gateway deliveries.
pub struct FanoutWorker {
    members: Arc<dyn MemberDirectory>,
    registry: Arc<dyn ConnectionRegistry>,
    streams: Arc<dyn DeliveryStreams>,
    cfg: FanoutConfig,
    /// Ids of events already written to the streams. Owned by the worker's single task
    /// (`&mut self`), so no lock.
    recent: RecentIds,
    /// Member lists of recently fanned-out conversations ([`members`]); same ownership.
    cache: MemberCache,
}

impl FanoutWorker {
    /// A worker reading members from `members` (the store), connections from `registry`, and
    /// writing to `streams`.
    pub fn new(
        members: Arc<dyn MemberDirectory>,
        registry: Arc<dyn ConnectionRegistry>,
        streams: Arc<dyn DeliveryStreams>,
        cfg: FanoutConfig,
    ) -> Self {
        let recent = RecentIds::new(cfg.dedupe_capacity);
        let cache = MemberCache::new(cfg.member_cache_conversations, cfg.member_cache_ids);
        FanoutWorker { members, registry, streams, cfg, recent, cache }
    }

    /// Conversations whose member lists the cache holds now (at most
    /// [`FanoutConfig::member_cache_conversations`]).
    pub fn cached_conversations(&self) -> usize {
        self.cache.len()
    }

    /// The deliveries for `events` (in order), per gateway, gateways ascending; no duplicate
    /// check, and the member cache is read but not updated. Members of the events that cannot
    /// use the cache are read with one [`ConversationStore::member_ids_of`] call (none when all
    /// hit), connections with one [`ConnectionRegistry::gateways_of_users`] call.
    ///
    /// # Errors
    /// Reading members ([`PipelineError::Store`]) or connections failed.
    pub async fn plan(&self, events: &[Arc<ConversationEvent>]) -> Result<Vec<(String, Vec<GatewayDelivery>)>> {
        Ok(self.plan_batch(events).await?.0)
    }

    async fn plan_batch(&self, events: &[Arc<ConversationEvent>]) -> Result<Planned> {
        let lookup = self.cache.lookup(events);
        let misses = lookup.misses();
        let read = if misses.is_empty() { HashMap::new() } else { self.members.member_ids_of(&misses).await? };
        let (members, update) = lookup.resolve(events, read);

        // Events of one conversation from one source share their recipient list (the leaver
        // of a USER_LEFT aside): build and split each distinct list once.
        type Key = (ConversationId, Source, Option<UserId>);
        let mut list_of: HashMap<Key, usize> = HashMap::new();
        let mut lists: Vec<Members> = Vec::new();
        let mut event_list: Vec<usize> = Vec::with_capacity(events.len());
        for (ev, (source, m)) in events.iter().zip(&members) {
            let leaver = match &ev.payload {
                EventPayload::UserLeft { user_id } => Some(*user_id),
                _ => None,
            };
            let i = *list_of.entry((ev.conversation_id, *source, leaver)).or_insert_with(|| {
                lists.push(with_user(m, leaver));
                lists.len() - 1
            });
            event_list.push(i);
        }
        let mut everyone: Vec<UserId> = lists.iter().flat_map(|l| l.iter().copied()).collect();
        everyone.sort_unstable();
        everyone.dedup();
        let routes = Routes::lookup(self.registry.as_ref(), &everyone).await?;
        let splits: Vec<Vec<(usize, Vec<UserId>)>> = lists.iter().map(|l| routes.split(l.iter().copied())).collect();
        let mut out: Vec<Vec<GatewayDelivery>> = (0..routes.len()).map(|_| Vec::new()).collect();
        for (ev, i) in events.iter().zip(event_list) {
            for (gateway, recipients) in &splits[i] {
                out[*gateway].push(GatewayDelivery::Event { event: Arc::clone(ev), recipients: recipients.clone() });
            }
        }
        let planned = out
            .into_iter()
            .enumerate()
            .filter(|(_, d)| !d.is_empty())
            .map(|(g, d)| (routes.gateway(g).to_owned(), d))
            .collect();
        Ok((planned, update))
    }

    /// Drops events already delivered (by event id, also within `events`), writes the rest's
    /// deliveries to the streams in order, and remembers their ids (and their member lists, in
    /// the member cache). Returns how many events were delivered (duplicates excluded).
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
        let (planned, update) = self.plan_batch(&fresh).await?;
        for (gateway, deliveries) in planned {
            self.streams.publish(&gateway, deliveries).await?;
        }
        self.cache.apply(update);
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
