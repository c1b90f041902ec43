//! [`RedisStreams`]: the per-gateway delivery streams on Redis Streams.
//!
//! Per gateway node `{g}` (see `docs/ops/redis.md`):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `gatewayId:{g}:stream` | stream | one entry per delivery; field `payload` (JSON, see below); consumer group `ephemeral-consumer-group` with one consumer named `{g}` |
//! | `gatewayId:{g}:stream:epoch` | string | the highest consumer epoch of `{g}` (fencing) |
//!
//! Entry ids are `n-0` with n = 1, 2, 3, ... per stream, so an entry's id is also its sequence
//! number: [`DeliveryEntry::id`] is n. The `payload` field holds
//! `{"type":"EVENT","messageEvent":{...},"recipientIds":[...]}` or
//! `{"type":"EPHEMERAL","ephemeral":{...},"recipientIds":[...]}`. Publishing trims with
//! `MAXLEN ~ max_len` (Redis may keep up to one radix node, 100 entries by default, more).
//! Both keys expire after `retention` without a publish or a consumer poll, so the stream of a
//! gateway that is gone for good disappears.
//!
//! # Gap detection
//! Redis trims streams without regard to consumer groups (redis issue 9211), and a flush or a
//! restart without persistence loses everything. The consumer reports a [`GapNotice`] (with an
//! empty conversation list: every local client must resync) when it finds that:
//! 1. **new entries were trimmed before it read them**: the next entry read has an id above the
//!    one expected (ids are consecutive), `lost` = the difference; also checked while idle
//!    (every `block`) and at start, from the stream's first entry and last generated id, so a
//!    trim is reported even when nothing new arrives;
//! 2. **pending entries were trimmed**: after a restart it re-reads its pending entries first;
//!    one that no longer exists counts as lost (and is acknowledged);
//! 3. **the stream or the group vanished** (FLUSHALL/FLUSHDB, DEL, a Redis restart without
//!    persistence, `retention` expiry): the next read, or the idle check, gets `NOGROUP`; the
//!    consumer recreates the group from the stream's start and reports `lost: None` (unknown);
//! 4. **a payload cannot be decoded**: counted as lost, acknowledged, logged.
//!
//! Not detected: entries deleted with `XDEL` in the middle of the unread range when later ones
//! remain (only head trimming is assumed), and a lost `ephemeral` entry is reported like a lost
//! event (the content of a trimmed entry is unknown).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chat_domain::ConversationId;
use chat_pipeline::delivery::GAP_CONVERSATIONS_MAX;
use chat_pipeline::{
    DeliveryBatch, DeliveryConsumer, DeliveryEntry, DeliveryStreams, GapNotice, GatewayDelivery, PipelineError, Result,
};
use redis::Value;
use redis::aio::ConnectionManager;
use tokio_util::sync::CancellationToken;

use crate::conn::bad_reply;
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
    /// the oldest entries, read or not (the consumer then reports a [`GapNotice`]).
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
        let mut consumer = RedisDeliveryConsumer {
            conn,
            keys,
            consumer: gateway_id.to_owned(),
            epoch,
            block_ms: self.block_ms,
            retention_ms: self.retention_ms,
            phase: Phase::Pending { after: 0 },
            expected: 1,
            gap: None,
            woke_on_data: false,
            gap_all: false,
            closed: self.closed.clone(),
        };
        consumer.start().await?;
        Ok(Box::new(consumer))
    }
}

/// Where the consumer reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Re-reading this consumer's pending entries (read before a restart, not acknowledged),
    /// with ids above `after`.
    Pending { after: u64 },
    /// Reading new entries (`>`).
    New,
}

/// One gateway's consumer.
struct RedisDeliveryConsumer {
    /// Its own connection: blocking reads would hold up a shared multiplexed one.
    conn: ConnectionManager,
    keys: StreamKeys,
    /// Consumer name in the group: the gateway node id.
    consumer: String,
    /// Fencing epoch; a consumer with a higher one took over.
    epoch: u64,
    block_ms: u64,
    retention_ms: u64,
    phase: Phase,
    /// The id the next new entry should have (one past the last one delivered to the group).
    expected: u64,
    /// Loss found but not reported yet.
    gap: Option<GapNotice>,
    /// The last wait saw an entry above `expected - 1`; if the group read then finds nothing,
    /// the group's position moved without this consumer (`XGROUP SETID`) and `expected` is
    /// re-taken from it, so the wait cannot spin.
    woke_on_data: bool,
    /// The pending notice's conversation list means "all" (stays empty).
    gap_all: bool,
    closed: CancellationToken,
}

/// Parses an entry id `n-s` into n.
fn id_number(v: &Value) -> Result<u64> {
    let s = match v {
        Value::BulkString(b) => std::str::from_utf8(b).map_err(|_| bad_reply("non-UTF-8 stream id"))?,
        Value::SimpleString(s) => s.as_str(),
        other => return Err(bad_reply(&format!("stream id {other:?}"))),
    };
    s.split('-').next().and_then(|n| n.parse().ok()).ok_or_else(|| bad_reply(&format!("stream id {s:?}")))
}

/// Splits a script reply `{status, rest...}`.
fn status(reply: Vec<Value>) -> Result<(String, Vec<Value>)> {
    let mut it = reply.into_iter();
    let head = match it.next() {
        Some(Value::BulkString(b)) => String::from_utf8_lossy(&b).into_owned(),
        Some(Value::SimpleString(s)) => s,
        other => return Err(bad_reply(&format!("script status {other:?}"))),
    };
    Ok((head, it.collect()))
}

impl RedisDeliveryConsumer {
    /// Adds `lost` entries (unknown: `None`) to the pending notice.
    fn count_loss(&mut self, lost: Option<u64>) -> &mut GapNotice {
        let gap = self.gap.get_or_insert_with(|| GapNotice { lost: Some(0), conversations: Vec::new() });
        gap.lost = match (gap.lost, lost) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
        gap
    }

    /// A loss whose conversations are unknown: the notice means "all conversations".
    fn note_loss(&mut self, lost: Option<u64>) {
        self.count_loss(lost).conversations.clear();
        self.gap_all = true;
    }

    /// `count` new entries lost from id `from` on: their conversations come from the
    /// stream's conversation index (a superset: every conversation with an entry at or after
    /// `from`), or "all" when the index cannot tell.
    async fn note_range_loss(&mut self, from: u64, count: u64) -> Result<()> {
        let limit = GAP_CONVERSATIONS_MAX + 1;
        let reply: Vec<Value> = scripts::GAP_CONVERSATIONS
            .key(&self.keys.conversations)
            .key(&self.keys.conversations_floor)
            .arg(from)
            .arg(limit)
            .invoke_async(&mut self.conn)
            .await
            .map_err(map_err)?;
        let (head, rest) = status(reply)?;
        if head != "SOME" || self.gap_all {
            self.note_loss(Some(count));
            return Ok(());
        }
        let mut found = rest
            .iter()
            .map(|v| match v {
                Value::BulkString(b) => std::str::from_utf8(b).ok().and_then(|s| s.parse::<ConversationId>().ok()),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad_reply("conversation index member"))?;
        let gap = self.count_loss(Some(count));
        gap.conversations.append(&mut found);
        gap.conversations.sort_unstable();
        gap.conversations.dedup();
        if gap.conversations.len() > GAP_CONVERSATIONS_MAX {
            self.note_loss(Some(0));
        }
        Ok(())
    }

    fn fenced(&self) -> PipelineError {
        PipelineError::Fenced(self.consumer.clone())
    }

    /// Creates the group if needed and takes the position the group has reached.
    async fn start(&mut self) -> Result<()> {
        let reply: Vec<Value> = scripts::ENSURE_GROUP
            .key(&self.keys.stream)
            .key(&self.keys.epoch)
            .arg(CONSUMER_GROUP)
            .arg(self.epoch)
            .arg(self.retention_ms)
            .invoke_async(&mut self.conn)
            .await
            .map_err(map_err)?;
        if status(reply)?.0 == "FENCED" {
            return Err(self.fenced());
        }
        self.check(true).await
    }

    /// The stream and group vanished: recreate the group at the stream's start, report an
    /// unknown loss.
    async fn recover_lost_group(&mut self) -> Result<()> {
        tracing::warn!(stream = %self.keys.stream, "delivery stream or its group vanished: clients must resync");
        self.note_loss(None);
        self.phase = Phase::New;
        self.expected = 1;
        let reply: Vec<Value> = scripts::ENSURE_GROUP
            .key(&self.keys.stream)
            .key(&self.keys.epoch)
            .arg(CONSUMER_GROUP)
            .arg(self.epoch)
            .arg(self.retention_ms)
            .invoke_async(&mut self.conn)
            .await
            .map_err(map_err)?;
        if status(reply)?.0 == "FENCED" {
            return Err(self.fenced());
        }
        Ok(())
    }

    /// Compares the stream's bounds with the expected position (gap kind 1 and 3 of the
    /// module doc). `initial`: move the expected position up to the group's (at start, and
    /// when the group's position moved without this consumer).
    async fn check(&mut self, initial: bool) -> Result<()> {
        let reply: Vec<Value> = scripts::CHECK
            .key(&self.keys.stream)
            .key(&self.keys.epoch)
            .arg(CONSUMER_GROUP)
            .arg(self.epoch)
            .arg(self.retention_ms)
            .invoke_async(&mut self.conn)
            .await
            .map_err(map_err)?;
        let (head, rest) = status(reply)?;
        match head.as_str() {
            "FENCED" => return Err(self.fenced()),
            "NOGROUP" => return self.recover_lost_group().await,
            "OK" => {}
            other => return Err(bad_reply(&format!("check status {other}"))),
        }
        let [delivered, first, last_generated] = <[Value; 3]>::try_from(rest).map_err(|_| bad_reply("check"))?;
        if initial {
            self.expected = self.expected.max(id_number(&delivered)? + 1);
        }
        let last_generated = id_number(&last_generated)?;
        let first = match first {
            Value::Nil => None,
            v => Some(id_number(&v)?),
        };
        // The lowest unread id still present (one past the last generated id when none is).
        let present = first.map_or(last_generated + 1, |f| f.min(last_generated + 1));
        if last_generated + 1 < self.expected {
            // Ids went backwards without the group vanishing: the stream was replaced.
            self.note_loss(None);
            self.expected = present;
        } else if present > self.expected {
            let from = self.expected;
            self.expected = present;
            self.note_range_loss(from, present - from).await?;
        }
        Ok(())
    }

    /// One `XREADGROUP` (pending or new), via the fencing script. `None`: the group vanished
    /// (handled). Entries decoded; undecodable ones counted as lost.
    async fn read(&mut self, max: usize) -> Result<Option<Vec<(u64, Option<Vec<u8>>)>>> {
        let start = match self.phase {
            Phase::Pending { after } => format!("{after}-0"),
            Phase::New => ">".to_owned(),
        };
        let reply: Vec<Value> = scripts::READ
            .key(&self.keys.stream)
            .key(&self.keys.epoch)
            .arg(CONSUMER_GROUP)
            .arg(self.epoch)
            .arg(self.retention_ms)
            .arg(&self.consumer)
            .arg(max)
            .arg(start)
            .invoke_async(&mut self.conn)
            .await
            .map_err(map_err)?;
        let (head, rest) = status(reply)?;
        match head.as_str() {
            "FENCED" => return Err(self.fenced()),
            "NOGROUP" => {
                self.recover_lost_group().await?;
                return Ok(None);
            }
            "OK" => {}
            other => return Err(bad_reply(&format!("read status {other}"))),
        }
        let mut out = Vec::with_capacity(rest.len() / 2);
        let mut it = rest.into_iter();
        while let (Some(id), Some(payload)) = (it.next(), it.next()) {
            let payload = match payload {
                Value::Nil => None,
                Value::BulkString(b) => Some(b),
                other => return Err(bad_reply(&format!("payload {other:?}"))),
            };
            out.push((id_number(&id)?, payload));
        }
        Ok(Some(out))
    }

    /// Acknowledges ids that cannot be delivered (undecodable payloads).
    async fn ack_raw(&mut self, ids: &[u64]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut inv = scripts::ACK.key(&self.keys.stream);
        inv.key(&self.keys.epoch).arg(CONSUMER_GROUP).arg(self.epoch).arg(self.retention_ms);
        for id in ids {
            inv.arg(format!("{id}-0"));
        }
        let reply: Vec<Value> = inv.invoke_async(&mut self.conn).await.map_err(map_err)?;
        if status(reply)?.0 == "FENCED" {
            return Err(self.fenced());
        }
        Ok(())
    }

    /// Waits until an entry above the expected position exists, `block` passes, or the
    /// streams are closed. `XREAD` (not a group read) so nothing is claimed while waiting.
    async fn wait(&mut self) -> Result<()> {
        let after = format!("{}-0", self.expected.saturating_sub(1));
        let cmd = redis::cmd("XREAD")
            .arg("BLOCK")
            .arg(self.block_ms)
            .arg("COUNT")
            .arg(1)
            .arg("STREAMS")
            .arg(&self.keys.stream)
            .arg(after)
            .to_owned();
        let mut conn = self.conn.clone();
        let got = tokio::select! {
            _ = self.closed.cancelled() => return Err(PipelineError::Closed),
            r = cmd.query_async::<Value>(&mut conn) => r.map_err(map_err)?,
        };
        if matches!(got, Value::Nil) {
            // Idle: look for trims, a vanished stream, or a newer consumer.
            self.check(false).await?;
        } else {
            self.woke_on_data = true;
        }
        Ok(())
    }
}

#[async_trait]
impl DeliveryConsumer for RedisDeliveryConsumer {
    async fn next_batch(&mut self, max: usize) -> Result<DeliveryBatch> {
        let max = max.max(1);
        loop {
            if self.closed.is_cancelled() {
                return Err(PipelineError::Closed);
            }
            let Some(raw) = self.read(max).await? else { continue };
            let raw_was_empty = raw.is_empty();
            let mut entries = Vec::with_capacity(raw.len());
            let mut undecodable = Vec::new();
            match self.phase {
                Phase::Pending { .. } if raw.is_empty() => {
                    self.phase = Phase::New;
                    continue;
                }
                Phase::Pending { .. } => {
                    self.phase = Phase::Pending { after: raw.last().map_or(0, |r| r.0) };
                }
                Phase::New => {
                    let mut ranges = Vec::new();
                    for (id, _) in &raw {
                        if *id > self.expected {
                            ranges.push((self.expected, id - self.expected));
                        } else if *id < self.expected {
                            self.note_loss(None);
                        }
                        self.expected = id + 1;
                    }
                    for (from, count) in ranges {
                        self.note_range_loss(from, count).await?;
                    }
                }
            }
            for (id, payload) in raw {
                let Some(payload) = payload else {
                    // A pending entry trimmed before it was acknowledged (the script acked it).
                    self.note_loss(Some(1));
                    continue;
                };
                match wire::decode(&payload) {
                    Ok(delivery) => entries.push(DeliveryEntry { id, delivery }),
                    Err(e) => {
                        tracing::warn!(stream = %self.keys.stream, id, error = %e, "undecodable delivery entry");
                        self.note_loss(Some(1));
                        undecodable.push(id);
                    }
                }
            }
            self.ack_raw(&undecodable).await?;
            if !raw_was_empty {
                self.woke_on_data = false;
            }
            if !entries.is_empty() || self.gap.is_some() {
                self.gap_all = false;
                return Ok(DeliveryBatch { gap: self.gap.take(), entries });
            }
            if self.phase == Phase::New {
                if std::mem::take(&mut self.woke_on_data) {
                    self.check(true).await?;
                }
                self.wait().await?;
            }
        }
    }

    /// Works after [`RedisStreams::close`] too, so a stopping gateway can acknowledge what it
    /// delivered.
    async fn ack(&mut self, ids: &[u64]) -> Result<()> {
        self.ack_raw(ids).await
    }
}
