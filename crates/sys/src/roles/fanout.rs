//! `chat-sys fanout`: a member of the Kafka consumer group `kafka.fanout_group`. For each
//! event it looks up the conversation's members (database) and their live connections
//! (Redis registry) and appends one delivery per gateway to that gateway's Redis stream;
//! offsets are committed only after the deliveries are written. Any number of workers may
//! run: Kafka assigns each partition (a set of conversations) to one of them.

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;
use chat_pipeline::{FanoutConfig, FanoutWorker};
use tokio_util::sync::CancellationToken;

use super::probes::{Probes, database_probe};
use super::{admin_router, engines};
use crate::config::Config;
use crate::serve::{bind, open_store};

/// Runs one fanout worker until `shutdown` completes (or the worker fails); `on_bound`
/// gets the admin listener's address (`/healthz`, `/readyz`, `/metrics`).
///
/// # Errors
/// Startup failures (database, Redis, Kafka) or the worker stopping with an error.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_bound: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let sql = std::sync::Arc::new(open_store(&config).await?);
    let (registry, redis_probe) = engines::registry(&config).await?;
    let (streams, streams_probe) = engines::streams(&config).await?;
    let (log, kafka_probe) = engines::event_log(&config, "fanout").await?;
    let probes = Probes::default()
        .with("database", database_probe(sql.clone()))
        .with("redis", redis_probe)
        .with("redis-streams", streams_probe)
        .with("kafka", kafka_probe);

    let admin = bind(&config.http, "admin").await?;
    let addr = admin.local_addr()?;
    tracing::info!(http = %addr, group = %config.kafka.fanout_group, "chat-sys fanout serving");
    on_bound(addr);

    let stop = CancellationToken::new();
    let fanout_cfg = FanoutConfig { group: config.kafka.fanout_group.clone(), ..FanoutConfig::default() };
    let worker = FanoutWorker::new(sql.clone(), registry, streams, fanout_cfg);
    let mut worker = tokio::spawn(worker.run(log, stop.clone()));
    let server = axum::serve(admin, admin_router(probes)).with_graceful_shutdown(stop.clone().cancelled_owned());
    let mut server = tokio::spawn(server.into_future());
    tokio::pin!(shutdown);
    let outcome = tokio::select! {
        _ = &mut shutdown => None,
        r = &mut worker => Some(r),
    };
    stop.cancel();
    let worker_result = match outcome {
        Some(r) => r,
        None => worker.await,
    };
    let _ = (&mut server).await;
    sql.close().await;
    worker_result.context("fanout worker panicked")?.context("fanout worker")?;
    Ok(())
}
