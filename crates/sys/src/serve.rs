//! `chat-sys serve`: every role in one process on embedded defaults.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use chat_domain::{Millis, Workspace, WorkspaceId};
use chat_storage::{SqlStore, Store};

use crate::config::Config;

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

/// Runs the REST API (and, as they land, the other roles) until `shutdown` completes, then
/// drains in-flight requests.
///
/// # Errors
/// Startup failures (database, key material, port in use).
pub async fn run(config: Config, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    let store: Arc<dyn Store> = Arc::new(open_store(&config).await?);
    store
        .ensure_workspace(&Workspace { id: WorkspaceId::DEFAULT, name: "default".into(), created_at: Millis::now() })
        .await
        .context("creating the default workspace")?;
    let auth = chat_auth::Authenticator::new(config.auth.clone(), store.clone(), store.clone())
        .await
        .context("initialising authentication")?;
    let service = chat_core::service::ChatService::new(
        store.clone(),
        chat_core::service::ServiceConfig {
            limits: config.limits.clone(),
            max_batch: config.service.max_batch,
            writers: config.service.writers,
        },
    );
    let state = chat_core::rest::AppState::new(service, auth);
    let addr = SocketAddr::new(config.http.bind, config.http.port);
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding REST on {addr}"))?;
    tracing::info!(addr = %listener.local_addr()?, "REST API listening");
    chat_core::rest::serve(listener, state, shutdown).await.context("REST server")?;
    Ok(())
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
