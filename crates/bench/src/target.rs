//! The system under test.
//!
//! [`ChatSysProcess::spawn`] starts `chat-sys serve` itself: a temporary data directory
//! (SQLite), ports 0 (learned from the `chat-sys serving rest=.. gateway=..` log line), and a
//! config file that turns off what would throttle a benchmark (per-user send rate, the
//! gateway's per-session frame rate) and makes password hashing cheap (setup only). The
//! [`Topology`] is pluggable: an already running deployment (e.g. the scale-out roles) is
//! given by its REST URL, gateway URLs and the PIDs to measure.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::BenchError;

/// Where the system under test is.
#[derive(Clone, Debug)]
pub struct Topology {
    /// REST base URL (`http://127.0.0.1:8081`).
    pub rest: String,
    /// Gateway WebSocket URLs (`ws://127.0.0.1:8082/ws`); connections are spread over them.
    pub gateways: Vec<String>,
    /// Processes whose CPU and memory are measured.
    pub pids: Vec<u32>,
    /// A short name for the report (`single-node`, `scale-out`, ...).
    pub name: String,
}

/// The chat-sys settings of a benchmark run (TOML, `--config`).
pub const BENCH_CONFIG: &str = r#"log = "warn,chat_sys=info"

[limits]
# No per-user send rate: one user sends hundreds of messages per second here.
sends_per_user_per_sec = 0

[gateway]
send_rate_per_sec = 1000000
send_burst = 1000000
max_sessions_per_user = 64

[auth]
# Setup only (registering thousands of users); nothing measured hashes passwords.
argon2_memory_kib = 8
argon2_iterations = 1
argon2_parallelism = 1
access_ttl_secs = 86400
"#;

/// A `chat-sys serve` started by the harness; killed on drop.
#[derive(Debug)]
pub struct ChatSysProcess {
    child: Child,
    dir: tempfile::TempDir,
    /// Where it listens.
    pub topology: Topology,
}

/// The chat-sys binary: `$CHAT_SYS_BIN`, else `$CARGO_TARGET_DIR/{release,debug}/chat-sys`
/// (release preferred), `CARGO_TARGET_DIR` defaulting to `/var/cache/chat-sys-target`.
pub fn chat_sys_bin() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("CHAT_SYS_BIN") {
        return Some(PathBuf::from(p));
    }
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "/var/cache/chat-sys-target".into());
    ["release", "debug"].iter().map(|p| Path::new(&target).join(p).join("chat-sys")).find(|p| p.exists())
}

impl ChatSysProcess {
    /// Starts `bin serve` with [`BENCH_CONFIG`] and the environment `env` (chat-sys's
    /// `CHAT_*` variables override the file), a fresh data directory and ports 0; waits until
    /// it logs its addresses and `/readyz` answers.
    ///
    /// # Errors
    /// [`BenchError::Server`] when it cannot start or exits; [`BenchError::Timeout`].
    pub async fn spawn(bin: &Path, env: &[(String, String)]) -> Result<ChatSysProcess, BenchError> {
        let dir = tempfile::Builder::new()
            .prefix("chat-bench-")
            .tempdir()
            .map_err(|e| BenchError::Io("temporary directory".into(), e))?;
        let config = dir.path().join("chat-sys.toml");
        std::fs::write(&config, BENCH_CONFIG).map_err(|e| BenchError::Io("writing chat-sys.toml".into(), e))?;
        let mut child = Command::new(bin)
            .arg("--config")
            .arg(&config)
            .args(["--data-dir"])
            .arg(dir.path().join("data"))
            .args(["--http-port", "0", "--ws-port", "0", "--grpc-port", "0", "serve"])
            .current_dir(dir.path())
            .env("RUST_LOG", "warn,chat_sys=info")
            .env("NO_COLOR", "1")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| BenchError::Server(format!("starting {}", bin.display()), e.to_string()))?;
        let (tx, rx) = mpsc::channel::<String>();
        for out in [
            child.stdout.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child.stderr.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let tx = tx.clone();
            let log = dir.path().join("server.log");
            std::thread::spawn(move || {
                use std::io::Write;
                let mut file = std::fs::OpenOptions::new().create(true).append(true).open(log).ok();
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if let Some(f) = file.as_mut() {
                        let _ = writeln!(f, "{line}");
                    }
                    let _ = tx.send(line);
                }
            });
        }
        let pid = child.id();
        let mut proc = ChatSysProcess {
            child,
            dir,
            topology: Topology {
                rest: String::new(),
                gateways: Vec::new(),
                pids: vec![pid],
                name: "single-node".into(),
            },
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        let mut tail = Vec::new();
        let (rest, ws) = loop {
            if let Ok(Some(status)) = proc.child.try_wait() {
                return Err(BenchError::Server(
                    "chat-sys serve".into(),
                    format!("exited with {status}: {}", tail.join("\n")),
                ));
            }
            if std::time::Instant::now() > deadline {
                return Err(BenchError::Timeout("chat-sys serve to log its addresses".into()));
            }
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    if let Some(found) = serving_addrs(&line) {
                        break found;
                    }
                    tail.push(line);
                    if tail.len() > 30 {
                        tail.remove(0);
                    }
                }
                Err(_) => continue,
            }
        };
        proc.topology.rest = format!("http://127.0.0.1:{rest}");
        proc.topology.gateways = vec![format!("ws://127.0.0.1:{ws}/ws")];
        let client = reqwest::Client::new();
        loop {
            let ok = client
                .get(format!("{}/readyz", proc.topology.rest))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                break;
            }
            if std::time::Instant::now() > deadline {
                return Err(BenchError::Timeout("chat-sys /readyz".into()));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(proc)
    }

    /// The data directory (SQLite file `chat.db`).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Stops the server (SIGTERM, then SIGKILL after 10 s).
    pub fn stop(&mut self) {
        // SAFETY: kill(2) with a PID of our own child.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChatSysProcess {
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Parses `... chat-sys serving rest=0.0.0.0:PORT gateway=0.0.0.0:PORT ...` into the ports.
pub fn serving_addrs(line: &str) -> Option<(u16, u16)> {
    let at = line.find("chat-sys serving")?;
    let rest_of = |key: &str| -> Option<u16> {
        let i = line.find(key)? + key.len();
        let addr = line[i..].split_whitespace().next()?;
        addr.rsplit(':').next()?.trim_matches(|c: char| !c.is_ascii_digit()).parse().ok()
    };
    let _ = at;
    Some((rest_of("rest=")?, rest_of("gateway=")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_serving_line() {
        let line = "2026-11-29T21:00:00Z  INFO chat_sys::serve: chat-sys serving rest=0.0.0.0:41234 gateway=0.0.0.0:41235 grpc=0.0.0.0:1 node=gw-1";
        assert_eq!(serving_addrs(line), Some((41234, 41235)));
        assert_eq!(serving_addrs("something else"), None);
    }
}
