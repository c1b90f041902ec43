//! `chat-sys core`: the REST API (with `/metrics`), the gRPC API and the outbox relay
//! publishing to Kafka. Any number of cores may run against one database: each relays pending
//! outbox rows; a row published by two of them is delivered once (the fanout drops
//! duplicates by event id).

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::routing::get;
use chat_pipeline::{OutboxRelay, RelayConfig};
use tokio_util::sync::CancellationToken;

use super::engines;
use super::probes::{Probes, database_probe};
use crate::config::Config;
use crate::serve::{CoreParts, bind, install_metrics, open_core};

/// Where a running core listens (ports may have been 0).
#[derive(Clone, Copy, Debug)]
pub struct CoreAddrs {
    /// REST API, `/healthz`, `/readyz`, `/metrics`, `/oauth2/token`.
    pub http: SocketAddr,
    /// gRPC API.
    pub grpc: SocketAddr,
}

/// Runs the core role until `shutdown` completes, then stops the relay and drains.
///
/// # Errors
/// Startup failures (database, Redis, Kafka unreachable or unset, port in use) or a
/// listener failing.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_bound: impl FnOnce(CoreAddrs),
) -> anyhow::Result<()> {
    let metrics = install_metrics();
    let CoreParts { sql, store, auth, service } = open_core(&config).await?;
    let (registry, redis_probe) = engines::registry(&config).await?;
    let (streams, streams_probe) = engines::streams(&config).await?;
    // Presence tracking wraps the Redis registry (gateways register through this core's
    // ConnectionManager); presence and receipt signals go out through the Redis streams.
    let realtime =
        chat_core::service::Realtime::start(registry, streams, store.clone(), config.presence.realtime_config());
    let service = service.with_realtime(realtime.clone());
    // Several cores share one index: the database's own full-text search.
    let service = crate::reindex::scale_out_search(&config, service, sql.clone()).await?;
    let (log, kafka_probe) = engines::event_log(&config, "core").await?;
    let probes = Probes::default()
        .with("database", database_probe(sql.clone()))
        .with("redis", redis_probe)
        .with("redis-streams", streams_probe)
        .with("kafka", kafka_probe);

    let http_listener = bind(&config.http, "REST").await?;
    let grpc_listener = bind(&config.grpc, "gRPC").await?;
    let addrs = CoreAddrs { http: http_listener.local_addr()?, grpc: grpc_listener.local_addr()? };
    tracing::info!(http = %addrs.http, grpc = %addrs.grpc, "chat-sys core serving");
    on_bound(addrs);

    let stop = CancellationToken::new();
    tokio::spawn({
        let stop = stop.clone();
        async move {
            shutdown.await;
            stop.cancel();
        }
    });
    let relay_stop = CancellationToken::new();
    let relay = OutboxRelay::new(store.clone(), log, service.commit_notify(), RelayConfig::default());
    let relay = tokio::spawn(relay.run(relay_stop.clone()));

    let grpc_server = chat_grpc::GrpcServer::new(service.clone(), auth.clone(), realtime.registry());
    let state = chat_core::rest::AppState::new(service, auth).with_readiness(probes.into_rest_probe());
    let app = chat_core::rest::router(state).route("/metrics", get(move || std::future::ready(metrics.render())));
    let rest = axum::serve(http_listener, app).with_graceful_shutdown(stop.clone().cancelled_owned());
    let grpc = grpc_server.serve(grpc_listener, stop.clone().cancelled_owned());
    let (rest_result, grpc_result) = tokio::join!(rest, grpc);
    relay_stop.cancel();
    if tokio::time::timeout(Duration::from_secs(5), relay).await.is_err() {
        tracing::warn!("outbox relay did not stop within 5 s");
    }
    sql.close().await;
    rest_result.context("REST server")?;
    grpc_result.context("gRPC server")?;
    Ok(())
}
