//! `chat-sys gateway`: the STOMP over WebSocket gateway (and SockJS) as its own process. It
//! verifies tokens, registers connections and sends messages through the core's gRPC API
//! (`core_client`), and reads its own Redis delivery stream `gatewayId:{node_id}:stream`.
//! Give each gateway a stable `gateway.node_id`: a restarted gateway resumes its stream.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use chat_domain::DomainError;
use chat_gateway::GatewayCore;
use tokio_util::sync::CancellationToken;

use super::probes::{Probes, probe};
use super::{admin_router, engines};
use crate::config::Config;
use crate::serve::bind;

/// Where a running gateway listens.
#[derive(Clone, Copy, Debug)]
pub struct GatewayAddrs {
    /// `/healthz`, `/readyz`, `/metrics`.
    pub http: SocketAddr,
    /// STOMP over WebSocket and SockJS (`/ws`).
    pub ws: SocketAddr,
}

/// Runs one gateway until `shutdown` completes, then closes its sessions gracefully.
///
/// # Errors
/// Startup failures (`core_client.client_secret` unset, Redis unreachable, port in use) or a
/// listener failing.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_bound: impl FnOnce(GatewayAddrs),
) -> anyhow::Result<()> {
    let client = &config.core_client;
    let secret = client
        .client_secret
        .clone()
        .context("core_client.client_secret is not set (CHAT_CORE_CLIENT__CLIENT_SECRET): the gateway needs it")?;
    let core_cfg = chat_grpc::client::GrpcCoreConfig {
        endpoint: client.grpc_url.clone(),
        token_url: client.token_url.clone(),
        client_id: client.client_id.clone(),
        client_secret: secret,
        ..chat_grpc::client::GrpcCoreConfig::default()
    };
    let core = Arc::new(chat_grpc::client::GrpcCore::connect(core_cfg).context("connecting to the core")?);
    let registry = Arc::new(core.registry());
    let (streams, streams_probe) = engines::streams(&config).await?;
    // The core is ready when it answers a token verification made with the gateway's own
    // service credentials: that checks the gRPC endpoint, the token endpoint and the client
    // secret at once (a made-up token is refused as UNAUTHENTICATED: the answer we want).
    let probe_core = core.clone();
    let core_probe = probe(move || {
        let core = probe_core.clone();
        async move {
            match core.verify_token("readiness-probe").await {
                Ok(_) | Err(DomainError::Unauthenticated(_)) => Ok(()),
                Err(e) => Err(e.to_string()),
            }
        }
    });
    let first_check = core_probe();
    tokio::spawn(async move {
        if let Err(why) = first_check.await {
            tracing::error!(%why, "the core is not usable (check core_client.*): clients cannot connect until it is");
        }
    });
    let probes = Probes::default().with("redis-streams", streams_probe).with("core", core_probe);

    let mut gateway_config = config.gateway.clone();
    if gateway_config.web.rest_url.is_empty() {
        // The web client's REST API is the core's: the token endpoint's origin.
        gateway_config.web.rest_url = client.token_url.trim_end_matches("/oauth2/token").to_owned();
    }
    let gateway = chat_gateway::Gateway::new(gateway_config, core, registry, streams);
    let admin = bind(&config.http, "admin").await?;
    let ws = bind(&config.ws, "gateway").await?;
    let addrs = GatewayAddrs { http: admin.local_addr()?, ws: ws.local_addr()? };
    tracing::info!(http = %addrs.http, ws = %addrs.ws, node = gateway.node_id(), "chat-sys gateway serving");
    on_bound(addrs);

    let stop = CancellationToken::new();
    tokio::spawn({
        let stop = stop.clone();
        async move {
            shutdown.await;
            stop.cancel();
        }
    });
    let admin = axum::serve(admin, admin_router(probes)).with_graceful_shutdown(stop.clone().cancelled_owned());
    let ws = chat_gateway::serve(ws, gateway, stop.cancelled_owned());
    let (admin_result, ws_result) = tokio::join!(admin, ws);
    admin_result.context("admin server")?;
    ws_result.context("gateway server")?;
    Ok(())
}
