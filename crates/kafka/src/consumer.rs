//! [`KafkaConsumer`]: one member of a Kafka consumer group reading the event topic, behind
//! chat-pipeline's [`EventConsumer`].
//!
//! Rebalances: a [`GroupContext`] sees every revoke and assign (librdkafka calls it from the
//! consumer's poll, i.e. inside [`EventConsumer::next_batch`]) and keeps the assignment and an
//! epoch counter. A record is owned while its partition has not been revoked since it was
//! read; batches hold only owned records, all tagged with the current epoch, and a commit
//! skips records whose partition was revoked after their epoch (the new owner reads them again
//! from the group's last commit).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chat_domain::ConversationEvent;
use chat_pipeline::{EventConsumer, LogPosition, LogRecord, PipelineError, Result};
use futures::FutureExt;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::config::{ConfigError, KafkaConfig};

/// The assignment as seen by the rebalance callbacks.
#[derive(Debug, Default)]
struct Assignment {
    /// Grows by one per revoke and per assign; 0 before the first assignment.
    epoch: u64,
    /// Partitions of the topic currently assigned, each with the epoch it was assigned in.
    partitions: BTreeMap<u32, u64>,
}

impl Assignment {
    /// Whether a record of `partition` read in `epoch` is still ours: the partition is
    /// assigned and was not revoked (and assigned again) after `epoch`.
    fn owns(&self, partition: u32, epoch: u64) -> bool {
        self.partitions.get(&partition).is_some_and(|&since| since <= epoch)
    }
}

/// Consumer context tracking the group assignment of one [`KafkaConsumer`].
pub struct GroupContext {
    topic: String,
    group: String,
    assignment: Mutex<Assignment>,
}

impl GroupContext {
    fn lock(&self) -> MutexGuard<'_, Assignment> {
        self.assignment.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn partitions_of(&self, tpl: &TopicPartitionList) -> Vec<u32> {
        tpl.elements_for_topic(&self.topic).iter().filter_map(|e| u32::try_from(e.partition()).ok()).collect()
    }
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    /// Runs before librdkafka applies the change: after a revoke returns, commits of the
    /// revoked partitions are refused; records fetched under the old assignment are dropped.
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                let revoked = self.partitions_of(tpl);
                let mut a = self.lock();
                a.epoch += 1;
                for p in &revoked {
                    a.partitions.remove(p);
                }
                tracing::info!(group = %self.group, topic = %self.topic, epoch = a.epoch, ?revoked, "kafka: partitions revoked");
            }
            Rebalance::Assign(tpl) => {
                let assigned = self.partitions_of(tpl);
                let mut a = self.lock();
                a.epoch += 1;
                let epoch = a.epoch;
                for p in &assigned {
                    a.partitions.insert(*p, epoch);
                }
                tracing::info!(group = %self.group, topic = %self.topic, epoch, ?assigned, "kafka: partitions assigned");
            }
            Rebalance::Error(e) => {
                tracing::warn!(group = %self.group, error = %e, "kafka: rebalance error");
            }
        }
    }
}

/// A record read but not yet handed out, with the epoch it was read in.
struct Pending {
    position: LogPosition,
    event: Arc<ConversationEvent>,
    read_in: u64,
}

/// A member of consumer group `group` on the event topic (see the module docs).
///
/// Manual commits only (`enable.auto.commit=false`); a new group starts at the oldest retained
/// record (`auto.offset.reset=earliest`). Dropping it leaves the group gracefully (on a
/// blocking thread when inside a Tokio runtime); a crashed process is removed by the broker
/// after [`KafkaConfig::session_timeout`].
pub struct KafkaConsumer {
    /// `None` only while being dropped.
    consumer: Option<Arc<StreamConsumer<GroupContext>>>,
    topic: String,
    group: String,
}

/// Commit errors that mean "the group is rebalancing or moved on without us": the commit is
/// dropped and the records are read again by the partition's owner.
fn rebalance_commit_error(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::RebalanceInProgress
            | RDKafkaErrorCode::IllegalGeneration
            | RDKafkaErrorCode::UnknownMemberId
            | RDKafkaErrorCode::StaleMemberEpoch
            | RDKafkaErrorCode::AssignmentLost
    )
}

fn unavailable(what: &str, e: &KafkaError) -> PipelineError {
    PipelineError::Unavailable(format!("kafka {what}: {e}"))
}

impl KafkaConsumer {
    /// Joins consumer group `group` on `cfg.topic` and checks that a broker answers within
    /// [`KafkaConfig::request_timeout`]. The partitions are assigned asynchronously, during
    /// the first calls of [`EventConsumer::next_batch`].
    ///
    /// # Errors
    /// [`PipelineError::Unavailable`] when no broker answers; [`PipelineError::Unexpected`]
    /// for an invalid config or group id.
    pub async fn join(cfg: &KafkaConfig, group: &str) -> Result<Self> {
        cfg.validate().map_err(|e| PipelineError::Unexpected(e.into()))?;
        if group.trim().is_empty() {
            return Err(PipelineError::Unexpected(ConfigError::Group.into()));
        }
        let ctx = GroupContext {
            topic: cfg.topic.clone(),
            group: group.to_owned(),
            assignment: Mutex::new(Assignment::default()),
        };
        let consumer: StreamConsumer<GroupContext> = cfg
            .consumer_config(group)
            .create_with_context(ctx)
            .map_err(|e| PipelineError::Unexpected(anyhow_from("creating the Kafka consumer", e)))?;
        let consumer = Arc::new(consumer);
        let probe = Arc::clone(&consumer);
        let (topic, timeout) = (cfg.topic.clone(), cfg.request_timeout);
        let metadata =
            tokio::task::spawn_blocking(move || probe.fetch_metadata(Some(&topic), timeout).map(|_| ())).await;
        let me = KafkaConsumer { consumer: Some(consumer), topic: cfg.topic.clone(), group: group.to_owned() };
        match metadata {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(unavailable(&format!("metadata from {}", cfg.bootstrap), &e)),
            Err(e) => return Err(PipelineError::Unexpected(e.into())),
        }
        me.inner().subscribe(&[&cfg.topic]).map_err(|e| unavailable("subscribe", &e))?;
        Ok(me)
    }

    fn inner(&self) -> &Arc<StreamConsumer<GroupContext>> {
        self.consumer.as_ref().expect("consumer present until drop")
    }

    /// Partitions of the topic currently assigned to this consumer, ascending. Empty until the
    /// group's first assignment (which happens while reading).
    pub fn assignment(&self) -> Vec<u32> {
        self.inner().context().lock().partitions.keys().copied().collect()
    }

    /// The current assignment epoch (0 before the first assignment); see [`LogRecord::epoch`].
    pub fn epoch(&self) -> u64 {
        self.inner().context().lock().epoch
    }

    /// The consumer group.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// Leaves the group (its partitions go to the other members at once) and waits for it.
    pub async fn close(mut self) {
        if let Some(c) = self.consumer.take() {
            let _ = tokio::task::spawn_blocking(move || drop(c)).await;
        }
    }

    /// Converts one fetched message; `None` (logged) when it is not a `ConversationEvent`.
    fn decode(&self, msg: &BorrowedMessage<'_>, read_in: u64) -> Option<Pending> {
        let (partition, offset) = (u32::try_from(msg.partition()).ok()?, u64::try_from(msg.offset()).ok()?);
        match serde_json::from_slice::<ConversationEvent>(msg.payload().unwrap_or_default()) {
            Ok(event) => Some(Pending { position: LogPosition { partition, offset }, event: Arc::new(event), read_in }),
            Err(e) => {
                tracing::error!(topic = %self.topic, partition, offset, error = %e,
                    "kafka: skipping a record that is not a ConversationEvent");
                None
            }
        }
    }
}

impl Drop for KafkaConsumer {
    fn drop(&mut self) {
        // Leaving the group blocks (librdkafka polls until closed): keep it off async threads.
        if let Some(c) = self.consumer.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            rt.spawn_blocking(move || drop(c));
        }
    }
}

fn anyhow_from(what: &str, e: KafkaError) -> anyhow::Error {
    anyhow::Error::new(e).context(what.to_owned())
}

#[async_trait]
impl EventConsumer for KafkaConsumer {
    async fn next_batch(&mut self, max: usize) -> Result<Vec<LogRecord>> {
        let max = max.max(1);
        loop {
            let consumer = Arc::clone(self.inner());
            let mut read: Vec<Pending> = Vec::new();
            // Wait for the first record (rebalance callbacks run inside this poll), then take
            // what is already fetched without waiting.
            let first = consumer.recv().await;
            match first {
                Ok(msg) => {
                    let epoch = consumer.context().lock().epoch;
                    read.extend(self.decode(&msg, epoch));
                }
                Err(KafkaError::MessageConsumption(RDKafkaErrorCode::FencedInstanceId)) => {
                    return Err(PipelineError::Fenced(self.group.clone()));
                }
                Err(e) => return Err(unavailable("consume", &e)),
            }
            while read.len() < max {
                match consumer.recv().now_or_never() {
                    Some(Ok(msg)) => {
                        let epoch = consumer.context().lock().epoch;
                        read.extend(self.decode(&msg, epoch));
                    }
                    Some(Err(e)) => {
                        tracing::warn!(group = %self.group, error = %e, "kafka: consumer error");
                        break;
                    }
                    None => break,
                }
            }
            // Keep what was not revoked meanwhile; tag it with the epoch of now.
            let a = consumer.context().lock();
            let epoch = a.epoch;
            let before = read.len();
            let out: Vec<LogRecord> = read
                .into_iter()
                .filter(|r| a.owns(r.position.partition, r.read_in))
                .map(|r| LogRecord { position: r.position, event: r.event, epoch })
                .collect();
            drop(a);
            if out.len() < before {
                tracing::debug!(group = %self.group, dropped = before - out.len(),
                    "kafka: dropped records of revoked partitions (their new owner reads them)");
            }
            if !out.is_empty() {
                return Ok(out);
            }
        }
    }

    async fn commit(&mut self, records: &[LogRecord]) -> Result<()> {
        let consumer = Arc::clone(self.inner());
        let mut next: BTreeMap<u32, u64> = BTreeMap::new();
        let mut stale = HashSet::new();
        {
            let a = consumer.context().lock();
            for r in records {
                let p = r.position.partition;
                if a.owns(p, r.epoch) {
                    let n = next.entry(p).or_default();
                    *n = (*n).max(r.position.offset + 1);
                } else {
                    stale.insert(p);
                }
            }
        }
        if !stale.is_empty() {
            tracing::info!(group = %self.group, partitions = ?stale,
                "kafka: not committing records of revoked partitions (their new owner reads them again)");
        }
        if next.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for (p, offset) in &next {
            let (p, offset) = (i32::try_from(*p), i64::try_from(*offset));
            let (Ok(p), Ok(offset)) = (p, offset) else {
                return Err(PipelineError::Unexpected(anyhow::anyhow!("partition or offset out of Kafka's range")));
            };
            tpl.add_partition_offset(&self.topic, p, Offset::Offset(offset))
                .map_err(|e| PipelineError::Unexpected(anyhow_from("building the commit", e)))?;
        }
        let committed = tokio::task::spawn_blocking(move || consumer.commit(&tpl, CommitMode::Sync)).await;
        match committed {
            Ok(Ok(())) => Ok(()),
            Ok(Err(KafkaError::ConsumerCommit(code))) if rebalance_commit_error(code) => {
                tracing::info!(group = %self.group, %code,
                    "kafka: commit dropped by a rebalance; the records will be read again");
                Ok(())
            }
            Ok(Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::FencedInstanceId))) => {
                Err(PipelineError::Fenced(self.group.clone()))
            }
            Ok(Err(e)) => Err(unavailable("commit", &e)),
            Err(e) => Err(PipelineError::Unexpected(e.into())),
        }
    }
}
