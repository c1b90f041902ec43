//! Group commit of sends.
//!
//! Callers submit a validated, authorized [`NewMessage`] through a bounded queue; writer
//! tasks each take up to `max_batch` queued sends at once and store them with ONE
//! [`chat_storage::MessageStore::append_messages`] call (one transaction, one fsync), then
//! answer each caller through its oneshot channel. When the database is unavailable, every
//! send of the batch fails (nothing of it was stored); any other whole-batch failure is
//! retried send by send, so one item the database refuses cannot fail its neighbours. When the queue is full, submitters wait
//! (backpressure) instead of growing memory.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chat_domain::DomainError;
use chat_storage::{NewMessage, SendOutcome, Store, StoreError};
use futures::FutureExt;
use tokio::sync::{Mutex, Notify, mpsc, oneshot};

/// Group-commit counters (cumulative since the service started).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// Number of `append_messages` calls (transactions), failed ones included.
    pub batches: u64,
    /// Number of sends submitted in those batches.
    pub items: u64,
    /// Largest batch so far (sends).
    pub max_batch: u64,
    /// Batches whose transaction failed as a whole.
    pub failed_batches: u64,
}

#[derive(Default, Debug)]
struct Counters {
    batches: AtomicU64,
    items: AtomicU64,
    max_batch: AtomicU64,
    failed_batches: AtomicU64,
}

/// Where the group-commit writer tasks run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CommitThread {
    /// On the runtime that creates the service, next to every other task (the default; right
    /// for server databases, whose connections are sockets of that runtime).
    #[default]
    Runtime,
    /// On a thread of their own (`chat-commit`, a single-threaded tokio runtime): the commit
    /// path's many short awaits (one per statement) are not queued behind the connection
    /// tasks of a busy runtime. For the embedded SQLite store, whose connections are driver
    /// threads bound to no runtime; measured +40% acknowledged sends/s in the ingest
    /// benchmark (docs/benchmarks.md).
    Dedicated,
}

/// One queued send and where to answer it.
struct Job {
    msg: NewMessage,
    reply: oneshot::Sender<Result<SendOutcome, DomainError>>,
}

/// Submission handle of the group-commit writers. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Batcher {
    tx: mpsc::Sender<Job>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("msg", &self.msg.id).finish_non_exhaustive()
    }
}

impl Batcher {
    /// Spawns `writers` writer tasks (at least 1) sharing one queue of capacity
    /// `4 * max_batch`, where `thread` says. The tasks (and a dedicated thread) end when every
    /// [`Batcher`] clone is dropped.
    pub(crate) fn spawn(
        store: Arc<dyn Store>,
        notify: Arc<Notify>,
        max_batch: usize,
        writers: usize,
        thread: CommitThread,
    ) -> Self {
        let max_batch = max_batch.max(1);
        let (tx, rx) = mpsc::channel::<Job>(max_batch.saturating_mul(4));
        // Concurrency choice: the single receiver is shared by the writers behind an async
        // mutex held only while a writer COLLECTS a batch (first `recv`, then `try_recv` up
        // to `max_batch`), never while it commits; so with several writers one commits while
        // another collects the next batch, and each send is taken by exactly one writer.
        let rx = Arc::new(Mutex::new(rx));
        let counters = Arc::new(Counters::default());
        let tasks: Vec<_> = (0..writers.max(1))
            .map(|_| writer(store.clone(), notify.clone(), rx.clone(), counters.clone(), max_batch))
            .collect();
        match thread {
            CommitThread::Runtime => {
                for task in tasks {
                    tokio::spawn(task);
                }
            }
            CommitThread::Dedicated => {
                let started = tokio::runtime::Builder::new_current_thread().enable_all().build().and_then(|rt| {
                    std::thread::Builder::new()
                        .name("chat-commit".into())
                        .spawn(move || rt.block_on(futures::future::join_all(tasks)))
                });
                if let Err(e) = started {
                    // No thread (resource limits): every send answers Unavailable (the queue's
                    // receiver is gone) instead of the process aborting.
                    tracing::error!(error = %e, "cannot start the commit thread");
                }
            }
        }
        Batcher { tx, counters }
    }

    /// Queues one send and waits for its commit.
    ///
    /// # Errors
    /// The item's own store error, or the batch's outer error (`Unavailable`/`Internal`),
    /// or `Unavailable` when the writers are gone (shutdown).
    pub(crate) async fn submit(&self, msg: NewMessage) -> Result<SendOutcome, DomainError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job { msg, reply })
            .await
            .map_err(|_| DomainError::Unavailable("the message writer is shut down".into()))?;
        rx.await.map_err(|_| DomainError::Internal("the message writer dropped a send".into()))?
    }

    /// Snapshot of the counters.
    pub(crate) fn stats(&self) -> BatchStats {
        BatchStats {
            batches: self.counters.batches.load(Ordering::Relaxed),
            items: self.counters.items.load(Ordering::Relaxed),
            max_batch: self.counters.max_batch.load(Ordering::Relaxed),
            failed_batches: self.counters.failed_batches.load(Ordering::Relaxed),
        }
    }
}

async fn writer(
    store: Arc<dyn Store>,
    notify: Arc<Notify>,
    rx: Arc<Mutex<mpsc::Receiver<Job>>>,
    counters: Arc<Counters>,
    max_batch: usize,
) {
    let mut jobs: Vec<Job> = Vec::with_capacity(max_batch);
    loop {
        {
            let mut rx = rx.lock().await;
            match rx.recv().await {
                Some(j) => jobs.push(j),
                None => return,
            }
            while jobs.len() < max_batch {
                match rx.try_recv() {
                    Ok(j) => jobs.push(j),
                    Err(_) => break,
                }
            }
        }
        commit_batch(&*store, &notify, &counters, &mut jobs).await;
    }
}

/// Stores `jobs` in one `append_messages` call and answers each caller; empties `jobs`.
async fn commit_batch(store: &dyn Store, notify: &Notify, counters: &Counters, jobs: &mut Vec<Job>) {
    let n = jobs.len() as u64;
    counters.batches.fetch_add(1, Ordering::Relaxed);
    counters.items.fetch_add(n, Ordering::Relaxed);
    counters.max_batch.fetch_max(n, Ordering::Relaxed);
    metrics::histogram!("chat_core_send_batch_size").record(n as f64);

    // Move the messages out (no clones of the texts); the reply senders stay in `jobs`.
    let batch: Vec<NewMessage> = jobs.iter_mut().map(|j| take_msg(&mut j.msg)).collect();
    // A panicking store must not kill the writer (every later send would then fail).
    let started = std::time::Instant::now();
    let result = match AssertUnwindSafe(store.append_messages(&batch)).catch_unwind().await {
        Ok(r) => r,
        Err(_) => Err(StoreError::Unexpected(anyhow::anyhow!("append_messages panicked"))),
    };
    metrics::histogram!("chat_core_send_commit_seconds").record(started.elapsed().as_secs_f64());
    let replies = jobs.drain(..).map(|j| j.reply);
    match result {
        Ok(results) if results.len() == batch.len() => {
            let mut created = false;
            for (reply, r) in replies.zip(results) {
                created |= matches!(r, Ok(SendOutcome::Created { .. }));
                let _ = reply.send(r.map_err(DomainError::from));
            }
            if created {
                super::notify_commit(notify);
            }
        }
        Ok(results) => {
            // A store bug; the batch may have been stored, so wake the relay anyway.
            counters.failed_batches.fetch_add(1, Ordering::Relaxed);
            tracing::error!(sent = batch.len(), got = results.len(), "append_messages returned a wrong result count");
            super::notify_commit(notify);
            let e = DomainError::Internal("storage returned a wrong number of results".into());
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
        Err(e) if batch.len() > 1 && !matches!(e, StoreError::Unavailable(_)) => {
            // Not the database being down: possibly one item the database refuses. Commit
            // each send on its own so one bad item cannot fail the others of its batch.
            counters.failed_batches.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, sends = batch.len(), "group commit failed; retrying its sends one by one");
            let mut created = false;
            for (reply, msg) in replies.zip(batch.iter()) {
                let r = match AssertUnwindSafe(store.append_messages(std::slice::from_ref(msg))).catch_unwind().await {
                    Ok(Ok(mut results)) if results.len() == 1 => {
                        results.pop().expect("one result").map_err(DomainError::from)
                    }
                    Ok(Ok(_)) => Err(DomainError::Internal("storage returned a wrong number of results".into())),
                    Ok(Err(e)) => Err(outer_error(e)),
                    Err(_) => Err(DomainError::Internal("append_messages panicked".into())),
                };
                created |= matches!(r, Ok(SendOutcome::Created { .. }));
                let _ = reply.send(r);
            }
            if created {
                super::notify_commit(notify);
            }
        }
        Err(e) => {
            counters.failed_batches.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, sends = batch.len(), "group commit failed; nothing of the batch was stored");
            let e = outer_error(e);
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}

/// An outer (whole-batch) store error as the callers see it: `Unavailable` when retryable,
/// `Internal` otherwise (a conflict or not-found here is not about one caller's input).
fn outer_error(e: StoreError) -> DomainError {
    match e {
        StoreError::Unavailable(why) => DomainError::Unavailable(why),
        other => DomainError::Internal(format!("group commit failed: {other}")),
    }
}

fn take_msg(m: &mut NewMessage) -> NewMessage {
    NewMessage {
        id: m.id,
        event_id: m.event_id,
        conversation_id: m.conversation_id,
        user_id: m.user_id,
        client_msg_id: m.client_msg_id.take(),
        thread_root_id: m.thread_root_id,
        text: std::mem::take(&mut m.text),
        kind: std::mem::take(&mut m.kind),
        mentions: std::mem::take(&mut m.mentions),
        attachment_ids: std::mem::take(&mut m.attachment_ids),
        at: m.at,
    }
}
