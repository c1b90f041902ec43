//! Sends, sequencing, idempotency, edits, reactions, pins.

use std::collections::HashSet;

use chat_domain::{EventId, EventKind, EventPayload, Mentions, Millis, SeqWindow};
use chat_storage::{EventStore, MessageEdit, MessageStore, SendOutcome, StoreError};

use super::{Harness, all_events, channel, new_msg, send, user};

/// 8 tasks x 200 sends into one conversation: seqs 2..=1601 (1 is the creator's join), no
/// gap, no repeat, in messages and in the event log.
pub async fn concurrent_sends_are_gapless(h: &Harness) {
    let s = &h.store;
    let a = user(s, "alice").await;
    let (conv, _) = channel(s, &[a.id]).await;
    let mut tasks = Vec::new();
    for t in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..200 {
                let m = new_msg(conv, a.id, Some(&format!("t{t}-{i}")), "hi");
                seqs.push(send(&s, m).await.server_seq);
            }
            seqs
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.extend(t.await.unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (2..=1601).collect::<Vec<i64>>());
    let events = all_events(s, conv).await;
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=1601).collect::<Vec<i64>>());
    for e in &events[1..] {
        match &e.payload {
            EventPayload::Message { message, .. } => assert_eq!(message.server_seq, e.seq),
            other => panic!("unexpected {other:?}"),
        }
    }
    let last = s.messages(conv, SeqWindow { after_seq: None, before_seq: None, limit: 500 }).await.unwrap();
    assert_eq!(last.len(), 500);
    assert_eq!(last.last().unwrap().server_seq, 1601);
    assert!(last.windows(2).all(|w| w[0].server_seq + 1 == w[1].server_seq));
}

/// 8 concurrent retries of one send (same client message id): one message, one seq for all.
pub async fn concurrent_retries_store_one_message(h: &Harness) {
    let s = &h.store;
    let a = user(s, "alice").await;
    let (conv, _) = channel(s, &[a.id]).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let m = new_msg(conv, a.id, Some("retry-me"), "once");
            s.append_messages(&[m]).await.unwrap().pop().unwrap().unwrap()
        }));
    }
    let mut created = 0;
    let mut ids = HashSet::new();
    let mut seqs = HashSet::new();
    for t in tasks {
        let o = t.await.unwrap();
        if matches!(o, SendOutcome::Created { .. }) {
            created += 1;
        }
        ids.insert(o.message().id);
        seqs.insert(o.message().server_seq);
    }
    assert_eq!(created, 1);
    assert_eq!(ids.len(), 1);
    assert_eq!(seqs, HashSet::from([2]));
    let all = s.messages(conv, SeqWindow { after_seq: Some(0), before_seq: None, limit: 100 }).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all_events(s, conv).await.len(), 2);
    let by_client_id = s.message_by_client_id(conv, a.id, "retry-me").await.unwrap().expect("stored under its id");
    assert_eq!(by_client_id.server_seq, 2);
    assert!(s.message_by_client_id(conv, a.id, "other").await.unwrap().is_none());
}

/// A batch with a duplicate of an earlier item, a reply, a reply to a missing root and a
/// reply to a reply: each item gets its own outcome, stored items get consecutive seqs.
pub async fn batch_with_duplicates_and_threads(h: &Harness) {
    let s = &h.store;
    let a = user(s, "alice").await;
    let b = user(s, "bob").await;
    let (conv, _) = channel(s, &[a.id, b.id]).await; // seqs 1, 2
    let root = send(s, new_msg(conv, a.id, Some("root"), "root")).await; // 3
    let mut reply = new_msg(conv, b.id, Some("r1"), "reply");
    reply.thread_root_id = Some(root.id);
    let mut orphan = new_msg(conv, b.id, Some("r2"), "orphan");
    orphan.thread_root_id = Some(chat_domain::MessageId::new());
    let first = new_msg(conv, a.id, Some("x"), "first");
    let mut dup = new_msg(conv, a.id, Some("x"), "first again");
    dup.id = chat_domain::MessageId::new();
    let same_key_other_user = new_msg(conv, b.id, Some("x"), "bob's x");
    let batch = vec![first.clone(), reply.clone(), orphan, dup, same_key_other_user];
    let out = s.append_messages(&batch).await.unwrap();
    let m0 = match &out[0] {
        Ok(SendOutcome::Created { message, .. }) => message.clone(),
        o => panic!("{o:?}"),
    };
    assert_eq!(m0.server_seq, 4);
    let (m1, e1) = match &out[1] {
        Ok(SendOutcome::Created { message, event }) => (message.clone(), event.clone()),
        o => panic!("{o:?}"),
    };
    assert_eq!(m1.server_seq, 5);
    match &e1.payload {
        EventPayload::Message { thread_reply_count, .. } => assert_eq!(*thread_reply_count, Some(1)),
        p => panic!("{p:?}"),
    }
    assert!(matches!(out[2], Err(StoreError::NotFound(_))), "{:?}", out[2]);
    match &out[3] {
        Ok(SendOutcome::Duplicate { message }) => assert_eq!(message, &m0),
        o => panic!("{o:?}"),
    }
    match &out[4] {
        Ok(SendOutcome::Created { message, .. }) => assert_eq!(message.server_seq, 6),
        o => panic!("{o:?}"),
    }
    // A reply to a reply is refused; the thread summary counts the reply.
    let mut nested = new_msg(conv, a.id, None, "nested");
    nested.thread_root_id = Some(m1.id);
    let out = s.append_messages(&[nested]).await.unwrap();
    assert!(matches!(out[0], Err(StoreError::Conflict(_))), "{:?}", out[0]);
    let root_now = s.message(root.id).await.unwrap().unwrap();
    let t = root_now.thread.expect("thread summary");
    assert_eq!((t.reply_count, t.last_replied_by), (1, b.id));
    let replies = s.thread_replies(root.id, SeqWindow { after_seq: None, before_seq: None, limit: 10 }).await.unwrap();
    assert_eq!(replies, vec![m1.clone()]);
    // The whole batch again: all duplicates (the orphan fails again), nothing appended.
    let again = s.append_messages(&batch).await.unwrap();
    assert!(matches!(&again[0], Ok(SendOutcome::Duplicate { message }) if message.id == m0.id));
    assert!(matches!(&again[1], Ok(SendOutcome::Duplicate { message }) if message.id == m1.id));
    assert_eq!(all_events(s, conv).await.last().unwrap().seq, 6);
    assert_eq!(s.message(m0.id).await.unwrap().unwrap(), m0);
}

/// An edit, a reaction and a delete each append exactly one event, in order, with payloads.
pub async fn edit_reaction_delete_append_one_event_each(h: &Harness) {
    let s = &h.store;
    let a = user(s, "alice").await;
    let b = user(s, "bob").await;
    let (conv, _) = channel(s, &[a.id, b.id]).await;
    let mut m = new_msg(conv, a.id, Some("c1"), "hello @bob");
    m.mentions = Mentions { user_ids: vec![b.id], channel: false };
    let msg = send(s, m).await;
    assert_eq!(msg.server_seq, 3);
    let edit = MessageEdit {
        id: msg.id,
        editor: a.id,
        text: "hello everyone".into(),
        mentions: Mentions { user_ids: vec![], channel: true },
        at: Millis(5_000),
        event_id: EventId::new(),
    };
    let (edited, ev) = s.edit_message(&edit).await.unwrap();
    assert_eq!((ev.seq, ev.kind(), ev.event_id), (4, EventKind::MessageEdited, edit.event_id));
    assert!(edited.edited && edited.version_count == 1 && edited.mentions.channel);
    let r = s.add_reaction(&edited, b.id, "👍", Millis(6_000)).await.unwrap().expect("added");
    assert_eq!((r.seq, r.kind()), (5, EventKind::ReactionAdded));
    match &s.events_after(conv, 3, 1).await.unwrap()[0].payload {
        EventPayload::MessageEdited { message } => {
            assert_eq!((message.text.as_str(), message.version_count, message.edited), ("hello everyone", 1, true));
        }
        p => panic!("{p:?}"),
    }
    let (tomb, d) = s.delete_message(msg.id, a.id, Millis(7_000)).await.unwrap().expect("deleted");
    assert_eq!((d.seq, d.kind()), (6, EventKind::MessageDeleted));
    assert!(tomb.deleted && tomb.text.is_empty());
    assert!(s.delete_message(msg.id, a.id, Millis(8_000)).await.unwrap().is_none());
    // Once deleted, the message's content cannot be read back from the log either.
    let evs = s.events_after(conv, 2, 100).await.unwrap();
    assert_eq!(evs.len(), 4);
    match &evs[0].payload {
        EventPayload::Message { message, .. } => {
            assert!(message.deleted && message.text.is_empty() && message.mentions.user_ids.is_empty());
        }
        p => panic!("{p:?}"),
    }
    let evs = &evs[1..];
    match &evs[0].payload {
        EventPayload::MessageEdited { message } => {
            assert_eq!((message.text.as_str(), message.version_count, message.deleted), ("", 1, true));
            assert!(!message.mentions.channel);
        }
        p => panic!("{p:?}"),
    }
    match &evs[1].payload {
        EventPayload::ReactionAdded { message_id, emoji, user_id } => {
            assert_eq!((message_id, emoji.as_str(), user_id), (&msg.id, "👍", &b.id));
        }
        p => panic!("{p:?}"),
    }
    match &evs[2].payload {
        EventPayload::MessageDeleted { message } => assert!(message.deleted && message.text.is_empty()),
        p => panic!("{p:?}"),
    }
    assert_eq!(s.message(msg.id).await.unwrap().unwrap(), tomb);
    // Editing a deleted message is refused and appends nothing.
    assert!(matches!(s.edit_message(&edit).await, Err(StoreError::Conflict(_))));
    assert!(matches!(
        s.edit_message(&MessageEdit { id: chat_domain::MessageId::new(), ..edit }).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(all_events(s, conv).await.len(), 6);
}

/// Each edit saves the previous text as a version, oldest first.
pub async fn edit_history_is_kept(h: &Harness) {
    let s = &h.store;
    let a = user(s, "alice").await;
    let (conv, _) = channel(s, &[a.id]).await;
    let msg = send(s, new_msg(conv, a.id, None, "v0")).await;
    for (i, text) in ["v1", "v2"].iter().enumerate() {
        let e = MessageEdit {
            id: msg.id,
            editor: a.id,
            text: (*text).into(),
            mentions: Mentions::default(),
            at: Millis(10_000 + i as i64),
            event_id: EventId::new(),
        };
        s.edit_message(&e).await.unwrap();
    }
    let v = s.versions(msg.id).await.unwrap();
    assert_eq!(v.iter().map(|v| (v.version, v.old_text.as_str())).collect::<Vec<_>>(), vec![(1, "v0"), (2, "v1")]);
    assert_eq!(v[1].edited_at, Millis(10_001));
    let now = s.message(msg.id).await.unwrap().unwrap();
    assert_eq!((now.text.as_str(), now.version_count), ("v2", 2));
}

/// Adding a reaction twice appends one event; removing twice appends one.
pub async fn reactions_are_idempotent(h: &Harness) {
    let s = &h.store;
    let a = user(s, "alice").await;
    let b = user(s, "bob").await;
    let (conv, _) = channel(s, &[a.id, b.id]).await;
    let msg = send(s, new_msg(conv, a.id, None, "react")).await;
    assert!(s.add_reaction(&msg, b.id, "👍", Millis(1)).await.unwrap().is_some());
    assert!(s.add_reaction(&msg, b.id, "👍", Millis(2)).await.unwrap().is_none());
    assert!(s.add_reaction(&msg, b.id, "👎", Millis(3)).await.unwrap().is_some());
    assert!(s.add_reaction(&msg, a.id, "👍", Millis(4)).await.unwrap().is_some());
    let rs = s.reactions(msg.id).await.unwrap();
    assert_eq!(
        rs.iter().map(|r| (r.emoji.as_str(), r.user_id)).collect::<Vec<_>>(),
        vec![("👍", b.id), ("👎", b.id), ("👍", a.id)]
    );
    let removed = s.remove_reaction(&msg, b.id, "👍", Millis(5)).await.unwrap().expect("removed");
    assert_eq!(removed.kind(), EventKind::ReactionRemoved);
    assert!(s.remove_reaction(&msg, b.id, "👍", Millis(6)).await.unwrap().is_none());
    assert_eq!(s.reactions(msg.id).await.unwrap().len(), 2);
    // join, join, message, 3 adds, 1 remove
    assert_eq!(all_events(s, conv).await.len(), 7);
}

/// Pin and unpin are idempotent and listed newest first.
pub async fn pins_are_idempotent(h: &Harness) {
    let s = &h.store;
    let a = user(s, "alice").await;
    let (conv, _) = channel(s, &[a.id]).await;
    let m1 = send(s, new_msg(conv, a.id, None, "one")).await;
    let m2 = send(s, new_msg(conv, a.id, None, "two")).await;
    let e = s.pin(&m1, a.id, Millis(100)).await.unwrap().expect("pinned");
    assert_eq!(e.kind(), EventKind::MessagePinned);
    assert!(s.pin(&m1, a.id, Millis(101)).await.unwrap().is_none());
    s.pin(&m2, a.id, Millis(200)).await.unwrap().expect("pinned");
    let pins = s.pins(conv).await.unwrap();
    assert_eq!(pins.iter().map(|p| p.message_id).collect::<Vec<_>>(), vec![m2.id, m1.id]);
    let u = s.unpin(&m1, a.id, Millis(300)).await.unwrap().expect("unpinned");
    assert!(
        matches!(u.payload, EventPayload::MessageUnpinned { message_id, unpinned_by } if message_id == m1.id && unpinned_by == a.id)
    );
    assert!(s.unpin(&m1, a.id, Millis(301)).await.unwrap().is_none());
    assert_eq!(s.pins(conv).await.unwrap().len(), 1);
}
