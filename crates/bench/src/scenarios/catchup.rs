//! Catch-up: a member misses `events` messages, then resumes (SUBSCRIBE with
//! `resume: <conversation>:<last seq>`); the time from starting to connect until the last
//! missed event has arrived (the WebSocket handshake and CONNECT included). The replay must
//! hold every missed message once, in order. Repeated `reps` times from the same position.

use crate::wire::MemberIds;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::BenchError;
use crate::load::{ConnPlan, open, ws_message};
use crate::marker::Marker;
use crate::rest::Rest;
use crate::results::Record;
use crate::scenarios::progress;
use crate::stats::{Integrity, ReceiverTrack};
use crate::target::Topology;
use crate::wire::{Credential, Event, Protocol};

const WINDOW: usize = 256;

/// Runs catch-up with a backlog of `events` messages of `body_bytes`, `reps` times.
///
/// # Errors
/// REST, connect or protocol failures; [`BenchError::Timeout`] when the replay stalls.
pub async fn run(
    topology: &Topology,
    events: u64,
    body_bytes: usize,
    reps: usize,
    out: &mut Vec<Record>,
) -> Result<(), BenchError> {
    let rest = Rest::new(&topology.rest);
    let users = rest.users("catchup", 2, 2).await?;
    let conv = rest.channel(&users[0], "catchup", std::slice::from_ref(&users[1].id)).await?;
    let before = rest.last_seq(&users[1], &conv).await?;
    let url = topology.gateways[0].clone();
    let source = std::net::Ipv4Addr::LOCALHOST;
    let dests = vec![conv.clone()];

    // The sender: `events` messages, WINDOW outstanding receipts at a time.
    progress(&format!("catchup: sending {events} messages"));
    let sender = ConnPlan {
        url: url.clone(),
        credential: Credential::Bearer(users[0].token.clone()),
        conversations: vec![0],
        member_ids: MemberIds::Include,
    };
    let mut early = Vec::new();
    let mut a = open(Protocol::ChatSys, &sender, &dests, None, source, 64 * 1024, &mut early).await?;
    let (mut sent, mut acked) = (0u64, 0u64);
    let mut body = Vec::new();
    let mut frame = Vec::new();
    let mut evs = Vec::new();
    let run_id = crate::load::next_run_id();
    while acked < events {
        while sent < events && sent - acked < WINDOW as u64 {
            body.clear();
            frame.clear();
            Marker { conversation: 0, stream: 0, n: sent, scheduled_ns: 0 }.write(body_bytes, &mut body);
            crate::wire::send(Protocol::ChatSys, &conv, run_id, 0, sent, &body, &mut frame);
            a.sink
                .lock()
                .await
                .feed(ws_message(Protocol::ChatSys, frame.clone()))
                .await
                .map_err(|e| BenchError::WebSocket("SEND".into(), e))?;
            sent += 1;
        }
        a.sink.lock().await.flush().await.map_err(|e| BenchError::WebSocket("SEND".into(), e))?;
        let msg = tokio::time::timeout(Duration::from_secs(60), a.stream.next())
            .await
            .map_err(|_| BenchError::Timeout("catch-up sender receipts".into()))?;
        match msg {
            Some(Ok(Message::Text(t))) => a.inbound.on_message(t.as_bytes(), &mut evs),
            Some(Ok(_)) => continue,
            other => return Err(BenchError::Protocol("catch-up sender", format!("{other:?}"))),
        }
        for e in evs.drain(..) {
            match e {
                Event::Acked(_) => acked += 1,
                Event::Error(m) => return Err(BenchError::Protocol("catch-up sender", m)),
                _ => {}
            }
        }
    }
    drop(a);
    let resume = format!("{conv}:{before}");
    // The seed's shape: the replayed events carry the member list (2 members here).
    let receiver = ConnPlan {
        url,
        credential: Credential::Bearer(users[1].token.clone()),
        conversations: vec![0],
        member_ids: MemberIds::Include,
    };
    let mut times = Vec::new();
    let mut integrity = Integrity::default();
    for rep in 0..reps.max(1) {
        let start = Instant::now();
        let mut got = Vec::new();
        let mut b = open(Protocol::ChatSys, &receiver, &dests, Some(&resume), source, 64 * 1024, &mut got).await?;
        let mut track = ReceiverTrack::new(vec![0]);
        let mut count = 0u64;
        let tally = |e: &Event, track: &mut ReceiverTrack, count: &mut u64| {
            if let Event::Delivery(m, seq) = e {
                track.record(m.stream, m.n, seq.map(|s| (0, s)));
                *count += 1;
            }
        };
        for e in &got {
            tally(e, &mut track, &mut count);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while track.streams.get(&0).map_or(0, |(b, _)| b.len()) < events {
            let left = deadline.saturating_duration_since(Instant::now());
            let msg = tokio::time::timeout(left, b.stream.next())
                .await
                .map_err(|_| BenchError::Timeout(format!("catch-up: {count} of {events} replayed")))?;
            let mut evs = Vec::new();
            match msg {
                Some(Ok(Message::Text(t))) => b.inbound.on_message(t.as_bytes(), &mut evs),
                Some(Ok(_)) => continue,
                other => return Err(BenchError::Protocol("catch-up receiver", format!("{other:?}"))),
            }
            for e in &evs {
                tally(e, &mut track, &mut count);
            }
        }
        let elapsed = start.elapsed();
        let _ = b.sink.lock().await.close().await;
        let acked_set = crate::stats::AckedSet::default();
        if let Ok(mut s) = acked_set.0.lock() {
            for n in 0..events {
                s.insert(n);
            }
        }
        let i = Integrity::compute(&[track], &[acked_set], &[0]);
        progress(&format!(
            "catchup rep {rep}: {events} events in {:.1} ms (lost {} dup {} order {} seq {})",
            elapsed.as_secs_f64() * 1e3,
            i.lost,
            i.duplicates,
            i.order_violations,
            i.seq_violations
        ));
        integrity.expected += i.expected;
        integrity.received += i.received;
        integrity.lost += i.lost;
        integrity.duplicates += i.duplicates;
        integrity.order_violations += i.order_violations;
        integrity.seq_violations += i.seq_violations;
        times.push(elapsed.as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let mut r = Record {
        scenario: "catchup".into(),
        system: "chat-sys".into(),
        notes: vec![format!(
            "topology: {}; time from connect start until the last missed event arrived",
            topology.name
        )],
        ..Default::default()
    };
    r.params.insert("events".into(), events.into());
    r.params.insert("body_bytes".into(), body_bytes.into());
    r.params.insert("reps".into(), times.len().into());
    r.metrics.insert("catchup_ms_min".into(), times[0]);
    r.metrics.insert("catchup_ms_median".into(), times[times.len() / 2]);
    r.metrics.insert("catchup_ms_max".into(), times[times.len() - 1]);
    r.metrics.insert("lost".into(), integrity.lost as f64);
    r.metrics.insert("duplicates".into(), integrity.duplicates as f64);
    r.metrics.insert("order_violations".into(), (integrity.order_violations + integrity.seq_violations) as f64);
    r.load = None;
    out.push(r);
    Ok(())
}
