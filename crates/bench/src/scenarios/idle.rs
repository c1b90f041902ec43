//! Idle connections: memory per authenticated, subscribed STOMP connection. The server's RSS
//! is read before and after opening `connections` connections (CONNECT with a token,
//! SUBSCRIBE `/user/queue/messages`, RECEIPT received, heart-beats off); the difference over
//! the count is the per-connection cost. The same count against the broadcast limit and the
//! peers (one subscription each).

use crate::wire::MemberIds;
use std::time::Duration;

use crate::BenchError;
use crate::load::{ConnPlan, LoadPlan, Pacing, connect_all};
use crate::procfs::ProcSample;
use crate::rest::Rest;
use crate::results::Record;
use crate::scenarios::fanout::{Presence, System, start_other};
use crate::scenarios::progress;
use crate::target::Topology;
use crate::wire::{Credential, Protocol};

const SETTLE: Duration = Duration::from_secs(3);

fn plan(protocol: Protocol, conns: Vec<ConnPlan>, destinations: Vec<String>, pids: Vec<u32>, sources: u8) -> LoadPlan {
    LoadPlan {
        protocol,
        connections: conns,
        destinations,
        streams: Vec::new(),
        pacing: Pacing::Window(1),
        body_bytes: 0,
        warmup: Duration::ZERO,
        duration: Duration::from_secs(1),
        drain: Duration::ZERO,
        source_addrs: sources,
        connect_concurrency: 256,
        read_buffer: 4096,
        server_pids: pids,
    }
}

async fn measure(system: &str, plan: &LoadPlan, notes: Vec<String>) -> Result<Record, BenchError> {
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = ProcSample::read_all(&plan.server_pids);
    let conns = connect_all(plan).await?;
    tokio::time::sleep(SETTLE).await;
    let after = ProcSample::read_all(&plan.server_pids);
    let n = conns.len();
    let per = (after.rss_bytes as f64 - before.rss_bytes as f64) / n.max(1) as f64;
    progress(&format!(
        "idle {system}: {n} connections, RSS {:.1} → {:.1} MiB: {:.0} bytes per connection",
        before.rss_bytes as f64 / 1048576.0,
        after.rss_bytes as f64 / 1048576.0,
        per
    ));
    drop(conns);
    let mut r =
        Record { scenario: "idle".into(), system: system.into(), notes, server: Some(after), ..Default::default() };
    r.params.insert("connections".into(), n.into());
    r.metrics.insert("rss_before_bytes".into(), before.rss_bytes as f64);
    r.metrics.insert("rss_after_bytes".into(), after.rss_bytes as f64);
    r.metrics.insert("rss_per_connection_bytes".into(), per);
    Ok(r)
}

/// Opens `connections` idle connections to chat-sys (`sessions_per_user` per user) and to
/// each included other system, recording the RSS per connection.
///
/// # Errors
/// chat-sys failures (others that fail are recorded as notes).
pub async fn run(
    topology: &Topology,
    connections: usize,
    sessions_per_user: usize,
    sources: u8,
    others: &[(System, Presence)],
    out: &mut Vec<Record>,
) -> Result<(), BenchError> {
    let per_user = sessions_per_user.max(1);
    let user_count = connections.div_ceil(per_user);
    progress(&format!("idle: registering {user_count} users ({per_user} sessions each)"));
    let users = Rest::new(&topology.rest).users("idle", user_count, 16).await?;
    let conns = (0..connections)
        .map(|i| ConnPlan {
            url: topology.gateways[i % topology.gateways.len().max(1)].clone(),
            credential: Credential::Bearer(users[i / per_user].token.clone()),
            conversations: Vec::new(),
            member_ids: MemberIds::Include,
        })
        .collect();
    let p = plan(Protocol::ChatSys, conns, Vec::new(), topology.pids.clone(), sources);
    let mut rec =
        measure("chat-sys", &p, vec![format!("topology: {}; {per_user} sessions per user", topology.name)]).await?;
    rec.params.insert("sessions_per_user".into(), per_user.into());
    out.push(rec);
    for (system, presence) in others {
        if *presence == Presence::Excluded {
            continue;
        }
        let result = async {
            let t = start_other(*system).await?;
            let conns = (0..connections)
                .map(|i| ConnPlan {
                    url: (t.url)(i, i),
                    credential: t.credential.clone(),
                    conversations: vec![i as u32],
                    member_ids: MemberIds::Include,
                })
                .collect();
            let dests = (0..connections).map(t.destination).collect();
            let p = plan(t.protocol, conns, dests, t.pids.clone(), sources);
            measure(system.name(), &p, vec![system.note().into()]).await
        }
        .await;
        match result {
            Ok(r) => out.push(r),
            Err(e) => {
                progress(&format!("idle {}: skipped: {e}", system.name()));
                out.push(Record {
                    scenario: "idle".into(),
                    system: system.name().into(),
                    notes: vec![format!("not measured: {e}")],
                    ..Default::default()
                });
            }
        }
    }
    Ok(())
}
