//! The peers chat-sys is compared with, in the same run (`scripts/bench-peers.sh` installs
//! them):
//!
//! * RabbitMQ's Web-STOMP plugin (Debian's `rabbitmq-server`): STOMP 1.2 over WebSocket at
//!   `ws://127.0.0.1:15674/ws` (`$CHAT_BENCH_RABBITMQ_URL`), the same frames sent to
//!   `/topic/<channel>` destinations with the same number of subscribers. It persists
//!   nothing (a `/topic` message lives only in transient subscription queues).
//! * Centrifugo v6 (`$CHAT_BENCH_CENTRIFUGO`, default `~/go/bin/centrifugo`), started by the
//!   harness with a generated config: connections authenticated by an HMAC (HS256) token made
//!   by `centrifugo gentoken`, channels without history (it persists nothing either),
//!   subscribers allowed to publish.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::BenchError;
use crate::limits::{Helper, wait_port};

/// RabbitMQ Web-STOMP's URL.
pub fn rabbitmq_url() -> String {
    std::env::var("CHAT_BENCH_RABBITMQ_URL").unwrap_or_else(|_| "ws://127.0.0.1:15674/ws".into())
}

/// Whether RabbitMQ Web-STOMP accepts TCP connections, and the PID of its Erlang VM
/// (`beam.smp` running `rabbit`), found in `/proc`.
pub async fn rabbitmq_running() -> Option<u32> {
    let url = rabbitmq_url();
    let port: u16 = url.rsplit(':').next()?.split('/').next()?.parse().ok()?;
    tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    find_pid(|cmd| cmd.contains("beam.smp") && cmd.contains("rabbit"))
}

/// The first process whose command line (NULs as spaces) satisfies `pred`.
pub fn find_pid(pred: impl Fn(&str) -> bool) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        pred(&cmd).then_some(pid)
    })
}

/// The Centrifugo binary, when installed.
pub fn centrifugo_bin() -> Option<PathBuf> {
    let p = std::env::var("CHAT_BENCH_CENTRIFUGO").map(PathBuf::from).unwrap_or_else(|_| {
        PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into())).join("go/bin/centrifugo")
    });
    p.exists().then_some(p)
}

/// A running Centrifugo and the connection token of the benchmark user.
#[derive(Debug)]
pub struct Centrifugo {
    /// The process.
    pub helper: Helper,
    /// HS256 connection token (user `bench`).
    pub token: String,
    _dir: tempfile::TempDir,
}

impl Centrifugo {
    /// WebSocket URL of its client protocol.
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/connection/websocket", self.helper.port)
    }

    /// Starts `bin` on a free port with a benchmark config and makes a token.
    ///
    /// # Errors
    /// [`BenchError::Server`] / [`BenchError::Timeout`] when it does not come up.
    pub async fn start(bin: &std::path::Path) -> Result<Centrifugo, BenchError> {
        let dir = tempfile::tempdir().map_err(|e| BenchError::Io("temporary directory".into(), e))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| BenchError::Io("free port".into(), e))?
            .port();
        let secret = uuid::Uuid::new_v4().to_string();
        let config = serde_json::json!({
            "http_server": {"address": "127.0.0.1", "port": port},
            "log": {"level": "error"},
            "client": {"token": {"hmac_secret_key": secret}, "allowed_origins": ["*"]},
            "channel": {"without_namespace": {
                "allow_subscribe_for_client": true,
                "allow_publish_for_subscriber": true
            }}
        });
        let cfg = dir.path().join("config.json");
        std::fs::write(&cfg, config.to_string()).map_err(|e| BenchError::Io("centrifugo config".into(), e))?;
        let out = Command::new(bin)
            .args(["gentoken", "-c"])
            .arg(&cfg)
            .args(["-u", "bench", "-t", "86400"])
            .output()
            .map_err(|e| BenchError::Server("centrifugo gentoken".into(), e.to_string()))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let token = text
            .split_whitespace()
            .rfind(|w| w.matches('.').count() == 2 && w.starts_with("ey"))
            .ok_or_else(|| BenchError::Server("centrifugo gentoken".into(), format!("no token in {text:?}")))?
            .to_string();
        let child = Command::new(bin)
            .arg("-c")
            .arg(&cfg)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| BenchError::Server("centrifugo".into(), e.to_string()))?;
        let helper = Helper::from_child(child, port);
        wait_port(port, Duration::from_secs(30)).await?;
        Ok(Centrifugo { helper, token, _dir: dir })
    }
}
