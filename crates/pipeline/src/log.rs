//! The event log between the outbox relay and the fanout worker.
//!
//! Serve mode uses [`InProcessLog`]; scale-out mode uses Kafka topic `message.all`, keyed by
//! conversation id, behind the same [`EventLog`] trait. The contract is Kafka's:
//! - a conversation's events go to one partition (by conversation id), so they are consumed in
//!   the order they were published; the relay publishes each conversation's events in seq
//!   order, so consumers see seq order;
//! - [`EventLog::publish`] returns only once the log holds the events (Kafka: broker ack with
//!   `acks=all`), and only then does the relay mark the outbox rows processed;
//! - consumption is at-least-once per consumer group: [`EventConsumer::commit`] records how far
//!   a group got; records not committed are delivered again to the group's next consumer (after
//!   a crash or restart). Committing a record commits everything before it in its partition.
//! - a group's partitions are split among its consumers and move between them on a rebalance
//!   (Kafka) or on fencing (in-process). Every record carries the consumer's assignment
//!   [`LogRecord::epoch`]; one batch never spans two epochs, and a record read before its
//!   partition was revoked is not committed by the old owner: the partition's new owner reads
//!   it again from the group's last commit.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chat_domain::{ConversationEvent, ConversationId};
use tokio::sync::Notify;

use crate::{PipelineError, Result};

/// Where a record sits in the log: Kafka's (partition, offset).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LogPosition {
    /// Partition index, `0..partitions`; chosen by conversation id.
    pub partition: u32,
    /// Offset within the partition, from 0, increasing by 1 per record.
    pub offset: u64,
}

/// One consumed record of the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    /// Its position (what [`EventConsumer::commit`] records).
    pub position: LogPosition,
    /// The event, shared (fanout hands it to every gateway without copying).
    pub event: Arc<ConversationEvent>,
    /// The reading consumer's assignment epoch: starts at 1 and grows every time that
    /// consumer's partition assignment changes (Kafka: each revoke or assign of a rebalance;
    /// in-process: the group generation). All records of one batch share it.
    /// [`EventConsumer::commit`] skips records whose partition was revoked after their epoch.
    pub epoch: u64,
}

/// The producer side and the consumer factory of the event log.
#[async_trait]
pub trait EventLog: Send + Sync {
    /// Appends `events` in the given order (each conversation's events must be in seq order) and
    /// returns once the log holds all of them. May wait while the log is full (back-pressure).
    ///
    /// # Errors
    /// [`PipelineError::Unavailable`] when the broker did not acknowledge (some of the events
    /// may be stored anyway: the caller republishes all of them, consumers drop duplicates by
    /// event id); [`PipelineError::Closed`] after shutdown.
    async fn publish(&self, events: &[ConversationEvent]) -> Result<()>;

    /// A consumer of consumer group `group` (e.g. `"fanout"`) reading every partition, starting
    /// after the group's last commit (a new group starts at the oldest retained record).
    ///
    /// # Errors
    /// [`PipelineError::Unavailable`] when the broker cannot be reached.
    async fn subscribe(&self, group: &str) -> Result<Box<dyn EventConsumer>>;
}

/// A consumer of one group. Not shared between tasks (`&mut self`).
#[async_trait]
pub trait EventConsumer: Send {
    /// The next up to `max` records (at least one): waits until some are available. Records of
    /// one partition come in log order, and a batch continues where the previous one ended,
    /// whether or not it was committed. All records of a batch were read under one assignment
    /// (same [`LogRecord::epoch`]): after a rebalance a partition may start again at the
    /// group's last commit (records already seen are redelivered). Cancel-safe: dropping the
    /// future loses no record.
    ///
    /// # Errors
    /// [`PipelineError::Closed`] once the log is closed and this consumer has read everything;
    /// [`PipelineError::Fenced`] when a newer consumer of the group took over;
    /// [`PipelineError::Unavailable`] on broker failure.
    async fn next_batch(&mut self, max: usize) -> Result<Vec<LogRecord>>;

    /// Marks `records` (and everything before each in its partition) as done for the group;
    /// the log may then discard them. Call only after their effects are durable downstream.
    /// Records of a partition that was revoked from this consumer after they were read (their
    /// [`LogRecord::epoch`] predates the partition's current assignment, or the partition is
    /// no longer assigned) are skipped, not committed: the partition's owner reads them again.
    /// The other records are committed and `Ok` is returned.
    ///
    /// # Errors
    /// [`PipelineError::Fenced`] when a newer consumer took over the whole group membership
    /// (the commit is dropped; the records will be redelivered to it);
    /// [`PipelineError::Unavailable`] on broker failure.
    async fn commit(&mut self, records: &[LogRecord]) -> Result<()>;
}

/// The partition of a conversation among `partitions`: stable for a given id and count.
pub fn partition_of(conversation: ConversationId, partitions: u32) -> u32 {
    let mut h = DefaultHasher::new();
    conversation.hash(&mut h);
    (h.finish() % u64::from(partitions.max(1))) as u32
}

/// One partition's retained records: offsets `base..base + records.len()`.
#[derive(Default)]
struct Partition {
    base: u64,
    records: VecDeque<Arc<ConversationEvent>>,
}

impl Partition {
    fn end(&self) -> u64 {
        self.base + self.records.len() as u64
    }
}

/// A consumer group's committed offsets (next offset to read, per partition) and the
/// generation of its current consumer (for fencing).
struct Group {
    committed: Vec<u64>,
    generation: u64,
}

struct LogState {
    partitions: Vec<Partition>,
    groups: HashMap<String, Group>,
    closed: bool,
}

impl LogState {
    /// Drops records every group has committed; with no group yet, keeps everything.
    fn trim(&mut self) {
        if self.groups.is_empty() {
            return;
        }
        for (p, part) in self.partitions.iter_mut().enumerate() {
            let low = self.groups.values().map(|g| g.committed[p]).min().unwrap_or(part.base);
            while part.base < low && !part.records.is_empty() {
                part.records.pop_front();
                part.base += 1;
            }
        }
    }
}

/// Shared core of [`InProcessLog`] and its consumers.
struct LogShared {
    /// All partitions and groups under one `std` mutex: operations are short, never `.await`
    /// while holding it, and publish/consume/commit must see a consistent view of offsets.
    state: Mutex<LogState>,
    /// Woken (all waiters) when records were appended or the log closed: consumers wait on it.
    data: Notify,
    /// Woken (all waiters) when a commit freed space or the log closed: publishers wait on it.
    space: Notify,
    /// Maximum retained (uncommitted by the slowest group) records per partition.
    capacity: usize,
}

impl LogShared {
    fn lock(&self) -> std::sync::MutexGuard<'_, LogState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The serve-mode [`EventLog`]: bounded in-memory partitions with Kafka-like consumer groups.
///
/// Bounded: each partition retains at most `capacity` records not yet committed by every
/// group; [`EventLog::publish`] waits for space when a partition is full (back-pressure to the
/// relay, whose unpublished rows stay PENDING in the outbox). Before any group subscribed,
/// records are retained (up to `capacity`) for the first one. One consumer per group is active
/// at a time; subscribing again fences the previous consumer and resumes from the commit.
/// Nothing survives a restart: the outbox rows are already PROCESSED by then, and clients
/// reconnecting after a restart catch up from the database by seq.
#[derive(Clone)]
pub struct InProcessLog {
    shared: Arc<LogShared>,
}

impl InProcessLog {
    /// A log with `partitions` partitions (at least 1) each retaining at most `capacity`
    /// records (at least 1). Serve mode uses 8 partitions of 10,000.
    pub fn new(partitions: u32, capacity: usize) -> Self {
        let partitions = partitions.max(1) as usize;
        let state = LogState {
            partitions: (0..partitions).map(|_| Partition::default()).collect(),
            groups: HashMap::new(),
            closed: false,
        };
        InProcessLog {
            shared: Arc::new(LogShared {
                state: Mutex::new(state),
                data: Notify::new(),
                space: Notify::new(),
                capacity: capacity.max(1),
            }),
        }
    }

    /// Closes the log: publishers get [`PipelineError::Closed`]; consumers drain what is left
    /// and then get [`PipelineError::Closed`].
    pub fn close(&self) {
        self.shared.lock().closed = true;
        self.shared.data.notify_waiters();
        self.shared.space.notify_waiters();
    }

    /// Records retained across all partitions (published and not yet committed by all groups).
    pub fn retained(&self) -> usize {
        self.shared.lock().partitions.iter().map(|p| p.records.len()).sum()
    }
}

#[async_trait]
impl EventLog for InProcessLog {
    async fn publish(&self, events: &[ConversationEvent]) -> Result<()> {
        let shared = &self.shared;
        let n = shared.lock().partitions.len() as u32;
        let mut next = 0;
        while next < events.len() {
            let space = shared.space.notified();
            tokio::pin!(space);
            space.as_mut().enable();
            {
                let mut st = shared.lock();
                if st.closed {
                    return Err(PipelineError::Closed);
                }
                let mut appended = false;
                while let Some(ev) = events.get(next) {
                    let part = &mut st.partitions[partition_of(ev.conversation_id, n) as usize];
                    if part.records.len() >= shared.capacity {
                        break;
                    }
                    part.records.push_back(Arc::new(ev.clone()));
                    appended = true;
                    next += 1;
                }
                if appended {
                    shared.data.notify_waiters();
                }
                if next == events.len() {
                    return Ok(());
                }
            }
            space.await;
        }
        Ok(())
    }

    async fn subscribe(&self, group: &str) -> Result<Box<dyn EventConsumer>> {
        let mut st = self.shared.lock();
        let bases: Vec<u64> = st.partitions.iter().map(|p| p.base).collect();
        let g = st.groups.entry(group.to_owned()).or_insert_with(|| Group { committed: bases, generation: 0 });
        g.generation += 1;
        let consumer = InProcessConsumer {
            shared: Arc::clone(&self.shared),
            group: group.to_owned(),
            generation: g.generation,
            cursor: g.committed.clone(),
            next_partition: 0,
        };
        Ok(Box::new(consumer))
    }
}

/// A consumer of [`InProcessLog`].
struct InProcessConsumer {
    shared: Arc<LogShared>,
    group: String,
    /// Our generation; a larger one in the group means we were fenced.
    generation: u64,
    /// Next offset to read, per partition.
    cursor: Vec<u64>,
    /// Partition to start the next batch at (round-robin, so no partition starves).
    next_partition: usize,
}

impl InProcessConsumer {
    fn check_generation(&self, st: &LogState) -> Result<()> {
        match st.groups.get(&self.group) {
            Some(g) if g.generation == self.generation => Ok(()),
            _ => Err(PipelineError::Fenced(self.group.clone())),
        }
    }
}

#[async_trait]
impl EventConsumer for InProcessConsumer {
    async fn next_batch(&mut self, max: usize) -> Result<Vec<LogRecord>> {
        let max = max.max(1);
        loop {
            let data = self.shared.data.notified();
            tokio::pin!(data);
            data.as_mut().enable();
            {
                let st = self.shared.lock();
                self.check_generation(&st)?;
                let n = st.partitions.len();
                let mut out = Vec::new();
                for i in 0..n {
                    let p = (self.next_partition + i) % n;
                    let part = &st.partitions[p];
                    // Records below `base` were trimmed: only possible if another group's
                    // consumer of ours committed past us, which fencing prevents; skip ahead.
                    let mut off = self.cursor[p].max(part.base);
                    while off < part.end() && out.len() < max {
                        let event = Arc::clone(&part.records[(off - part.base) as usize]);
                        out.push(LogRecord {
                            position: LogPosition { partition: p as u32, offset: off },
                            event,
                            epoch: self.generation,
                        });
                        off += 1;
                    }
                    self.cursor[p] = off;
                    if out.len() >= max {
                        break;
                    }
                }
                self.next_partition = (self.next_partition + 1) % n;
                if !out.is_empty() {
                    return Ok(out);
                }
                if st.closed {
                    return Err(PipelineError::Closed);
                }
            }
            data.await;
        }
    }

    async fn commit(&mut self, records: &[LogRecord]) -> Result<()> {
        let mut st = self.shared.lock();
        self.check_generation(&st)?;
        let g = st.groups.get_mut(&self.group).ok_or_else(|| PipelineError::Fenced(self.group.clone()))?;
        for r in records {
            let c = &mut g.committed[r.position.partition as usize];
            *c = (*c).max(r.position.offset + 1);
        }
        st.trim();
        drop(st);
        self.shared.space.notify_waiters();
        Ok(())
    }
}
