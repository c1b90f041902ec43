//! The command line (clap): `chat-sys serve`, `chat-sys migrate`, `chat-sys client create`,
//! `chat-sys attachments cleanup`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

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
    /// Scale-out role: REST API, gRPC API and the outbox relay to Kafka (needs
    /// `database.url`, `redis.url`, `kafka.bootstrap`; a binary built with `--features kafka`).
    Core,
    /// Scale-out role: a fanout worker, Kafka consumer group → Redis delivery streams;
    /// `/healthz`, `/readyz`, `/metrics` on the http port.
    Fanout,
    /// Scale-out role: a STOMP/WebSocket gateway that reaches the core over gRPC
    /// (`core_client`) and reads its Redis stream; `/healthz`, `/readyz`, `/metrics` on the
    /// http port.
    Gateway {
        /// This gateway's node id (its Redis stream and registry entries); keep it stable
        /// across restarts so the gateway resumes its stream. Overrides `gateway.node_id`.
        #[arg(long)]
        node_id: Option<String>,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Manage OAuth2 clients (client_credentials grant, for internal services).
    Client {
        /// What to do with clients.
        #[command(subcommand)]
        action: ClientAction,
    },
    /// Rebuild the search index from the database, with a progress bar (`search.engine`:
    /// `tantivy` rebuilds the index in `search.dir`, stop `serve` first; `database` rebuilds
    /// the database's full-text index).
    Reindex,
    /// Manage attachment storage.
    Attachments {
        /// What to do with attachments.
        #[command(subcommand)]
        action: AttachmentsAction,
    },
}

/// `chat-sys attachments ...`
#[derive(Debug, Subcommand)]
pub enum AttachmentsAction {
    /// Remove uploads never attached to a message (or never finished) and the attachments
    /// of deleted messages, from the object store and the database; prints each one removed.
    Cleanup {
        /// Only uploads older than this are removed (`90s`, `30m`, `24h`, `7d`; default
        /// 24h). Attachments of deleted messages are removed whatever their age.
        #[arg(long, default_value = "24h", value_parser = parse_duration)]
        older_than: Duration,
    },
}

/// Parses `N` followed by `ms`, `s`, `m`, `h` or `d` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("invalid duration {s:?}: expected e.g. 30m, 24h, 7d"))?;
    let secs = match unit {
        "ms" => return Ok(Duration::from_millis(n)),
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => return Err(format!("invalid duration unit {other:?}: use ms, s, m, h or d")),
    };
    Ok(Duration::from_secs(n.saturating_mul(secs)))
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
            // Once, on stderr (a log line too would print it twice on a terminal).
            eprintln!("chat-sys: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    let stopped = |r: anyhow::Result<()>| {
        if r.is_ok() {
            tracing::info!("chat-sys stopped");
        }
        r
    };
    match command {
        Command::Serve => stopped(crate::serve::run(config, shutdown_signal()).await),
        Command::Core => stopped(crate::roles::core::run(config, shutdown_signal(), |_| {}).await),
        Command::Fanout => stopped(crate::roles::fanout::run(config, shutdown_signal(), |_| {}).await),
        Command::Gateway { node_id } => {
            let mut config = config;
            if let Some(id) = node_id {
                config.gateway.node_id = id;
            }
            stopped(crate::roles::gateway::run(config, shutdown_signal(), |_| {}).await)
        }
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
        Command::Reindex => {
            let read = crate::reindex::run(&config).await?;
            println!("reindexed {read} messages ({:?} engine)", config.search.engine);
            Ok(())
        }
        Command::Attachments { action: AttachmentsAction::Cleanup { older_than } } => {
            let report = crate::serve::cleanup_attachments(&config, older_than).await?;
            let mut bytes = 0i64;
            for (a, existed) in &report.removed {
                bytes += a.size;
                let content = if *existed { "content removed" } else { "no content stored" };
                println!(
                    "removed {} ({}, {:?}, {} bytes, {}) of conversation {}: {content}",
                    a.id,
                    a.status.as_str(),
                    a.name,
                    a.size,
                    a.content_type,
                    a.conversation_id
                );
            }
            for (a, why) in &report.failed {
                println!("FAILED {} ({}): {why}", a.id, a.object_key);
            }
            println!(
                "attachments cleanup: removed {} ({bytes} bytes), {} failed",
                report.removed.len(),
                report.failed.len()
            );
            anyhow::ensure!(report.failed.is_empty(), "{} attachments could not be removed", report.failed.len());
            Ok(())
        }
    }
}

fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log));
    // Colours only on a terminal: a log redirected to a file stays plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout()) && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_ansi(ansi).try_init();
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
