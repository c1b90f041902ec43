//! [`RedisStreams`]: the per-gateway delivery streams on Redis Streams.
//!
//! Per gateway node `{g}` (see `docs/ops/redis.md`):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `gatewayId:{g}:stream` | stream | one entry per delivery; field `payload` (JSON, see below); consumer group `ephemeral-consumer-group` with one consumer named `{g}` |
//! | `gatewayId:{g}:stream:epoch` | string | the highest consumer epoch of `{g}` (fencing) |
//! | `gatewayId:{g}:stream:conversations` | sorted set | conversation id → id of its latest entry, for entries the group has not read yet (at most [`CONVERSATION_INDEX_CAP`]) |
//! | `gatewayId:{g}:stream:conversations:floor` | string | highest entry id whose conversation the cap dropped from the index |
//!
//! Entry ids are `n-0` with n = 1, 2, 3, ... per stream, so an entry's id is also its sequence
//! number: [`DeliveryEntry::id`](chat_pipeline::DeliveryEntry::id) is n. The `payload` field holds
//! `{"type":"EVENT","messageEvent":{...},"recipientIds":[...]}` or
//! `{"type":"EPHEMERAL","ephemeral":{...},"recipientIds":[...]}`. Publishing trims with
//! `MAXLEN ~ max_len` (Redis may keep up to one radix node, 100 entries by default, more).
//! All four keys expire after `retention` without a publish or a consumer poll, so the stream
//! of a gateway that is gone for good disappears.
//!
//! # Gap detection
//! Redis trims streams without regard to consumer groups (redis issue 9211), and a flush or a
//! restart without persistence loses everything. The consumer reports a [`GapNotice`](chat_pipeline::GapNotice) when it
//! finds that:
//! 1. **new entries were trimmed before it read them**: the next entry read has an id above the
//!    one expected (ids are consecutive), `lost` = the difference; also checked while idle
//!    (every `block`) and at start, from the stream's first entry and last generated id, so a
//!    trim is reported even when nothing new arrives. `conversations` lists every
//!    conversation with an entry at or after the first lost id (from the conversation index: a
//!    superset of the lost ones), or is empty ("all") when the lost range reaches below the
//!    index's floor or more than [`GAP_CONVERSATIONS_MAX`] match;
//! 2. **pending entries were trimmed**: after a restart it re-reads its pending entries first;
//!    one that no longer exists counts as lost (and is acknowledged); conversations: all;
//! 3. **the stream or the group vanished** (FLUSHALL/FLUSHDB, DEL, a Redis restart without
//!    persistence, `retention` expiry): the next read, or the idle check, gets `NOGROUP`; the
//!    consumer recreates the group from the stream's start and reports `lost: None` (unknown),
//!    conversations: all;
//! 4. **a payload cannot be decoded**: counted as lost, acknowledged, logged; conversations:
//!    all.
//!
//! Not detected: entries deleted with `XDEL` in the middle of the unread range when later ones
//! remain (only head trimming is assumed). A lost typing signal names its conversation like a
//! lost event (a resync too many, never one too few).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chat_pipeline::delivery::GAP_CONVERSATIONS_MAX;
use chat_pipeline::{DeliveryConsumer, DeliveryStreams, GatewayDelivery, PipelineError, Result};
use redis::aio::ConnectionManager;
use tokio_util::sync::CancellationToken;

use crate::consumer::{RedisDeliveryConsumer, Timing};
use crate::{ConnectError, RedisConnectConfig, connect_manager, map_err, scripts, wire};

/// The consumer group of every gateway stream (seed name).
pub const CONSUMER_GROUP: &str = "ephemeral-consumer-group";

/// Most conversations a stream's conversation index holds (beyond it the oldest are dropped
/// and a gap that reaches back to them lists "all conversations").
pub const CONVERSATION_INDEX_CAP: usize = 4 * GAP_CONVERSATIONS_MAX;

/// Settings of [`RedisStreams`].
#[derive(Clone, Debug)]
pub struct RedisStreamsConfig {
    /// Approximate maximum entries per gateway stream (`XADD ... MAXLEN ~`); default 10,000
    /// (seed). At least 1.
    pub max_len: u64,
    /// How long a consumer's blocking read waits before it checks for trimmed entries, a
    /// vanished stream or fencing; default 2 s. Between 1 ms and 1 hour.
    pub block: Duration,
    /// A stream (and its epoch key) with neither a publish nor a consumer poll for this long
    /// expires; default 24 hours. At least 1 minute and longer than `block`.
    pub retention: Duration,
    /// Connection settings.
    pub connect: RedisConnectConfig,
}

impl Default for RedisStreamsConfig {
    fn default() -> Self {
        RedisStreamsConfig {
            max_len: 10_000,
            block: Duration::from_secs(2),
            retention: Duration::from_secs(24 * 3600),
            connect: RedisConnectConfig::default(),
        }
    }
}

/// The key names of one gateway's stream.
#[derive(Clone, Debug)]
pub struct StreamKeys {
    /// `gatewayId:{g}:stream`.
    pub stream: String,
    /// `gatewayId:{g}:stream:epoch`.
    pub epoch: String,
    /// `gatewayId:{g}:stream:conversations`: sorted set, conversation id → id of its latest
    /// entry (for the conversation list of a gap notice).
    pub conversations: String,
    /// `gatewayId:{g}:stream:conversations:floor`: entries at or below this id may have
    /// conversations missing from the index.
    pub conversations_floor: String,
}

impl StreamKeys {
    /// The keys of gateway node `gateway_id`.
    pub fn of(gateway_id: &str) -> Self {
        let stream = format!("gatewayId:{gateway_id}:stream");
        StreamKeys {
            epoch: format!("{stream}:epoch"),
            conversations: format!("{stream}:conversations"),
            conversations_floor: format!("{stream}:conversations:floor"),
            stream,
        }
    }
}

/// The scale-out [`DeliveryStreams`] on Redis Streams (see the module doc). Cheap to clone;
/// publishers share one multiplexed connection, each consumer opens its own (its blocking
/// reads would otherwise hold up the shared one).
#[derive(Clone)]
pub struct RedisStreams {
    conn: ConnectionManager,
    url: Arc<str>,
    cfg: RedisStreamsConfig,
    block_ms: u64,
    retention_ms: u64,
    closed: CancellationToken,
}

impl std::fmt::Debug for RedisStreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStreams").field("cfg", &self.cfg).finish_non_exhaustive()
    }
}

impl RedisStreams {
    /// Connects to `url` (`redis://[user:password@]host[:port][/db]`).
    ///
    /// # Errors
    /// [`ConnectError::InvalidUrl`], [`ConnectError::InvalidConfig`] (a setting out of the
    /// range its doc gives), or [`PipelineError::Unavailable`] when Redis does not answer.
    pub async fn connect(url: &str, cfg: RedisStreamsConfig) -> Result<Self, ConnectError> {
        if cfg.max_len == 0 {
            return Err(ConnectError::InvalidConfig("streams max_len must be at least 1".into()));
        }
        if cfg.block.is_zero() || cfg.block > Duration::from_secs(3600) {
            return Err(ConnectError::InvalidConfig(format!(
                "streams block must be between 1 ms and 1 hour, got {:?}",
                cfg.block
            )));
        }
        if cfg.retention < Duration::from_secs(60) || cfg.retention <= cfg.block {
            return Err(ConnectError::InvalidConfig(format!(
                "streams retention must be at least 1 minute and longer than block, got {:?}",
                cfg.retention
            )));
        }
        let conn = connect_manager(url, &cfg.connect, Duration::ZERO).await?;
        Ok(RedisStreams {
            conn,
            url: url.into(),
            block_ms: cfg.block.as_millis().max(1) as u64,
            retention_ms: u64::try_from(cfg.retention.as_millis()).unwrap_or(u64::MAX),
            cfg,
            closed: CancellationToken::new(),
        })
    }

    /// Readiness: `PING`.
    ///
    /// # Errors
    /// [`PipelineError::Unavailable`] when Redis does not answer.
    pub async fn ping(&self) -> Result<()> {
        let mut conn = self.conn.clone();
        redis::cmd("PING").query_async::<()>(&mut conn).await.map_err(map_err)
    }

    /// Entries currently held in `gateway_id`'s stream (`XLEN`: read and unread).
    ///
    /// # Errors
    /// [`PipelineError::Unavailable`].
    pub async fn len_of(&self, gateway_id: &str) -> Result<u64> {
        let mut conn = self.conn.clone();
        redis::cmd("XLEN").arg(StreamKeys::of(gateway_id).stream).query_async(&mut conn).await.map_err(map_err)
    }

    /// Stops this process's use of the streams: later publishes fail with
    /// [`PipelineError::Closed`], and consumers return it from their next (or current, if
    /// waiting) `next_batch`. What Redis holds stays for the gateway's next consumer.
    pub fn close(&self) {
        self.closed.cancel();
    }
}

#[async_trait]
impl DeliveryStreams for RedisStreams {
    /// Appends in one atomic script call; never waits for space: beyond `max_len` Redis trims
    /// the oldest entries, read or not (the consumer then reports a [`GapNotice`](chat_pipeline::GapNotice)).
    async fn publish(&self, gateway_id: &str, deliveries: Vec<GatewayDelivery>) -> Result<()> {
        if self.closed.is_cancelled() {
            return Err(PipelineError::Closed);
        }
        if deliveries.is_empty() {
            return Ok(());
        }
        let keys = StreamKeys::of(gateway_id);
        let mut inv = scripts::PUBLISH.key(&keys.stream);
        inv.key(&keys.conversations).key(&keys.conversations_floor);
        inv.arg(self.cfg.max_len).arg(self.retention_ms).arg(CONSUMER_GROUP).arg(CONVERSATION_INDEX_CAP);
        for d in &deliveries {
            let json = wire::encode(d).map_err(|e| PipelineError::Unexpected(e.into()))?;
            inv.arg(d.conversation_id().map(|c| c.to_string()).unwrap_or_default()).arg(json);
        }
        let mut conn = self.conn.clone();
        inv.invoke_async::<i64>(&mut conn).await.map_err(map_err)?;
        Ok(())
    }

    async fn consume(&self, gateway_id: &str) -> Result<Box<dyn DeliveryConsumer>> {
        if self.closed.is_cancelled() {
            return Err(PipelineError::Closed);
        }
        let keys = StreamKeys::of(gateway_id);
        let mut shared = self.conn.clone();
        let epoch: u64 = redis::cmd("INCR").arg(&keys.epoch).query_async(&mut shared).await.map_err(map_err)?;
        let block = Duration::from_millis(self.block_ms);
        let conn = connect_manager(&self.url, &self.cfg.connect, block).await.map_err(|e| match e {
            ConnectError::Pipeline(p) => p,
            other => PipelineError::Unexpected(other.into()),
        })?;
        let consumer = RedisDeliveryConsumer::open(
            conn,
            keys,
            gateway_id,
            epoch,
            Timing { block_ms: self.block_ms, retention_ms: self.retention_ms },
            self.closed.clone(),
        )
        .await?;
        Ok(Box::new(consumer))
    }
}
