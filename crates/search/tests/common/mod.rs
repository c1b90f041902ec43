//! Fresh databases per test (SQLite file, MariaDB/MySQL, PostgreSQL; as in
//! `crates/storage/tests`) and the tantivy pipeline: outbox relay → in-process log → indexer.

#![allow(dead_code)]

pub mod corpus;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_pipeline::{EventLog, InProcessLog, OutboxRelay, RelayConfig};
use chat_search::{Indexer, IndexerConfig, SearchStore, TantivyIndex};
use chat_storage::{ConnectOptions, SqlStore};
use sqlx::{AnyConnection, AssertSqlSafe, Connection};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Which database a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A temporary SQLite file.
    Sqlite,
    /// A fresh database on the MariaDB/MySQL server (`CHAT_TEST_MYSQL_URL`).
    MySql,
    /// A fresh database on the PostgreSQL server (`CHAT_TEST_POSTGRES_URL`).
    Postgres,
}

/// A fresh, migrated store; [`Db::finish`] drops its database.
pub struct Db {
    backend: Backend,
    pub store: SqlStore,
    admin_url: Option<String>,
    db_name: String,
    pub dir: tempfile::TempDir,
}

impl Db {
    /// Creates and migrates a fresh database. Panics when the server is unreachable (the test
    /// fails; nothing is skipped).
    pub async fn new(backend: Backend) -> Db {
        sqlx::any::install_default_drivers();
        let db_name = format!("chat_search_test_{}", uuid::Uuid::now_v7().simple());
        let dir = tempfile::tempdir().expect("tempdir");
        let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_owned()).trim_end_matches('/').to_owned();
        let (url, admin_url) = match backend {
            Backend::Sqlite => (format!("sqlite:{}", dir.path().join("chat.db").display()), None),
            Backend::MySql => {
                let base = env("CHAT_TEST_MYSQL_URL", "mysql://chat:chat@127.0.0.1:3306");
                let admin = format!("{base}/mysql");
                admin_exec(&admin, &format!("CREATE DATABASE {db_name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"))
                    .await;
                (format!("{base}/{db_name}"), Some(admin))
            }
            Backend::Postgres => {
                let base = env("CHAT_TEST_POSTGRES_URL", "postgres://chat:chat@127.0.0.1:5432");
                let admin = format!("{base}/postgres");
                admin_exec(&admin, &format!("CREATE DATABASE {db_name}")).await;
                (format!("{base}/{db_name}"), Some(admin))
            }
        };
        let store = SqlStore::connect(&url, ConnectOptions::default()).await.unwrap_or_else(|e| panic!("{url}: {e}"));
        store.migrate().await.expect("migrate");
        Db { backend, store, admin_url, db_name, dir }
    }

    /// The store as the search crate sees it.
    pub fn search_store(&self) -> Arc<dyn SearchStore> {
        Arc::new(self.store.clone())
    }

    /// Closes the store and drops the database.
    pub async fn finish(self) {
        self.store.close().await;
        if let Some(admin) = &self.admin_url {
            let sql = match self.backend {
                Backend::Postgres => format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db_name),
                _ => format!("DROP DATABASE IF EXISTS {}", self.db_name),
            };
            admin_exec(admin, &sql).await;
        }
    }
}

async fn admin_exec(url: &str, sql: &str) {
    let mut conn = AnyConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("{url} is not reachable: {e}; run scripts/services.sh (this test is not skipped)"));
    sqlx::raw_sql(AssertSqlSafe(sql.to_owned())).execute(&mut conn).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    conn.close().await.ok();
}

/// The serve-mode feed of a tantivy index: the outbox relay (driven by [`Feed::settle`]),
/// an in-process log and a running [`Indexer`].
pub struct Feed {
    pub index: Arc<TantivyIndex>,
    relay: OutboxRelay,
    log: Arc<InProcessLog>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Feed {
    /// Opens the index in `dir` and starts its indexer on a new log.
    pub async fn start(store: &SqlStore, dir: &std::path::Path) -> Feed {
        let search_store: Arc<dyn SearchStore> = Arc::new(store.clone());
        let index = TantivyIndex::open(dir, search_store.clone()).expect("open index");
        let log = Arc::new(InProcessLog::new(4, 10_000));
        let relay =
            OutboxRelay::new(Arc::new(store.clone()), log.clone(), Arc::new(Notify::new()), RelayConfig::default());
        let cancel = CancellationToken::new();
        let indexer =
            Indexer::new(index.clone(), search_store, log.clone() as Arc<dyn EventLog>, IndexerConfig::default());
        let task = tokio::spawn(indexer.run(cancel.clone()));
        Feed { index, relay, log, cancel, task }
    }

    /// Publishes every pending outbox row and waits until the indexer has applied and
    /// committed them (the log retains a record until every group, here only `search`,
    /// committed it; the indexer commits offsets after the index). Fails after 60 s.
    pub async fn settle(&self) {
        while self.relay.run_once().await.expect("relay") > 0 {}
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.log.retained() > 0 {
            assert!(Instant::now() < deadline, "the indexer did not consume the log");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Stops the indexer and releases the index (its writer lock).
    pub async fn stop(self) {
        self.cancel.cancel();
        self.task.await.expect("indexer task");
        drop(self.index);
    }
}
