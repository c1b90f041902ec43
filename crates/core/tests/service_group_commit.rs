//! Group commit of `ChatService::send` against a real SQLite `SqlStore`: gap-free
//! per-conversation sequences under concurrency, batching actually happening, idempotent
//! retries (sequential and concurrent), and the commit notification.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chat_core::service::{ChatService, CommitThread, CreateChannel, SendMessage, SendOutcome, ServiceConfig};
use chat_domain::{ConversationId, EventPayload, Millis, User, UserId, Workspace, WorkspaceId};
use chat_storage::{ConnectOptions, SqlStore, Store, UserStore};
use tempfile::TempDir;

struct Env {
    _dir: TempDir,
    svc: ChatService,
}

async fn env(cfg: ServiceConfig) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("chat.db").display());
    let store = SqlStore::connect(&url, ConnectOptions::default()).await.unwrap();
    store.migrate().await.unwrap();
    let ws = Workspace { id: WorkspaceId::DEFAULT, name: "default".into(), created_at: Millis::now() };
    store.ensure_workspace(&ws).await.unwrap();
    let store: Arc<dyn Store> = Arc::new(store);
    Env { _dir: dir, svc: ChatService::new(store, cfg) }
}

impl Env {
    async fn user(&self, name: &str) -> UserId {
        let u = User {
            id: UserId::new(),
            workspace_id: WorkspaceId::DEFAULT,
            username: name.into(),
            display_name: name.into(),
            avatar_url: None,
            created_at: Millis::now(),
        };
        self.svc.store().create_user(&u, "x").await.unwrap();
        u.id
    }

    async fn channel(&self, owner: UserId, name: &str, members: &[UserId]) -> ConversationId {
        let req = CreateChannel { name: name.into(), member_ids: members.to_vec(), ..Default::default() };
        self.svc.create_channel(owner, req).await.unwrap().id
    }
}

fn send(conv: ConversationId, text: &str, client_msg_id: Option<&str>) -> SendMessage {
    SendMessage {
        conversation_id: conv,
        client_msg_id: client_msg_id.map(str::to_string),
        text: text.into(),
        kind: None,
        thread_root_id: None,
        attachment_ids: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_get_gap_free_seqs_in_batches() {
    concurrent_sends_gap_free(CommitThread::Runtime).await;
}

/// The same with the writers on their own thread (`chat-sys serve` on SQLite).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_get_gap_free_seqs_in_batches_on_a_commit_thread() {
    concurrent_sends_gap_free(CommitThread::Dedicated).await;
}

async fn concurrent_sends_gap_free(commit_thread: CommitThread) {
    let env = env(ServiceConfig { commit_thread, ..ServiceConfig::default() }).await;
    let mut users = Vec::new();
    for i in 0..10 {
        users.push(env.user(&format!("user{i}")).await);
    }
    let mut convs = Vec::new();
    for c in 0..5 {
        convs.push(env.channel(users[0], &format!("chan{c}"), &users[1..]).await);
    }
    let before = env.svc.batch_stats();

    let mut tasks = Vec::new();
    for i in 0..500usize {
        let svc = env.svc.clone();
        let user = users[i % 10];
        let conv = convs[(i / 10) % 5];
        tasks.push(tokio::spawn(async move {
            let cid = format!("c-{i}");
            let out = svc.send(user, send(conv, &format!("message {i}"), Some(&cid))).await.unwrap();
            match out {
                SendOutcome::Created { message, event } => {
                    assert_eq!(message.user_id, user);
                    assert_eq!(message.conversation_id, conv);
                    assert_eq!(message.client_msg_id.as_deref(), Some(cid.as_str()));
                    assert_eq!(message.text, format!("message {i}"));
                    assert_eq!(event.seq, message.server_seq);
                    (conv, message.server_seq, message.id)
                }
                SendOutcome::Duplicate { .. } => panic!("send {i} reported as duplicate"),
            }
        }));
    }
    let mut per_conv: BTreeMap<ConversationId, Vec<i64>> = BTreeMap::new();
    let mut ids = HashSet::new();
    for t in tasks {
        let (conv, seq, id) = t.await.unwrap();
        per_conv.entry(conv).or_default().push(seq);
        assert!(ids.insert(id), "message id handed out twice");
    }

    let stats = env.svc.batch_stats();
    let batches = stats.batches - before.batches;
    let items = stats.items - before.items;
    assert_eq!(items, 500, "every send went through group commit exactly once");
    assert!(stats.max_batch > 1, "no batch had more than one send: {stats:?}");
    assert!(batches < 500, "500 sends took {batches} transactions: no batching");
    assert_eq!(stats.failed_batches, 0);
    eprintln!("group commit: 500 sends in {batches} batches, largest {}", stats.max_batch);

    let owner = users[0];
    for (conv, mut seqs) in per_conv {
        assert_eq!(seqs.len(), 100, "each conversation got 100 sends");
        seqs.sort_unstable();
        let distinct: HashSet<i64> = seqs.iter().copied().collect();
        assert_eq!(distinct.len(), 100, "a seq was handed to two callers");
        // The log: 10 USER_JOINED events, then the messages, gap-free from 1.
        let events = env.svc.events_after(owner, conv, 0, 500).await.unwrap();
        let log: Vec<i64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(log, (1..=110).collect::<Vec<i64>>(), "the log has gaps or repeats");
        let message_seqs: Vec<i64> =
            events.iter().filter(|e| matches!(e.payload, EventPayload::Message { .. })).map(|e| e.seq).collect();
        assert_eq!(message_seqs, seqs, "callers' seqs are exactly the log's message seqs");
        let conv_row = env.svc.conversation(owner, conv).await.unwrap();
        assert_eq!(conv_row.last_seq, 110);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_with_same_client_msg_id_returns_the_original() {
    let env = env(ServiceConfig::default()).await;
    let alice = env.user("alice").await;
    let conv = env.channel(alice, "general", &[]).await;

    let first = env.svc.send(alice, send(conv, "hello", Some("m-1"))).await.unwrap();
    let SendOutcome::Created { message: original, .. } = first else { panic!("first send not created") };
    let retry = env.svc.send(alice, send(conv, "hello (retry)", Some("m-1"))).await.unwrap();
    let SendOutcome::Duplicate { message } = retry else { panic!("retry was stored again") };
    assert_eq!(message.id, original.id);
    assert_eq!(message.server_seq, original.server_seq);
    assert_eq!(message.text, "hello");

    let all = env
        .svc
        .messages(alice, conv, chat_domain::SeqWindow { after_seq: None, before_seq: None, limit: 50 })
        .await
        .unwrap();
    assert_eq!(all.len(), 1, "the retry stored nothing new");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_retries_store_one_message() {
    let env = env(ServiceConfig::default()).await;
    let alice = env.user("alice").await;
    let conv = env.channel(alice, "general", &[]).await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let svc = env.svc.clone();
        tasks.push(tokio::spawn(async move { svc.send(alice, send(conv, "once", Some("same-id"))).await.unwrap() }));
    }
    let mut created = 0;
    let mut seqs = HashSet::new();
    for t in tasks {
        let out = t.await.unwrap();
        if matches!(out, SendOutcome::Created { .. }) {
            created += 1;
        }
        seqs.insert(out.message().server_seq);
    }
    assert_eq!(created, 1, "exactly one of the concurrent retries is stored");
    assert_eq!(seqs.len(), 1, "every retry got the original seq");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_client_msg_id_from_two_authors_are_two_messages() {
    let env = env(ServiceConfig::default()).await;
    let alice = env.user("alice").await;
    let bob = env.user("bob").await;
    let conv = env.channel(alice, "general", &[bob]).await;
    let a = env.svc.send(alice, send(conv, "a", Some("k"))).await.unwrap();
    let b = env.svc.send(bob, send(conv, "b", Some("k"))).await.unwrap();
    assert!(matches!(a, SendOutcome::Created { .. }));
    assert!(matches!(b, SendOutcome::Created { .. }));
    assert_ne!(a.message().server_seq, b.message().server_seq);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_writers_keep_seqs_gap_free() {
    // A server database may use several writers; on SQLite the store serializes the writes
    // itself, which is enough to check that batches from two writers do not interleave seqs.
    let env = env(ServiceConfig { writers: 2, max_batch: 16, ..Default::default() }).await;
    let alice = env.user("alice").await;
    let conv = env.channel(alice, "general", &[]).await;
    let mut tasks = Vec::new();
    for i in 0..100 {
        let svc = env.svc.clone();
        tasks.push(tokio::spawn(async move { svc.send(alice, send(conv, &format!("m{i}"), None)).await.unwrap() }));
    }
    let mut seqs: Vec<i64> = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap().message().server_seq);
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (2..=101).collect::<Vec<i64>>());
    assert!(env.svc.batch_stats().max_batch <= 16);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_wakes_the_relay() {
    let env = env(ServiceConfig::default()).await;
    let alice = env.user("alice").await;
    let conv = env.channel(alice, "general", &[]).await;
    let notify = env.svc.commit_notify();
    // Drain a permit left by the channel creation, then wait for the send's commit.
    let _ = tokio::time::timeout(Duration::from_millis(50), notify.notified()).await;
    let waiter = tokio::spawn({
        let notify = notify.clone();
        async move { tokio::time::timeout(Duration::from_secs(5), notify.notified()).await.is_ok() }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    env.svc.send(alice, send(conv, "wake up", None)).await.unwrap();
    assert!(waiter.await.unwrap(), "the relay was not woken by the commit");
}
