//! `chat-bench`: runs the benchmark scenarios against chat-sys, its peers and this machine's
//! limits, and writes the report. See `docs/benchmarks.md`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use chat_bench::results::{Machine, Results};
use chat_bench::scenarios::fanout::{Others, Presence, System};
use chat_bench::scenarios::{Shape, catchup, fanout, idle, ingest};
use chat_bench::target::{ChatSysProcess, Topology, chat_sys_bin};
use chat_bench::wire::MemberIds;
use chat_bench::{BenchError, load::Pacing};
use clap::{Parser, Subcommand, ValueEnum};

/// Benchmark harness of chat-sys.
#[derive(Debug, Parser)]
#[command(name = "chat-bench", about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Size {
    /// Seconds: every scenario once, for CI.
    Tiny,
    /// The full benchmark of docs/benchmarks.md.
    Full,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Scenario {
    Fanout,
    Ingest,
    Idle,
    Catchup,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
enum PeerMode {
    /// Run the peers that are installed/running, note the others.
    Available,
    /// chat-sys and the limits only.
    None,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run scenarios and write the results JSON (exit 1 when chat-sys lost, duplicated or
    /// reordered anything, or had errors).
    Run {
        /// Preset sizes.
        #[arg(long, value_enum, default_value = "tiny")]
        size: Size,
        /// Scenarios to run (default: all).
        #[arg(long, value_enum, value_delimiter = ',')]
        scenarios: Vec<Scenario>,
        /// Peers (RabbitMQ Web-STOMP, Centrifugo).
        #[arg(long, value_enum, default_value = "available")]
        peers: PeerMode,
        /// Results file (replaced).
        #[arg(long, default_value = "docs/bench/results.json")]
        results: PathBuf,
        /// Fanout offered rates, messages/s over all senders (overrides the preset).
        #[arg(long, value_delimiter = ',')]
        rates: Vec<f64>,
        /// Fanout connections (overrides the preset).
        #[arg(long)]
        fanout_connections: Option<usize>,
        /// Idle connections (overrides the preset).
        #[arg(long)]
        idle_connections: Option<usize>,
        /// Measurement window in seconds (overrides the preset).
        #[arg(long)]
        duration: Option<f64>,
        /// An already running chat-sys (REST base URL) instead of starting one.
        #[arg(long)]
        rest: Option<String>,
        /// Its gateway WebSocket URLs (with --rest; repeatable).
        #[arg(long)]
        gateway: Vec<String>,
        /// Its processes to measure (with --rest; repeatable).
        #[arg(long)]
        pid: Vec<u32>,
        /// Name of the topology in the report (with --rest).
        #[arg(long, default_value = "external")]
        topology: String,
        /// Environment of the chat-sys the harness starts, `KEY=VALUE` (repeatable), e.g.
        /// `CHAT_GATEWAY__WS_READ_BUFFER_BYTES=1024` for a sensitivity run (chat-sys's
        /// `CHAT_*` variables override its config file).
        #[arg(long)]
        server_env: Vec<String>,
        /// Whether chat-sys's message events in the fanout and ingest scenarios carry
        /// `conversationMemberIds` (SUBSCRIBE header `conversation-member-ids`). Default
        /// `omit`: the peers deliver the bare publication, so the same job is compared; `include`
        /// measures the seed's shape (a channel of 100 adds ~3.7 KB to every delivery).
        #[arg(long, value_enum, default_value_t = MemberIds::Omit)]
        member_ids: MemberIds,
    },
    /// Write docs/benchmarks.md and the PNG plots from results files.
    Report {
        /// Results file (repeatable: the files are merged in order, e.g. the single-node run
        /// and the scale-out run of scripts/bench-scaleout.sh; a missing file is skipped).
        #[arg(long, default_value = "docs/bench/results.json")]
        results: Vec<PathBuf>,
        /// Markdown output.
        #[arg(long, default_value = "docs/benchmarks.md")]
        out: PathBuf,
        /// Directory of the PNG plots (linked relative to the markdown).
        #[arg(long, default_value = "docs/bench")]
        plots: PathBuf,
    },
    /// The minimal WebSocket broadcast server (the limit); prints `listening PORT`.
    BroadcastServer {
        /// Port (0: any).
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("chat-bench: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(real_main(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("chat-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn real_main(cli: Cli) -> Result<ExitCode, BenchError> {
    match cli.command {
        Cmd::BroadcastServer { port } => {
            let l = tokio::net::TcpListener::bind(("127.0.0.1", port))
                .await
                .map_err(|e| BenchError::Io("bind".into(), e))?;
            let port = l.local_addr().map_err(|e| BenchError::Io("local_addr".into(), e))?.port();
            println!("listening {port}");
            chat_bench::limits::broadcast_server(l).await?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Report { results, out, plots } => {
            let r = Results::load_all(&results)?;
            if r.records.is_empty() {
                let names: Vec<String> = results.iter().map(|p| p.display().to_string()).collect();
                return Err(BenchError::Param(
                    "results",
                    format!("no records in {} (missing or empty files): nothing to report", names.join(", ")),
                ));
            }
            chat_bench::report::write(&r, &out, &plots)?;
            eprintln!("chat-bench: wrote {} and plots in {}", out.display(), plots.display());
            Ok(ExitCode::SUCCESS)
        }
        cmd @ Cmd::Run { .. } => run(cmd).await,
    }
}

struct Preset {
    fanout: Shape,
    rates: Vec<f64>,
    ingest: Shape,
    window: usize,
    sqlite_rows: u64,
    idle: usize,
    catchup_events: u64,
    catchup_reps: usize,
}

fn preset(size: Size) -> Preset {
    let secs = Duration::from_secs_f64;
    match size {
        Size::Tiny => Preset {
            fanout: Shape {
                connections: 20,
                members: 10,
                senders: 4,
                pacing: Pacing::Rate(0.0),
                body_bytes: 100,
                warmup: secs(0.5),
                duration: secs(1.5),
                drain: secs(5.0),
                source_addrs: 4,
                member_ids: MemberIds::Omit,
            },
            rates: vec![100.0],
            ingest: Shape {
                connections: 8,
                members: 2,
                senders: 4,
                pacing: Pacing::Window(8),
                body_bytes: 100,
                warmup: secs(0.5),
                duration: secs(1.5),
                drain: secs(5.0),
                source_addrs: 4,
                member_ids: MemberIds::Omit,
            },
            window: 8,
            sqlite_rows: 2_000,
            idle: 50,
            catchup_events: 500,
            catchup_reps: 1,
        },
        Size::Full => Preset {
            fanout: Shape {
                connections: 2_000,
                members: 100,
                senders: 20,
                pacing: Pacing::Rate(0.0),
                body_bytes: 100,
                warmup: secs(3.0),
                duration: secs(10.0),
                drain: secs(10.0),
                source_addrs: 16,
                member_ids: MemberIds::Omit,
            },
            rates: vec![50.0, 100.0, 200.0, 400.0],
            ingest: Shape {
                connections: 1_000,
                members: 2,
                senders: 500,
                pacing: Pacing::Window(16),
                body_bytes: 100,
                warmup: secs(3.0),
                duration: secs(10.0),
                drain: secs(10.0),
                source_addrs: 16,
                member_ids: MemberIds::Omit,
            },
            window: 16,
            sqlite_rows: 200_000,
            idle: 19_000,
            catchup_events: 10_000,
            catchup_reps: 5,
        },
    }
}

async fn run(cmd: Cmd) -> Result<ExitCode, BenchError> {
    let Cmd::Run {
        size,
        scenarios,
        peers,
        results,
        rates,
        fanout_connections,
        idle_connections,
        duration,
        rest,
        gateway,
        pid,
        topology,
        server_env,
        member_ids,
    } = cmd
    else {
        return Ok(ExitCode::FAILURE);
    };
    chat_bench::raise_nofile_limit()?;
    let mut p = preset(size);
    if !rates.is_empty() {
        p.rates = rates;
    }
    p.fanout.member_ids = member_ids;
    p.ingest.member_ids = member_ids;
    if let Some(c) = fanout_connections {
        p.fanout.connections = c;
    }
    if let Some(c) = idle_connections {
        p.idle = c;
    }
    if let Some(d) = duration {
        p.fanout.duration = Duration::from_secs_f64(d);
        p.ingest.duration = Duration::from_secs_f64(d);
    }
    let all = [Scenario::Fanout, Scenario::Ingest, Scenario::Idle, Scenario::Catchup];
    let scenarios = if scenarios.is_empty() { all.to_vec() } else { scenarios };
    let presence = if peers == PeerMode::Available { Presence::Included } else { Presence::Excluded };
    let others = Others { broadcast: Presence::Included, rabbitmq: presence, centrifugo: presence };

    let bin = chat_sys_bin();
    let mut out = Results {
        machine: Machine::detect(),
        commands: vec![std::env::args().collect::<Vec<_>>().join(" ")],
        profile: bin
            .as_ref()
            .map(|b| if b.to_string_lossy().contains("/release/") { "release" } else { "debug" })
            .unwrap_or("external")
            .into(),
        records: Vec::new(),
    };
    // Each scenario gets a fresh server (when the harness starts it), so one's data and
    // memory do not weigh on the next.
    for sc in scenarios {
        let first = out.records.len();
        let (topo, server) = match &rest {
            Some(r) => (
                Topology { rest: r.clone(), gateways: gateway.clone(), pids: pid.clone(), name: topology.clone() },
                None,
            ),
            None => {
                let bin = bin.clone().ok_or_else(|| {
                    BenchError::Server(
                        "chat-sys".into(),
                        "no binary: build it (cargo build -p chat-sys) or set CHAT_SYS_BIN".into(),
                    )
                })?;
                let env: Vec<(String, String)> = server_env
                    .iter()
                    .map(|kv| match kv.split_once('=') {
                        Some((k, v)) => Ok((k.to_string(), v.to_string())),
                        None => Err(BenchError::Param("server-env", format!("{kv:?}: expected KEY=VALUE"))),
                    })
                    .collect::<Result<_, _>>()?;
                let s = ChatSysProcess::spawn(&bin, &env).await?;
                (s.topology.clone(), Some(s))
            }
        };
        match sc {
            Scenario::Fanout => {
                fanout::run(&topo, &p.fanout, &p.rates, Presence::Included, others, &mut out.records).await?
            }
            Scenario::Ingest => ingest::run(&topo, &p.ingest, p.window, p.sqlite_rows, 512, &mut out.records).await?,
            Scenario::Idle => {
                let list = [
                    (System::Broadcast, Presence::Included),
                    (System::RabbitMq, presence),
                    (System::Centrifugo, presence),
                ];
                idle::run(&topo, p.idle, 16, p.fanout.source_addrs, &list, &mut out.records).await?
            }
            Scenario::Catchup => catchup::run(&topo, p.catchup_events, 100, p.catchup_reps, &mut out.records).await?,
        }
        if let Some(mut s) = server {
            s.stop();
        }
        // Which run each record came from, so `chat-bench report` can merge runs.
        for rec in &mut out.records[first..] {
            rec.topology = Some(topo.name.clone());
            if rec.system == "chat-sys" {
                rec.params.insert("server_processes".into(), topo.pids.len().into());
            }
        }
    }
    out.save(&results)?;
    eprintln!("chat-bench: results in {}", results.display());
    let bad = chat_bench::report::integrity_failures(&out);
    for b in &bad {
        eprintln!("chat-bench: FAILED: {b}");
    }
    Ok(if bad.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
