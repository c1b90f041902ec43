//! [`KafkaLog`]: the producer side of the event topic and the consumer factory.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chat_domain::ConversationEvent;
use chat_pipeline::{EventConsumer, EventLog, PipelineError, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use thiserror::Error;

use crate::config::{ConfigError, KafkaConfig};
use crate::consumer::KafkaConsumer;

/// Header holding the event id (UUID text), so consumers can drop duplicates without parsing.
pub const HEADER_EVENT_ID: &str = "event_id";
/// Header holding the event type (`MESSAGE`, `REACTION_ADDED`, ...).
pub const HEADER_EVENT_TYPE: &str = "event_type";
/// Header holding the value's media type, always `application/json`.
pub const HEADER_CONTENT_TYPE: &str = "content-type";

/// Why [`KafkaLog::connect`] failed.
#[derive(Debug, Error)]
pub enum ConnectError {
    /// The configuration is unusable.
    #[error("invalid Kafka config: {0}")]
    Config(#[from] ConfigError),
    /// librdkafka rejected a client property (see [`KafkaConfig::properties`]).
    #[error("creating the Kafka {role} client failed: {source}")]
    Client {
        /// `producer` or `admin`.
        role: &'static str,
        /// librdkafka's error.
        source: KafkaError,
    },
    /// No broker answered within [`KafkaConfig::request_timeout`], or the topic did not
    /// become ready (every partition with a leader) in that time.
    #[error("Kafka unavailable at {bootstrap}: {reason}")]
    Unavailable {
        /// The bootstrap servers tried.
        bootstrap: String,
        /// What failed.
        reason: String,
    },
    /// The broker refused to create the topic (e.g. replication above the broker count).
    #[error("creating Kafka topic {topic:?} failed: {code}")]
    CreateTopic {
        /// The topic.
        topic: String,
        /// The broker's error code.
        code: RDKafkaErrorCode,
    },
}

impl From<ConnectError> for PipelineError {
    fn from(e: ConnectError) -> Self {
        match e {
            ConnectError::Unavailable { .. } => PipelineError::Unavailable(e.to_string()),
            other => PipelineError::Unexpected(other.into()),
        }
    }
}

/// The scale-out [`EventLog`]: Kafka topic [`KafkaConfig::topic`] (default `message.all`).
///
/// Records: key = conversation id (UUID text), so a conversation's events share a partition
/// (murmur2, as the Java clients) and keep their order; value = the event's JSON
/// (`ConversationEvent`'s serde form); headers [`HEADER_EVENT_ID`], [`HEADER_EVENT_TYPE`],
/// [`HEADER_CONTENT_TYPE`]. The producer is idempotent with `acks=all`, so retries neither
/// duplicate nor reorder records within a partition. Cheap to clone (shared clients).
#[derive(Clone)]
pub struct KafkaLog {
    cfg: Arc<KafkaConfig>,
    producer: FutureProducer,
    admin: Arc<AdminClient<DefaultClientContext>>,
}

impl KafkaLog {
    /// Validates `cfg`, checks that a broker answers, creates the topic with
    /// [`KafkaConfig::partitions`] partitions and [`KafkaConfig::replication`] replicas unless it
    /// exists (an existing topic is used as it is), and waits until every partition has a
    /// leader.
    ///
    /// # Errors
    /// See [`ConnectError`]; convertible into [`PipelineError`] (`Unavailable` stays
    /// `Unavailable`).
    pub async fn connect(cfg: KafkaConfig) -> Result<KafkaLog, ConnectError> {
        cfg.validate()?;
        let producer: FutureProducer =
            cfg.producer_config().create().map_err(|source| ConnectError::Client { role: "producer", source })?;
        let admin: AdminClient<DefaultClientContext> =
            cfg.admin_config().create().map_err(|source| ConnectError::Client { role: "admin", source })?;
        let log = KafkaLog { cfg: Arc::new(cfg), producer, admin: Arc::new(admin) };
        let unavailable = |reason: String| ConnectError::Unavailable { bootstrap: log.cfg.bootstrap.clone(), reason };
        log.partition_count(None).await.map_err(unavailable)?;
        log.create_topic().await?;
        let deadline = Instant::now() + log.cfg.request_timeout;
        loop {
            match log.ready().await {
                Ok(()) => return Ok(log),
                Err(e) if Instant::now() >= deadline => return Err(unavailable(e.to_string())),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// The settings in use.
    pub fn config(&self) -> &KafkaConfig {
        &self.cfg
    }

    async fn create_topic(&self) -> Result<(), ConnectError> {
        let cfg = &self.cfg;
        let (min_isr, retention) = (cfg.min_insync_replicas.to_string(), cfg.retention.as_millis().to_string());
        let topic = NewTopic::new(&cfg.topic, cfg.partitions as i32, TopicReplication::Fixed(cfg.replication.into()))
            .set("min.insync.replicas", &min_isr)
            .set("retention.ms", &retention)
            .set("cleanup.policy", "delete");
        let opts =
            AdminOptions::new().request_timeout(Some(cfg.request_timeout)).operation_timeout(Some(cfg.request_timeout));
        let unavailable = |reason: String| ConnectError::Unavailable { bootstrap: cfg.bootstrap.clone(), reason };
        let results = self.admin.create_topics([&topic], &opts).await.map_err(|e| unavailable(e.to_string()))?;
        for r in results {
            match r {
                Ok(_) => tracing::info!(topic = %cfg.topic, partitions = cfg.partitions, "kafka: topic created"),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code @ (RDKafkaErrorCode::RequestTimedOut | RDKafkaErrorCode::OperationTimedOut))) => {
                    return Err(unavailable(format!("creating topic {:?}: {code}", cfg.topic)));
                }
                Err((topic, code)) => return Err(ConnectError::CreateTopic { topic, code }),
            }
        }
        Ok(())
    }

    /// Fetches metadata (of the topic, or of the cluster with `None`) on a blocking thread;
    /// the topic's partition count, or the error text.
    async fn partition_count(&self, topic: Option<String>) -> Result<usize, String> {
        let producer = self.producer.clone();
        let timeout = self.cfg.request_timeout;
        let fetched = tokio::task::spawn_blocking(move || {
            let md = producer.client().fetch_metadata(topic.as_deref(), timeout).map_err(|e| e.to_string())?;
            let Some(topic) = topic else { return Ok(0) };
            let t = md.topics().iter().find(|t| t.name() == topic).ok_or_else(|| format!("topic {topic:?} missing"))?;
            if let Some(e) = t.error() {
                return Err(format!("topic {topic:?}: {:?}", RDKafkaErrorCode::from(e)));
            }
            if t.partitions().is_empty() || t.partitions().iter().any(|p| p.leader() < 0 || p.error().is_some()) {
                return Err(format!("topic {topic:?}: a partition has no leader"));
            }
            Ok(t.partitions().len())
        })
        .await;
        fetched.map_err(|e| e.to_string())?
    }

    /// Readiness: a broker answers within [`KafkaConfig::request_timeout`] and every partition
    /// of the topic has a leader.
    ///
    /// # Errors
    /// [`PipelineError::Unavailable`] saying what is missing.
    pub async fn ready(&self) -> Result<()> {
        match self.partition_count(Some(self.cfg.topic.clone())).await {
            Ok(_) => Ok(()),
            Err(reason) => Err(PipelineError::Unavailable(format!("kafka at {}: {reason}", self.cfg.bootstrap))),
        }
    }

    /// The topic's partition count, from the brokers' metadata.
    ///
    /// # Errors
    /// [`PipelineError::Unavailable`] as [`KafkaLog::ready`].
    pub async fn partitions(&self) -> Result<u32> {
        match self.partition_count(Some(self.cfg.topic.clone())).await {
            Ok(n) => Ok(n as u32),
            Err(reason) => Err(PipelineError::Unavailable(format!("kafka at {}: {reason}", self.cfg.bootstrap))),
        }
    }

    /// A concrete consumer of group `group` (what [`EventLog::subscribe`] returns boxed), with
    /// [`KafkaConsumer::assignment`] for inspection.
    ///
    /// # Errors
    /// As [`KafkaConsumer::join`].
    pub async fn consumer(&self, group: &str) -> Result<KafkaConsumer> {
        KafkaConsumer::join(&self.cfg, group).await
    }

    /// Enqueues one record, waiting while librdkafka's bounded queue is full (at most the
    /// delivery timeout).
    async fn enqueue(&self, ev: &ConversationEvent) -> Result<DeliveryFuture> {
        let value = serde_json::to_vec(ev).map_err(|e| PipelineError::Unexpected(e.into()))?;
        let key = ev.conversation_id.to_string();
        let id = ev.event_id.to_string();
        let headers = OwnedHeaders::new_with_capacity(3)
            .insert(Header { key: HEADER_EVENT_ID, value: Some(&id) })
            .insert(Header { key: HEADER_EVENT_TYPE, value: Some(ev.kind().as_str()) })
            .insert(Header { key: HEADER_CONTENT_TYPE, value: Some("application/json") });
        let mut record = FutureRecord::to(&self.cfg.topic).key(&key).payload(&value).headers(headers);
        let deadline = Instant::now() + self.cfg.delivery_timeout;
        loop {
            match self.producer.send_result(record) {
                Ok(delivery) => return Ok(delivery),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) if Instant::now() < deadline => {
                    record = r;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err((e, _)) => return Err(PipelineError::Unavailable(format!("kafka produce: {e}"))),
            }
        }
    }
}

#[async_trait]
impl EventLog for KafkaLog {
    /// Enqueues every event in order (librdkafka keeps the order per partition), then waits
    /// for all delivery reports; `Ok` only when every one is a success.
    async fn publish(&self, events: &[ConversationEvent]) -> Result<()> {
        let mut deliveries = Vec::with_capacity(events.len());
        let mut failure = None;
        for ev in events {
            match self.enqueue(ev).await {
                Ok(d) => deliveries.push(d),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        for d in deliveries {
            let err = match d.await {
                Ok(Ok(_)) => continue,
                Ok(Err((e, _))) => PipelineError::Unavailable(format!("kafka delivery: {e}")),
                Err(_) => PipelineError::Unavailable("kafka producer shut down".to_owned()),
            };
            failure.get_or_insert(err);
        }
        failure.map_or(Ok(()), Err)
    }

    async fn subscribe(&self, group: &str) -> Result<Box<dyn EventConsumer>> {
        Ok(Box::new(self.consumer(group).await?))
    }
}

// `ConnectError` goes into `anyhow` and across tasks.
const _: fn() = || {
    fn bounds<T: std::error::Error + Send + Sync + 'static>() {}
    bounds::<ConnectError>();
    fn shared<T: Send + Sync>() {}
    shared::<KafkaLog>();
};
