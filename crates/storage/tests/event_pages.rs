//! Pages of the event log as `EventStore::events_after` reads them, on every backend (SQLite
//! reads a page as one packed value): every field and payload comes back as written, whatever
//! the text holds, and deleted messages are redacted whether they were created in the page or
//! before it.

#[allow(unused_imports)] // the shared suite re-exports every case; this file runs one
mod suite;

use chat_domain::{EventId, EventKind, EventPayload, Mentions, Millis};
use chat_storage::{EventStore, MessageEdit, MessageStore, OutboxStore};
use suite::{Backend, Harness, channel, new_msg, send, user};

/// Texts holding the packed format's separators, digits, multibyte and control characters.
const TEXTS: [&str; 5] = ["plain", "colon: and space ", "1 2 3 4 5:6", "ü 😀 \u{1e}\u{1f}\n\t\"\\ end", "99:x"];

async fn pages_decode_every_payload_and_redact_deleted_messages(h: &Harness) {
    let s = &h.store;
    let a = user(s, "alice").await;
    let (conv, created) = channel(s, &[a.id]).await;
    let first_message_seq = created.last().map_or(0, |e| e.seq) + 1;
    let mut msgs = Vec::new();
    for t in TEXTS {
        msgs.push(send(s, new_msg(conv, a.id, None, t)).await);
    }
    let edit = MessageEdit {
        id: msgs[0].id,
        editor: a.id,
        text: "edited: 0".into(),
        mentions: Mentions::default(),
        at: Millis(5_000),
        event_id: EventId::new(),
    };
    s.edit_message(&edit).await.expect("edit");
    s.delete_message(msgs[0].id, a.id, Millis(6_000)).await.expect("delete").expect("deleted");
    s.delete_message(msgs[3].id, a.id, Millis(7_000)).await.expect("delete").expect("deleted");

    // The whole log in one page: ids, actors, instants and kinds as the outbox carries them.
    let all = s.events_after(conv, 0, 100).await.expect("events_after");
    let outbox: Vec<_> =
        s.pending_outbox(1000).await.expect("outbox").into_iter().filter(|r| r.event.conversation_id == conv).collect();
    assert_eq!(all.len(), outbox.len());
    for (got, row) in all.iter().zip(&outbox) {
        let want = &row.event;
        assert_eq!(
            (got.event_id, got.conversation_id, got.seq, got.actor_id, got.created_at, got.kind()),
            (want.event_id, want.conversation_id, want.seq, want.actor_id, want.created_at, want.kind())
        );
    }
    let texts: Vec<(String, bool)> = all
        .iter()
        .filter_map(|e| match &e.payload {
            EventPayload::Message { message, .. } => Some((message.text.clone(), message.deleted)),
            _ => None,
        })
        .collect();
    let want: Vec<(String, bool)> = TEXTS
        .iter()
        .enumerate()
        .map(|(i, t)| if i == 0 || i == 3 { (String::new(), true) } else { ((*t).to_owned(), false) })
        .collect();
    assert_eq!(texts, want);

    // A page after the messages: the edit of an older, now deleted message is redacted too.
    let last_message_seq = first_message_seq + TEXTS.len() as i64 - 1;
    let tail = s.events_after(conv, last_message_seq, 100).await.expect("events_after");
    let kinds: Vec<EventKind> = tail.iter().map(|e| e.kind()).collect();
    assert_eq!(kinds, [EventKind::MessageEdited, EventKind::MessageDeleted, EventKind::MessageDeleted]);
    match &tail[0].payload {
        EventPayload::MessageEdited { message } => assert!(message.deleted && message.text.is_empty()),
        p => panic!("{p:?}"),
    }

    // Pages of one: a kept message reads back as written; a page past the end is empty.
    for (i, t) in TEXTS.iter().enumerate().filter(|(i, _)| *i != 0 && *i != 3) {
        let page = s.events_after(conv, first_message_seq + i as i64 - 1, 1).await.expect("events_after");
        match &page[..] {
            [e] => match &e.payload {
                EventPayload::Message { message, .. } => assert_eq!(message.text, *t),
                p => panic!("{p:?}"),
            },
            other => panic!("{other:?}"),
        }
    }
    let end = all.last().map_or(0, |e| e.seq);
    assert!(s.events_after(conv, end, 10).await.expect("events_after").is_empty());
}

macro_rules! on_every_backend {
    ($case:ident: $($backend:ident => $variant:ident),*) => {
        $(
            mod $backend {
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let h = crate::Harness::new(crate::Backend::$variant).await;
                    crate::$case(&h).await;
                    h.finish().await;
                }
            }
        )*
    };
}

on_every_backend!(pages_decode_every_payload_and_redact_deleted_messages:
    sqlite => Sqlite, mysql => MySql, postgres => Postgres);
