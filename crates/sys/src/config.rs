//! The one configuration struct of chat-sys, and how it is layered.
//!
//! Precedence, lowest first: built-in defaults < TOML file (`--config`, default
//! `chat-sys.toml` when present) < the seed's `SPRING_DATASOURCE_*` variables < `CHAT_*`
//! environment variables (nested keys joined by `__`, e.g. `CHAT_HTTP__PORT=9000`,
//! `CHAT_AUTH__ACCESS_TTL_SECS=600`) < command-line flags.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

mod presence;
mod scaleout;
pub use presence::PresenceSettings;
pub use scaleout::{CoreClientSettings, KafkaSettings, RedisSettings};

/// Everything chat-sys can be configured with. Every field has a documented default.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Directory for embedded state: the SQLite database (`chat.db`) and, later, attachments
    /// and the search index. Default `./data`.
    pub data_dir: PathBuf,
    /// Database connection.
    pub database: DatabaseConfig,
    /// The REST API listener (default port 8081).
    pub http: ListenConfig,
    /// The WebSocket/STOMP gateway listener (default port 8082).
    pub ws: ListenConfig,
    /// The gRPC API listener of the core role (default port 9090): `auth.v1`,
    /// `connection.v1`, `message.v1`, health and reflection.
    pub grpc: ListenConfig,
    /// Gateway behaviour: node id, origins, STOMP limits, heart-beats (see
    /// `chat_gateway::GatewayConfig`).
    pub gateway: chat_gateway::GatewayConfig,
    /// Tokens, keys and password hashing (see `chat_auth::AuthConfig`).
    pub auth: chat_auth::AuthConfig,
    /// Input limits (see `chat_domain::Limits`).
    pub limits: chat_domain::Limits,
    /// Write path tuning.
    pub service: ServiceSettings,
    /// Attachments: where uploaded files live, which media types are accepted.
    pub attachments: AttachmentsConfig,
    /// Full-text search: `engine` (`tantivy`, default, or `database`), the tantivy index
    /// `dir` (default `{data_dir}/search`) and its indexer's `refresh_interval_ms` (default
    /// 1000); see `crate::reindex`.
    pub search: crate::reindex::SearchConfig,
    /// Presence: the offline grace period, the expiry sweep, the audience bound.
    pub presence: PresenceSettings,
    /// Scale-out: Redis (connection registry, delivery streams).
    pub redis: RedisSettings,
    /// Scale-out: Kafka (the event log `message.all`).
    pub kafka: KafkaSettings,
    /// Scale-out: how a `chat-sys gateway` reaches the core.
    pub core_client: CoreClientSettings,
    /// Log filter in `tracing_subscriber::EnvFilter` syntax. Default `info`; `RUST_LOG`
    /// overrides it.
    pub log: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("data"),
            database: DatabaseConfig::default(),
            http: ListenConfig::rest(),
            ws: ListenConfig::gateway(),
            grpc: ListenConfig::grpc(),
            gateway: chat_gateway::GatewayConfig::default(),
            auth: chat_auth::AuthConfig::default(),
            limits: chat_domain::Limits::default(),
            service: ServiceSettings::default(),
            attachments: AttachmentsConfig::default(),
            search: crate::reindex::SearchConfig::default(),
            presence: PresenceSettings::default(),
            redis: RedisSettings::default(),
            kafka: KafkaSettings::default(),
            core_client: CoreClientSettings::default(),
            log: "info".into(),
        }
    }
}

/// Database settings.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://PATH`, `mysql://USER:PASS@HOST:PORT/DB` (MariaDB too) or
    /// `postgres://USER:PASS@HOST:PORT/DB`. Default: `sqlite://{data_dir}/chat.db`.
    pub url: Option<String>,
}

/// A TCP listener. Missing fields keep the listener's default.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenConfig {
    /// Address to bind. Default `0.0.0.0`.
    #[serde(default = "unspecified")]
    pub bind: IpAddr,
    /// TCP port; 0 picks a free one. Defaults: REST 8081, gateway 8082 (the seed's ports).
    pub port: u16,
}

fn unspecified() -> IpAddr {
    IpAddr::V4(Ipv4Addr::UNSPECIFIED)
}

impl ListenConfig {
    /// The REST default: `0.0.0.0:8081`.
    pub fn rest() -> Self {
        ListenConfig { bind: unspecified(), port: 8081 }
    }

    /// The gateway default: `0.0.0.0:8082`.
    pub fn gateway() -> Self {
        ListenConfig { bind: unspecified(), port: 8082 }
    }

    /// The gRPC default: `0.0.0.0:9090`.
    pub fn grpc() -> Self {
        ListenConfig { bind: unspecified(), port: 9090 }
    }
}

/// Write path tuning.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceSettings {
    /// Most sends committed in one transaction (group commit). Default 512.
    pub max_batch: usize,
    /// Concurrent writer tasks. Default 1 (SQLite always uses 1).
    pub writers: usize,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        ServiceSettings { max_batch: 512, writers: 1 }
    }
}

/// Where attachment content is stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttachmentBackend {
    /// Files under `attachments.dir` (the `serve` default).
    #[default]
    Local,
    /// S3 or an S3 API server (`[attachments.s3]`).
    S3,
}

/// The `[attachments]` section. The size limits are `limits.max_attachment_bytes` (default
/// 10 MiB) and `limits.max_attachments_per_message` (default 10).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AttachmentsConfig {
    /// `local` (default) or `s3`.
    pub backend: AttachmentBackend,
    /// Directory of the `local` backend. Default `{data_dir}/attachments`.
    pub dir: Option<PathBuf>,
    /// Uploads larger than this go up in parts of this size (default 8 MiB; S3 needs at
    /// least 5 MiB).
    pub part_bytes: usize,
    /// Accepted media types, lowercase; `type/*` accepts any subtype. Default: common
    /// images, PDF, plain text, CSV, Markdown, JSON, ZIP, gzip, MP3, Ogg, MP4, WebM and
    /// `application/octet-stream` (`chat_core::service::DEFAULT_ALLOWED_CONTENT_TYPES`).
    pub allowed_content_types: Vec<String>,
    /// The `s3` backend: `bucket`, `endpoint`, `region`, `access_key_id`,
    /// `secret_access_key`, `allow_http`, `virtual_hosted_style`, `prefix` (see
    /// `chat_blob::S3Config`).
    pub s3: chat_blob::S3Config,
}

impl Default for AttachmentsConfig {
    fn default() -> Self {
        AttachmentsConfig {
            backend: AttachmentBackend::Local,
            dir: None,
            part_bytes: chat_blob::DEFAULT_PART_BYTES,
            allowed_content_types: chat_core::service::AttachmentPolicy::default().allowed_content_types,
            s3: chat_blob::S3Config::default(),
        }
    }
}

impl Config {
    /// The object store of attachments: the configured backend (`local` under
    /// `attachments.dir`, default `{data_dir}/attachments`).
    pub fn blob_config(&self) -> chat_blob::BlobConfig {
        match self.attachments.backend {
            AttachmentBackend::Local => chat_blob::BlobConfig::Local {
                dir: self.attachments.dir.clone().unwrap_or_else(|| self.data_dir.join("attachments")),
            },
            AttachmentBackend::S3 => chat_blob::BlobConfig::S3(self.attachments.s3.clone()),
        }
    }

    /// The database URL to use: the configured one, or the SQLite file under `data_dir`.
    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}?mode=rwc", self.data_dir.join("chat.db").display()),
        }
    }
}

/// Command-line overrides (the highest layer). `None` leaves a setting as the lower layers
/// have it.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--database-url`.
    pub database_url: Option<String>,
    /// `--http-port`.
    pub http_port: Option<u16>,
    /// `--ws-port`.
    pub ws_port: Option<u16>,
    /// `--grpc-port`.
    pub grpc_port: Option<u16>,
}

/// Builds the layered configuration.
///
/// `file` is the TOML file to read (`None`: `chat-sys.toml` in the working directory if it
/// exists). `env` is the process environment as (name, value) pairs, passed in so tests need
/// not mutate the real one.
///
/// # Errors
/// A message naming the bad key and layer (unknown key, wrong type, unreadable file).
pub fn load(file: Option<&Path>, env: &[(String, String)], overrides: &Overrides) -> anyhow::Result<Config> {
    let mut fig = Figment::from(Serialized::defaults(DefaultsShim::default()));
    match file {
        Some(path) => {
            anyhow::ensure!(path.exists(), "config file {} does not exist", path.display());
            fig = fig.merge(Toml::file_exact(path));
        }
        None => fig = fig.merge(Toml::file("chat-sys.toml")),
    }
    if let Some(url) = spring_datasource_url(env) {
        fig = fig.merge(("database.url", url));
    }
    for (name, value) in env {
        let Some(key) = name.strip_prefix("CHAT_") else { continue };
        let key = key.to_ascii_lowercase().replace("__", ".");
        let section = key.split('.').next().unwrap_or_default();
        if IGNORED_CHAT_VARS.contains(&name.as_str()) || !TOP_LEVEL_KEYS.contains(&section) {
            // Not a configuration key (test harness variables, other tools): leave it alone.
            // Keys inside a known section are checked strictly (typos are errors).
            continue;
        }
        let value: figment::value::Value = value.parse().unwrap_or_else(|_| value.clone().into());
        fig = fig.merge((key, value));
    }
    if let Some(d) = &overrides.data_dir {
        fig = fig.merge(("data_dir", d.display().to_string()));
    }
    if let Some(u) = &overrides.database_url {
        fig = fig.merge(("database.url", u.clone()));
    }
    if let Some(p) = overrides.http_port {
        fig = fig.merge(("http.port", p));
    }
    if let Some(p) = overrides.ws_port {
        fig = fig.merge(("ws.port", p));
    }
    if let Some(p) = overrides.grpc_port {
        fig = fig.merge(("grpc.port", p));
    }
    fig.extract::<Config>().map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))
}

/// The top-level keys of [`Config`]: a `CHAT_` variable whose first segment is not one of
/// these is not configuration and is ignored.
const TOP_LEVEL_KEYS: &[&str] = &[
    "data_dir",
    "database",
    "http",
    "ws",
    "grpc",
    "gateway",
    "auth",
    "limits",
    "service",
    "attachments",
    "search",
    "presence",
    "redis",
    "kafka",
    "core_client",
    "log",
];

/// Variables with the `CHAT_` prefix that are not configuration keys (test harness and
/// flag fallbacks), ignored by the environment layer.
const IGNORED_CHAT_VARS: &[&str] = &[
    "CHAT_TEST_MYSQL_URL",
    "CHAT_TEST_POSTGRES_URL",
    "CHAT_TEST_REDIS_URL",
    "CHAT_TEST_KAFKA_BOOTSTRAP",
    "CHAT_CONFIG",
    "CHAT_DATABASE_URL",
];

/// An empty defaults layer: `Config`'s serde defaults fill everything, this only anchors
/// the figment so merged keys have a base.
#[derive(Serialize, Default)]
struct DefaultsShim {}

/// The seed's datasource variables, turned into a database URL: `SPRING_DATASOURCE_URL`
/// (`jdbc:mysql://host:3306/db?params`, `jdbc:mariadb:...` or `jdbc:postgresql:...`) with
/// `SPRING_DATASOURCE_USERNAME` / `SPRING_DATASOURCE_PASSWORD` as credentials. JDBC
/// parameters are dropped. `None` when `SPRING_DATASOURCE_URL` is unset.
pub fn spring_datasource_url(env: &[(String, String)]) -> Option<String> {
    let get = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let jdbc = get("SPRING_DATASOURCE_URL")?;
    let rest = jdbc.strip_prefix("jdbc:").unwrap_or(&jdbc);
    let (scheme, rest) = rest.split_once("://")?;
    let scheme = match scheme {
        "postgresql" | "postgres" => "postgres",
        "mariadb" | "mysql" => "mysql",
        other => other,
    };
    let rest = rest.split('?').next().unwrap_or(rest);
    let creds = match (get("SPRING_DATASOURCE_USERNAME"), get("SPRING_DATASOURCE_PASSWORD")) {
        (Some(u), Some(p)) => format!("{}:{}@", url_encode(&u), url_encode(&p)),
        (Some(u), None) => format!("{}@", url_encode(&u)),
        _ => String::new(),
    };
    Some(format!("{scheme}://{creds}{rest}"))
}

/// Percent-encodes everything but RFC 3986 unreserved characters (for URL userinfo).
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_are_embedded_sqlite_on_8081() {
        let c = load(None, &[], &Overrides::default()).unwrap();
        assert_eq!((c.http.port, c.ws.port), (8081, 8082));
        assert!(c.database_url().starts_with("sqlite://"));
        assert!(c.database_url().contains("chat.db"));
    }

    #[test]
    fn spring_datasource_becomes_database_url() {
        let e = env(&[
            ("SPRING_DATASOURCE_URL", "jdbc:mysql://db:3306/chat?useSSL=false"),
            ("SPRING_DATASOURCE_USERNAME", "root"),
            ("SPRING_DATASOURCE_PASSWORD", "p@ss"),
        ]);
        assert_eq!(spring_datasource_url(&e).unwrap(), "mysql://root:p%40ss@db:3306/chat");
        let c = load(None, &e, &Overrides::default()).unwrap();
        assert_eq!(c.database_url(), "mysql://root:p%40ss@db:3306/chat");
    }

    #[test]
    fn layers_override_in_order_file_env_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[http]\nport = 7000\n[limits]\nmax_message_bytes = 10\n").unwrap();
        let c = load(Some(&file), &[], &Overrides::default()).unwrap();
        assert_eq!((c.http.port, c.limits.max_message_bytes), (7000, 10));
        let e = env(&[("CHAT_HTTP__PORT", "7001"), ("CHAT_TEST_MYSQL_URL", "ignored"), ("CHAT_ST_SEED", "1")]);
        let c = load(Some(&file), &e, &Overrides::default()).unwrap();
        assert_eq!((c.http.port, c.limits.max_message_bytes), (7001, 10));
        let c = load(Some(&file), &e, &Overrides { http_port: Some(7002), ..Default::default() }).unwrap();
        assert_eq!(c.http.port, 7002);
    }

    #[test]
    fn presence_grace_defaults_to_ten_seconds_and_is_set_by_env() {
        let c = load(None, &[], &Overrides::default()).unwrap();
        assert_eq!(c.presence.realtime_config().presence_offline_grace, std::time::Duration::from_secs(10));
        let e = env(&[("CHAT_PRESENCE__OFFLINE_GRACE_MS", "0"), ("CHAT_PRESENCE__SWEEP_INTERVAL_MS", "250")]);
        let rt = load(None, &e, &Overrides::default()).unwrap().presence.realtime_config();
        assert_eq!(rt.presence_offline_grace, std::time::Duration::ZERO);
        assert_eq!(rt.presence_sweep_interval, std::time::Duration::from_millis(250));
    }

    #[test]
    fn unknown_key_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[http]\nprot = 7000\n").unwrap();
        let err = load(Some(&file), &[], &Overrides::default()).unwrap_err().to_string();
        assert!(err.contains("prot"), "{err}");
    }

    #[test]
    fn typo_inside_a_known_section_is_an_error() {
        let e = env(&[("CHAT_HTTP__PROT", "7001")]);
        let err = load(None, &e, &Overrides::default()).unwrap_err().to_string();
        assert!(err.contains("prot"), "{err}");
    }

    #[test]
    fn attachments_default_to_the_data_dir_and_switch_to_s3_by_env() {
        let c = load(None, &[], &Overrides::default()).unwrap();
        assert_eq!(c.blob_config(), chat_blob::BlobConfig::Local { dir: PathBuf::from("data").join("attachments") });
        assert_eq!(c.limits.max_attachment_bytes, 10 * 1024 * 1024);
        let e = env(&[
            ("CHAT_ATTACHMENTS__BACKEND", "s3"),
            ("CHAT_ATTACHMENTS__S3__BUCKET", "chat"),
            ("CHAT_ATTACHMENTS__S3__ENDPOINT", "http://127.0.0.1:9000"),
            ("CHAT_ATTACHMENTS__S3__ALLOW_HTTP", "true"),
            ("CHAT_ATTACHMENTS__S3__ACCESS_KEY_ID", "testing"),
            ("CHAT_LIMITS__MAX_ATTACHMENT_BYTES", "2048"),
            ("CHAT_TEST_S3_URL", "ignored"),
        ]);
        let c = load(None, &e, &Overrides::default()).unwrap();
        let chat_blob::BlobConfig::S3(s3) = c.blob_config() else { panic!("s3 backend") };
        assert_eq!((s3.bucket.as_str(), s3.endpoint.as_deref()), ("chat", Some("http://127.0.0.1:9000")));
        assert!(s3.allow_http);
        assert_eq!(s3.access_key_id.as_deref(), Some("testing"));
        assert_eq!(c.limits.max_attachment_bytes, 2048);
        let err = load(None, &env(&[("CHAT_ATTACHMENTS__BACKEND", "ftp")]), &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("ftp"), "{err}");
    }

    #[test]
    fn missing_config_file_is_an_error() {
        assert!(load(Some(Path::new("/nonexistent/chat.toml")), &[], &Overrides::default()).is_err());
    }
}
