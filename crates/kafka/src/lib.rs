//! Apache Kafka implementation of chat-sys's event log (scale-out mode; ARCHITECTURE.md,
//! product.md message path steps 4-5), behind chat-pipeline's [`EventLog`] and
//! [`EventConsumer`] traits.
//!
//! - [`KafkaLog`]: topic `message.all` keyed by conversation id, idempotent producer
//!   (`enable.idempotence=true`, `acks=all`); [`EventLog::publish`] returns once every record's
//!   delivery report is a success. [`KafkaLog::connect`] creates the topic through the admin
//!   API (an existing one is kept) and checks readiness.
//! - [`KafkaConsumer`]: a member of a consumer group, manual commits only, per-partition
//!   order, rebalance-aware (records of revoked partitions are neither handed out nor
//!   committed by the old owner; see [`chat_pipeline::LogRecord::epoch`]).
//!
//! Operations (settings, partition sizing, retention): docs/ops/kafka.md. A test broker:
//! `bash scripts/kafka.sh start`.
//!
//! [`EventLog`]: chat_pipeline::EventLog
//! [`EventConsumer`]: chat_pipeline::EventConsumer
//! [`EventLog::publish`]: chat_pipeline::EventLog::publish
#![warn(missing_docs)]

mod config;
mod consumer;
mod log;

pub use config::{ConfigError, DEFAULT_TOPIC, KafkaConfig, valid_topic_name};
pub use consumer::{GroupContext, KafkaConsumer};
pub use log::{ConnectError, HEADER_CONTENT_TYPE, HEADER_EVENT_ID, HEADER_EVENT_TYPE, KafkaLog};
