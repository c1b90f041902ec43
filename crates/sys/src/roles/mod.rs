//! The scale-out roles, each its own process: `chat-sys core` (REST, gRPC, outbox relay →
//! Kafka), `chat-sys fanout` (Kafka consumer group → Redis delivery streams) and `chat-sys
//! gateway` (STOMP over WebSocket; reaches the core over gRPC, reads its Redis stream). The
//! code path is the one of `serve`; only the implementations behind the pipeline traits
//! differ (Kafka and Redis instead of in-process).
//!
//! Every role serves `/healthz` (alive), `/readyz` (its dependencies answer; 503 with the
//! failing one named otherwise) and `/metrics` (Prometheus) on its `http` listener; the core's
//! `http` listener is the REST API itself.

pub mod core;
mod engines;
pub mod fanout;
pub mod gateway;
mod probes;

pub use probes::{Probe, Probes};

use axum::Router;
use axum::routing::get;

/// The admin router of the roles without a REST API (fanout, gateway): `/healthz`,
/// `/readyz` over `probes`, `/metrics`.
pub(crate) fn admin_router(probes: Probes) -> Router {
    let metrics = crate::serve::install_metrics();
    Router::new()
        .route("/healthz", get(|| async { axum::Json(serde_json::json!({"status": "UP"})) }))
        .route("/readyz", get(move || probes.clone().answer()))
        .route("/metrics", get(move || std::future::ready(metrics.render())))
}
