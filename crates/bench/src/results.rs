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
    /// The chat-sys topology of the run this record was measured in (`single-node`,
    /// `scale-out`, the `--topology` of `chat-bench run`), on every record of the run (the
    /// limit's and the peers' too), so merged results files keep their runs apart. Absent in
    /// older files: see [`Record::topology_name`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology: Option<String>,
}

/// The topology of a record that names none: `chat-bench run` without `--rest`.
pub const SINGLE_NODE: &str = "single-node";

impl Record {
    /// The run's topology: [`Record::topology`], else a `topology: NAME` note (files written
    /// before the field existed), else [`SINGLE_NODE`].
    pub fn topology_name(&self) -> &str {
        if let Some(t) = &self.topology {
            return t;
        }
        self.notes
            .iter()
            .find_map(|n| n.strip_prefix("topology: ").map(|r| r.split([';', ' ']).next().unwrap_or(r)))
            .filter(|t| !t.is_empty())
            .unwrap_or(SINGLE_NODE)
    }
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

    /// Reads every file of `paths` (in order) and merges them: see [`Results::merge`]. A file
    /// that does not exist contributes nothing (e.g. a scale-out run that was skipped).
    ///
    /// # Errors
    /// As [`Results::load`], for the first unreadable file.
    pub fn load_all(paths: &[impl AsRef<Path>]) -> Result<Results, BenchError> {
        let parts = paths.iter().map(|p| Results::load(p.as_ref())).collect::<Result<Vec<_>, _>>()?;
        Ok(Results::merge(parts))
    }

    /// One set from several runs: the first machine that was detected, every command line
    /// and record in order, and the distinct build profiles joined by `", "`.
    pub fn merge(parts: Vec<Results>) -> Results {
        let mut out = Results::default();
        for p in parts {
            if out.machine.cpu.is_empty() {
                out.machine = p.machine;
            }
            if !p.profile.is_empty() && !out.profile.split(", ").any(|x| x == p.profile) {
                if !out.profile.is_empty() {
                    out.profile.push_str(", ");
                }
                out.profile.push_str(&p.profile);
            }
            out.commands.extend(p.commands);
            out.records.extend(p.records);
        }
        out
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

#[cfg(test)]
mod tests {
    use super::*;

    fn run(cpu: &str, profile: &str, topology: Option<&str>) -> Results {
        Results {
            machine: Machine { cpu: cpu.into(), ..Default::default() },
            commands: vec![format!("chat-bench run ({profile})")],
            profile: profile.into(),
            records: vec![Record {
                scenario: "fanout".into(),
                system: "chat-sys".into(),
                topology: topology.map(Into::into),
                ..Default::default()
            }],
        }
    }

    #[test]
    fn merge_keeps_every_record_and_command_in_order() {
        let m = Results::merge(vec![
            run("cpu-a", "release", None),
            run("cpu-b", "release", Some("scale-out")),
            run("", "debug", Some("x")),
        ]);
        assert_eq!(m.machine.cpu, "cpu-a");
        assert_eq!(m.profile, "release, debug");
        assert_eq!(m.commands.len(), 3);
        let t: Vec<_> = m.records.iter().map(Record::topology_name).collect();
        assert_eq!(t, ["single-node", "scale-out", "x"]);
    }

    #[test]
    fn topology_comes_from_the_field_then_the_note() {
        let mut r = Record { notes: vec!["topology: scale-out; something".into()], ..Default::default() };
        assert_eq!(r.topology_name(), "scale-out");
        r.topology = Some("other".into());
        assert_eq!(r.topology_name(), "other");
        assert_eq!(Record::default().topology_name(), SINGLE_NODE);
    }

    #[test]
    fn load_all_skips_missing_files_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.json");
        run("cpu-a", "release", Some("scale-out")).save(&a).unwrap();
        let m = Results::load_all(&[a.clone(), dir.path().join("missing.json")]).unwrap();
        assert_eq!(m.records.len(), 1);
        assert_eq!(m.records[0].topology.as_deref(), Some("scale-out"));
        std::fs::write(&a, b"{not json").unwrap();
        assert!(matches!(Results::load_all(&[a]), Err(BenchError::Json(..))));
    }
}
