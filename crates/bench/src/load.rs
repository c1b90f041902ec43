//! The open-loop load generator: connects every planned connection, runs every sender
//! stream on its fixed schedule, receives and accounts for every delivery, then drains.
//!
//! Open loop: in [`Pacing::Rate`] message `n` of stream `s` is *scheduled* at
//! `offset(s) + n × period` whatever the server does; a sender that falls behind sends the
//! overdue messages at once, and every latency is measured from the scheduled time (no
//! coordinated omission). [`Pacing::Window`] is the closed-loop alternative ("as fast as
//! receipts allow"): at most `window` unacknowledged sends per stream, latency from the real
//! send time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::BenchError;
use crate::conn::{SourceAddrs, Ws, connect};
use crate::marker::Marker;
use crate::procfs::ProcSample;
use crate::results::LoadOutcome;
use crate::stats::{AckedSet, Integrity, Percentiles, ReceiverTrack, Recorder, distribution};
use crate::wire::{Credential, Event, Inbound, Protocol};

/// One connection of the plan.
#[derive(Clone, Debug)]
pub struct ConnPlan {
    /// WebSocket URL.
    pub url: String,
    /// How it authenticates.
    pub credential: Credential,
    /// Conversations (indices into [`LoadPlan::destinations`]) it is a member of.
    pub conversations: Vec<u32>,
    /// chat-sys: whether its message events carry `conversationMemberIds`.
    pub member_ids: crate::wire::MemberIds,
}

/// One sender stream: a connection that sends into one conversation.
#[derive(Clone, Copy, Debug)]
pub struct StreamPlan {
    /// Index of the sending connection (at most one stream per connection).
    pub connection: usize,
    /// Conversation it sends to.
    pub conversation: u32,
}

/// How sends are paced.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Pacing {
    /// Open loop: this many messages per second over all streams together.
    Rate(f64),
    /// Closed loop: at most this many unacknowledged sends per stream.
    Window(usize),
}

/// Everything a load run needs.
#[derive(Clone, Debug)]
pub struct LoadPlan {
    /// The wire protocol.
    pub protocol: Protocol,
    /// The connections.
    pub connections: Vec<ConnPlan>,
    /// Per conversation index: the destination (chat-sys conversation id, `/topic/..`, channel).
    pub destinations: Vec<String>,
    /// The sender streams.
    pub streams: Vec<StreamPlan>,
    /// Pacing.
    pub pacing: Pacing,
    /// Message body size in bytes (the marker padded).
    pub body_bytes: usize,
    /// Sends before the measurement window (not counted).
    pub warmup: Duration,
    /// The measurement window.
    pub duration: Duration,
    /// After the senders stop: how long without progress before giving up on missing deliveries.
    pub drain: Duration,
    /// Source addresses 127.0.0.1..=N.
    pub source_addrs: u8,
    /// Connections opened at once.
    pub connect_concurrency: usize,
    /// WebSocket read buffer per client connection, bytes.
    pub read_buffer: usize,
    /// Server processes whose CPU and memory are measured.
    pub server_pids: Vec<u32>,
}

type Sink = Arc<tokio::sync::Mutex<SplitSink<Ws, Message>>>;

/// An open, authenticated, subscribed connection.
pub struct Connected {
    pub(crate) sink: Sink,
    pub(crate) stream: SplitStream<Ws>,
    pub(crate) inbound: Inbound,
}

impl std::fmt::Debug for Connected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connected")
    }
}

/// Wraps outgoing bytes in the protocol's WebSocket message type.
pub fn ws_message(protocol: Protocol, bytes: Vec<u8>) -> Message {
    if protocol.text() { Message::text(String::from_utf8(bytes).unwrap_or_default()) } else { Message::binary(bytes) }
}

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);

/// Opens one connection: WebSocket, CONNECT/connect, SUBSCRIBE/subscribe (with `resume` for
/// chat-sys when given), waiting for the CONNECTED and the subscription's receipt. Events that
/// arrive before the receipt (a `resume` replay) are appended to `early`.
///
/// # Errors
/// Connect and handshake failures, an ERROR, or [`BenchError::Timeout`].
pub async fn open(
    protocol: Protocol,
    plan: &ConnPlan,
    destinations: &[String],
    resume: Option<&str>,
    source: std::net::Ipv4Addr,
    read_buffer: usize,
    early: &mut Vec<Event>,
) -> Result<Connected, BenchError> {
    let ws = connect(&plan.url, source, protocol.subprotocol(), read_buffer).await?;
    let (mut sink, mut stream) = ws.split();
    let mut inbound = Inbound::new(protocol);
    let dests: Vec<String> = plan.conversations.iter().map(|c| destinations[*c as usize].clone()).collect();
    if let Some(frame) = crate::wire::connect(protocol, &plan.credential) {
        sink.send(ws_message(protocol, frame)).await.map_err(|e| BenchError::WebSocket("CONNECT".into(), e))?;
        wait_for(&mut stream, &mut inbound, &mut sink, protocol, Event::Connected, early).await?;
    }
    let subs = crate::wire::subscribe(protocol, &dests, resume, plan.member_ids);
    if !subs.is_empty() {
        for s in subs {
            sink.send(ws_message(protocol, s)).await.map_err(|e| BenchError::WebSocket("SUBSCRIBE".into(), e))?;
        }
        wait_for(&mut stream, &mut inbound, &mut sink, protocol, Event::Subscribed, early).await?;
    }
    Ok(Connected { sink: Arc::new(tokio::sync::Mutex::new(sink)), stream, inbound })
}

async fn wait_for(
    stream: &mut SplitStream<Ws>,
    inbound: &mut Inbound,
    sink: &mut SplitSink<Ws, Message>,
    protocol: Protocol,
    want: Event,
    early: &mut Vec<Event>,
) -> Result<(), BenchError> {
    let deadline = tokio::time::Instant::now() + HANDSHAKE_TIMEOUT;
    let mut events = Vec::new();
    loop {
        let msg = tokio::time::timeout_at(deadline, stream.next())
            .await
            .map_err(|_| BenchError::Timeout(format!("{want:?} from the server")))?;
        let data = match msg {
            Some(Ok(Message::Text(t))) => t.as_bytes().to_vec(),
            Some(Ok(Message::Binary(b))) => b.to_vec(),
            Some(Ok(Message::Close(c))) => return Err(BenchError::Protocol("handshake", format!("closed: {c:?}"))),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(BenchError::WebSocket(format!("waiting for {want:?}"), e)),
            None => return Err(BenchError::Protocol("handshake", "connection closed".into())),
        };
        inbound.on_message(&data, &mut events);
        let mut found = false;
        for e in events.drain(..) {
            match e {
                Event::Error(m) => return Err(BenchError::Protocol("handshake", m)),
                Event::Reply(r) => {
                    sink.send(ws_message(protocol, r)).await.map_err(|e| BenchError::WebSocket("pong".into(), e))?
                }
                e if e == want => found = true,
                other => early.push(other),
            }
        }
        if found {
            return Ok(());
        }
    }
}

/// Opens every connection of the plan, `connect_concurrency` at a time.
///
/// # Errors
/// The first connection that fails.
pub async fn connect_all(plan: &LoadPlan) -> Result<Vec<Connected>, BenchError> {
    let sources = Arc::new(SourceAddrs::new(plan.source_addrs)?);
    let dests = Arc::new(plan.destinations.clone());
    let results = futures::stream::iter(plan.connections.iter().cloned().enumerate())
        .map(|(i, c)| {
            let sources = sources.clone();
            let dests = dests.clone();
            let (protocol, rb) = (plan.protocol, plan.read_buffer);
            async move {
                let mut early = Vec::new();
                let r = open(protocol, &c, &dests, None, sources.next(), rb, &mut early).await;
                (i, r)
            }
        })
        .buffer_unordered(plan.connect_concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    let mut out: Vec<Option<Connected>> = (0..plan.connections.len()).map(|_| None).collect();
    for (i, r) in results {
        out[i] = Some(r.map_err(|e| BenchError::Server(format!("connection {i}"), e.to_string()))?);
    }
    Ok(out.into_iter().flatten().collect())
}

/// Shared state of the sender and reader of one connection.
struct Side {
    stream: Option<u32>,
    pending: Mutex<HashMap<u64, u64>>,
    window: Option<Arc<Semaphore>>,
}

static ERRORS_SHOWN: AtomicU64 = AtomicU64::new(0);
static RUNS: AtomicU64 = AtomicU64::new(0);

/// A run id unique in this process and across processes (wall-clock milliseconds × 1000 +
/// a counter): it keeps client message ids of separate runs apart.
pub fn next_run_id() -> u64 {
    let ms = std::time::SystemTime::UNIX_EPOCH.elapsed().map(|d| d.as_millis() as u64).unwrap_or(0);
    ms * 1000 + RUNS.fetch_add(1, Ordering::Relaxed) % 1000
}

fn show_error(what: &str) {
    if ERRORS_SHOWN.fetch_add(1, Ordering::Relaxed) < 5 {
        eprintln!("chat-bench: {what}");
    }
}

/// Runs the plan over the open connections and measures it.
///
/// # Errors
/// [`BenchError::Param`] for an inconsistent plan.
pub async fn run(plan: &LoadPlan, conns: Vec<Connected>) -> Result<LoadOutcome, BenchError> {
    if conns.len() != plan.connections.len() {
        return Err(BenchError::Param("connections", "not every planned connection is open".into()));
    }
    let mut stream_of: Vec<Option<u32>> = vec![None; conns.len()];
    for (s, sp) in plan.streams.iter().enumerate() {
        if sp.connection >= conns.len() || stream_of[sp.connection].is_some() {
            return Err(BenchError::Param("streams", format!("stream {s}: bad or shared connection")));
        }
        stream_of[sp.connection] = Some(s as u32);
    }
    let mut members = vec![0u64; plan.destinations.len()];
    for c in &plan.connections {
        for conv in &c.conversations {
            members[*conv as usize] += 1;
        }
    }
    let run_id = next_run_id();
    let recorder = Arc::new(Recorder::new(std::time::Instant::now(), plan.warmup, plan.duration));
    let acked: Arc<Vec<AckedSet>> = Arc::new((0..plan.streams.len()).map(|_| AckedSet::default()).collect());
    let stop = CancellationToken::new();
    let window_sem = |_: ()| match plan.pacing {
        Pacing::Window(w) => Some(Arc::new(Semaphore::new(w.max(1)))),
        Pacing::Rate(_) => None,
    };

    let mut readers = Vec::new();
    let mut senders = Vec::new();
    for (i, c) in conns.into_iter().enumerate() {
        let side = Arc::new(Side { stream: stream_of[i], pending: Mutex::new(HashMap::new()), window: window_sem(()) });
        let track = ReceiverTrack::new(plan.connections[i].conversations.clone());
        readers.push(tokio::spawn(reader(
            i,
            plan.protocol,
            c.stream,
            c.inbound,
            c.sink.clone(),
            side.clone(),
            track,
            recorder.clone(),
            acked.clone(),
            stop.clone(),
        )));
        if let Some(s) = side.stream {
            let sp = plan.streams[s as usize];
            senders.push(tokio::spawn(sender(SenderArgs {
                conn: i,
                run: run_id,
                stream: s,
                streams: plan.streams.len(),
                destination: plan.destinations[sp.conversation as usize].clone(),
                conversation: sp.conversation,
                protocol: plan.protocol,
                pacing: plan.pacing,
                body_bytes: plan.body_bytes,
                end_ns: (plan.warmup + plan.duration).as_nanos() as u64,
                sink: c.sink,
                side,
                recorder: recorder.clone(),
            })));
        }
    }

    // Server use over the measurement window.
    let pids = plan.server_pids.clone();
    let sampler = {
        let (w, d, epoch) = (plan.warmup, plan.duration, recorder.epoch);
        tokio::spawn(async move {
            tokio::time::sleep_until((epoch + w).into()).await;
            let me = [std::process::id()];
            let a = (ProcSample::read_all(&pids), ProcSample::read_all(&me));
            tokio::time::sleep_until((epoch + w + d).into()).await;
            let b = (ProcSample::read_all(&pids), ProcSample::read_all(&me));
            (a, b)
        })
    };
    for s in senders {
        let _ = s.await;
    }
    let ((before, client_before), (after, client_after)) = sampler.await.unwrap_or_default();

    // Drain: wait for every owed delivery and receipt, or for `drain` without progress.
    let owed = |r: &Recorder| -> (u64, u64) {
        let expected: u64 = plan
            .streams
            .iter()
            .enumerate()
            .map(|(s, sp)| acked[s].0.lock().map(|b| b.len()).unwrap_or(0) * members[sp.conversation as usize])
            .sum();
        (expected, r.delivered_total.load(Ordering::Relaxed))
    };
    let mut last = (0, 0, tokio::time::Instant::now());
    loop {
        let (expected, got) = owed(&recorder);
        let acks = recorder.acked_total.load(Ordering::Relaxed);
        let sent = recorder.sent_total.load(Ordering::Relaxed);
        if got >= expected && acks + recorder.errors.load(Ordering::Relaxed) >= sent {
            break;
        }
        if (got, acks) != (last.0, last.1) {
            last = (got, acks, tokio::time::Instant::now());
        } else if last.2.elapsed() >= plan.drain {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    let mut tracks = Vec::new();
    for r in readers {
        if let Ok(t) = r.await {
            tracks.push(t);
        }
    }
    let stream_conv: Vec<u32> = plan.streams.iter().map(|s| s.conversation).collect();
    let integrity = Integrity::compute(&tracks, &acked, &stream_conv);
    let window = plan.duration.as_secs_f64();
    let lat = recorder.delivery_histogram();
    Ok(LoadOutcome {
        offered_per_sec: match plan.pacing {
            Pacing::Rate(r) => r,
            Pacing::Window(_) => 0.0,
        },
        acked_per_sec: recorder.acked_arrived_in_window.load(Ordering::Relaxed) as f64 / window,
        delivered_per_sec: recorder.delivered_arrived_in_window.load(Ordering::Relaxed) as f64 / window,
        acked_scheduled_per_sec: recorder.acked_in_window.load(Ordering::Relaxed) as f64 / window,
        delivered_scheduled_per_sec: recorder.delivered_in_window.load(Ordering::Relaxed) as f64 / window,
        sent_total: recorder.sent_total.load(Ordering::Relaxed),
        acked_total: recorder.acked_total.load(Ordering::Relaxed),
        delivered_total: recorder.delivered_total.load(Ordering::Relaxed),
        errors: recorder.errors.load(Ordering::Relaxed),
        integrity,
        latency: Percentiles::of(&lat),
        ack_latency: Percentiles::of(&recorder.ack_histogram()),
        distribution: distribution(&lat),
        server_cpu_secs: (after.cpu_secs - before.cpu_secs).max(0.0),
        server_peak_rss_bytes: after.peak_rss_bytes,
        client_cpu_secs: (client_after.cpu_secs - client_before.cpu_secs).max(0.0),
        window_secs: window,
    })
}

#[allow(clippy::too_many_arguments)]
async fn reader(
    conn: usize,
    protocol: Protocol,
    mut stream: SplitStream<Ws>,
    mut inbound: Inbound,
    sink: Sink,
    side: Arc<Side>,
    mut track: ReceiverTrack,
    recorder: Arc<Recorder>,
    acked: Arc<Vec<AckedSet>>,
    stop: CancellationToken,
) -> ReceiverTrack {
    let mut events = Vec::new();
    let on_ack = |n: u64| {
        let sched = side.pending.lock().ok().and_then(|mut p| p.remove(&n));
        if let (Some(sched), Some(s)) = (sched, side.stream) {
            recorder.acked(conn, sched);
            if let Ok(mut b) = acked[s as usize].0.lock() {
                b.insert(n);
            }
            if let Some(w) = &side.window {
                w.add_permits(1);
            }
        }
    };
    loop {
        let msg = tokio::select! {
            _ = stop.cancelled() => break,
            m = stream.next() => m,
        };
        match msg {
            Some(Ok(Message::Text(t))) => inbound.on_message(t.as_bytes(), &mut events),
            Some(Ok(Message::Binary(b))) => inbound.on_message(&b, &mut events),
            Some(Ok(Message::Close(c))) => {
                recorder.error();
                show_error(&format!("connection {conn} closed by the server: {c:?}"));
                break;
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                recorder.error();
                show_error(&format!("connection {conn}: {e}"));
                break;
            }
            None => break,
        }
        for e in events.drain(..) {
            match e {
                Event::Delivery(m, seq) => {
                    recorder.delivered(conn, m.scheduled_ns);
                    track.record(m.stream, m.n, seq.map(|s| (m.conversation, s)));
                    if protocol == Protocol::Broadcast && side.stream == Some(m.stream) {
                        on_ack(m.n);
                    }
                }
                Event::Acked(n) => on_ack(n),
                Event::Reply(r) => {
                    let _ = sink.lock().await.send(ws_message(protocol, r)).await;
                }
                Event::Error(m) => {
                    recorder.error();
                    show_error(&format!("connection {conn}: {m}"));
                }
                Event::Connected | Event::Subscribed | Event::OtherEvent(_) => {}
            }
        }
    }
    // Release a sender blocked on its window.
    if let Some(w) = &side.window {
        w.close();
    }
    track
}

struct SenderArgs {
    conn: usize,
    run: u64,
    stream: u32,
    streams: usize,
    destination: String,
    conversation: u32,
    protocol: Protocol,
    pacing: Pacing,
    body_bytes: usize,
    end_ns: u64,
    sink: Sink,
    side: Arc<Side>,
    recorder: Arc<Recorder>,
}

async fn sender(a: SenderArgs) {
    let mut n: u64 = 0;
    let mut body = Vec::with_capacity(a.body_bytes + 64);
    let mut frame = Vec::with_capacity(a.body_bytes + 256);
    let build = |n: u64, sched: u64, body: &mut Vec<u8>, frame: &mut Vec<u8>| {
        body.clear();
        frame.clear();
        Marker { conversation: a.conversation, stream: a.stream, n, scheduled_ns: sched }.write(a.body_bytes, body);
        crate::wire::send(a.protocol, &a.destination, a.run, a.stream, n, body, frame);
        if let Ok(mut p) = a.side.pending.lock() {
            p.insert(n, sched);
        }
        ws_message(a.protocol, frame.clone())
    };
    match a.pacing {
        Pacing::Rate(rate) => {
            let period = (a.streams as f64 / rate.max(1e-9) * 1e9) as u64;
            let offset = period * a.stream as u64 / a.streams.max(1) as u64;
            let sched = |n: u64| offset + n * period;
            while sched(n) < a.end_ns {
                let now = a.recorder.now_ns();
                let mut batch = Vec::new();
                while sched(n) <= now && sched(n) < a.end_ns && batch.len() < 256 {
                    batch.push(build(n, sched(n), &mut body, &mut frame));
                    n += 1;
                }
                if !batch.is_empty() {
                    let count = batch.len() as u64;
                    let mut sink = a.sink.lock().await;
                    let mut ok = true;
                    for m in batch {
                        ok &= sink.feed(m).await.is_ok();
                    }
                    ok &= sink.flush().await.is_ok();
                    drop(sink);
                    a.recorder.sent_total.fetch_add(count, Ordering::Relaxed);
                    if !ok {
                        a.recorder.error();
                        show_error(&format!("connection {}: send failed", a.conn));
                        return;
                    }
                }
                let next = sched(n);
                if next > a.recorder.now_ns() {
                    tokio::time::sleep_until((a.recorder.epoch + Duration::from_nanos(next)).into()).await;
                }
            }
        }
        Pacing::Window(_) => {
            let Some(sem) = a.side.window.clone() else { return };
            while a.recorder.now_ns() < a.end_ns {
                let Ok(permit) = sem.acquire().await else { return };
                permit.forget();
                let m = build(n, a.recorder.now_ns(), &mut body, &mut frame);
                n += 1;
                a.recorder.sent_total.fetch_add(1, Ordering::Relaxed);
                if a.sink.lock().await.send(m).await.is_err() {
                    a.recorder.error();
                    show_error(&format!("connection {}: send failed", a.conn));
                    return;
                }
            }
        }
    }
}
