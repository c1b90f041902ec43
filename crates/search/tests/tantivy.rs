//! The tantivy index's life cycle: rebuilt from the database (`chat-sys reindex`), caught up
//! from the database after a restart that lost the in-process log, and one writer per
//! directory.

mod common;

use std::sync::Arc;

use chat_search::{SearchError, TantivyIndex, reindex};
use common::corpus::{check_changed, check_seeded, edit_and_delete, seed};
use common::{Backend, Db, Feed};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reindex_of_a_deleted_index_gives_the_same_answers() {
    let db = Db::new(Backend::Sqlite).await;
    let dir = db.dir.path().join("index");
    let feed = Feed::start(&db.store, &dir).await;
    let c = seed(&db.store).await;
    edit_and_delete(&db.store, &c).await;
    feed.settle().await;
    check_changed(&feed.index, &c).await;
    feed.stop().await;

    std::fs::remove_dir_all(&dir).expect("delete the index");
    let index = TantivyIndex::open(&dir, db.search_store()).expect("open");
    assert_eq!(index.stats().expect("stats").documents, 0, "a new, empty index");
    let mut reports = Vec::new();
    let read = reindex(&index, &db.search_store(), |done, total| reports.push((done, total))).await.expect("reindex");
    assert_eq!(read, 8, "every message is read, the deleted one too");
    assert_eq!(reports.first(), Some(&(0, 8)), "progress starts at 0 of the total");
    assert_eq!(reports.last(), Some(&(8, 8)), "and ends at the total");
    assert_eq!(index.stats().expect("stats").documents, 7);
    check_changed(&index, &c).await;
    let mut q = common::corpus::query(c.alice, "tomorrow");
    q.mentions = chat_search::MentionFilter::Searcher;
    assert_eq!(common::corpus::run(&index, &c, &q).await, [6], "mentions survive a rebuild");
    drop(index);
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_catches_up_changes_the_lost_log_never_delivered() {
    let db = Db::new(Backend::Sqlite).await;
    let dir = db.dir.path().join("index");
    let feed = Feed::start(&db.store, &dir).await;
    let c = seed(&db.store).await;
    feed.settle().await;
    check_seeded(&feed.index, &c).await;
    feed.stop().await;

    // Written while no indexer runs; the outbox rows are then marked processed, as if the
    // in-process log had taken them and been lost in a crash.
    edit_and_delete(&db.store, &c).await;
    let pending = chat_storage::OutboxStore::pending_outbox(&db.store, 100).await.expect("outbox");
    let ids: Vec<i64> = pending.iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), 2);
    chat_storage::OutboxStore::mark_outbox_processed(&db.store, &ids, chat_domain::Millis::now()).await.expect("mark");

    let feed = Feed::start(&db.store, &dir).await;
    // Nothing reaches the log: only the catch-up from the database can apply the changes.
    wait_for(&feed.index, &c).await;
    check_changed(&feed.index, &c).await;
    feed.stop().await;
    db.finish().await;
}

/// Waits until the catch-up applied the edit (bounded: fails after 60 s).
async fn wait_for(index: &Arc<TantivyIndex>, c: &common::corpus::Corpus) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let q = common::corpus::query(c.alice, "giraffe");
    while common::corpus::run(index, c, &q).await.is_empty() {
        assert!(std::time::Instant::now() < deadline, "the restarted indexer did not catch up");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_writer_per_index_directory() {
    let db = Db::new(Backend::Sqlite).await;
    let dir = db.dir.path().join("index");
    let first = TantivyIndex::open(&dir, db.search_store()).expect("open");
    match TantivyIndex::open(&dir, db.search_store()) {
        Err(SearchError::Index(e)) => assert!(e.to_string().to_lowercase().contains("lock"), "{e}"),
        other => panic!("a second writer must be refused, got {other:?}"),
    }
    drop(first);
    TantivyIndex::open(&dir, db.search_store()).expect("reopened once the first writer is gone");
    db.finish().await;
}
