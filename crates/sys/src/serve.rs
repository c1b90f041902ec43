//! `chat-sys serve`: every role in one process on embedded defaults.
//!
//! Wiring: store → authenticator → core service → in-process pipeline (outbox relay, event
//! log, fanout, connection registry, delivery streams) → gateway. Shutdown order: stop
//! accepting (REST and WebSocket), let sessions flush and close, drain the pipeline, close
//! the store.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::routing::get;
use chat_domain::{Millis, Workspace, WorkspaceId};
use chat_storage::{SqlStore, Store};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ListenConfig};

/// Opens the configured database (creating `data_dir` for SQLite) and applies migrations.
///
/// # Errors
/// Unreachable database, bad URL, or a failed migration.
pub async fn open_store(config: &Config) -> anyhow::Result<SqlStore> {
    if config.database.url.is_none() {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    }
    let url = config.database_url();
    let store = SqlStore::connect(&url, Default::default()).await.with_context(|| "connecting to the database")?;
    store.migrate().await.context("applying migrations")?;
    Ok(store)
}

/// Addresses a running server actually listens on (ports may have been 0).
#[derive(Clone, Copy, Debug)]
pub struct BoundAddrs {
    /// REST API.
    pub http: SocketAddr,
    /// WebSocket/STOMP gateway.
    pub ws: SocketAddr,
    /// gRPC API.
    pub grpc: SocketAddr,
}

/// Runs every role until `shutdown` completes, then drains.
///
/// # Errors
/// Startup failures (database, key material, port in use) or a listener failing.
pub async fn run(config: Config, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    run_with(config, shutdown, |_| {}).await
}

/// [`run`], calling `on_bound` once both listeners are bound (tests learn the ports).
///
/// # Errors
/// As [`run`].
pub async fn run_with(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_bound: impl FnOnce(BoundAddrs),
) -> anyhow::Result<()> {
    let metrics = install_metrics();
    let CoreParts { sql, store, auth, service } = open_core(&config).await?;
    let pipeline = chat_pipeline::Pipeline::in_process(
        store.clone(),
        service.commit_notify(),
        chat_pipeline::PipelineConfig::default(),
    );
    // Presence tracking wraps the registry; the service pushes SEEN receipts through it.
    let realtime = chat_core::service::Realtime::start(
        pipeline.registry(),
        pipeline.streams(),
        store.clone(),
        config.presence.realtime_config(),
    );
    let service = service.with_realtime(realtime.clone());
    let log: Arc<dyn chat_pipeline::EventLog> = pipeline.log.clone();
    let (service, search) = crate::reindex::open_search(&config, service, sql.clone(), Some(log)).await?;
    let http_listener = bind(&config.http, "REST").await?;
    let ws_listener = bind(&config.ws, "gateway").await?;
    let grpc_listener = bind(&config.grpc, "gRPC").await?;
    let bound = BoundAddrs {
        http: http_listener.local_addr()?,
        ws: ws_listener.local_addr()?,
        grpc: grpc_listener.local_addr()?,
    };
    let mut gateway_config = config.gateway.clone();
    // The web client calls the REST API of this process: tell it the port actually bound.
    gateway_config.web.rest_port.get_or_insert(bound.http.port());
    let core = Arc::new(chat_gateway::InProcessCore::new(service.clone(), auth.clone()));
    let gateway = chat_gateway::Gateway::new(gateway_config, core, realtime.registry(), pipeline.streams());
    tracing::info!(
        rest = %bound.http, gateway = %bound.ws, grpc = %bound.grpc, node = gateway.node_id(),
        "chat-sys serving"
    );
    on_bound(bound);

    let grpc_server = chat_grpc::GrpcServer::new(service.clone(), auth.clone(), realtime.registry());
    let state = chat_core::rest::AppState::new(service, auth);
    let stop = CancellationToken::new();
    tokio::spawn({
        let stop = stop.clone();
        async move {
            shutdown.await;
            stop.cancel();
        }
    });
    let app = chat_core::rest::router(state).route("/metrics", get(move || std::future::ready(metrics.render())));
    let rest = axum::serve(http_listener, app).with_graceful_shutdown(stop.clone().cancelled_owned());
    let grpc = grpc_server.serve(grpc_listener, stop.clone().cancelled_owned());
    let ws = chat_gateway::serve(ws_listener, gateway, stop.cancelled_owned());
    let (rest_result, ws_result, grpc_result) = tokio::join!(rest, ws, grpc);
    pipeline.shutdown(Duration::from_secs(5)).await;
    search.shutdown().await;
    sql.close().await;
    rest_result.context("REST server")?;
    ws_result.context("gateway server")?;
    grpc_result.context("gRPC server")?;
    Ok(())
}

/// What every process with the core role holds: the store (also as its SQL type, to close
/// it), the authenticator and the core service.
pub struct CoreParts {
    /// The SQL store (closed at shutdown).
    pub sql: Arc<SqlStore>,
    /// The same store as the aggregate traits.
    pub store: Arc<dyn Store>,
    /// Token issuing and verification.
    pub auth: chat_auth::Authenticator,
    /// The core service.
    pub service: chat_core::service::ChatService,
}

/// Opens the store (migrated), ensures the default workspace, and builds the authenticator
/// and the core service (`serve` and `chat-sys core`).
///
/// # Errors
/// As [`open_store`] and [`open_service`], or key material that cannot be loaded.
pub async fn open_core(config: &Config) -> anyhow::Result<CoreParts> {
    let sql = Arc::new(open_store(config).await?);
    let store: Arc<dyn Store> = sql.clone();
    store
        .ensure_workspace(&Workspace { id: WorkspaceId::DEFAULT, name: "default".into(), created_at: Millis::now() })
        .await
        .context("creating the default workspace")?;
    let auth = chat_auth::Authenticator::new(config.auth.clone(), store.clone(), store.clone())
        .await
        .context("initialising authentication")?;
    let service = open_service(config, store.clone()).await?;
    Ok(CoreParts { sql, store, auth, service })
}

/// The core service over `store`, with attachments in the configured object store (whose
/// reachability is checked, with a warning only: uploads answer 503 while it is down).
///
/// # Errors
/// An unusable attachments configuration (e.g. the `s3` backend without a bucket, a
/// directory that cannot be created).
pub async fn open_service(config: &Config, store: Arc<dyn Store>) -> anyhow::Result<chat_core::service::ChatService> {
    let service = chat_core::service::ChatService::new(
        store,
        chat_core::service::ServiceConfig {
            limits: config.limits.clone(),
            max_batch: config.service.max_batch,
            writers: config.service.writers,
            // Embedded SQLite: its connections are driver threads, so the writers may run on
            // a thread of their own (see `CommitThread::Dedicated`).
            commit_thread: if config.database_url().starts_with("sqlite:") {
                chat_core::service::CommitThread::Dedicated
            } else {
                chat_core::service::CommitThread::Runtime
            },
        },
    );
    let blobs = chat_blob::BlobStore::open(&config.blob_config(), config.attachments.part_bytes)
        .context("opening the attachment store")?;
    match blobs.check().await {
        Ok(()) => tracing::info!(store = blobs.describe(), "attachments"),
        Err(e) => tracing::warn!(store = blobs.describe(), error = %e, "attachment store not reachable (yet)"),
    }
    let policy = chat_core::service::AttachmentPolicy {
        allowed_content_types: config.attachments.allowed_content_types.clone(),
    };
    Ok(service.with_attachments(blobs, policy))
}

/// `chat-sys attachments cleanup`: removes uploads never attached (or never finished) older
/// than `older_than` and the attachments of deleted messages, content first, then rows.
///
/// # Errors
/// Database or configuration errors.
pub async fn cleanup_attachments(
    config: &Config,
    older_than: Duration,
) -> anyhow::Result<chat_core::service::CleanupReport> {
    let sql = open_store(config).await?;
    let store: Arc<dyn Store> = Arc::new(sql.clone());
    let service = open_service(config, store).await?;
    let report = service.cleanup_attachments(older_than, 500).await;
    sql.close().await;
    Ok(report?)
}

pub(crate) async fn bind(listen: &ListenConfig, what: &str) -> anyhow::Result<TcpListener> {
    let addr = SocketAddr::new(listen.bind, listen.port);
    TcpListener::bind(addr).await.with_context(|| format!("binding the {what} listener on {addr}"))
}

/// Installs the process-wide Prometheus recorder (once) and returns its handle.
pub(crate) fn install_metrics() -> PrometheusHandle {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // A second recorder (tests running several servers) is not an error: the first one
            // keeps recording for the whole process.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Registers an OAuth2 client.
///
/// # Errors
/// Database errors or an existing client id.
pub async fn create_client(config: &Config, id: &str, secret: &str, scopes: &str) -> anyhow::Result<()> {
    let store: Arc<dyn Store> = Arc::new(open_store(config).await?);
    let auth = chat_auth::Authenticator::new(config.auth.clone(), store.clone(), store.clone()).await?;
    auth.create_client(&chat_auth::ClientSpec {
        client_id: id.into(),
        client_secret: secret.into(),
        scopes: scopes.split_whitespace().map(str::to_owned).collect(),
    })
    .await?;
    Ok(())
}
