//! The consumer of one gateway's stream: pending entries first, then new ones; fencing by
//! epoch; the gap detection described in [`crate::streams`].

use async_trait::async_trait;
use chat_domain::ConversationId;
use chat_pipeline::delivery::GAP_CONVERSATIONS_MAX;
use chat_pipeline::{DeliveryBatch, DeliveryConsumer, DeliveryEntry, GapNotice, PipelineError, Result};
use redis::Value;
use redis::aio::ConnectionManager;
use tokio_util::sync::CancellationToken;

use crate::conn::bad_reply;
use crate::streams::{CONSUMER_GROUP, StreamKeys};
use crate::{map_err, scripts, wire};

/// The consumer's time settings, in ms.
pub(crate) struct Timing {
    /// Blocking read time (`RedisStreamsConfig::block`).
    pub(crate) block_ms: u64,
    /// Key expiry refreshed by every poll (`RedisStreamsConfig::retention`).
    pub(crate) retention_ms: u64,
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
pub(crate) struct RedisDeliveryConsumer {
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
    /// The consumer of `gateway_id` with fencing epoch `epoch`, on its own connection `conn`;
    /// creates the group if needed and takes the position it has reached.
    pub(crate) async fn open(
        conn: ConnectionManager,
        keys: StreamKeys,
        gateway_id: &str,
        epoch: u64,
        timing: Timing,
        closed: CancellationToken,
    ) -> Result<Self> {
        let mut consumer = RedisDeliveryConsumer {
            conn,
            keys,
            consumer: gateway_id.to_owned(),
            epoch,
            block_ms: timing.block_ms,
            retention_ms: timing.retention_ms,
            phase: Phase::Pending { after: 0 },
            expected: 1,
            gap: None,
            woke_on_data: false,
            gap_all: false,
            closed,
        };
        consumer.start().await?;
        Ok(consumer)
    }

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

    /// An invocation of one of the stream scripts (ENSURE_GROUP, CHECK, READ, ACK) with their
    /// common KEYS (stream, epoch) and ARGV prefix (group, epoch, retention in ms); callers
    /// append their own ARGV.
    fn invocation<'a>(&self, script: &'a redis::Script) -> redis::ScriptInvocation<'a> {
        let mut inv = script.key(&self.keys.stream);
        inv.key(&self.keys.epoch).arg(CONSUMER_GROUP).arg(self.epoch).arg(self.retention_ms);
        inv
    }

    /// Creates the group (and the stream) if needed under this consumer's epoch.
    ///
    /// # Errors
    /// [`PipelineError::Fenced`] when a newer consumer holds the stream; `Unavailable`.
    async fn ensure_group(&mut self) -> Result<()> {
        let reply: Vec<Value> =
            self.invocation(&scripts::ENSURE_GROUP).invoke_async(&mut self.conn).await.map_err(map_err)?;
        if status(reply)?.0 == "FENCED" {
            return Err(self.fenced());
        }
        Ok(())
    }

    /// Creates the group if needed and takes the position the group has reached.
    async fn start(&mut self) -> Result<()> {
        self.ensure_group().await?;
        self.check(true).await
    }

    /// The stream and group vanished: recreate the group at the stream's start, report an
    /// unknown loss.
    async fn recover_lost_group(&mut self) -> Result<()> {
        tracing::warn!(stream = %self.keys.stream, "delivery stream or its group vanished: clients must resync");
        self.note_loss(None);
        self.phase = Phase::New;
        self.expected = 1;
        self.ensure_group().await
    }

    /// Compares the stream's bounds with the expected position (gap kind 1 and 3 of the
    /// module doc). `initial`: move the expected position up to the group's (at start, and
    /// when the group's position moved without this consumer).
    async fn check(&mut self, initial: bool) -> Result<()> {
        let reply: Vec<Value> = self.invocation(&scripts::CHECK).invoke_async(&mut self.conn).await.map_err(map_err)?;
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
        let mut inv = self.invocation(&scripts::READ);
        inv.arg(&self.consumer).arg(max).arg(start);
        let reply: Vec<Value> = inv.invoke_async(&mut self.conn).await.map_err(map_err)?;
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
        let mut inv = self.invocation(&scripts::ACK);
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
