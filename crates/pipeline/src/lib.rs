//! The delivery pipeline of chat-sys (product.md message path, steps 4 to 6): the outbox
//! relay, the event log, the fanout worker, the per-gateway delivery streams and the
//! connection registry.
//!
//! Each stage is a trait with an in-process implementation for serve mode; scale-out mode puts
//! Kafka ([`EventLog`], topic `message.all`) and Redis ([`DeliveryStreams`], stream
//! `gatewayId:{id}:stream`; [`ConnectionRegistry`]) behind the same traits. All traits are
//! async, batch-oriented and at-least-once with explicit commit/acknowledgement: nothing is
//! marked done before the next stage holds it, so a crash causes redelivery, never loss, and
//! every consumer drops duplicates (fanout by event id, clients by (conversation, seq)).
//!
//! ```text
//! outbox ──OutboxRelay──▶ EventLog ──FanoutWorker──▶ DeliveryStreams[gateway] ──▶ gateway
//!                                        │ member cache, else ConversationStore::member_ids_of
//!                                        │   (one call per batch, for the events that miss)
//!                                        └ ConnectionRegistry::gateways_of_users (one per batch)
//! ```
//!
//! Every queue is bounded: the log per partition ([`InProcessLog::new`]; publish waits, the
//! outbox keeps the rest), the streams per gateway ([`StreamsConfig::capacity`]; overflow is a
//! [`GapNotice`] and a client resync), the fanout's duplicate filter
//! ([`FanoutConfig::dedupe_capacity`]) and member cache
//! ([`FanoutConfig::member_cache_conversations`], [`FanoutConfig::member_cache_ids`]).

#![warn(missing_docs)]

pub mod delivery;
mod error;
pub mod fanout;
pub mod log;
pub mod registry;
pub mod relay;

use std::sync::Arc;
use std::time::Duration;

use chat_storage::Store;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use delivery::{
    DeliveryBatch, DeliveryConsumer, DeliveryEntry, DeliveryStreams, EphemeralSignal, GapNotice, GatewayDelivery,
    InProcessStreams, StreamsConfig,
};
pub use error::{PipelineError, Result};
pub use fanout::{FanoutConfig, FanoutWorker, MemberDirectory, StoreMembers, deliver_ephemeral};
pub use log::{EventConsumer, EventLog, InProcessLog, LogPosition, LogRecord};
pub use registry::{Connection, ConnectionRegistry, InMemoryRegistry, SessionState};
pub use relay::{OutboxRelay, RelayConfig};

/// Settings of [`Pipeline::in_process`].
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    /// Outbox relay settings.
    pub relay: RelayConfig,
    /// Fanout worker settings.
    pub fanout: FanoutConfig,
    /// Event log partitions; default 8.
    pub log_partitions: u32,
    /// Event log records retained per partition before publish waits; default 10,000.
    pub log_capacity: usize,
    /// Delivery stream settings.
    pub streams: StreamsConfig,
    /// Connection heart-beat TTL; default 30 s (three 10 s STOMP heart-beats).
    pub registry_ttl: Duration,
    /// How often expired connections are swept; default 10 s.
    pub sweep_interval: Duration,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            relay: RelayConfig::default(),
            fanout: FanoutConfig::default(),
            log_partitions: 8,
            log_capacity: 10_000,
            streams: StreamsConfig::default(),
            registry_ttl: Duration::from_secs(30),
            sweep_interval: Duration::from_secs(10),
        }
    }
}

/// The serve-mode pipeline: in-process log, streams and registry, with the relay, fanout and
/// registry sweeper running as tokio tasks. Gateways use [`Pipeline::registry`] and
/// [`Pipeline::streams`] (streams are created on first use per gateway id, so no list of
/// gateway ids is needed up front).
pub struct Pipeline {
    /// The connection registry gateways register with.
    pub registry: Arc<InMemoryRegistry>,
    /// The per-gateway delivery streams gateways consume.
    pub streams: Arc<InProcessStreams>,
    /// The event log between relay and fanout.
    pub log: Arc<InProcessLog>,
    /// Stops the relay (first) at shutdown.
    relay_cancel: CancellationToken,
    /// Stops the fanout (after the log drained) and the sweeper.
    cancel: CancellationToken,
    relay: JoinHandle<()>,
    fanout: JoinHandle<Result<()>>,
    sweeper: JoinHandle<()>,
}

impl Pipeline {
    /// Builds the in-process pipeline over `store` and spawns its tasks: the relay (woken by
    /// `notify`, i.e. `ChatService::commit_notify()`), the fanout worker and the registry
    /// sweeper. Needs a tokio runtime.
    pub fn in_process(store: Arc<dyn Store>, notify: Arc<Notify>, cfg: PipelineConfig) -> Pipeline {
        let registry = Arc::new(InMemoryRegistry::new(cfg.registry_ttl));
        let streams = Arc::new(InProcessStreams::new(cfg.streams.clone()));
        let log = Arc::new(InProcessLog::new(cfg.log_partitions, cfg.log_capacity));
        let relay_cancel = CancellationToken::new();
        let cancel = CancellationToken::new();

        let relay = OutboxRelay::new(store.clone(), log.clone(), notify, cfg.relay.clone());
        let relay = tokio::spawn(relay.run(relay_cancel.clone()));
        let members = Arc::new(StoreMembers(store));
        let worker = FanoutWorker::new(members, registry.clone(), streams.clone(), cfg.fanout.clone());
        let fanout = tokio::spawn(worker.run(log.clone(), cancel.clone()));
        let sweeper = registry.spawn_sweeper(cfg.sweep_interval, cancel.clone());
        Pipeline { registry, streams, log, relay_cancel, cancel, relay, fanout, sweeper }
    }

    /// The registry as its trait object.
    pub fn registry(&self) -> Arc<dyn ConnectionRegistry> {
        self.registry.clone()
    }

    /// The delivery streams as their trait object.
    pub fn streams(&self) -> Arc<dyn DeliveryStreams> {
        self.streams.clone()
    }

    /// Stops the pipeline: stops the relay, closes the log and lets the fanout deliver what the
    /// log still holds (at most `drain` long), then stops the sweeper and closes the streams
    /// (gateway consumers drain and get [`PipelineError::Closed`]).
    pub async fn shutdown(self, drain: Duration) {
        self.relay_cancel.cancel();
        let _ = self.relay.await;
        self.log.close();
        let mut fanout = self.fanout;
        match tokio::time::timeout(drain, &mut fanout).await {
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "fanout stopped with an error"),
            Ok(_) => {}
            Err(_) => {
                self.cancel.cancel();
                let _ = fanout.await;
            }
        }
        self.cancel.cancel();
        let _ = self.sweeper.await;
        self.streams.close();
    }
}
