//! The store reads of a replay (resume, gap repair, resync), read ahead of the writer.

use std::collections::VecDeque;
use std::sync::Arc;

use chat_domain::{ConversationEvent, ConversationId, DomainError, UserId};

use crate::Shared;
use crate::core::GatewayCore;

/// The store reads of one replay, read ahead: each read is a spawned task, so reads run
/// while the caller renders and writes. The first read starts alone; after each full page,
/// reads of the following seq ranges (`page` seqs each: seqs are gap-free) are started until
/// [`GatewayConfig::replay_read_ahead`] are in flight. So at most `read_ahead + 1` pages of a
/// replay are in memory. Pages are returned in order; the first short page (the end of the
/// log) or failed read ends the replay, and reads still in flight are aborted (also when
/// this is dropped).
///
/// Were a seq missing, a page would reach past its range and overlap the next one: nothing
/// is skipped, and the caller drops the events it already wrote.
///
/// [`GatewayConfig::replay_read_ahead`]: crate::GatewayConfig::replay_read_ahead
pub(crate) struct Pages {
    core: Arc<dyn GatewayCore>,
    user: UserId,
    conv: ConversationId,
    /// Events per read ([`crate::GatewayConfig::replay_page_size`] within the core's maximum).
    page: i64,
    /// Reads in flight at most.
    read_ahead: usize,
    /// Last seq to read, if bounded (gap repair).
    upto: Option<i64>,
    /// Where the next read starts (it reads the events after this seq).
    next_after: i64,
    /// No more reads are started (end of the log or `upto` reached).
    done: bool,
    /// The reads in flight, in seq order, with their limits.
    reads: VecDeque<(i64, AbortOnDrop)>,
    /// A page already taken from `reads` by [`Pages::peek`].
    ready: Option<Result<Vec<ConversationEvent>, DomainError>>,
}

/// How a replay reads: events per read and reads in flight at most.
#[derive(Clone, Copy, Debug)]
struct ReadPlan {
    page: i64,
    read_ahead: usize,
}

/// A page read in flight; aborted when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<Result<Vec<ConversationEvent>, DomainError>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Pages {
    /// Starts reading the events of `conv` after seq `after` (up to `upto`) with the
    /// gateway's replay settings.
    pub(crate) fn start(shared: &Shared, user: UserId, conv: ConversationId, after: i64, upto: Option<i64>) -> Self {
        let page = shared.cfg.replay_page_size.clamp(1, shared.core.max_page().max(1));
        let plan = ReadPlan { page, read_ahead: shared.cfg.replay_read_ahead };
        Pages::with_plan(shared.core.clone(), plan, user, conv, after, upto)
    }

    /// Starts reading the events of `conv` after seq `after` (up to `upto`): the first read
    /// alone.
    fn with_plan(
        core: Arc<dyn GatewayCore>,
        plan: ReadPlan,
        user: UserId,
        conv: ConversationId,
        after: i64,
        upto: Option<i64>,
    ) -> Self {
        let mut pages = Pages {
            core,
            user,
            conv,
            page: plan.page.max(1),
            read_ahead: plan.read_ahead.max(1),
            upto,
            next_after: after,
            done: false,
            reads: VecDeque::new(),
            ready: None,
        };
        pages.read_next();
        pages
    }

    /// Starts the read of the next seq range, unless `upto` is reached.
    fn read_next(&mut self) {
        let after = self.next_after;
        let limit = match self.upto {
            Some(u) if u <= after => {
                self.done = true;
                return;
            }
            Some(u) => self.page.min(u - after),
            None => self.page,
        };
        let (core, user, conv) = (self.core.clone(), self.user, self.conv);
        let task = tokio::spawn(async move { core.events_after(user, conv, after, limit).await });
        self.reads.push_back((limit, AbortOnDrop(task)));
        self.next_after = after.saturating_add(limit);
    }

    /// Whether a read is in flight or a page is waiting.
    pub(crate) fn pending(&self) -> bool {
        !self.reads.is_empty() || self.ready.is_some()
    }

    /// Waits for the first page and keeps it for [`Pages::next`]: `Ok(true)` when it is
    /// empty, or the read's error.
    pub(crate) async fn peek(&mut self) -> Result<bool, DomainError> {
        let page = self.next().await.unwrap_or(Ok(Vec::new()));
        let outcome = page.as_ref().map(Vec::is_empty).map_err(Clone::clone);
        self.ready = Some(page);
        outcome
    }

    /// The next page (`None` when the replay is complete). After a full page the reads
    /// ahead are topped up before it is returned; after a short page or an error the reads
    /// in flight are dropped.
    pub(crate) async fn next(&mut self) -> Option<Result<Vec<ConversationEvent>, DomainError>> {
        if let Some(page) = self.ready.take() {
            return Some(page);
        }
        let (limit, mut read) = self.reads.pop_front()?;
        let page = match (&mut read.0).await {
            Ok(page) => page,
            Err(e) => Err(DomainError::Unavailable(format!("replay read failed: {e}"))),
        };
        match &page {
            Ok(events) if events.len() as i64 >= limit => {
                while !self.done && self.reads.len() < self.read_ahead {
                    self.read_next();
                }
            }
            _ => {
                self.done = true;
                self.reads.clear();
            }
        }
        Some(page)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use chat_core::service::{CreateChannel, SendMessage};
    use chat_domain::WorkspaceId;

    use super::*;
    use crate::core::InProcessCore;
    use crate::test_support::{Tap, TappedCore, sqlite_service};

    /// Records every `events_after` window of a [`TappedCore`] and the most reads in flight
    /// at once.
    #[derive(Default)]
    struct Recording {
        in_flight: AtomicUsize,
        max_in_flight: AtomicUsize,
        windows: Mutex<Vec<(i64, i64)>>,
    }

    #[async_trait::async_trait]
    impl Tap for Recording {
        async fn before_events_after(&self, after_seq: i64, limit: i64) {
            self.windows.lock().unwrap().push((after_seq, limit));
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            // Let the other spawned reads start before this one finishes.
            tokio::task::yield_now().await;
        }
        fn after_events_after(&self) {
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
    }

    type RecordingCore = TappedCore<Recording>;

    /// A core over a temporary SQLite store with a channel of `alice` holding `messages`
    /// messages; returns the core, alice and the channel.
    async fn core_with_log(dir: &tempfile::TempDir, messages: usize) -> (Arc<RecordingCore>, UserId, ConversationId) {
        let (service, auth) = sqlite_service(dir).await;
        let alice = auth.register(WorkspaceId::DEFAULT, "alice", "password-1", None).await.expect("register").id;
        let conv = service
            .create_channel(alice, CreateChannel { name: "paged".into(), ..Default::default() })
            .await
            .expect("channel")
            .id;
        for i in 0..messages {
            let req = SendMessage {
                conversation_id: conv,
                client_msg_id: Some(format!("m-{i}")),
                text: format!("message {i}"),
                kind: None,
                thread_root_id: None,
                attachment_ids: Vec::new(),
            };
            service.send(alice, req).await.expect("send");
        }
        let core = TappedCore { inner: InProcessCore::new(service, auth), tap: Recording::default() };
        (Arc::new(core), alice, conv)
    }

    /// Every page of `pages`, concatenated.
    async fn drain(pages: &mut Pages) -> Vec<ConversationEvent> {
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            out.extend(page.expect("page"));
        }
        out
    }

    #[tokio::test]
    async fn pages_arrive_in_order_with_a_bounded_read_ahead() {
        let dir = tempfile::tempdir().unwrap();
        let (core, alice, conv) = core_with_log(&dir, 40).await;
        let last = core.inner.events_after(alice, conv, 0, 500).await.unwrap().last().unwrap().seq;
        let plan = ReadPlan { page: 6, read_ahead: 3 };
        let mut pages = Pages::with_plan(core.clone(), plan, alice, conv, 0, None);
        let seqs: Vec<i64> = drain(&mut pages).await.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=last).collect::<Vec<_>>());
        assert!(!pages.pending());
        let max = core.tap.max_in_flight.load(Ordering::SeqCst);
        assert!((2..=3).contains(&max), "reads in flight at once: {max}");
        // Consecutive seq ranges of 6, the first alone, none past the short last page's
        // read-ahead.
        let windows = core.tap.windows.lock().unwrap().clone();
        for (n, (after, limit)) in windows.iter().enumerate() {
            assert_eq!((*after, *limit), (6 * n as i64, 6), "{windows:?}");
        }
        assert!(windows.len() as i64 <= last / 6 + 1 + 3, "{windows:?}");
    }

    #[tokio::test]
    async fn a_bounded_replay_reads_nothing_past_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let (core, alice, conv) = core_with_log(&dir, 30).await;
        let plan = ReadPlan { page: 4, read_ahead: 2 };
        let mut pages = Pages::with_plan(core.clone(), plan, alice, conv, 3, Some(17));
        let seqs: Vec<i64> = drain(&mut pages).await.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (4..=17).collect::<Vec<_>>());
        let windows = core.tap.windows.lock().unwrap().clone();
        assert_eq!(windows, vec![(3, 4), (7, 4), (11, 4), (15, 2)]);
    }

    #[tokio::test]
    async fn peek_keeps_the_first_page_and_reports_an_empty_one() {
        let dir = tempfile::tempdir().unwrap();
        let (core, alice, conv) = core_with_log(&dir, 5).await;
        let last = core.inner.events_after(alice, conv, 0, 500).await.unwrap().last().unwrap().seq;
        let plan = ReadPlan { page: 2, read_ahead: 2 };
        let mut pages = Pages::with_plan(core.clone(), plan, alice, conv, last - 3, None);
        assert_eq!(pages.peek().await, Ok(false));
        let seqs: Vec<i64> = drain(&mut pages).await.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![last - 2, last - 1, last]);
        let mut beyond = Pages::with_plan(core.clone(), plan, alice, conv, last, None);
        assert_eq!(beyond.peek().await, Ok(true));
        assert!(drain(&mut beyond).await.is_empty());
        assert!(!beyond.pending());
    }
}
