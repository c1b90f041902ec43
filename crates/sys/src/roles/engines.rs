//! Opening the scale-out engines from [`Config`]: the Kafka event log, the Redis registry and
//! streams, the core client of a gateway. Each opener names the missing setting or the
//! unreachable engine in its error.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chat_pipeline::{ConnectionRegistry, DeliveryStreams, EventLog};

use super::probes::{Probe, probe};
use crate::config::Config;

/// The Kafka event log (`kafka.bootstrap`, topic created when missing) and its probe.
///
/// # Errors
/// `kafka.bootstrap` unset, the broker unreachable, or a binary built without the `kafka`
/// feature.
#[cfg(feature = "kafka")]
pub(crate) async fn event_log(config: &Config, group_hint: &str) -> anyhow::Result<(Arc<dyn EventLog>, Probe)> {
    let bootstrap = config
        .kafka
        .bootstrap
        .clone()
        .context("kafka.bootstrap is not set (CHAT_KAFKA__BOOTSTRAP=host:9092): this role needs Kafka")?;
    let cfg = chat_kafka::KafkaConfig {
        bootstrap,
        topic: config.kafka.topic.clone(),
        partitions: config.kafka.partitions,
        replication: config.kafka.replication,
        client_id: format!("chat-sys-{group_hint}"),
        ..chat_kafka::KafkaConfig::default()
    };
    let log = Arc::new(chat_kafka::KafkaLog::connect(cfg).await.context("connecting to Kafka")?);
    let probe_log = log.clone();
    let p = probe(move || {
        let log = probe_log.clone();
        async move { log.ready().await.map_err(|e| e.to_string()) }
    });
    Ok((log, p))
}

/// Without the `kafka` feature the scale-out roles cannot run.
///
/// # Errors
/// Always: names the feature to build with.
#[cfg(not(feature = "kafka"))]
pub(crate) async fn event_log(_config: &Config, _group_hint: &str) -> anyhow::Result<(Arc<dyn EventLog>, Probe)> {
    anyhow::bail!(
        "this chat-sys binary was built without Kafka support; build it with `cargo build -p chat-sys --features kafka`"
    )
}

fn redis_url(config: &Config) -> anyhow::Result<String> {
    config.redis.url.clone().context("redis.url is not set (CHAT_REDIS__URL=redis://host:6379): this role needs Redis")
}

/// The Redis connection registry and its probe.
///
/// # Errors
/// `redis.url` unset or Redis unreachable.
pub(crate) async fn registry(config: &Config) -> anyhow::Result<(Arc<dyn ConnectionRegistry>, Probe)> {
    let ttl = Duration::from_secs(config.redis.registry_ttl_secs);
    let registry =
        Arc::new(chat_redis::RedisRegistry::connect(&redis_url(config)?, ttl).await.context("connecting to Redis")?);
    let r = registry.clone();
    let p = probe(move || {
        let r = r.clone();
        async move { r.ping().await.map_err(|e| e.to_string()) }
    });
    Ok((registry, p))
}

/// The Redis per-gateway delivery streams and their probe.
///
/// # Errors
/// `redis.url` unset or Redis unreachable.
pub(crate) async fn streams(config: &Config) -> anyhow::Result<(Arc<dyn DeliveryStreams>, Probe)> {
    let cfg = chat_redis::RedisStreamsConfig {
        max_len: config.redis.stream_max_len,
        ..chat_redis::RedisStreamsConfig::default()
    };
    let streams =
        Arc::new(chat_redis::RedisStreams::connect(&redis_url(config)?, cfg).await.context("connecting to Redis")?);
    let s = streams.clone();
    let p = probe(move || {
        let s = s.clone();
        async move { s.ping().await.map_err(|e| e.to_string()) }
    });
    Ok((streams, p))
}
