//! The STOMP 1.2 over WebSocket gateway of chat-sys (seed-compatible, default port 8082).
//!
//! # Public entry
//! ```no_run
//! # async fn demo(core: std::sync::Arc<dyn chat_gateway::GatewayCore>, pipeline: chat_pipeline::Pipeline) {
//! use chat_gateway::{Gateway, GatewayConfig, serve};
//! let gateway = Gateway::new(GatewayConfig::default(), core, pipeline.registry(), pipeline.streams());
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:8082").await.unwrap();
//! serve(listener, gateway, async { let _ = tokio::signal::ctrl_c().await; }).await.unwrap();
//! # }
//! ```
//!
//! # Endpoints and protocol
//! * `GET /ws` and `GET /ws/websocket` (seed paths): WebSocket upgrade, subprotocols
//!   `v12.stomp`/`v11.stomp`/`v10.stomp` or none; text and binary messages both carry STOMP.
//! * SockJS under `/ws` (`http://host:8082/ws` for sockjs-client): `/ws/info`,
//!   `/ws/iframe.html`, `/ws/{server}/{session}/{transport}`, carrying the same STOMP
//!   sessions; see the `sockjs` module and [`config::SockJsConfig`].
//! * Authentication: `?token=<JWT>` at the handshake (seed), or `Authorization: Bearer <JWT>`
//!   / `passcode` in CONNECT. Optional CONNECT header `device-type` (registry).
//! * CONNECTED carries `version`, `heart-beat`, `server: chat-sys/<version>`, `session`.
//! * Destinations: see [`destinations`]; `resume` header: see the `session::subscribe` docs
//!   (`resume: <conversationId>:<lastSeq>[,<conversationId>:<lastSeq>...]`).
//! * JSON bodies: see [`json`].
//!
//! # Structure
//! * [`server`]: accept, handshake checks, upgrade, [`serve`].
//! * `session`: the connection state machine, one file per client command, and the
//!   connection's writer task (coalescing, heart-beats, gap-free delivery, resume); it runs
//!   over any transport (raw WebSocket, SockJS).
//! * `sockjs`: the SockJS protocol (0.3.3) endpoints and sessions.
//! * [`destinations`]: parse/authorize destinations into closed enums.
//! * [`delivery`]: the consumer of this node's delivery stream, pushing to local connections.
//! * [`json`]: wire JSON models, converted from domain events in one place.
//! * [`core`]: [`GatewayCore`], what the gateway needs from the core, and [`InProcessCore`].
//! * `web`: the built-in web client (`GET /`, `/assets/...`, `/config.json`; see
//!   [`config::WebConfig`]).

#![warn(missing_docs)]

pub mod config;
pub mod core;
pub mod delivery;
pub mod destinations;
pub mod json;
mod queue;
pub mod server;
mod session;
mod sockjs;
#[cfg(test)]
mod test_support;
mod web;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use chat_pipeline::{ConnectionRegistry, DeliveryStreams};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use crate::config::{GatewayConfig, SockJsConfig, WebConfig};
pub use crate::core::{GatewayCore, Identity, InProcessCore};
pub use crate::delivery::SLOW_CONSUMER_METRIC;
pub use crate::server::serve;

/// State shared by the gateway's tasks (handshake handler, sessions, delivery consumer).
pub(crate) struct Shared {
    /// Configuration with `node_id` filled in.
    pub cfg: GatewayConfig,
    pub core: Arc<dyn GatewayCore>,
    pub registry: Arc<dyn ConnectionRegistry>,
    pub streams: Arc<dyn DeliveryStreams>,
    /// Live local sessions by user (see [`delivery::Hub`] for its locking).
    pub hub: delivery::Hub,
    /// Member lists (see [`delivery::MemberCache`] for its locking).
    pub members: delivery::MemberCache,
    /// Cancelled once at shutdown: stops the consumer, new handshakes, and makes every
    /// session flush and close.
    pub shutdown: CancellationToken,
    /// Every session task and writer task, so shutdown can wait for them.
    pub tasks: TaskTracker,
}

/// A gateway node. Cheap to clone (shared state behind an `Arc`).
#[derive(Clone)]
pub struct Gateway {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").field("node_id", &self.shared.cfg.node_id).finish_non_exhaustive()
    }
}

impl Gateway {
    /// Creates the gateway and spawns its delivery consumer (reading `streams` for this
    /// node's id). An empty `config.node_id` becomes `gw-<uuid>`.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn new(
        mut config: GatewayConfig,
        core: Arc<dyn GatewayCore>,
        registry: Arc<dyn ConnectionRegistry>,
        streams: Arc<dyn DeliveryStreams>,
    ) -> Gateway {
        if config.node_id.is_empty() {
            config.node_id = format!("gw-{}", uuid::Uuid::now_v7());
        }
        let members = delivery::MemberCache::new(Duration::from_millis(config.member_cache_ttl_ms));
        let shared = Arc::new(Shared {
            cfg: config,
            core,
            registry,
            streams,
            hub: delivery::Hub::default(),
            members,
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
        });
        tokio::spawn(delivery::run_consumer(shared.clone()));
        Gateway { shared }
    }

    /// The router serving `/ws`, `/ws/websocket`, SockJS under `/ws/` and the web client
    /// (`/`, `/assets/...`, `/config.json`). Serve it with
    /// `into_make_service_with_connect_info::<SocketAddr>()` to record client addresses.
    pub fn router(&self) -> Router {
        server::router(self.shared.clone())
    }

    /// This node's id (its delivery stream and registry key).
    pub fn node_id(&self) -> &str {
        &self.shared.cfg.node_id
    }

    /// The configuration in use.
    pub fn config(&self) -> &GatewayConfig {
        &self.shared.cfg
    }

    /// Number of connected (authenticated) sessions on this node.
    pub fn session_count(&self) -> usize {
        self.shared.hub.len()
    }

    /// Starts shutting down without waiting: refuses new handshakes, stops the delivery
    /// consumer, and tells every session to flush its pending frames and close.
    pub fn begin_shutdown(&self) {
        self.shared.shutdown.cancel();
        self.shared.tasks.close();
    }

    /// Shuts down and waits (at most `shutdown_grace_ms`, then connections are dropped)
    /// until every session has closed.
    pub async fn shutdown(&self) {
        self.begin_shutdown();
        let grace = Duration::from_millis(self.shared.cfg.shutdown_grace_ms);
        if tokio::time::timeout(grace, self.shared.tasks.wait()).await.is_err() {
            for h in self.shared.hub.all() {
                h.stop.cancel();
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), self.shared.tasks.wait()).await;
        }
    }
}
