//! Conversations, members, read positions, counts, event windows, outbox.

use chat_domain::{
    ConversationId, ConversationKind, ConversationSettings, EventKind, EventPayload, MemberRole, Mentions, Millis,
    SeqWindow, WorkspaceId,
};
use chat_storage::{
    ConversationStore, ConversationUpdate, Dialect, EventStore, MessageStore, NewConversation, OutboxStore, StoreError,
};
use sqlx::{AnyConnection, AssertSqlSafe, Connection};

use super::{Backend, Harness, all_events, channel, new_msg, send, user};

/// Running the migrations again changes nothing and the store still works.
pub async fn migrations_are_idempotent(h: &Harness) {
    let s = &h.store;
    s.migrate().await.unwrap();
    s.migrate().await.unwrap();
    s.ping().await.unwrap();
    let expected = match h.backend {
        Backend::Sqlite => Dialect::Sqlite,
        Backend::MySql => Dialect::MySql,
        Backend::Postgres => Dialect::Postgres,
    };
    assert_eq!(s.dialect(), expected);
    if h.backend == Backend::Sqlite {
        // WAL is persistent in the file: a fresh connection sees it.
        let mut conn = AnyConnection::connect(&h.url).await.unwrap();
        let row = sqlx::query("PRAGMA journal_mode").fetch_one(&mut conn).await.unwrap();
        assert_eq!(sqlx::Row::get::<String, _>(&row, 0).to_lowercase(), "wal");
    }
    let a = user(s, "alice").await;
    channel(s, &[a.id]).await;
}

/// Add and remove append USER_JOINED / USER_LEFT; repeats are Conflict / NotFound.
pub async fn member_events(h: &Harness) {
    let s = &h.store;
    let a = user(s, "alice").await;
    let b = user(s, "bob").await;
    let (conv, evs) = channel(s, &[a.id]).await;
    assert_eq!(evs.len(), 1);
    assert!(matches!(evs[0].payload, EventPayload::UserJoined { user_id, role: MemberRole::Owner } if user_id == a.id));
    let e = s.add_member(conv, a.id, b.id, MemberRole::Member, Millis(3_000)).await.unwrap();
    assert_eq!(e.seq, 2);
    assert!(matches!(e.payload, EventPayload::UserJoined { user_id, role: MemberRole::Member } if user_id == b.id));
    assert!(matches!(
        s.add_member(conv, a.id, b.id, MemberRole::Member, Millis(11)).await,
        Err(StoreError::Conflict(_))
    ));
    let mut ids = s.member_ids(conv).await.unwrap();
    ids.sort();
    let mut want = vec![a.id, b.id];
    want.sort();
    assert_eq!(ids, want);
    let members = s.members(conv).await.unwrap();
    assert_eq!(members.iter().map(|m| m.user_id).collect::<Vec<_>>(), vec![a.id, b.id]);
    let left = s.remove_member(conv, b.id, b.id, Millis(12)).await.unwrap();
    assert_eq!(left.seq, 3);
    assert!(matches!(left.payload, EventPayload::UserLeft { user_id } if user_id == b.id));
    assert!(matches!(s.remove_member(conv, b.id, b.id, Millis(13)).await, Err(StoreError::NotFound(_))));
    assert!(s.member(conv, b.id).await.unwrap().is_none());
    assert!(matches!(
        s.add_member(ConversationId::new(), a.id, b.id, MemberRole::Member, Millis(1)).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(all_events(s, conv).await.len(), 3);
}

/// Read positions only rise, `seen` raises `delivered`, both are clamped to `last_seq`.
pub async fn read_positions_are_monotonic_and_clamped(h: &Harness) {
    let s = &h.store;
    let a = user(s, "alice").await;
    let b = user(s, "bob").await;
    let (conv, _) = channel(s, &[a.id, b.id]).await;
    for i in 0..3 {
        send(s, new_msg(conv, a.id, None, &format!("m{i}"))).await;
    } // last_seq 5
    let m = s.set_read_position(conv, b.id, Some(2), None, Millis(1)).await.unwrap();
    assert_eq!((m.delivered_seq, m.seen_seq), (2, 0));
    let m = s.set_read_position(conv, b.id, None, Some(3), Millis(2)).await.unwrap();
    assert_eq!((m.delivered_seq, m.seen_seq), (3, 3));
    let m = s.set_read_position(conv, b.id, Some(1), Some(1), Millis(3)).await.unwrap();
    assert_eq!((m.delivered_seq, m.seen_seq), (3, 3));
    let m = s.set_read_position(conv, b.id, Some(99), Some(42), Millis(4)).await.unwrap();
    assert_eq!((m.delivered_seq, m.seen_seq), (5, 5));
    let c = user(s, "carol").await;
    assert!(matches!(s.set_read_position(conv, c.id, Some(1), None, Millis(5)).await, Err(StoreError::NotFound(_))));
    assert_eq!(s.member(conv, b.id).await.unwrap().unwrap().seen_seq, 5);
    // Read positions append no events.
    assert_eq!(all_events(s, conv).await.len(), 5);
}

/// Unread = others' non-deleted messages after seen_seq; mentions = those naming the user or @channel.
pub async fn unread_and_mention_counts(h: &Harness) {
    let s = &h.store;
    let a = user(s, "alice").await;
    let b = user(s, "bob").await;
    let (c1, _) = channel(s, &[a.id, b.id]).await;
    let (c2, _) = channel(s, &[b.id, a.id]).await;
    send(s, new_msg(c1, a.id, None, "plain")).await;
    let mut m = new_msg(c1, a.id, None, "hi @bob");
    m.mentions = Mentions { user_ids: vec![b.id, b.id], channel: false };
    let direct = send(s, m).await;
    assert_eq!(direct.mentions.user_ids, vec![b.id]);
    let mut m = new_msg(c1, a.id, None, "@channel");
    m.mentions = Mentions { user_ids: vec![], channel: true };
    send(s, m).await;
    let mut m = new_msg(c1, a.id, None, "deleted @bob");
    m.mentions = Mentions { user_ids: vec![b.id], channel: false };
    let gone = send(s, m).await;
    s.delete_message(gone.id, a.id, Millis(9)).await.unwrap();
    send(s, new_msg(c1, b.id, None, "bob's own")).await;
    send(s, new_msg(c2, b.id, None, "in c2")).await;

    let sums = s.conversations_of(b.id).await.unwrap();
    assert_eq!(sums.len(), 2);
    let s1 = sums.iter().find(|x| x.conversation.id == c1).unwrap();
    assert_eq!((s1.unread_count, s1.mention_count), (3, 2));
    assert_eq!(s1.member.user_id, b.id);
    assert_eq!(s1.conversation.last_seq, s.conversation(c1).await.unwrap().unwrap().last_seq);
    let s2 = sums.iter().find(|x| x.conversation.id == c2).unwrap();
    assert_eq!((s2.unread_count, s2.mention_count), (0, 0));
    let for_a = s.conversations_of(a.id).await.unwrap();
    let a2 = for_a.iter().find(|x| x.conversation.id == c2).unwrap();
    assert_eq!((a2.unread_count, a2.mention_count), (1, 0));
    // After seeing everything: nothing unread.
    s.set_read_position(c1, b.id, None, Some(i64::MAX), Millis(10)).await.unwrap();
    let s1 = s.conversations_of(b.id).await.unwrap().into_iter().find(|x| x.conversation.id == c1).unwrap();
    assert_eq!((s1.unread_count, s1.mention_count), (0, 0));
}

/// events_after and message windows return the right slices, ascending.
pub async fn events_after_and_message_windows(h: &Harness) {
    let s = &h.store;
    let a = user(s, "alice").await;
    let (conv, _) = channel(s, &[a.id]).await;
    for i in 0..9 {
        send(s, new_msg(conv, a.id, None, &format!("m{i}"))).await;
    } // seqs 2..=10
    let seqs = |v: Vec<chat_domain::ConversationEvent>| v.into_iter().map(|e| e.seq).collect::<Vec<_>>();
    assert_eq!(seqs(s.events_after(conv, 2, 3).await.unwrap()), vec![3, 4, 5]);
    assert_eq!(seqs(s.events_after(conv, 0, 2).await.unwrap()), vec![1, 2]);
    assert!(s.events_after(conv, 10, 5).await.unwrap().is_empty());
    assert!(s.events_after(ConversationId::new(), 0, 5).await.unwrap().is_empty());
    let w = |after, before, limit| SeqWindow { after_seq: after, before_seq: before, limit };
    let mseqs = |v: Vec<chat_domain::Message>| v.into_iter().map(|m| m.server_seq).collect::<Vec<_>>();
    assert_eq!(mseqs(s.messages(conv, w(None, None, 3)).await.unwrap()), vec![8, 9, 10]);
    assert_eq!(mseqs(s.messages(conv, w(None, Some(5), 2)).await.unwrap()), vec![3, 4]);
    assert_eq!(mseqs(s.messages(conv, w(Some(4), None, 2)).await.unwrap()), vec![5, 6]);
    assert_eq!(mseqs(s.messages(conv, w(Some(4), Some(7), 10)).await.unwrap()), vec![5, 6]);
}

/// Pending rows come in id order (seq order per conversation) and disappear once marked.
pub async fn outbox_pending_ordered_and_marked(h: &Harness) {
    let s = &h.store;
    let a = user(s, "alice").await;
    let (c1, _) = channel(s, &[a.id]).await;
    let (c2, _) = channel(s, &[a.id]).await;
    for i in 0..3 {
        send(s, new_msg(c1, a.id, None, &format!("a{i}"))).await;
        send(s, new_msg(c2, a.id, None, &format!("b{i}"))).await;
    }
    let rows = s.pending_outbox(100).await.unwrap();
    assert_eq!(rows.len(), 8);
    assert!(rows.windows(2).all(|w| w[0].id < w[1].id));
    assert!(rows.iter().all(|r| r.topic == "message.all"));
    for c in [c1, c2] {
        let seqs: Vec<i64> = rows.iter().filter(|r| r.event.conversation_id == c).map(|r| r.event.seq).collect();
        assert_eq!(seqs, vec![1, 2, 3, 4]);
    }
    let events = all_events(s, c1).await;
    assert_eq!(rows.iter().find(|r| r.event.conversation_id == c1 && r.event.seq == 2).unwrap().event, events[1]);
    let first: Vec<i64> = rows.iter().take(5).map(|r| r.id).collect();
    s.mark_outbox_processed(&first, Millis(1)).await.unwrap();
    let rest = s.pending_outbox(100).await.unwrap();
    assert_eq!(rest.iter().map(|r| r.id).collect::<Vec<_>>(), rows[5..].iter().map(|r| r.id).collect::<Vec<_>>());
    assert_eq!(s.pending_outbox(2).await.unwrap().len(), 2);
    s.mark_outbox_processed(&[], Millis(2)).await.unwrap();
}

/// A row with a lower id that commits after a higher one is still published: selection is by
/// status. On MySQL and PostgreSQL this is exercised for real with a transaction held open on
/// a second connection; SQLite serializes writers (a lower id always commits first), so there
/// the relay's view is simulated by marking the later row first.
pub async fn outbox_finds_row_that_committed_late(h: &Harness) {
    let s = &h.store;
    let a = user(s, "alice").await;
    let (c1, _) = channel(s, &[a.id]).await;
    let (c2, _) = channel(s, &[a.id]).await;
    let done: Vec<i64> = s.pending_outbox(100).await.unwrap().iter().map(|r| r.id).collect();
    s.mark_outbox_processed(&done, Millis(1)).await.unwrap();
    if h.backend == Backend::Sqlite {
        send(s, new_msg(c1, a.id, None, "early id")).await;
        send(s, new_msg(c2, a.id, None, "later id")).await;
        let rows = s.pending_outbox(100).await.unwrap();
        s.mark_outbox_processed(&[rows[1].id], Millis(2)).await.unwrap();
        let rest = s.pending_outbox(100).await.unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].id, rows[0].id);
        return;
    }
    // A "slow" transaction takes a lower outbox id first and commits last.
    let mut slow = AnyConnection::connect(&h.url).await.unwrap();
    let slow_event = new_msg(c1, a.id, None, "slow");
    let (_, mut evs) = (0, all_events(s, c1).await);
    let mut fake = evs.pop().unwrap();
    fake.seq = 99;
    fake.event_id = slow_event.event_id;
    let payload = serde_json::to_string(&fake).unwrap().replace('\'', "''");
    sqlx::raw_sql("BEGIN").execute(&mut slow).await.unwrap();
    let insert = format!(
        "INSERT INTO message_producer_outbox (conversation_id, seq, event_id, topic, payload, created_at, status) \
         VALUES ('{c1}', 99, '{}', 'message.all', '{payload}', 1, 'PENDING')",
        slow_event.event_id
    );
    sqlx::raw_sql(AssertSqlSafe(insert)).execute(&mut slow).await.unwrap();
    // A later id commits first; the relay publishes and marks it.
    send(s, new_msg(c2, a.id, None, "fast")).await;
    let seen = s.pending_outbox(100).await.unwrap();
    assert_eq!(seen.len(), 1, "only the committed row is visible");
    s.mark_outbox_processed(&[seen[0].id], Millis(2)).await.unwrap();
    sqlx::raw_sql("COMMIT").execute(&mut slow).await.unwrap();
    let late = s.pending_outbox(100).await.unwrap();
    assert_eq!(late.len(), 1, "the late committer is still found");
    assert!(late[0].id < seen[0].id);
    assert_eq!(late[0].event.seq, 99);
}

/// A second conversation with the same DM key is a Conflict; the first is found by key.
pub async fn dm_key_conflict(h: &Harness) {
    let s = &h.store;
    let a = user(s, "alice").await;
    let b = user(s, "bob").await;
    let mut ids = [a.id.to_string(), b.id.to_string()];
    ids.sort();
    let key = ids.join(",");
    let dm = |id| NewConversation {
        id,
        workspace_id: WorkspaceId::DEFAULT,
        kind: ConversationKind::Dm,
        name: None,
        topic: None,
        is_private: true,
        created_by: a.id,
        settings: ConversationSettings::default(),
        members: vec![(a.id, MemberRole::Owner), (b.id, MemberRole::Owner)],
        dm_key: Some(key.clone()),
        at: Millis(1),
    };
    let (c, evs) = s.create_conversation(&dm(ConversationId::new())).await.unwrap();
    assert_eq!(evs.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(c.last_seq, 2);
    assert!(matches!(s.create_conversation(&dm(ConversationId::new())).await, Err(StoreError::Conflict(_))));
    assert_eq!(s.conversation_by_dm_key(&key).await.unwrap().unwrap(), c);
    assert!(s.conversation_by_dm_key("nope").await.unwrap().is_none());
    assert!(s.public_channels(WorkspaceId::DEFAULT, 10).await.unwrap().is_empty());
}

/// update_conversation applies the patch and appends CONVERSATION_UPDATED with new values.
pub async fn conversation_update_appends_event(h: &Harness) {
    let s = &h.store;
    let a = user(s, "alice").await;
    let (conv, _) = channel(s, &[a.id]).await;
    let settings =
        ConversationSettings { allow_reactions: false, allow_pins: true, allow_thread: false, slow_mode_seconds: 30 };
    let upd = ConversationUpdate {
        id: conv,
        actor: a.id,
        name: Some("renamed".into()),
        topic: Some("a topic ✓".into()),
        is_private: None,
        settings: Some(settings),
        at: Millis(50_000),
    };
    let (c, ev) = s.update_conversation(&upd).await.unwrap();
    assert_eq!((ev.seq, ev.kind()), (2, EventKind::ConversationUpdated));
    assert_eq!(
        (c.name.as_deref(), c.topic.as_deref(), c.settings, c.last_seq),
        (Some("renamed"), Some("a topic ✓"), settings, 2)
    );
    assert_eq!(c.updated_at, Millis(50_000));
    match ev.payload {
        EventPayload::ConversationUpdated { name, is_private, settings: st, .. } => {
            assert_eq!((name.as_deref(), is_private, st), (Some("renamed"), false, settings));
        }
        p => panic!("{p:?}"),
    }
    assert_eq!(s.conversation(conv).await.unwrap().unwrap(), c);
    let public = s.public_channels(WorkspaceId::DEFAULT, 10).await.unwrap();
    assert_eq!(public, vec![c]);
    let missing = ConversationUpdate { id: ConversationId::new(), ..upd };
    assert!(matches!(s.update_conversation(&missing).await, Err(StoreError::NotFound(_))));
    assert!(s.last_message_at(conv, a.id).await.unwrap().is_none());
    let m = send(s, new_msg(conv, a.id, None, "x")).await;
    assert_eq!(s.last_message_at(conv, a.id).await.unwrap(), Some(m.created_at));
}
