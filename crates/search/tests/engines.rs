//! The seeded corpus (tests/common/corpus.rs) on every engine: tantivy fed from the event log,
//! and the database's own full-text search on SQLite (FTS5), MariaDB/MySQL (InnoDB FULLTEXT)
//! and PostgreSQL (tsvector GIN). Each test: the known answer sets, then an edit and a delete,
//! then the answers they change, also after the database rebuilt its index (`chat-sys
//! reindex`).

mod common;

use chat_search::{DatabaseSearch, EngineKind, SearchEngine};
use common::corpus::{check_changed, check_seeded, edit_and_delete, seed};
use common::{Backend, Db, Feed};

async fn database_engine(backend: Backend) {
    let db = Db::new(backend).await;
    let engine = DatabaseSearch::new(db.search_store());
    assert_eq!(engine.kind(), EngineKind::Database);
    let c = seed(&db.store).await;
    check_seeded(&engine, &c).await;
    edit_and_delete(&db.store, &c).await;
    check_changed(&engine, &c).await;
    db.search_store().rebuild_search_index().await.expect("rebuild (chat-sys reindex)");
    check_changed(&engine, &c).await;
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_engine_on_sqlite_fts5() {
    database_engine(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_engine_on_mariadb_fulltext() {
    database_engine(Backend::MySql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_engine_on_postgres_tsvector() {
    database_engine(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tantivy_engine_fed_from_the_event_log() {
    let db = Db::new(Backend::Sqlite).await;
    let feed = Feed::start(&db.store, &db.dir.path().join("index")).await;
    let engine = feed.index.clone();
    assert_eq!(engine.kind(), EngineKind::Tantivy);
    let c = seed(&db.store).await;
    feed.settle().await;
    check_seeded(&engine, &c).await;
    edit_and_delete(&db.store, &c).await;
    feed.settle().await;
    check_changed(&engine, &c).await;
    assert_eq!(engine.stats().expect("stats").documents, 7, "one document per live message");
    drop(engine);
    feed.stop().await;
    db.finish().await;
}
