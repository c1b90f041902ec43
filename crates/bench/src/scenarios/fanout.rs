//! Fanout: conversations of `members` connections, `senders` of them sending at an offered
//! rate (swept), every message persisted by chat-sys; the same shape against the broadcast
//! limit and the peers. Then chat-sys once more at half of its highest sustained rate (the
//! p99 target is stated there).

use crate::BenchError;
use crate::limits::Helper;
use crate::load::{Pacing, connect_all, run as run_load};
use crate::peers::{Centrifugo, centrifugo_bin, rabbitmq_running, rabbitmq_url};
use crate::results::{LoadOutcome, Record};
use crate::scenarios::{Shape, chat_sys_plan, chat_sys_setup, progress, shape};
use crate::target::Topology;
use crate::wire::{Credential, Protocol};

/// Which systems besides chat-sys run the same load.
#[derive(Clone, Copy, Debug, Default)]
pub struct Others {
    /// The in-crate broadcast server (the machine's limit).
    pub broadcast: Presence,
    /// RabbitMQ Web-STOMP (skipped when it is not running).
    pub rabbitmq: Presence,
    /// Centrifugo v6 (skipped when it is not installed).
    pub centrifugo: Presence,
}

/// Whether a system takes part.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Presence {
    /// It runs (or is skipped with a note when unavailable).
    #[default]
    Included,
    /// It does not run.
    Excluded,
}

/// A run is sustained when deliveries arrived at least at this share of the offered rate
/// during the window, without errors, and its p99 stayed under [`SUSTAINED_P99_US`].
pub const SUSTAINED: f64 = 0.95;
/// The p99 bound of a sustained run (1 s): beyond it the backlog is growing.
pub const SUSTAINED_P99_US: f64 = 1_000_000.0;

/// Whether `o` kept up with its offered rate for conversations of `members`.
pub fn sustained(o: &LoadOutcome, members: usize) -> bool {
    o.errors == 0
        && o.delivered_per_sec >= SUSTAINED * o.offered_per_sec * members as f64
        && o.latency.p99_us < SUSTAINED_P99_US
}

fn record(scenario: &str, system: &str, s: &Shape, o: LoadOutcome, notes: Vec<String>) -> Record {
    let line = format!(
        "{scenario} {system} offered {:.0}/s: acked {:.0}/s delivered {:.0}/s p50 {:.0} µs p99 {:.0} µs max {:.0} µs, {:.2} server cores, {:.2} client cores, errors {}, lost {} dup {} order {} seq {}",
        o.offered_per_sec,
        o.acked_per_sec,
        o.delivered_per_sec,
        o.latency.p50_us,
        o.latency.p99_us,
        o.latency.max_us,
        o.server_cores(),
        o.client_cpu_secs / o.window_secs.max(1e-9),
        o.errors,
        o.integrity.lost,
        o.integrity.duplicates,
        o.integrity.order_violations,
        o.integrity.seq_violations
    );
    progress(&line);
    Record {
        scenario: scenario.into(),
        system: system.into(),
        params: s.params(),
        load: Some(o),
        notes,
        ..Default::default()
    }
}

/// Runs the sweep over `rates` (messages/s over all senders) for chat-sys at `topology` and
/// the `others`, appending one record per (system, rate); then chat-sys at half its highest
/// sustained rate when `half_load` is [`Presence::Included`].
///
/// # Errors
/// chat-sys failures (peers that fail are recorded as notes and skipped).
pub async fn run(
    topology: &Topology,
    base: &Shape,
    rates: &[f64],
    half_load: Presence,
    others: Others,
    out: &mut Vec<Record>,
) -> Result<(), BenchError> {
    base.validate()?;
    progress(&format!(
        "fanout: setting up {} users, {} channels of {}",
        base.connections,
        base.conversations(),
        base.members
    ));
    let (users, channels) = chat_sys_setup(topology, base, "fan").await?;
    let mut best: Option<f64> = None;
    for &rate in rates {
        let s = Shape { pacing: Pacing::Rate(rate), ..base.clone() };
        let plan = chat_sys_plan(topology, &s, &users, &channels);
        let conns = connect_all(&plan).await?;
        let o = run_load(&plan, conns).await?;
        if sustained(&o, s.members) {
            best = Some(best.map_or(rate, |b: f64| b.max(rate)));
        }
        out.push(record("fanout", "chat-sys", &s, o, vec![format!("topology: {}", topology.name)]));
    }
    if half_load == Presence::Included
        && let Some(best) = best
    {
        let s = Shape { pacing: Pacing::Rate(best / 2.0), ..base.clone() };
        let plan = chat_sys_plan(topology, &s, &users, &channels);
        let conns = connect_all(&plan).await?;
        let o = run_load(&plan, conns).await?;
        let mut r =
            record("fanout-half", "chat-sys", &s, o, vec![format!("half of the highest sustained rate {best:.0}/s")]);
        r.params.insert("half_of".into(), best.into());
        out.push(r);
    }
    for system in [System::Broadcast, System::RabbitMq, System::Centrifugo] {
        let presence = match system {
            System::Broadcast => others.broadcast,
            System::RabbitMq => others.rabbitmq,
            System::Centrifugo => others.centrifugo,
        };
        if presence == Presence::Excluded {
            continue;
        }
        if let Err(e) = run_other(system, base, rates, "fanout", out).await {
            progress(&format!("fanout {}: skipped: {e}", system.name()));
            out.push(Record {
                scenario: "fanout".into(),
                system: system.name().into(),
                notes: vec![format!("not measured: {e}")],
                ..Default::default()
            });
        }
    }
    Ok(())
}

/// A system other than chat-sys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum System {
    /// The in-crate broadcast server.
    Broadcast,
    /// RabbitMQ Web-STOMP.
    RabbitMq,
    /// Centrifugo v6.
    Centrifugo,
}

impl System {
    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            System::Broadcast => "broadcast-limit",
            System::RabbitMq => "rabbitmq-web-stomp",
            System::Centrifugo => "centrifugo",
        }
    }

    /// What the report says about it.
    pub fn note(self) -> &'static str {
        match self {
            System::Broadcast => "machine limit: forwards frames only (no STOMP, no storage, no auth)",
            System::RabbitMq => "persists nothing (/topic messages live in transient queues); STOMP 1.2, receipts",
            System::Centrifugo => "persists nothing (no history); JSON protocol, HMAC token auth",
        }
    }
}

/// A running other system and how to address it.
pub struct OtherTarget {
    /// The protocol.
    pub protocol: Protocol,
    /// `url(connection, conversation)`.
    pub url: Box<dyn Fn(usize, usize) -> String + Send + Sync>,
    /// Every connection's credential.
    pub credential: Credential,
    /// `destination(conversation)`.
    pub destination: fn(usize) -> String,
    /// Processes to measure.
    pub pids: Vec<u32>,
    /// Keeps a started process alive.
    pub _keep: Option<Box<dyn std::any::Any + Send>>,
}

/// Starts (or finds) `system`.
///
/// # Errors
/// [`BenchError::Server`] when it is not installed or not running.
pub async fn start_other(system: System) -> Result<OtherTarget, BenchError> {
    Ok(match system {
        System::Broadcast => {
            let h = Helper::broadcast()?;
            let port = h.port;
            OtherTarget {
                protocol: Protocol::Broadcast,
                url: Box::new(move |_, c| format!("ws://127.0.0.1:{port}/g/{c}")),
                credential: Credential::Anonymous,
                destination: |c| c.to_string(),
                pids: vec![h.pid()],
                _keep: Some(Box::new(h)),
            }
        }
        System::RabbitMq => {
            let pid = rabbitmq_running().await.ok_or_else(|| {
                BenchError::Server("RabbitMQ".into(), "not running (scripts/bench-peers.sh start)".into())
            })?;
            let url = rabbitmq_url();
            OtherTarget {
                protocol: Protocol::RabbitStomp,
                url: Box::new(move |_, _| url.clone()),
                credential: Credential::Login("bench".into(), "bench".into()),
                destination: |c| format!("/topic/bench.c{c}"),
                pids: vec![pid],
                _keep: None,
            }
        }
        System::Centrifugo => {
            let bin = centrifugo_bin().ok_or_else(|| {
                BenchError::Server("Centrifugo".into(), "not installed (scripts/bench-peers.sh install)".into())
            })?;
            let c = Centrifugo::start(&bin).await?;
            let url = c.url();
            OtherTarget {
                protocol: Protocol::Centrifugo,
                url: Box::new(move |_, _| url.clone()),
                credential: Credential::Bearer(c.token.clone()),
                destination: |c| format!("bench{c}"),
                pids: vec![c.helper.pid()],
                _keep: Some(Box::new(c)),
            }
        }
    })
}

async fn run_other(
    system: System,
    base: &Shape,
    rates: &[f64],
    scenario: &str,
    out: &mut Vec<Record>,
) -> Result<(), BenchError> {
    let t = start_other(system).await?;
    for &rate in rates {
        let s = Shape { pacing: Pacing::Rate(rate), ..base.clone() };
        let dests = (0..s.conversations()).map(t.destination).collect();
        let cred = t.credential.clone();
        let plan = shape(t.protocol, &s, dests, &t.url, |_| cred.clone(), t.pids.clone());
        let conns = connect_all(&plan).await?;
        let o = run_load(&plan, conns).await?;
        out.push(record(scenario, system.name(), &s, o, vec![system.note().into()]));
    }
    Ok(())
}
