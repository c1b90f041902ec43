//! The command line (clap): `chat-sys serve`, `chat-sys migrate`, `chat-sys client create`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{self, Config, Overrides};

/// chat-sys: a real-time team chat backend (STOMP over WebSocket, REST, gRPC).
#[derive(Debug, Parser)]
#[command(name = "chat-sys", version, about)]
pub struct Cli {
    /// Shared options.
    #[command(flatten)]
    pub common: CommonArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand accepts; they override the config file and environment.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// TOML configuration file (default: `chat-sys.toml` in the working directory, if present).
    #[arg(long, global = true, env = "CHAT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory for embedded state (SQLite database, keys). Default `./data`.
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// Database URL: `sqlite://PATH`, `mysql://...` or `postgres://...`.
    #[arg(long, global = true, env = "CHAT_DATABASE_URL")]
    pub database_url: Option<String>,
    /// REST API port (default 8081; 0 picks a free port).
    #[arg(long, global = true)]
    pub http_port: Option<u16>,
    /// WebSocket/STOMP gateway port (default 8082; 0 picks a free port).
    #[arg(long, global = true)]
    pub ws_port: Option<u16>,
    /// gRPC API port (default 9090; 0 picks a free port).
    #[arg(long, global = true)]
    pub grpc_port: Option<u16>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every role in one process on embedded defaults: REST API, STOMP gateway, outbox
    /// relay and fanout, with SQLite under --data-dir.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage OAuth2 clients (client_credentials grant, for internal services).
    Client {
        /// What to do with clients.
        #[command(subcommand)]
        action: ClientAction,
    },
}

/// `chat-sys client ...`
#[derive(Debug, Subcommand)]
pub enum ClientAction {
    /// Register a confidential client (RFC 6749 section 2.3.1).
    Create {
        /// The `client_id`.
        #[arg(long)]
        id: String,
        /// The `client_secret` (read from the environment variable `CHAT_CLIENT_SECRET` when omitted).
        #[arg(long, env = "CHAT_CLIENT_SECRET", hide_env_values = true)]
        secret: String,
        /// Space-separated scopes the client may request.
        #[arg(long, default_value = "")]
        scopes: String,
    },
}

/// Runs the parsed command line; returns the process exit code (errors are printed).
pub fn main(cli: Cli) -> ExitCode {
    let env: Vec<(String, String)> = std::env::vars().collect();
    let overrides = Overrides {
        data_dir: cli.common.data_dir.clone(),
        database_url: cli.common.database_url.clone(),
        http_port: cli.common.http_port,
        ws_port: cli.common.ws_port,
        grpc_port: cli.common.grpc_port,
    };
    let config = match config::load(cli.common.config.as_deref(), &env, &overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("chat-sys: {e:#}");
            return ExitCode::from(2);
        }
    };
    init_tracing(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("chat-sys: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli.command, config));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("chat-sys: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => crate::serve::run(config, shutdown_signal()).await,
        Command::Migrate => {
            let store = crate::serve::open_store(&config).await?;
            println!("migrations applied ({:?})", store.dialect());
            Ok(())
        }
        Command::Client { action: ClientAction::Create { id, secret, scopes } } => {
            crate::serve::create_client(&config, &id, &secret, &scopes).await?;
            println!("client {id} created");
            Ok(())
        }
    }
}

fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).try_init();
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutdown requested; draining");
}
