//! The group-commit rate of the storage layer alone: `append_messages` batches into a fresh
//! SQLite file (or `--url`), no server, no network. Shows how far the SQL path is from the
//! engine's raw rate (`chat-bench`'s sqlite limit) without the gateway and core around it.
//!
//!     cargo run --release -p chat-storage --example append_rate -- [BATCH] [BATCHES] [CONVERSATIONS]
//!
//! Defaults: batches of 256 sends, 200 batches, 500 conversations of two members, 100-byte
//! texts. Prints sends/s and the median commit time.

use std::time::Instant;

use chat_domain::{
    ConversationId, ConversationKind, ConversationSettings, EventId, MemberRole, Mentions, MessageId, Millis, User,
    UserId, Workspace, WorkspaceId,
};
use chat_storage::{ConnectOptions, ConversationStore, MessageStore, NewConversation, NewMessage, SqlStore, UserStore};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().expect("a number")).collect();
    let batch = args.first().copied().unwrap_or(256);
    let batches = args.get(1).copied().unwrap_or(200);
    let convs = args.get(2).copied().unwrap_or(500);
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite:{}", dir.path().join("chat.db").display());
    let store = SqlStore::connect(&url, ConnectOptions::default()).await.expect("connect");
    store.migrate().await.expect("migrate");
    let now = Millis::now();
    store.ensure_workspace(&Workspace { id: WorkspaceId::DEFAULT, name: "w".into(), created_at: now }).await.unwrap();
    let mut pairs = Vec::new();
    for i in 0..convs {
        let mut users = Vec::new();
        for k in 0..2 {
            let u = User {
                id: UserId::new(),
                workspace_id: WorkspaceId::DEFAULT,
                username: format!("u{i}-{k}"),
                display_name: "u".into(),
                avatar_url: None,
                created_at: now,
            };
            store.create_user(&u, "x").await.unwrap();
            users.push(u.id);
        }
        let new = NewConversation {
            id: ConversationId::new(),
            workspace_id: WorkspaceId::DEFAULT,
            kind: ConversationKind::Channel,
            name: Some(format!("c{i}")),
            topic: None,
            is_private: false,
            created_by: users[0],
            settings: ConversationSettings::default(),
            members: vec![(users[0], MemberRole::Owner), (users[1], MemberRole::Member)],
            dm_key: None,
            at: now,
        };
        let (c, _) = store.create_conversation(&new).await.unwrap();
        pairs.push((c.id, users[0]));
    }
    let text = "x".repeat(100);
    let mut times = Vec::with_capacity(batches);
    let start = Instant::now();
    let mut n = 0usize;
    for b in 0..batches {
        let msgs: Vec<NewMessage> = (0..batch)
            .map(|i| {
                let (conv, user) = pairs[(b * batch + i) % pairs.len()];
                NewMessage {
                    id: MessageId::new(),
                    event_id: EventId::new(),
                    conversation_id: conv,
                    user_id: user,
                    client_msg_id: Some(uuid::Uuid::now_v7().to_string()),
                    thread_root_id: None,
                    text: text.clone(),
                    kind: "default".into(),
                    mentions: Mentions::default(),
                    attachment_ids: Vec::new(),
                    at: Millis::now(),
                }
            })
            .collect();
        let t = Instant::now();
        let r = store.append_messages(&msgs).await.expect("append");
        times.push(t.elapsed());
        n += r.len();
    }
    let secs = start.elapsed().as_secs_f64();
    times.sort();
    println!(
        "{n} sends in {batches} batches of {batch}: {:.0} sends/s, median commit {:.1} ms, p90 {:.1} ms",
        n as f64 / secs,
        times[times.len() / 2].as_secs_f64() * 1e3,
        times[times.len() * 9 / 10].as_secs_f64() * 1e3
    );
}
