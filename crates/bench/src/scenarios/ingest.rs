//! Ingest: many small conversations (two members each), one sender per conversation, each
//! keeping `window` sends unacknowledged ("as fast as receipts allow"): the maximum rate of
//! acknowledged (committed) sends. Then SQLite's raw insert rate of the same rows in the same
//! run, so the report can state chat-sys's fraction of it.

use crate::BenchError;
use crate::limits::sqlite_insert_rate;
use crate::load::{Pacing, connect_all, run as run_load};
use crate::results::Record;
use crate::scenarios::{Shape, chat_sys_plan, chat_sys_setup, progress};
use crate::target::Topology;

/// Runs ingest against chat-sys at `topology` with `window` outstanding sends per sender,
/// then the SQLite limit with `sqlite_rows` messages in transactions of `sqlite_batch`.
///
/// # Errors
/// chat-sys or SQLite failures.
pub async fn run(
    topology: &Topology,
    base: &Shape,
    window: usize,
    sqlite_rows: u64,
    sqlite_batch: usize,
    out: &mut Vec<Record>,
) -> Result<(), BenchError> {
    let s = Shape { pacing: Pacing::Window(window), ..base.clone() };
    s.validate()?;
    progress(&format!(
        "ingest: setting up {} users, {} conversations of {}",
        s.connections,
        s.conversations(),
        s.members
    ));
    let (users, channels) = chat_sys_setup(topology, &s, "ing").await?;
    let plan = chat_sys_plan(topology, &s, &users, &channels);
    let conns = connect_all(&plan).await?;
    let rest = crate::rest::Rest::new(&topology.rest);
    let batches_before = rest.metric_sum_count("chat_core_send_batch_size").await;
    let o = run_load(&plan, conns).await?;
    let batches_after = rest.metric_sum_count("chat_core_send_batch_size").await;
    progress(&format!(
        "ingest chat-sys: acked {:.0}/s (ack p50 {:.0} µs, p99 {:.0} µs), delivered {:.0}/s, {:.2} server cores, errors {}, lost {} dup {} order {} seq {}",
        o.acked_per_sec,
        o.ack_latency.p50_us,
        o.ack_latency.p99_us,
        o.delivered_per_sec,
        o.server_cores(),
        o.errors,
        o.integrity.lost,
        o.integrity.duplicates,
        o.integrity.order_violations,
        o.integrity.seq_violations
    ));
    let mut rec = Record {
        scenario: "ingest".into(),
        system: "chat-sys".into(),
        params: s.params(),
        load: Some(o),
        notes: vec![format!(
            "topology: {}; every send committed (SQLite WAL, synchronous=FULL) before its RECEIPT",
            topology.name
        )],
        ..Default::default()
    };
    // Group commit as the server saw it (whole run, warm-up and drain included).
    if let (Some((s0, c0)), Some((s1, c1))) = (batches_before, batches_after)
        && c1 > c0
    {
        rec.metrics.insert("commits".into(), c1 - c0);
        rec.metrics.insert("avg_batch".into(), (s1 - s0) / (c1 - c0));
        progress(&format!("ingest chat-sys: {} commits, {:.1} sends per commit", c1 - c0, (s1 - s0) / (c1 - c0)));
    }
    out.push(rec);

    let dir = tempfile::tempdir().map_err(|e| BenchError::Io("temporary directory".into(), e))?;
    let r = sqlite_insert_rate(dir.path(), sqlite_rows, sqlite_batch, s.conversations().max(1), s.body_bytes).await?;
    progress(&format!("ingest sqlite limit: {:.0} messages/s (batch {})", r.rows_per_sec, r.batch));
    let mut rec = Record {
        scenario: "ingest".into(),
        system: "sqlite-limit".into(),
        notes: vec![
            "raw inserts of the same rows (message, event, outbox, sequence), one connection, WAL, synchronous=FULL"
                .into(),
        ],
        ..Default::default()
    };
    rec.params.insert("rows".into(), r.rows.into());
    rec.params.insert("batch".into(), r.batch.into());
    rec.metrics.insert("rows_per_sec".into(), r.rows_per_sec);
    rec.metrics.insert("cpu_secs".into(), r.cpu_secs);
    out.push(rec);
    Ok(())
}
