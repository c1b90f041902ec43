//! Settings of the scale-out roles (`chat-sys core`, `fanout`, `gateway`): the Redis, Kafka
//! and core-client sections of [`super::Config`]. `serve` ignores them.

use serde::{Deserialize, Serialize};

/// The `[redis]` section: the connection registry and the per-gateway delivery streams
/// (`docs/ops/redis.md`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSettings {
    /// `redis://[:PASSWORD@]HOST:PORT[/DB]`. Required by the scale-out roles; unset by
    /// default.
    pub url: Option<String>,
    /// Approximate maximum length of each gateway's stream (`XADD MAXLEN ~`). Default
    /// 10,000 entries; entries trimmed before their gateway read them make it resync its
    /// clients from the database.
    pub stream_max_len: u64,
    /// Heart-beat TTL of a registered connection in seconds: a connection not refreshed for
    /// this long is gone (a dead gateway's connections expire on their own). Default 30.
    pub registry_ttl_secs: u64,
}

impl Default for RedisSettings {
    fn default() -> Self {
        RedisSettings { url: None, stream_max_len: 10_000, registry_ttl_secs: 30 }
    }
}

/// The `[kafka]` section: the event log between the outbox relay (core) and the fanout
/// workers (`docs/ops/kafka.md`). Needs a binary built with the `kafka` feature.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaSettings {
    /// `bootstrap.servers`: comma-separated `HOST:PORT` list. Required by `core` and
    /// `fanout`; unset by default.
    pub bootstrap: Option<String>,
    /// The topic of conversation events, keyed by conversation id. Default `message.all`
    /// (the seed's).
    pub topic: String,
    /// Partitions of the topic when chat-sys creates it (an existing topic is kept as is).
    /// The ordering unit is a conversation; fanout parallelism is at most this. Default 8.
    pub partitions: u32,
    /// Replication factor when chat-sys creates the topic. Default 1 (use 3 in production).
    pub replication: u16,
    /// Consumer group of the fanout workers. Default `fanout`.
    pub fanout_group: String,
}

impl Default for KafkaSettings {
    fn default() -> Self {
        KafkaSettings {
            bootstrap: None,
            topic: "message.all".into(),
            partitions: 8,
            replication: 1,
            fanout_group: "fanout".into(),
        }
    }
}

/// The `[core_client]` section: how a `chat-sys gateway` reaches the core over gRPC (token
/// verification, connection registry, sends, catch-up reads). The gateway authenticates as
/// an OAuth2 confidential client (`client_credentials` grant, RFC 6749 section 4.4) created
/// with `chat-sys client create`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CoreClientSettings {
    /// The core's gRPC endpoint. Default `http://127.0.0.1:9090`.
    pub grpc_url: String,
    /// The core's OAuth2 token endpoint. Default `http://127.0.0.1:8081/oauth2/token`.
    pub token_url: String,
    /// `client_id` of the gateway's client. Default `gateway`.
    pub client_id: String,
    /// `client_secret` of the gateway's client. Required by the gateway role.
    pub client_secret: Option<String>,
}

impl Default for CoreClientSettings {
    fn default() -> Self {
        CoreClientSettings {
            grpc_url: "http://127.0.0.1:9090".into(),
            token_url: "http://127.0.0.1:8081/oauth2/token".into(),
            client_id: "gateway".into(),
            client_secret: None,
        }
    }
}
