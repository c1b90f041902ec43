//! The fanout worker's member cache against a real SQLite store: which batches read members
//! (counted by a member-read wrapper) and who receives what when membership changes.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chat_domain::{ConversationEvent, ConversationId, EventKind, MemberRole, Millis, UserId};
use chat_pipeline::{
    DeliveryConsumer, DeliveryStreams, FanoutConfig, FanoutWorker, InMemoryRegistry, InProcessStreams, MemberDirectory,
};
use chat_storage::{ConversationStore, SqlStore, StoreResult};
use common::*;

/// The SQLite store's member reads, recording every `member_ids_of` call (the conversations
/// it asked for).
struct CountingStore {
    inner: Arc<SqlStore>,
    reads: Mutex<Vec<Vec<ConversationId>>>,
}

impl CountingStore {
    fn reads(&self) -> Vec<Vec<ConversationId>> {
        self.reads.lock().unwrap().clone()
    }
}

#[async_trait]
impl MemberDirectory for CountingStore {
    async fn member_ids_of(&self, convs: &[ConversationId]) -> StoreResult<HashMap<ConversationId, Vec<UserId>>> {
        self.reads.lock().unwrap().push(convs.to_vec());
        ConversationStore::member_ids_of(self.inner.as_ref(), convs).await
    }
}

const GATEWAYS: [&str; 3] = ["g1", "g2", "g3"];

/// A worker driven by hand (`deliver`, no log), over the counting store, with one consumer per
/// gateway of [`GATEWAYS`].
struct Fixture {
    _dir: tempfile::TempDir,
    sql: Arc<SqlStore>,
    store: Arc<CountingStore>,
    registry: Arc<InMemoryRegistry>,
    streams: Arc<InProcessStreams>,
    consumers: HashMap<&'static str, Box<dyn DeliveryConsumer>>,
    worker: FanoutWorker,
}

async fn fixture(cfg: FanoutConfig) -> Fixture {
    let (dir, sql) = store().await;
    let store = Arc::new(CountingStore { inner: sql.clone(), reads: Mutex::new(Vec::new()) });
    let registry = Arc::new(InMemoryRegistry::new(Duration::from_secs(60)));
    let streams = Arc::new(InProcessStreams::new(chat_pipeline::StreamsConfig::default()));
    let mut consumers = HashMap::new();
    for g in GATEWAYS {
        consumers.insert(g, streams.consume(g).await.unwrap());
    }
    let worker = FanoutWorker::new(store.clone(), registry.clone(), streams.clone(), cfg);
    Fixture { _dir: dir, sql, store, registry, streams, consumers, worker }
}

impl Fixture {
    /// Delivers `events` as one batch.
    async fn deliver(&mut self, events: &[ConversationEvent]) {
        let events: Vec<Arc<ConversationEvent>> = events.iter().cloned().map(Arc::new).collect();
        self.worker.deliver(&events).await.unwrap();
    }

    /// Everything written to `gateway` since the last call, as (event seq, recipients), acked.
    async fn take(&mut self, gateway: &'static str) -> Vec<(i64, Vec<UserId>)> {
        let n = self.streams.len_of(gateway);
        if n == 0 {
            return Vec::new();
        }
        let consumer = self.consumers.get_mut(gateway).unwrap();
        let got = collect_until(consumer.as_mut(), 5, |d| d.len() >= n).await;
        events(&got).into_iter().map(|(e, r)| (e.seq, r)).collect()
    }

    /// Number of `member_ids_of` calls so far.
    fn read_count(&self) -> usize {
        self.store.reads().len()
    }
}

/// alice on g1, bob on g2, carol (not yet a member anywhere) on g3.
async fn three_users(f: &Fixture) -> (UserId, UserId, UserId) {
    let a = user(&f.sql, "alice").await;
    let b = user(&f.sql, "bob").await;
    let c = user(&f.sql, "carol").await;
    connect(f.registry.as_ref(), a, "g1", "a-1").await;
    connect(f.registry.as_ref(), b, "g2", "b-1").await;
    connect(f.registry.as_ref(), c, "g3", "c-1").await;
    (a, b, c)
}

#[tokio::test]
async fn the_next_seq_of_a_cached_conversation_reads_no_members() {
    let mut f = fixture(FanoutConfig::default()).await;
    let (a, b, _) = three_users(&f).await;
    let (conv, joins) = channel(&f.sql, "general", &[a, b]).await;
    f.deliver(&joins).await;
    assert_eq!(f.store.reads(), vec![vec![conv]], "first sight (and membership events) read");
    assert_eq!(f.worker.cached_conversations(), 1);

    let m3 = send(&f.sql, conv, a, "one").await;
    f.deliver(std::slice::from_ref(&m3)).await;
    let m4 = send(&f.sql, conv, b, "two").await;
    let m5 = send(&f.sql, conv, a, "three").await;
    f.deliver(&[m4, m5]).await;
    assert_eq!(f.read_count(), 1, "seqs 3, 4, 5 followed the cached seq 2: no read");
    // Each gateway lists its own member for every event, the cached ones included.
    assert_eq!(f.take("g1").await, (1..=5).map(|s| (s, vec![a])).collect::<Vec<_>>());
    assert_eq!(f.take("g2").await, (1..=5).map(|s| (s, vec![b])).collect::<Vec<_>>());
    assert!(f.take("g3").await.is_empty(), "carol is no member");
}

#[tokio::test]
async fn a_gap_in_seqs_reads_again_so_membership_changes_in_the_gap_apply() {
    let mut f = fixture(FanoutConfig::default()).await;
    let (a, b, c) = three_users(&f).await;
    let (conv, joins) = channel(&f.sql, "general", &[a, b]).await;
    f.deliver(&joins).await;
    f.deliver(&[send(&f.sql, conv, a, "before").await]).await;
    assert_eq!(f.read_count(), 1);
    f.take("g1").await;
    f.take("g2").await;
    // Seqs 4 to 6 are fanned out by another worker of the group (a rebalance moved the
    // partition away and back): this worker never sees them. Among them carol joins and bob
    // is removed.
    let _elsewhere = send(&f.sql, conv, b, "handled elsewhere").await;
    let joined = f.sql.add_member(conv, a, c, MemberRole::Member, Millis::now()).await.unwrap();
    let left = f.sql.remove_member(conv, a, b, Millis::now()).await.unwrap();
    assert_eq!((joined.kind(), joined.seq, left.kind(), left.seq), (EventKind::UserJoined, 5, EventKind::UserLeft, 6));

    let m7 = send(&f.sql, conv, a, "after").await;
    f.deliver(std::slice::from_ref(&m7)).await;
    assert_eq!(f.store.reads(), vec![vec![conv], vec![conv]], "seq 7 after cached seq 3: read again");
    assert_eq!(f.take("g3").await, vec![(7, vec![c])], "the member added in the gap gets the message");
    assert_eq!(f.take("g1").await, vec![(7, vec![a])]);
    assert!(f.take("g2").await.is_empty(), "the member removed in the gap does not");
}

#[tokio::test]
async fn user_left_reads_again_and_the_removed_user_gets_no_later_message() {
    let mut f = fixture(FanoutConfig::default()).await;
    let (a, b, _) = three_users(&f).await;
    let (conv, joins) = channel(&f.sql, "general", &[a, b]).await;
    f.deliver(&joins).await;
    f.deliver(&[send(&f.sql, conv, a, "hi").await]).await;
    assert_eq!(f.read_count(), 1);
    f.take("g1").await;
    f.take("g2").await;

    let left = f.sql.remove_member(conv, a, b, Millis::now()).await.unwrap();
    assert_eq!((left.kind(), left.seq), (EventKind::UserLeft, 4));
    f.deliver(std::slice::from_ref(&left)).await;
    assert_eq!(f.read_count(), 2, "USER_LEFT is the next seq but changes membership: read again");
    assert_eq!(f.take("g2").await, vec![(4, vec![b])], "the leaver learns it left");
    assert_eq!(f.take("g1").await, vec![(4, vec![a])]);

    let m5 = send(&f.sql, conv, a, "bob is gone").await;
    let m6 = send(&f.sql, conv, a, "still gone").await;
    f.deliver(std::slice::from_ref(&m5)).await;
    f.deliver(std::slice::from_ref(&m6)).await;
    assert_eq!(f.read_count(), 2, "messages after the USER_LEFT hit the list read for it");
    assert_eq!(f.take("g1").await, vec![(5, vec![a]), (6, vec![a])]);
    assert!(f.take("g2").await.is_empty(), "the removed user gets no later message");
}

#[tokio::test]
async fn in_one_batch_events_before_a_membership_event_use_the_cached_list_and_later_ones_the_read() {
    let mut f = fixture(FanoutConfig::default()).await;
    let (a, b, c) = three_users(&f).await;
    let (conv, joins) = channel(&f.sql, "general", &[a, b]).await;
    f.deliver(&joins).await;
    f.take("g1").await;
    f.take("g2").await;
    // Seq 3 is sent while bob is a member; seq 4 removes him; seq 5 adds carol; seq 6 follows.
    let m3 = send(&f.sql, conv, a, "bob still here").await;
    let left = f.sql.remove_member(conv, a, b, Millis::now()).await.unwrap();
    let joined = f.sql.add_member(conv, a, c, MemberRole::Member, Millis::now()).await.unwrap();
    let m6 = send(&f.sql, conv, a, "carol here").await;
    f.deliver(&[m3, left, joined, m6]).await;
    assert_eq!(f.read_count(), 2, "one read for the batch");
    assert_eq!(f.take("g2").await, vec![(3, vec![b]), (4, vec![b])], "bob: seq 3 (cached list) and his USER_LEFT");
    // The read is the membership after the whole batch (as every event used before the cache):
    // carol is in it, so she gets every event from the first miss on, bob's USER_LEFT included.
    assert_eq!(f.take("g3").await, vec![(4, vec![c]), (5, vec![c]), (6, vec![c])], "carol: not seq 3");
    assert_eq!(f.take("g1").await.iter().map(|(s, _)| *s).collect::<Vec<_>>(), vec![3, 4, 5, 6]);
}

#[tokio::test]
async fn user_joined_reads_again_and_the_new_member_receives_the_next_message() {
    let mut f = fixture(FanoutConfig::default()).await;
    let (a, b, c) = three_users(&f).await;
    let (conv, joins) = channel(&f.sql, "general", &[a, b]).await;
    f.deliver(&joins).await;
    f.deliver(&[send(&f.sql, conv, a, "hi").await]).await;
    assert_eq!(f.read_count(), 1);
    assert!(f.take("g3").await.is_empty());

    // carol is added while the cache holds the conversation with alice and bob.
    let joined = f.sql.add_member(conv, a, c, MemberRole::Member, Millis::now()).await.unwrap();
    f.deliver(std::slice::from_ref(&joined)).await;
    assert_eq!(f.read_count(), 2, "USER_JOINED reads again");
    let m5 = send(&f.sql, conv, b, "welcome").await;
    f.deliver(std::slice::from_ref(&m5)).await;
    assert_eq!(f.read_count(), 2);
    assert_eq!(
        f.take("g3").await,
        vec![(4, vec![c]), (5, vec![c])],
        "the new member gets its join and the next message"
    );
    assert_eq!(f.take("g1").await.last(), Some(&(5, vec![a])));
}

#[tokio::test]
async fn a_batch_reads_only_its_misses_in_one_call() {
    let mut f = fixture(FanoutConfig::default()).await;
    let (a, b, _) = three_users(&f).await;
    let (hot, hot_joins) = channel(&f.sql, "hot", &[a, b]).await;
    let (cold, cold_joins) = channel(&f.sql, "cold", &[a]).await;
    let (other, other_joins) = channel(&f.sql, "other", &[b]).await;
    f.deliver(&hot_joins).await;
    assert_eq!(f.read_count(), 1);
    // One batch: hot's next seq (a hit), cold's and other's first events (misses).
    let mut batch = vec![send(&f.sql, hot, a, "hit").await];
    batch.extend(cold_joins);
    batch.extend(other_joins);
    batch.push(send(&f.sql, other, b, "miss").await);
    f.deliver(&batch).await;
    let mut misses = vec![cold, other];
    misses.sort();
    assert_eq!(f.store.reads()[1..], [misses], "one call, for the misses only");
    assert_eq!(f.take("g1").await.iter().filter(|(s, _)| *s == 3).count(), 1, "hot's message reached alice");
}

#[tokio::test]
async fn a_redelivered_older_event_uses_the_cache() {
    // A one-id duplicate filter forgets seq 3 by the time it is re-published.
    let mut f = fixture(FanoutConfig { dedupe_capacity: 1, ..FanoutConfig::default() }).await;
    let (a, b, _) = three_users(&f).await;
    let (conv, joins) = channel(&f.sql, "general", &[a, b]).await;
    f.deliver(&joins).await;
    let m3 = send(&f.sql, conv, a, "one").await;
    let m4 = send(&f.sql, conv, a, "two").await;
    f.deliver(&[m3.clone(), m4]).await;
    f.deliver(&[m3]).await;
    assert_eq!(f.read_count(), 1, "seq 3 <= last 4: a duplicate, no read");
    let seqs: Vec<i64> = f.take("g2").await.into_iter().map(|(s, _)| s).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 3], "delivered again; clients drop it by seq");
}

#[tokio::test]
async fn the_bound_evicts_the_least_recently_used_conversation() {
    let mut f = fixture(FanoutConfig { member_cache_conversations: 2, ..FanoutConfig::default() }).await;
    let (a, _, _) = three_users(&f).await;
    let mut convs = Vec::new();
    for name in ["c0", "c1", "c2"] {
        let (conv, joins) = channel(&f.sql, name, &[a]).await;
        f.deliver(&joins).await;
        convs.push(conv);
    }
    assert_eq!(f.read_count(), 3);
    assert_eq!(f.worker.cached_conversations(), 2, "capped at 2");
    // c1 and c2 are cached: their next seqs read nothing.
    f.deliver(&[send(&f.sql, convs[2], a, "m").await]).await;
    f.deliver(&[send(&f.sql, convs[1], a, "m").await]).await;
    assert_eq!(f.read_count(), 3);
    // c0, the least recently used when c2 arrived, was evicted: its next seq reads again.
    f.deliver(&[send(&f.sql, convs[0], a, "m").await]).await;
    assert_eq!(f.store.reads().last(), Some(&vec![convs[0]]));
    assert_eq!(f.read_count(), 4);
    assert_eq!(f.worker.cached_conversations(), 2);
    // That evicted c2 (now least recently used); c1 is still cached.
    f.deliver(&[send(&f.sql, convs[1], a, "m").await]).await;
    assert_eq!(f.read_count(), 4);
    f.deliver(&[send(&f.sql, convs[2], a, "m").await]).await;
    assert_eq!(f.store.reads().last(), Some(&vec![convs[2]]));
    assert_eq!(f.take("g1").await.len(), 3 + 5, "every event still reached alice");
}
