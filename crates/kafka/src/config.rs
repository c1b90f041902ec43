//! Settings of the Kafka event log and their validation.

use std::time::Duration;

use rdkafka::ClientConfig;
use thiserror::Error;

/// Topic of the conversation event log (product.md message path, step 4).
pub const DEFAULT_TOPIC: &str = "message.all";

/// Settings of [`crate::KafkaLog`]: where the brokers are, which topic, how it is created, and
/// the client timeouts. `Default` gives a single local broker (`127.0.0.1:9092`), topic
/// [`DEFAULT_TOPIC`] with 8 partitions and 1 replica (production: replication 3, see
/// docs/ops/kafka.md).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port[,host:port...]` (Kafka `bootstrap.servers`).
    pub bootstrap: String,
    /// Topic holding the conversation events; default [`DEFAULT_TOPIC`]. Legal Kafka topic
    /// name: 1 to 249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
    pub topic: String,
    /// Partition count used when the topic is created (an existing topic is kept as it is).
    /// The ordering unit is the conversation (the record key); the parallelism of a consumer
    /// group is at most this many consumers. At least 1; default 8.
    pub partitions: u32,
    /// Replication factor used when the topic is created; at least 1, at most the broker
    /// count. Default 1 (a single test broker); production uses 3.
    pub replication: u16,
    /// `min.insync.replicas` of a created topic: with `acks=all` a write needs this many
    /// in-sync replicas. At least 1, at most [`KafkaConfig::replication`]; default 1
    /// (production: 2 with replication 3).
    pub min_insync_replicas: u16,
    /// How long a created topic retains records (`retention.ms`); default 7 days. Consumers
    /// that fall further behind lose records (clients then catch up from the database).
    pub retention: Duration,
    /// Client id prefix reported to the brokers (Kafka `client.id`); default `chat-sys`.
    pub client_id: String,
    /// A consumer that sends no heartbeat for this long is removed from its group and its
    /// partitions go to the others (`session.timeout.ms`; the broker allows 6 s to 300 s by
    /// default). Default 10 s. Heartbeats are sent every third of it.
    pub session_timeout: Duration,
    /// Longest pause between two reads of a consumer before it is removed from its group
    /// (`max.poll.interval.ms`); default 5 min.
    pub max_poll_interval: Duration,
    /// How long [`crate::KafkaLog::publish`] keeps retrying one record before it fails with
    /// `Unavailable` (`message.timeout.ms`, the delivery timeout); default 30 s.
    pub delivery_timeout: Duration,
    /// Timeout of metadata and admin requests (readiness check, topic creation); default 10 s.
    pub request_timeout: Duration,
    /// Extra librdkafka properties applied to every client after the ones above (security:
    /// `security.protocol`, `sasl.*`, `ssl.*`; tuning). See librdkafka's CONFIGURATION.md.
    pub properties: Vec<(String, String)>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            bootstrap: "127.0.0.1:9092".to_owned(),
            topic: DEFAULT_TOPIC.to_owned(),
            partitions: 8,
            replication: 1,
            min_insync_replicas: 1,
            retention: Duration::from_secs(7 * 24 * 3600),
            client_id: "chat-sys".to_owned(),
            session_timeout: Duration::from_secs(10),
            max_poll_interval: Duration::from_secs(300),
            delivery_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
            properties: Vec::new(),
        }
    }
}

/// A [`KafkaConfig`] field with an unusable value.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    /// [`KafkaConfig::bootstrap`] is empty or has an entry without `host:port`.
    #[error("bootstrap servers {0:?}: expected host:port[,host:port...]")]
    Bootstrap(String),
    /// [`KafkaConfig::topic`] is not a legal Kafka topic name.
    #[error("topic {0:?}: expected 1 to 249 characters of [a-zA-Z0-9._-], not \".\" or \"..\"")]
    Topic(String),
    /// A consumer group id is empty.
    #[error("consumer group id must not be empty")]
    Group,
    /// A count is out of range.
    #[error("{field} = {value}: {reason}")]
    Range {
        /// The field, e.g. `partitions`.
        field: &'static str,
        /// The value given.
        value: u64,
        /// What is allowed.
        reason: &'static str,
    },
}

/// Whether `name` is a legal Kafka topic name (Kafka's `Topic.validate`).
pub fn valid_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn millis(d: Duration) -> String {
    d.as_millis().to_string()
}

impl KafkaConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// The first unusable field, as a [`ConfigError`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        let hosts_ok = !self.bootstrap.trim().is_empty()
            && self.bootstrap.split(',').all(|h| {
                h.trim()
                    .rsplit_once(':')
                    .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0))
            });
        if !hosts_ok {
            return Err(ConfigError::Bootstrap(self.bootstrap.clone()));
        }
        if !valid_topic_name(&self.topic) {
            return Err(ConfigError::Topic(self.topic.clone()));
        }
        let range = |field, value: u64, ok: bool, reason| {
            if ok { Ok(()) } else { Err(ConfigError::Range { field, value, reason }) }
        };
        range("partitions", self.partitions.into(), (1..=100_000).contains(&self.partitions), "1 to 100000")?;
        range("replication", self.replication.into(), self.replication >= 1, "at least 1")?;
        range(
            "min_insync_replicas",
            self.min_insync_replicas.into(),
            (1..=self.replication).contains(&self.min_insync_replicas),
            "1 to replication",
        )?;
        let secs = self.session_timeout.as_secs();
        range("session_timeout (s)", secs, (1..=3600).contains(&secs), "1 s to 1 h")?;
        let ms = self.max_poll_interval.as_millis() as u64;
        range("max_poll_interval (ms)", ms, ms >= self.session_timeout.as_millis() as u64, "at least session_timeout")?;
        let ms = self.delivery_timeout.as_millis() as u64;
        range("delivery_timeout (ms)", ms, ms >= 1, "at least 1 ms")?;
        let ms = self.request_timeout.as_millis() as u64;
        range("request_timeout (ms)", ms, ms >= 1, "at least 1 ms")?;
        let ms = self.retention.as_millis() as u64;
        range("retention (ms)", ms, ms >= 1, "at least 1 ms")?;
        Ok(())
    }

    /// librdkafka settings shared by every client: servers, client id, timeouts, extras.
    pub(crate) fn client_config(&self, role: &str) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap)
            .set("client.id", format!("{}-{role}", self.client_id))
            .set("socket.timeout.ms", millis(self.request_timeout.max(Duration::from_millis(10))))
            // Fail over quickly between brokers, but do not hammer a dead one.
            .set("reconnect.backoff.ms", "100")
            .set("reconnect.backoff.max.ms", "2000");
        c
    }

    /// Applies [`KafkaConfig::properties`] last, so they override the built-in settings.
    fn with_extras(&self, mut c: ClientConfig) -> ClientConfig {
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        c
    }

    /// Producer settings: idempotent (`enable.idempotence=true`, hence `acks=all` and at most
    /// 5 requests in flight per connection, which keeps per-partition order), murmur2 key
    /// partitioner (as the Java clients), delivery timeout.
    pub(crate) fn producer_config(&self) -> ClientConfig {
        let mut c = self.client_config("producer");
        c.set("enable.idempotence", "true")
            .set("acks", "all")
            .set("max.in.flight.requests.per.connection", "5")
            .set("partitioner", "murmur2_random")
            .set("message.timeout.ms", millis(self.delivery_timeout))
            .set("linger.ms", "5")
            .set("compression.type", "lz4")
            // Bounded client-side queue: ~64 MiB or 100k records, whichever comes first.
            .set("queue.buffering.max.kbytes", "65536")
            .set("queue.buffering.max.messages", "100000");
        self.with_extras(c)
    }

    /// Consumer settings for `group`: manual commits only, start at the oldest record of a new
    /// group, eager range assignment, session timeout, bounded prefetch.
    pub(crate) fn consumer_config(&self, group: &str) -> ClientConfig {
        let heartbeat = (self.session_timeout / 3).max(Duration::from_millis(100));
        let mut c = self.client_config("consumer");
        c.set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .set("session.timeout.ms", millis(self.session_timeout))
            .set("heartbeat.interval.ms", millis(heartbeat))
            .set("max.poll.interval.ms", millis(self.max_poll_interval))
            .set("partition.assignment.strategy", "range,roundrobin")
            // Bounded prefetch: at most ~16 MiB buffered per consumer.
            .set("queued.max.messages.kbytes", "16384");
        self.with_extras(c)
    }

    /// Admin client settings.
    pub(crate) fn admin_config(&self) -> ClientConfig {
        self.with_extras(self.client_config("admin"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        assert_eq!(KafkaConfig::default().validate(), Ok(()));
    }

    #[test]
    fn rejects_bad_values() {
        let bad = |f: fn(&mut KafkaConfig)| {
            let mut c = KafkaConfig::default();
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert_eq!(bad(|c| c.bootstrap = "localhost".into()), ConfigError::Bootstrap("localhost".into()));
        assert_eq!(bad(|c| c.bootstrap = "a:1,:2".into()), ConfigError::Bootstrap("a:1,:2".into()));
        assert_eq!(bad(|c| c.topic = "message all".into()), ConfigError::Topic("message all".into()));
        assert_eq!(bad(|c| c.topic = "..".into()), ConfigError::Topic("..".into()));
        assert!(matches!(bad(|c| c.partitions = 0), ConfigError::Range { field: "partitions", .. }));
        assert!(matches!(bad(|c| c.min_insync_replicas = 2), ConfigError::Range { field: "min_insync_replicas", .. }));
        assert!(matches!(
            bad(|c| c.max_poll_interval = Duration::from_secs(1)),
            ConfigError::Range { field: "max_poll_interval (ms)", .. }
        ));
    }

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(valid_topic_name("message.all"));
        assert!(valid_topic_name("a-b_c.9"));
        assert!(!valid_topic_name(""));
        assert!(!valid_topic_name("."));
        assert!(!valid_topic_name(&"x".repeat(250)));
        assert!(!valid_topic_name("ü"));
    }
}
