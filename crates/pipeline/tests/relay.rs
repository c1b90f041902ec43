//! Outbox relay against a real SQLite store.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chat_domain::{ConversationEvent, ConversationId, Millis};
use chat_pipeline::{
    EventConsumer, EventLog, InProcessLog, LogRecord, OutboxRelay, PipelineError, RelayConfig, Result,
};
use chat_storage::OutboxStore;
use common::*;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

async fn drain(consumer: &mut dyn EventConsumer, n: usize) -> Vec<LogRecord> {
    let mut out = Vec::new();
    while out.len() < n {
        let batch = tokio::time::timeout(Duration::from_secs(5), consumer.next_batch(1000))
            .await
            .unwrap_or_else(|_| panic!("timed out after {} records", out.len()))
            .unwrap();
        out.extend(batch);
    }
    consumer.commit(&out).await.unwrap();
    out
}

/// Waits until the outbox has no PENDING row.
async fn wait_marked(store: &chat_storage::SqlStore) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !store.pending_outbox(10).await.unwrap().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "rows not marked in time");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn seqs_by_conversation(records: &[LogRecord]) -> HashMap<ConversationId, Vec<i64>> {
    let mut m: HashMap<ConversationId, Vec<i64>> = HashMap::new();
    for r in records {
        m.entry(r.event.conversation_id).or_default().push(r.event.seq);
    }
    m
}

#[tokio::test]
async fn publishes_committed_rows_in_per_conversation_seq_order_and_marks_them() {
    let (_dir, store) = store().await;
    let a = user(&store, "alice").await;
    let b = user(&store, "bob").await;
    let (c1, _) = channel(&store, "one", &[a, b]).await;
    let (c2, _) = channel(&store, "two", &[b, a]).await;
    for i in 0..5 {
        send_batch(&store, &[new_message(c1, a, &format!("1-{i}")), new_message(c2, b, &format!("2-{i}"))]).await;
    }
    let log = Arc::new(InProcessLog::new(4, 1000));
    let mut consumer = log.subscribe("test").await.unwrap();
    let cfg = RelayConfig { batch: 3, ..RelayConfig::default() };
    let relay = OutboxRelay::new(store.clone(), log.clone(), Arc::new(Notify::new()), cfg);
    let mut total = 0;
    loop {
        let n = relay.run_once().await.unwrap();
        if n == 0 {
            break;
        }
        total += n;
    }
    // 2 joins + 5 messages per conversation.
    assert_eq!(total, 14);
    assert!(store.pending_outbox(100).await.unwrap().is_empty(), "every published row is marked");
    let records = drain(consumer.as_mut(), 14).await;
    let by_conv = seqs_by_conversation(&records);
    assert_eq!(by_conv[&c1], (1..=7).collect::<Vec<_>>());
    assert_eq!(by_conv[&c2], (1..=7).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_row_that_becomes_visible_after_a_later_row_was_published_is_still_published() {
    let (_dir, store) = store().await;
    let a = user(&store, "alice").await;
    let (c1, _) = channel(&store, "one", &[a]).await;
    let (c2, _) = channel(&store, "two", &[a]).await;
    let log = Arc::new(InProcessLog::new(2, 1000));
    let mut consumer = log.subscribe("test").await.unwrap();
    let relay = OutboxRelay::new(store.clone(), log.clone(), Arc::new(Notify::new()), RelayConfig::default());
    assert_eq!(relay.run_once().await.unwrap(), 2);
    drain(consumer.as_mut(), 2).await;

    // Two rows: `early` (lower id) and `late` (higher id). Simulate "late committed and was
    // published first, while early's transaction was still open": mark only the higher-id row
    // processed, as a pass that could not yet see the lower one would have.
    let early = send(&store, c1, a, "committed late").await;
    let late = send(&store, c2, a, "committed early").await;
    let pending = store.pending_outbox(10).await.unwrap();
    assert_eq!(pending.len(), 2);
    let late_row = pending.iter().find(|r| r.event.event_id == late.event_id).unwrap();
    assert!(pending.iter().any(|r| r.event.event_id == early.event_id && r.id < late_row.id));
    store.mark_outbox_processed(&[late_row.id], Millis::now()).await.unwrap();

    assert_eq!(relay.run_once().await.unwrap(), 1, "the lower-id row is still found by status");
    let got = drain(consumer.as_mut(), 1).await;
    assert_eq!(got[0].event.event_id, early.event_id);
    assert!(store.pending_outbox(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn running_relay_wakes_on_commit_notify_and_on_poll() {
    let (_dir, store) = store().await;
    let a = user(&store, "alice").await;
    let (c1, _) = channel(&store, "one", &[a]).await;
    let log = Arc::new(InProcessLog::new(2, 1000));
    let mut consumer = log.subscribe("test").await.unwrap();
    let notify = Arc::new(Notify::new());
    // Long poll interval: the notification must wake it.
    let cfg = RelayConfig { poll_interval: Duration::from_secs(30), ..RelayConfig::default() };
    let cancel = CancellationToken::new();
    let task = tokio::spawn(OutboxRelay::new(store.clone(), log.clone(), notify.clone(), cfg).run(cancel.clone()));
    drain(consumer.as_mut(), 1).await; // the join event, found by the first pass
    let ev = send(&store, c1, a, "hello").await;
    notify.notify_one();
    let got = drain(consumer.as_mut(), 1).await;
    assert_eq!(got[0].event.event_id, ev.event_id);
    wait_marked(&store).await; // else the next relay publishes it again (at-least-once)
    cancel.cancel();
    task.await.unwrap();

    // Short poll interval, no notification: found by polling.
    let cancel = CancellationToken::new();
    let cfg = RelayConfig { poll_interval: Duration::from_millis(20), ..RelayConfig::default() };
    let task =
        tokio::spawn(OutboxRelay::new(store.clone(), log.clone(), Arc::new(Notify::new()), cfg).run(cancel.clone()));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let ev = send(&store, c1, a, "no notify").await;
    let got = drain(consumer.as_mut(), 1).await;
    assert_eq!(got[0].event.event_id, ev.event_id);
    cancel.cancel();
    task.await.unwrap();
}

/// An [`EventLog`] test double that fails publishes while `fail` is set, else forwards.
struct FlakyLog {
    inner: InProcessLog,
    fail: AtomicBool,
    attempts: AtomicUsize,
}

#[async_trait]
impl EventLog for FlakyLog {
    async fn publish(&self, events: &[ConversationEvent]) -> Result<()> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if self.fail.load(Ordering::SeqCst) {
            return Err(PipelineError::Unavailable("broker down (test)".into()));
        }
        self.inner.publish(events).await
    }

    async fn subscribe(&self, group: &str) -> Result<Box<dyn EventConsumer>> {
        self.inner.subscribe(group).await
    }
}

#[tokio::test]
async fn failed_publish_marks_nothing_and_is_retried() {
    let (_dir, store) = store().await;
    let a = user(&store, "alice").await;
    let (c1, _) = channel(&store, "one", &[a]).await;
    send(&store, c1, a, "one").await;
    send(&store, c1, a, "two").await;
    let log = Arc::new(FlakyLog { inner: InProcessLog::new(1, 100), fail: AtomicBool::new(true), attempts: 0.into() });
    let mut consumer = log.subscribe("test").await.unwrap();
    let relay = OutboxRelay::new(store.clone(), log.clone(), Arc::new(Notify::new()), RelayConfig::default());

    assert!(matches!(relay.run_once().await, Err(PipelineError::Unavailable(_))));
    assert_eq!(store.pending_outbox(10).await.unwrap().len(), 3, "nothing marked after a failed publish");

    // The running relay retries with backoff until the log is back.
    let cfg = RelayConfig { backoff_min: Duration::from_millis(10), ..RelayConfig::default() };
    let cancel = CancellationToken::new();
    let task =
        tokio::spawn(OutboxRelay::new(store.clone(), log.clone(), Arc::new(Notify::new()), cfg).run(cancel.clone()));
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(log.attempts.load(Ordering::SeqCst) >= 3, "retried");
    assert_eq!(store.pending_outbox(10).await.unwrap().len(), 3, "still nothing marked");
    log.fail.store(false, Ordering::SeqCst);
    let got = drain(consumer.as_mut(), 3).await;
    assert_eq!(got.iter().map(|r| r.event.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
    wait_marked(&store).await;
    cancel.cancel();
    task.await.unwrap();
}

/// An [`OutboxStore`] test double whose marks wait until `release` is opened (or fail while
/// `fail_marks` is set); reads and marks are forwarded to the real store.
struct SlowMarks {
    inner: Arc<chat_storage::SqlStore>,
    release: tokio::sync::Semaphore,
    fail_marks: AtomicBool,
    marks: AtomicUsize,
}

#[async_trait]
impl OutboxStore for SlowMarks {
    async fn pending_outbox(&self, limit: i64) -> chat_storage::StoreResult<Vec<chat_storage::OutboxRow>> {
        self.inner.pending_outbox(limit).await
    }
    async fn mark_outbox_processed(&self, ids: &[i64], at: Millis) -> chat_storage::StoreResult<()> {
        self.release.acquire().await.expect("semaphore open").forget();
        self.marks.fetch_add(1, Ordering::SeqCst);
        if self.fail_marks.load(Ordering::SeqCst) {
            return Err(chat_storage::StoreError::Unavailable("marks fail (test)".into()));
        }
        self.inner.mark_outbox_processed(ids, at).await
    }
}

/// The running relay publishes a commit's rows while an earlier pass's mark is still waiting
/// (marking is pipelined), never publishes a row again while its mark is in flight, and a
/// failed mark leaves its rows to be published again (at-least-once).
#[tokio::test]
async fn running_relay_does_not_wait_for_marks_and_publishes_each_row_once_while_marking() {
    let (_dir, store) = store().await;
    let a = user(&store, "alice").await;
    let (c1, _) = channel(&store, "one", &[a]).await;
    let slow = Arc::new(SlowMarks {
        inner: store.clone(),
        release: tokio::sync::Semaphore::new(0),
        fail_marks: AtomicBool::new(false),
        marks: AtomicUsize::new(0),
    });
    let log = Arc::new(InProcessLog::new(1, 1000));
    let mut consumer = log.subscribe("test").await.unwrap();
    let notify = Arc::new(Notify::new());
    let cfg = RelayConfig { poll_interval: Duration::from_millis(10), ..RelayConfig::default() };
    let cancel = CancellationToken::new();
    let task = tokio::spawn(OutboxRelay::new(slow.clone(), log.clone(), notify.clone(), cfg).run(cancel.clone()));

    let join = drain(consumer.as_mut(), 1).await;
    assert_eq!(join[0].event.seq, 1, "the join event");
    // Its mark is blocked; the next commit is still published, and the join is not again.
    let first = send(&store, c1, a, "while the join's mark waits").await;
    notify.notify_one();
    let got = drain(consumer.as_mut(), 1).await;
    assert_eq!(got[0].event.event_id, first.event_id);
    tokio::time::sleep(Duration::from_millis(100)).await; // ten poll intervals
    let none = tokio::time::timeout(Duration::from_millis(50), consumer.next_batch(10)).await;
    assert!(none.is_err(), "nothing is published twice while its mark is in flight: {none:?}");
    assert_eq!(store.pending_outbox(10).await.unwrap().len(), 2, "both rows still await their marks");

    // Failing marks: the rows stay PENDING and are published again.
    slow.fail_marks.store(true, Ordering::SeqCst);
    slow.release.add_permits(1);
    let again = drain(consumer.as_mut(), 1).await;
    assert!(
        [join[0].event.event_id, first.event_id].contains(&again[0].event.event_id),
        "a row whose mark failed is published again: {again:?}"
    );
    // Marks succeed again: everything ends up marked.
    slow.fail_marks.store(false, Ordering::SeqCst);
    slow.release.add_permits(1000);
    wait_marked(&store).await;
    cancel.cancel();
    task.await.unwrap();
    assert!(slow.marks.load(Ordering::SeqCst) >= 2);
}
