//! Result records, kept as JSON (`docs/bench/results.json`) so `chat-bench report` can
//! redraw tables and plots from a run without repeating it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::BenchError;
use crate::procfs::ProcSample;
use crate::stats::{Integrity, Percentiles};

/// What one load run (fanout, ingest, a peer, a limit) measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LoadOutcome {
    /// Offered send rate, messages/s (0 in window mode).
    pub offered_per_sec: f64,
    /// Acknowledgements that *arrived* in the measurement window, per second: the rate the
    /// server sustained (below the offered rate when it falls behind).
    pub acked_per_sec: f64,
    /// Deliveries that *arrived* in the measurement window, per second.
    pub delivered_per_sec: f64,
    /// Acknowledged sends per second, of the sends *scheduled* in the window (acknowledged
    /// whenever, the drain included).
    #[serde(default)]
    pub acked_scheduled_per_sec: f64,
    /// Deliveries per second, of the messages *scheduled* in the window.
    #[serde(default)]
    pub delivered_scheduled_per_sec: f64,
    /// Every send written.
    pub sent_total: u64,
    /// Every acknowledged send.
    pub acked_total: u64,
    /// Every delivery.
    pub delivered_total: u64,
    /// ERROR frames, error replies, broken connections.
    pub errors: u64,
    /// Loss, duplicates and order.
    pub integrity: Integrity,
    /// Scheduled send → delivery latency.
    pub latency: Percentiles,
    /// Scheduled send → acknowledgement latency.
    pub ack_latency: Percentiles,
    /// `(percentile, µs)` points of the delivery latency distribution.
    pub distribution: Vec<(f64, f64)>,
    /// Server CPU seconds spent in the measurement window (all server processes).
    pub server_cpu_secs: f64,
    /// Server peak RSS (`VmHWM`) at the end, bytes.
    pub server_peak_rss_bytes: u64,
    /// CPU seconds the load generator itself spent in the window (it shares the machine).
    #[serde(default)]
    pub client_cpu_secs: f64,
    /// Measurement window, seconds.
    pub window_secs: f64,
}

impl LoadOutcome {
    /// Deliveries per server CPU-second (0 when no CPU time was measured).
    pub fn delivered_per_cpu_sec(&self) -> f64 {
        per(self.delivered_per_sec * self.window_secs, self.server_cpu_secs)
    }

    /// Acknowledged sends per server CPU-second.
    pub fn acked_per_cpu_sec(&self) -> f64 {
        per(self.acked_per_sec * self.window_secs, self.server_cpu_secs)
    }

    /// Server CPU cores used on average in the window.
    pub fn server_cores(&self) -> f64 {
        per(self.server_cpu_secs, self.window_secs)
    }
}

fn per(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// One measured thing.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Record {
    /// `fanout`, `ingest`, `idle`, `catchup`, `sqlite-limit`, ...
    pub scenario: String,
    /// `chat-sys`, `rabbitmq-web-stomp`, `centrifugo`, `broadcast-limit`, `sqlite`.
    pub system: String,
    /// Parameters of the run (connections, members, senders, rate, body bytes, ...).
    pub params: BTreeMap<String, serde_json::Value>,
    /// The load measurements, for load runs.
    pub load: Option<LoadOutcome>,
    /// Other named numbers (e.g. `rss_per_connection_bytes`, `catchup_ms`).
    pub metrics: BTreeMap<String, f64>,
    /// Server resource use at the end.
    pub server: Option<ProcSample>,
    /// Remarks printed with the table (e.g. "persists nothing").
    pub notes: Vec<String>,
}

/// The machine a run was made on.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Machine {
    /// CPU model name.
    pub cpu: String,
    /// Logical CPUs.
    pub cores: usize,
    /// Memory, bytes.
    pub memory_bytes: u64,
    /// Kernel release.
    pub kernel: String,
}

impl Machine {
    /// Reads `/proc/cpuinfo`, `/proc/meminfo` and the kernel release.
    pub fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let memory_bytes = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| m.lines().find_map(|l| l.strip_prefix("MemTotal:").map(|v| v.trim().to_string())))
            .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()))
            .unwrap_or(0)
            * 1024;
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            memory_bytes,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string(),
        }
    }
}

/// A results file: the machine, the commands that made it, the records.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Results {
    /// Where it ran.
    pub machine: Machine,
    /// The command lines, in order.
    pub commands: Vec<String>,
    /// Build profile of the server (`release` or `debug`).
    pub profile: String,
    /// Every record, in order.
    pub records: Vec<Record>,
}

impl Results {
    /// Reads `path`, or an empty set when it does not exist.
    ///
    /// # Errors
    /// [`BenchError::Io`] / [`BenchError::Json`] for an unreadable file.
    pub fn load(path: &Path) -> Result<Results, BenchError> {
        match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| BenchError::Json(path.display().to_string(), e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Results::default()),
            Err(e) => Err(BenchError::Io(format!("reading {}", path.display()), e)),
        }
    }

    /// Writes the results to `path` (pretty JSON).
    ///
    /// # Errors
    /// [`BenchError::Io`] when the file cannot be written.
    pub fn save(&self, path: &Path) -> Result<(), BenchError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| BenchError::Io(format!("creating {}", dir.display()), e))?;
        }
        let json = serde_json::to_vec_pretty(self).map_err(|e| BenchError::Json("results".into(), e))?;
        std::fs::write(path, json).map_err(|e| BenchError::Io(format!("writing {}", path.display()), e))
    }
}
