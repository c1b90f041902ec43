//! Harness and fixtures of the storage suite; the cases are in the submodules.

#![allow(dead_code)]

mod attachment_cases;
mod auth_cases;
mod batch_cases;
mod conversation_cases;
mod member_cases;
mod message_cases;
mod search_cases;

pub use attachment_cases::*;
pub use auth_cases::*;
pub use batch_cases::*;
pub use conversation_cases::*;
pub use member_cases::*;
pub use message_cases::*;
pub use search_cases::*;

use chat_domain::{
    ConversationEvent, ConversationId, ConversationKind, ConversationSettings, EventId, MemberRole, Mentions, Message,
    MessageId, Millis, User, UserId, WorkspaceId,
};
use chat_storage::{
    ConnectOptions, ConversationStore, EventStore, MessageStore, NewConversation, NewMessage, SendOutcome, SqlStore,
    UserStore,
};
use sqlx::{AnyConnection, AssertSqlSafe, Connection};

/// Which database a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A temporary SQLite file.
    Sqlite,
    /// A fresh database on the MariaDB/MySQL server.
    MySql,
    /// A fresh database on the PostgreSQL server.
    Postgres,
}

/// A fresh, migrated store and what is needed to drop its database.
pub struct Harness {
    pub backend: Backend,
    pub store: SqlStore,
    /// The store's URL (for raw connections in tests).
    pub url: String,
    admin_url: Option<String>,
    db_name: String,
    _dir: Option<tempfile::TempDir>,
}

impl Harness {
    /// Creates the database and connects and migrates a store on it. Panics (fails the test)
    /// when the server is unreachable.
    pub async fn new(backend: Backend) -> Harness {
        sqlx::any::install_default_drivers();
        let db_name = format!("chat_test_{}", uuid::Uuid::now_v7().simple());
        let (url, admin_url, dir) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("tempdir");
                let url = format!("sqlite:{}", dir.path().join("chat.db").display());
                (url, None, Some(dir))
            }
            Backend::MySql => {
                let base =
                    std::env::var("CHAT_TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://chat:chat@127.0.0.1:3306".into());
                let base = base.trim_end_matches('/').to_owned();
                let admin = format!("{base}/mysql");
                admin_exec(
                    &admin,
                    &format!("CREATE DATABASE {db_name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"),
                    "MariaDB/MySQL (set CHAT_TEST_MYSQL_URL or run scripts/services.sh)",
                )
                .await;
                (format!("{base}/{db_name}"), Some(admin), None)
            }
            Backend::Postgres => {
                let base = std::env::var("CHAT_TEST_POSTGRES_URL")
                    .unwrap_or_else(|_| "postgres://chat:chat@127.0.0.1:5432".into());
                let base = base.trim_end_matches('/').to_owned();
                let admin = format!("{base}/postgres");
                admin_exec(
                    &admin,
                    &format!("CREATE DATABASE {db_name}"),
                    "PostgreSQL (set CHAT_TEST_POSTGRES_URL or run scripts/services.sh)",
                )
                .await;
                (format!("{base}/{db_name}"), Some(admin), None)
            }
        };
        let opts = ConnectOptions { max_connections: 16, ..ConnectOptions::default() };
        let store = SqlStore::connect(&url, opts).await.unwrap_or_else(|e| panic!("connect {url}: {e}"));
        store.migrate().await.expect("migrate");
        Harness { backend, store, url, admin_url, db_name, _dir: dir }
    }

    /// Closes the store and drops the test database.
    pub async fn finish(self) {
        self.store.close().await;
        if let Some(admin) = &self.admin_url {
            let sql = match self.backend {
                Backend::Postgres => format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db_name),
                _ => format!("DROP DATABASE IF EXISTS {}", self.db_name),
            };
            admin_exec(admin, &sql, "database server").await;
        }
    }
}

pub(crate) async fn admin_exec(url: &str, sql: &str, what: &str) {
    let mut conn = AnyConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("{what} is not reachable at {url}: {e}. This test needs it; it is not skipped."));
    sqlx::raw_sql(AssertSqlSafe(sql.to_owned())).execute(&mut conn).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    conn.close().await.ok();
}

/// Creates a user `name` in the default workspace.
pub async fn user(s: &SqlStore, name: &str) -> User {
    let u = User {
        id: UserId::new(),
        workspace_id: WorkspaceId::DEFAULT,
        username: name.into(),
        display_name: name.to_uppercase(),
        avatar_url: None,
        created_at: Millis(1_000),
    };
    s.create_user(&u, "$argon2id$fake").await.expect("create user");
    u
}

/// A new public channel with `members` (first is the owner); returns it and its creation events.
pub async fn channel(s: &SqlStore, members: &[UserId]) -> (ConversationId, Vec<ConversationEvent>) {
    let new = NewConversation {
        id: ConversationId::new(),
        workspace_id: WorkspaceId::DEFAULT,
        kind: ConversationKind::Channel,
        name: Some(format!("c-{}", uuid::Uuid::now_v7().simple())),
        topic: None,
        is_private: false,
        created_by: members[0],
        settings: ConversationSettings::default(),
        members: members
            .iter()
            .enumerate()
            .map(|(i, u)| (*u, if i == 0 { MemberRole::Owner } else { MemberRole::Member }))
            .collect(),
        dm_key: None,
        at: Millis(2_000),
    };
    let (c, evs) = s.create_conversation(&new).await.expect("create conversation");
    (c.id, evs)
}

/// A send of `text` by `user` into `conv`.
pub fn new_msg(conv: ConversationId, user: UserId, client_msg_id: Option<&str>, text: &str) -> NewMessage {
    NewMessage {
        id: MessageId::new(),
        event_id: EventId::new(),
        conversation_id: conv,
        user_id: user,
        client_msg_id: client_msg_id.map(str::to_owned),
        thread_root_id: None,
        text: text.into(),
        kind: "default".into(),
        mentions: Mentions::default(),
        attachment_ids: Vec::new(),
        at: Millis::now(),
    }
}

/// Sends one message and expects it created.
pub async fn send(s: &SqlStore, m: NewMessage) -> Message {
    let mut out = s.append_messages(&[m]).await.expect("append");
    match out.pop().expect("one result").expect("send ok") {
        SendOutcome::Created { message, .. } => message,
        SendOutcome::Duplicate { .. } => panic!("unexpected duplicate"),
    }
}

/// All events of a conversation.
pub async fn all_events(s: &SqlStore, conv: ConversationId) -> Vec<ConversationEvent> {
    let mut out = Vec::new();
    loop {
        let after = out.last().map_or(0, |e: &ConversationEvent| e.seq);
        let page = s.events_after(conv, after, 1000).await.expect("events_after");
        if page.is_empty() {
            return out;
        }
        out.extend(page);
    }
}
