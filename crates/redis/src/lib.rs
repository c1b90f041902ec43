//! Redis implementations of the scale-out pipeline's [`ConnectionRegistry`] and
//! [`DeliveryStreams`] (issue 5, item 3), on the redis crate's [`ConnectionManager`]
//! (multiplexed, reconnecting).
//!
//! - [`RedisRegistry`]: the connection registry in the seed's layout (a hash per connection id,
//!   a set of connection ids per user and per gateway node), with heart-beat TTLs as Redis key
//!   expiry so a dead gateway's connections disappear without anyone cleaning up.
//! - [`RedisStreams`]: the per-gateway delivery stream `gatewayId:{gatewayNodeId}:stream`,
//!   consumer group `ephemeral-consumer-group`, approximate `MAXLEN` trimming, with gap
//!   detection (trimmed unread entries, a flushed or deleted stream) reported as
//!   [`chat_pipeline::GapNotice`].
//!
//! Every key, field and TTL is described in `docs/ops/redis.md`. Needs Redis ≥ 7.0 (Lua
//! scripts use `XINFO STREAM`'s `last-generated-id` and `redis.pcall` error tables), a
//! standalone server or a Sentinel-managed primary; not Redis Cluster (scripts touch keys they
//! derive from hash contents). Read lookups also remove dangling index members, so they run on
//! the primary.
//!
//! Errors: when Redis cannot be reached or times out, every operation fails with
//! [`PipelineError::Unavailable`] (retryable: the connection manager reconnects in the
//! background); a reply that does not have the documented shape is
//! [`PipelineError::Unexpected`].

#![warn(missing_docs)]

mod conn;
mod consumer;
pub mod registry;
mod scripts;
pub mod streams;
mod wire;

use std::time::Duration;

pub use chat_pipeline::{ConnectionRegistry, DeliveryConsumer, DeliveryStreams, PipelineError};
pub use redis::aio::ConnectionManager;
pub use registry::{RedisRegistry, RedisRegistryConfig};
pub use streams::{CONSUMER_GROUP, RedisStreams, RedisStreamsConfig, StreamKeys};

/// How to reach Redis: shared by [`RedisRegistry`] and [`RedisStreams`].
#[derive(Clone, Debug)]
pub struct RedisConnectConfig {
    /// Limit for one connection attempt; default 2 s.
    pub connect_timeout: Duration,
    /// Limit for one command's reply (blocking stream reads add their block time); default 2 s.
    /// A command that takes longer fails with [`PipelineError::Unavailable`].
    pub command_timeout: Duration,
    /// Reconnection attempts (exponential backoff from 100 ms, at most 1 s apart) before a
    /// command fails with [`PipelineError::Unavailable`]; default 3.
    pub reconnect_retries: usize,
}

impl Default for RedisConnectConfig {
    fn default() -> Self {
        RedisConnectConfig {
            connect_timeout: Duration::from_secs(2),
            command_timeout: Duration::from_secs(2),
            reconnect_retries: 3,
        }
    }
}

/// Why [`RedisRegistry::connect`] or [`RedisStreams::connect`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL is not a Redis URL (`redis://[user:password@]host[:port][/db]`, `rediss://`
    /// or `unix://`). The URL itself is not repeated (it may hold a password).
    #[error("invalid Redis URL: {0}")]
    InvalidUrl(String),
    /// A setting is out of range (the message names it and the allowed range).
    #[error("invalid Redis setting: {0}")]
    InvalidConfig(String),
    /// Redis did not answer ([`PipelineError::Unavailable`]) or answered unexpectedly.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
}

pub(crate) use conn::{connect_manager, map_err};
