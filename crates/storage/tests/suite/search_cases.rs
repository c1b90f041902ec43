//! The database's own full-text index (the `database` search engine) and whether writes
//! maintain it (`SqlStore::set_full_text_maintenance`: on SQLite, the FTS5 triggers).

use chat_domain::{EventId, Mentions, MessageId, Millis, UserId};
use chat_storage::search::{FullTextChange, MentionFilter, SearchQuery};
use chat_storage::{MessageEdit, MessageStore, SearchStore, SqlStore};
use sqlx::{AnyConnection, Connection};

use super::{Backend, Harness, channel, new_msg, send, user};

/// The ids `searcher` finds for `words` with the database engine, newest first.
async fn found(s: &SqlStore, searcher: UserId, words: &[&str]) -> Vec<MessageId> {
    let q = SearchQuery {
        searcher,
        terms: words.iter().map(|w| (*w).to_owned()).collect(),
        conversation_id: None,
        author_id: None,
        from: None,
        to: None,
        attachments: None,
        mentions: MentionFilter::Anyone,
        after: None,
        limit: 100,
    };
    s.search_messages(&q).await.expect("search").hits.iter().map(|h| h.message_id).collect()
}

/// Replaces a message's text.
async fn edit(s: &SqlStore, id: MessageId, editor: UserId, text: &str) {
    let e = MessageEdit {
        id,
        editor,
        text: text.into(),
        mentions: Mentions::default(),
        at: Millis::now(),
        event_id: EventId::new(),
    };
    s.edit_message(&e).await.expect("edit");
}

/// One integer from a query on a separate connection to the test database (SQLite: the FTS5
/// shadow tables and `sqlite_master`, which the store does not expose).
async fn scalar(h: &Harness, sql: &'static str) -> i64 {
    let mut conn = AnyConnection::connect(&h.url).await.expect("connect");
    let n: i64 = sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    conn.close().await.ok();
    n
}

/// SQLite: the FTS5 triggers on `messages` that exist.
async fn sqlite_triggers(h: &Harness) -> i64 {
    scalar(h, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'messages_fts_%'").await
}

/// SQLite: documents in the FTS5 index itself (not the external content, `messages`).
async fn sqlite_fts_documents(h: &Harness) -> i64 {
    scalar(h, "SELECT COUNT(*) FROM messages_fts_docsize").await
}

/// SQLite: FTS5's own check that the index matches its content table (fails otherwise).
async fn sqlite_fts_integrity_check(h: &Harness) {
    let mut conn = AnyConnection::connect(&h.url).await.expect("connect");
    sqlx::raw_sql("INSERT INTO messages_fts(messages_fts, rank) VALUES ('integrity-check', 1)")
        .execute(&mut conn)
        .await
        .expect("FTS5 integrity-check: the index matches messages");
    conn.close().await.ok();
}

/// With the database engine (the state after migrating), sends, edits and deletes are found
/// or not found by their current text in the transaction that makes them.
pub async fn full_text_follows_sends_edits_and_deletes(h: &Harness) {
    let s = &h.store;
    assert_eq!(s.set_full_text_maintenance(true).await.unwrap(), FullTextChange::Unchanged, "on after migrating");
    assert!(s.full_text_maintained().await.unwrap());
    let a = user(s, "alice").await;
    let (conv, _) = channel(s, &[a.id]).await;
    let trip = send(s, new_msg(conv, a.id, None, "kayak trip on Sunday")).await;
    let gear = send(s, new_msg(conv, a.id, None, "kayak paddles packed")).await;
    assert_eq!(found(s, a.id, &["kayak"]).await, [gear.id, trip.id]);
    assert_eq!(found(s, a.id, &["paddles"]).await, [gear.id]);

    edit(s, trip.id, a.id, "canoe trip on Sunday").await;
    assert_eq!(found(s, a.id, &["kayak"]).await, [gear.id], "an edit leaves its old words");
    assert_eq!(found(s, a.id, &["canoe"]).await, [trip.id], "and is found by its new ones");

    s.delete_message(gear.id, a.id, Millis::now()).await.unwrap().expect("deleted");
    assert!(found(s, a.id, &["kayak"]).await.is_empty(), "a deleted message is not found");
    assert!(found(s, a.id, &["paddles"]).await.is_empty());
    if h.backend == Backend::Sqlite {
        assert_eq!(sqlite_triggers(h).await, 3);
        sqlite_fts_integrity_check(h).await;
    }
}

/// With another engine (tantivy), SQLite's triggers are dropped and the FTS5 index emptied;
/// sends, edits and deletes then leave `messages_fts` alone. Idempotent, also across a
/// reopen. MySQL/MariaDB and PostgreSQL keep their index (documented: always maintained).
pub async fn full_text_off_leaves_writes_out_of_the_index(h: &Harness) {
    let s = &h.store;
    let a = user(s, "alice").await;
    let (conv, _) = channel(s, &[a.id]).await;
    let before = send(s, new_msg(conv, a.id, None, "kayak before the switch")).await;
    if h.backend != Backend::Sqlite {
        assert_eq!(s.set_full_text_maintenance(false).await.unwrap(), FullTextChange::Unchanged);
        assert!(s.full_text_maintained().await.unwrap());
        let after = send(s, new_msg(conv, a.id, None, "kayak after the switch")).await;
        assert_eq!(found(s, a.id, &["kayak"]).await, [after.id, before.id]);
        return;
    }
    assert_eq!(sqlite_fts_documents(h).await, 1);
    assert_eq!(s.set_full_text_maintenance(false).await.unwrap(), FullTextChange::Dropped);
    assert_eq!(sqlite_triggers(h).await, 0, "no trigger left on messages");
    assert!(!s.full_text_maintained().await.unwrap());
    assert_eq!(sqlite_fts_documents(h).await, 0, "the stale index is emptied");
    assert_eq!(s.set_full_text_maintenance(false).await.unwrap(), FullTextChange::Unchanged, "idempotent");

    let mut sent = Vec::new();
    for text in ["kayak trip", "paddles packed", "anchor lost"] {
        sent.push(send(s, new_msg(conv, a.id, None, text)).await);
    }
    edit(s, sent[0].id, a.id, "canoe trip").await;
    s.delete_message(sent[2].id, a.id, Millis::now()).await.unwrap().expect("deleted");
    s.delete_message(before.id, a.id, Millis::now()).await.unwrap().expect("deleted");
    assert_eq!(sqlite_fts_documents(h).await, 0, "writes do not touch messages_fts");
    assert!(found(s, a.id, &["canoe"]).await.is_empty());

    // A restart with the same engine finds the state in the schema and changes nothing.
    let reopened = SqlStore::connect(&h.url, Default::default()).await.expect("reopen");
    assert_eq!(reopened.set_full_text_maintenance(false).await.unwrap(), FullTextChange::Unchanged);
    reopened.close().await;
    assert_eq!(sqlite_triggers(h).await, 0);
}

/// Switching to the database engine after messages were written without the index
/// recreates the triggers and rebuilds the index in one step: the earlier messages are found
/// by their current text, deleted ones are not, and later writes are maintained again.
pub async fn full_text_on_again_rebuilds_the_index(h: &Harness) {
    let s = &h.store;
    let a = user(s, "alice").await;
    let (conv, _) = channel(s, &[a.id]).await;
    let off = s.set_full_text_maintenance(false).await.unwrap();
    let mut sent = Vec::new();
    for text in ["kayak trip", "paddles packed", "anchor lost"] {
        sent.push(send(s, new_msg(conv, a.id, None, text)).await);
    }
    edit(s, sent[0].id, a.id, "canoe trip").await;
    s.delete_message(sent[2].id, a.id, Millis::now()).await.unwrap().expect("deleted");
    if h.backend == Backend::Sqlite {
        assert_eq!(off, FullTextChange::Dropped);
        assert!(found(s, a.id, &["paddles"]).await.is_empty(), "not indexed while off");
        assert_eq!(s.set_full_text_maintenance(true).await.unwrap(), FullTextChange::Rebuilt);
        assert_eq!(sqlite_triggers(h).await, 3);
    } else {
        assert_eq!(off, FullTextChange::Unchanged);
        assert_eq!(s.set_full_text_maintenance(true).await.unwrap(), FullTextChange::Unchanged);
    }
    assert!(s.full_text_maintained().await.unwrap());
    assert_eq!(found(s, a.id, &["canoe"]).await, [sent[0].id], "written while off, found after the switch");
    assert_eq!(found(s, a.id, &["paddles"]).await, [sent[1].id]);
    assert!(found(s, a.id, &["kayak"]).await.is_empty(), "an edit made while off, by its current text only");
    assert!(found(s, a.id, &["anchor"]).await.is_empty(), "a delete made while off stays unfound");
    assert_eq!(s.set_full_text_maintenance(true).await.unwrap(), FullTextChange::Unchanged, "idempotent");

    let later = send(s, new_msg(conv, a.id, None, "kayak again")).await;
    edit(s, sent[1].id, a.id, "oars packed").await;
    assert_eq!(found(s, a.id, &["kayak"]).await, [later.id], "the recreated triggers maintain the index");
    assert_eq!(found(s, a.id, &["oars"]).await, [sent[1].id]);
    assert!(found(s, a.id, &["paddles"]).await.is_empty());
    if h.backend == Backend::Sqlite {
        sqlite_fts_integrity_check(h).await;
    }
}
