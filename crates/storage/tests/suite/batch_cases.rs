//! Group commit: batches written with batch-wide statements (one lock of every sequence row,
//! multi-row INSERTs). Batches that mix conversations (and an unknown one), repeat client
//! message ids (also after a refused first occurrence), reply to roots of the same batch,
//! mention users, span the statement chunks, and run concurrently.

use std::collections::{BTreeMap, HashMap, HashSet};

use chat_domain::{AttachmentId, ConversationId, EventPayload, Mentions, Message, MessageId, SeqWindow, UserId};
use chat_storage::{ConversationStore, MessageStore, NewMessage, OutboxStore, SendOutcome, StoreError, StoreResult};

use super::{Backend, Harness, all_events, channel, new_msg, send, user};

/// The message of a `Created` outcome (panics on anything else).
fn created(o: &StoreResult<SendOutcome>) -> Message {
    match o {
        Ok(SendOutcome::Created { message, event }) => {
            assert_eq!((event.seq, event.conversation_id), (message.server_seq, message.conversation_id));
            message.clone()
        }
        o => panic!("expected Created, got {o:?}"),
    }
}

/// The message of a `Duplicate` outcome (panics on anything else).
fn duplicate(o: &StoreResult<SendOutcome>) -> Message {
    match o {
        Ok(SendOutcome::Duplicate { message }) => message.clone(),
        o => panic!("expected Duplicate, got {o:?}"),
    }
}

/// Event seqs of `conv` are exactly 1..=n and each message event carries its message's seq.
async fn assert_gap_free(s: &chat_storage::SqlStore, conv: ConversationId) -> i64 {
    let events = all_events(s, conv).await;
    let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>(), "gap-free log of {conv}");
    for e in &events {
        if let EventPayload::Message { message, .. } = &e.payload {
            assert_eq!(message.server_seq, e.seq);
        }
    }
    let last = s.conversation(conv).await.unwrap().expect("conversation").last_seq;
    assert_eq!(last, seqs.len() as i64, "last_seq of {conv} matches its log");
    last
}

/// One batch over three conversations (interleaved) and an unknown one: the unknown one's
/// sends fail alone, each conversation's sends get consecutive seqs in batch order, and its
/// `last_seq` moves by exactly its accepted sends (a conversation whose sends were all
/// refused does not move).
pub async fn batch_spans_conversations_and_an_unknown_one(h: &Harness) {
    let s = &h.store;
    let a = user(s, "alice").await;
    let (c1, _) = channel(s, &[a.id]).await;
    let (c2, _) = channel(s, &[a.id]).await;
    let (c3, _) = channel(s, &[a.id]).await;
    let (c4, _) = channel(s, &[a.id]).await;
    send(s, new_msg(c2, a.id, None, "before")).await; // c2 at 2
    let unknown = ConversationId::new();
    let convs = [c1, unknown, c2, c3, c1, c2, unknown, c3, c1];
    let mut batch: Vec<NewMessage> =
        convs.iter().enumerate().map(|(i, c)| new_msg(*c, a.id, Some(&format!("k{i}")), "x")).collect();
    let mut refused = new_msg(c4, a.id, Some("k-refused"), "to nowhere");
    refused.thread_root_id = Some(MessageId::new());
    batch.insert(4, refused);
    let out = s.append_messages(&batch).await.unwrap();
    assert_eq!(out.len(), batch.len());
    let mut seqs: BTreeMap<ConversationId, Vec<i64>> = BTreeMap::new();
    for (item, o) in batch.iter().zip(&out) {
        if item.conversation_id == unknown {
            assert!(matches!(o, Err(StoreError::NotFound("conversation"))), "{o:?}");
        } else if item.conversation_id == c4 {
            assert!(matches!(o, Err(StoreError::NotFound("thread root"))), "{o:?}");
        } else {
            let m = created(o);
            assert_eq!((m.id, m.conversation_id), (item.id, item.conversation_id));
            seqs.entry(m.conversation_id).or_default().push(m.server_seq);
        }
    }
    assert_eq!(seqs[&c1], vec![2, 3, 4]);
    assert_eq!(seqs[&c2], vec![3, 4]);
    assert_eq!(seqs[&c3], vec![2, 3]);
    for (c, last) in [(c1, 4), (c2, 4), (c3, 3), (c4, 1)] {
        assert_eq!(assert_gap_free(s, c).await, last);
    }
    // The sequences moved by exactly what was taken: the next sends follow on.
    assert_eq!(send(s, new_msg(c3, a.id, None, "next")).await.server_seq, 4);
    assert_eq!(send(s, new_msg(c4, a.id, None, "next")).await.server_seq, 2);
    // A batch of unknown conversations only: each send fails, nothing else happens.
    let out = s.append_messages(&[new_msg(unknown, a.id, None, "x"), new_msg(unknown, a.id, None, "y")]).await;
    assert!(out.unwrap().iter().all(|o| matches!(o, Err(StoreError::NotFound("conversation")))));
    // Every stored event has its outbox row, in the log's order per conversation.
    let rows = s.pending_outbox(1000).await.unwrap();
    for c in [c1, c2, c3, c4] {
        let ob: Vec<i64> = rows.iter().filter(|r| r.event.conversation_id == c).map(|r| r.event.seq).collect();
        let log: Vec<i64> = all_events(s, c).await.iter().map(|e| e.seq).collect();
        assert_eq!(ob, log, "outbox of {c}");
    }
}

/// Repeats of an (author, client message id) inside one batch: when the first occurrence is
/// refused (missing thread root, someone else's attachment) the next valid one is stored and
/// later repeats answer with it; repeats of a stored send answer with the stored one; the
/// same key in two conversations of one batch is two sends.
pub async fn batch_repeats_after_a_refused_first_occurrence(h: &Harness) {
    let s = &h.store;
    let a = user(s, "alice").await;
    let b = user(s, "bob").await;
    let (conv, _) = channel(s, &[a.id, b.id]).await; // seqs 1, 2
    let (other, _) = channel(s, &[a.id]).await; // seq 1
    let stored = send(s, new_msg(conv, a.id, Some("old"), "old")).await; // 3
    let mut bad_root = new_msg(conv, a.id, Some("k1"), "bad root");
    bad_root.thread_root_id = Some(MessageId::new());
    let good = new_msg(conv, a.id, Some("k1"), "good");
    let again = new_msg(conv, a.id, Some("k1"), "again");
    let old_again = new_msg(conv, a.id, Some("old"), "old again");
    let mut bad_file = new_msg(conv, a.id, Some("k2"), "bad file");
    bad_file.attachment_ids = vec![AttachmentId::new()];
    let plain = new_msg(conv, a.id, Some("k2"), "plain");
    let bobs = new_msg(conv, b.id, Some("k1"), "bob's k1");
    let elsewhere = new_msg(other, a.id, Some("k1"), "k1 elsewhere");
    let also_bad = {
        let mut m = new_msg(conv, a.id, Some("k3"), "k3 bad");
        m.thread_root_id = Some(MessageId::new());
        m
    };
    let batch = vec![bad_root, good, again, old_again, bad_file, plain, bobs, elsewhere, also_bad];
    let out = s.append_messages(&batch).await.unwrap();
    assert!(matches!(out[0], Err(StoreError::NotFound("thread root"))), "{:?}", out[0]);
    let g = created(&out[1]);
    assert_eq!((g.text.as_str(), g.server_seq), ("good", 4));
    assert_eq!(duplicate(&out[2]), g);
    assert_eq!(duplicate(&out[3]), stored);
    assert!(matches!(out[4], Err(StoreError::Conflict(_))), "{:?}", out[4]);
    let p = created(&out[5]);
    assert_eq!((p.text.as_str(), p.server_seq), ("plain", 5));
    assert_eq!(created(&out[6]).server_seq, 6);
    let e = created(&out[7]);
    assert_eq!((e.conversation_id, e.server_seq), (other, 2));
    assert!(matches!(out[8], Err(StoreError::NotFound("thread root"))), "{:?}", out[8]);
    assert_eq!(s.message_by_client_id(conv, a.id, "k1").await.unwrap(), Some(g.clone()));
    assert_eq!(s.message_by_client_id(conv, a.id, "k3").await.unwrap(), None);
    assert_gap_free(s, conv).await;
    assert_gap_free(s, other).await;
    // The same batch again: the stored ones answer as duplicates, nothing is appended.
    let out = s.append_messages(&batch).await.unwrap();
    assert_eq!(duplicate(&out[0]), g, "the refused first occurrence now repeats the stored send");
    assert_eq!(duplicate(&out[1]), g);
    assert_eq!(duplicate(&out[4]), p);
    assert_eq!(duplicate(&out[7]), e);
    assert!(matches!(out[8], Err(StoreError::NotFound("thread root"))), "{:?}", out[8]);
    assert_eq!(assert_gap_free(s, conv).await, 6);
}

/// Replies to a root sent earlier in the same batch are stored with running reply counts;
/// a reply to a reply of the batch, to a refused send of the batch, or to a root of another
/// conversation (stored or in the batch) is refused alone.
pub async fn batch_threads_within_the_batch(h: &Harness) {
    let s = &h.store;
    let a = user(s, "alice").await;
    let b = user(s, "bob").await;
    let (conv, _) = channel(s, &[a.id, b.id]).await; // 1, 2
    let (other, _) = channel(s, &[a.id]).await; // 1
    let foreign = send(s, new_msg(other, a.id, None, "foreign root")).await; // other 2
    let root = new_msg(conv, a.id, None, "root");
    let reply = |text: &str, to: MessageId, by: UserId| {
        let mut m = new_msg(conv, by, None, text);
        m.thread_root_id = Some(to);
        m
    };
    let r1 = reply("r1", root.id, b.id);
    let r2 = reply("r2", root.id, a.id);
    let nested = reply("nested", r1.id, a.id);
    let mut refused_root = new_msg(conv, a.id, None, "refused root");
    refused_root.attachment_ids = vec![AttachmentId::new()];
    let to_refused = reply("to refused", refused_root.id, b.id);
    let other_root = new_msg(other, a.id, None, "other's root");
    let cross_batch = reply("cross in batch", other_root.id, b.id);
    let cross_stored = reply("cross stored", foreign.id, b.id);
    let r3 = reply("r3", root.id, b.id);
    let batch =
        vec![root.clone(), r1.clone(), other_root, r2, nested, refused_root, to_refused, cross_batch, cross_stored, r3];
    let out = s.append_messages(&batch).await.unwrap();
    let root_m = created(&out[0]);
    assert_eq!(root_m.server_seq, 3);
    let mut counts = Vec::new();
    for i in [1, 3, 9] {
        match &out[i] {
            Ok(SendOutcome::Created { message, event }) => {
                assert_eq!(message.thread_root_id, Some(root.id));
                match &event.payload {
                    EventPayload::Message { thread_reply_count, .. } => counts.push(*thread_reply_count),
                    p => panic!("{p:?}"),
                }
            }
            o => panic!("{o:?}"),
        }
    }
    assert_eq!(counts, vec![Some(1), Some(2), Some(3)]);
    assert_eq!(created(&out[2]).server_seq, 3, "other's root at other seq 3");
    assert!(matches!(out[4], Err(StoreError::Conflict(_))), "reply to a reply: {:?}", out[4]);
    assert!(matches!(out[5], Err(StoreError::Conflict(_))), "{:?}", out[5]);
    for i in [6, 7, 8] {
        assert!(matches!(out[i], Err(StoreError::NotFound("thread root"))), "{i}: {:?}", out[i]);
    }
    let stored_root = s.message(root.id).await.unwrap().unwrap();
    let t = stored_root.thread.expect("thread summary");
    assert_eq!((t.reply_count, t.last_replied_by), (3, b.id));
    let replies = s.thread_replies(root.id, SeqWindow { after_seq: None, before_seq: None, limit: 10 }).await.unwrap();
    assert_eq!(replies.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), vec!["r1", "r2", "r3"]);
    assert_eq!(assert_gap_free(s, conv).await, 6);
    assert_eq!(assert_gap_free(s, other).await, 3);
    // A later reply to a reply stored by the batch is refused too.
    let out = s.append_messages(&[reply("late nested", r1.id, a.id)]).await.unwrap();
    assert!(matches!(out[0], Err(StoreError::Conflict(_))), "{:?}", out[0]);
}

/// Mentions of several sends of one batch (repeated ids in a list are stored once) are
/// stored per message and counted for the mentioned member.
pub async fn batch_mentions_are_stored_per_message(h: &Harness) {
    let s = &h.store;
    let a = user(s, "alice").await;
    let b = user(s, "bob").await;
    let c = user(s, "carol").await;
    let (conv, _) = channel(s, &[a.id, b.id, c.id]).await;
    let mention = |text: &str, ids: Vec<UserId>, channel: bool| {
        let mut m = new_msg(conv, a.id, None, text);
        m.mentions = Mentions { user_ids: ids, channel };
        m
    };
    let batch = vec![
        mention("@bob @bob", vec![b.id, b.id], false),
        mention("@carol @bob", vec![c.id, b.id], false),
        mention("none", vec![], false),
        mention("@channel", vec![], true),
    ];
    let out = s.append_messages(&batch).await.unwrap();
    let mut expect_b = vec![b.id, c.id];
    expect_b.sort();
    for (o, want) in out.iter().zip([vec![b.id], expect_b, vec![], vec![]]) {
        let m = created(o);
        assert_eq!(m.mentions.user_ids, want);
        assert_eq!(s.message(m.id).await.unwrap().unwrap().mentions, m.mentions, "stored as answered");
    }
    let count = |u: UserId| async move {
        let sums = s.conversations_of(u).await.unwrap();
        let x = sums.into_iter().find(|x| x.conversation.id == conv).unwrap();
        (x.unread_count, x.mention_count)
    };
    assert_eq!(count(b.id).await, (4, 3));
    assert_eq!(count(c.id).await, (4, 2));
}

/// A batch of 1,300 sends over two conversations (past every 500-row statement chunk and
/// the 200-key idempotency lookups), with client ids, mentions (over 500 mention rows) and
/// replies: all stored with gap-free seqs; the same batch again answers every send as a
/// duplicate of its stored original.
pub async fn large_batch_spans_statement_chunks(h: &Harness) {
    let s = &h.store;
    let a = user(s, "alice").await;
    let b = user(s, "bob").await;
    let (c1, _) = channel(s, &[a.id, b.id]).await; // 1, 2
    let (c2, _) = channel(s, &[a.id, b.id]).await; // 1, 2
    let root1 = send(s, new_msg(c1, a.id, None, "root")).await; // c1 3
    let mut batch = Vec::new();
    for i in 0..1300 {
        let conv = if i % 3 == 0 { c2 } else { c1 };
        let mut m = new_msg(conv, a.id, Some(&format!("big-{i}")), &format!("m{i}"));
        m.mentions = Mentions { user_ids: vec![b.id, a.id], channel: false };
        if conv == c1 && i % 50 == 1 {
            m.thread_root_id = Some(root1.id);
        }
        batch.push(m);
    }
    let out = s.append_messages(&batch).await.unwrap();
    let mut replies = 0;
    let mut ids = HashMap::new();
    for (item, o) in batch.iter().zip(&out) {
        let m = created(o);
        assert_eq!(m.mentions.user_ids.len(), 2);
        if m.thread_root_id.is_some() {
            replies += 1;
        }
        ids.insert(item.id, m);
    }
    let n1 = batch.iter().filter(|m| m.conversation_id == c1).count() as i64;
    let n2 = batch.len() as i64 - n1;
    assert_eq!(assert_gap_free(s, c1).await, 3 + n1);
    assert_eq!(assert_gap_free(s, c2).await, 2 + n2);
    let t = s.message(root1.id).await.unwrap().unwrap().thread.expect("thread");
    assert_eq!(t.reply_count, replies);
    let sums = s.conversations_of(b.id).await.unwrap();
    let total: i64 = sums.iter().map(|x| x.mention_count).sum();
    assert_eq!(total, 1300, "every send mentions bob once");
    let again = s.append_messages(&batch).await.unwrap();
    for (item, o) in batch.iter().zip(&again) {
        assert_eq!(duplicate(o).id, ids[&item.id].id);
    }
    assert_eq!(assert_gap_free(s, c1).await, 3 + n1, "nothing appended by the repeat");
}

/// Six writers send batches over overlapping sets of five conversations, each listing its
/// conversations in its own order, and retry sends of the other writers (same author and
/// client id): every batch succeeds (lock waits and deadlock retries are internal), each key
/// is stored once, and every conversation's log is gap-free.
pub async fn concurrent_batches_over_shared_conversations(h: &Harness) {
    let s = &h.store;
    let a = user(s, "alice").await;
    let mut convs = Vec::new();
    for _ in 0..5 {
        convs.push(channel(s, &[a.id]).await.0);
    }
    let mut tasks = Vec::new();
    for t in 0..6usize {
        let s = s.clone();
        let convs = convs.clone();
        tasks.push(tokio::spawn(async move {
            let mut stored = Vec::new();
            for round in 0..25usize {
                let mut batch = Vec::new();
                for k in 0..8usize {
                    // Writer t walks the conversations backwards or forwards from its own start.
                    let idx = if t % 2 == 0 { (t + k + round) % 5 } else { (5 + t - (k + round) % 5) % 5 };
                    let conv = convs[idx];
                    // Every writer sends the key (round, k) of conversation idx: shared keys.
                    let key = format!("r{round}-k{k}-c{idx}");
                    batch.push(new_msg(conv, a.id, Some(&key), &format!("t{t}")));
                }
                let out = s.append_messages(&batch).await.expect("batch");
                for o in out {
                    stored.push(o.expect("send").message().clone());
                }
            }
            stored
        }));
    }
    let mut by_key: HashMap<(ConversationId, String), HashSet<MessageId>> = HashMap::new();
    for t in tasks {
        for m in t.await.unwrap() {
            by_key.entry((m.conversation_id, m.client_msg_id.clone().unwrap())).or_default().insert(m.id);
        }
    }
    assert!(by_key.values().all(|ids| ids.len() == 1), "one message per key");
    for c in &convs {
        let keys = by_key.keys().filter(|(conv, _)| conv == c).count() as i64;
        assert_eq!(assert_gap_free(s, *c).await, 1 + keys);
    }
}

/// Client message ids that differ only in trailing spaces are different keys (as compared
/// everywhere else): each is its own send, and neither fails the batch it is in.
pub async fn client_ids_differing_in_trailing_spaces(h: &Harness) {
    // MySQL/MariaDB's `utf8mb4_bin` is PAD SPACE: its unique index takes "k" and "k " for the
    // same key, so there the second is a retry of the first; the other engines compare
    // exactly. Either way the batch is never failed by it and the other sends are stored.
    let pad_space = matches!(h.backend, Backend::MySql);
    let s = &h.store;
    let a = user(s, "alice").await;
    let (conv, _) = channel(s, &[a.id]).await;
    let k = send(s, new_msg(conv, a.id, Some("k"), "k")).await;
    let batch = vec![new_msg(conv, a.id, Some("k "), "k space"), new_msg(conv, a.id, Some("other"), "bystander")];
    let out = s.append_messages(&batch).await.expect("the batch is not failed by one send");
    match out[0].as_ref().expect("stored or answered") {
        SendOutcome::Duplicate { message } if pad_space => assert_eq!(message.id, k.id),
        SendOutcome::Created { message, .. } if !pad_space => {
            assert_ne!(message.id, k.id);
            assert_eq!(s.message_by_client_id(conv, a.id, "k ").await.unwrap().map(|m| m.id), Some(message.id));
        }
        other => panic!("unexpected outcome on {:?}: {other:?}", h.backend),
    }
    created(&out[1]);
    assert_eq!(s.message_by_client_id(conv, a.id, "k").await.unwrap().map(|m| m.id), Some(k.id));
    // Both spellings in one batch.
    let batch = vec![new_msg(conv, a.id, Some("j"), "j"), new_msg(conv, a.id, Some("j  "), "j spaces")];
    let out = s.append_messages(&batch).await.expect("the batch is not failed by one send");
    let first = created(&out[0]).id;
    match out[1].as_ref().expect("stored or answered") {
        SendOutcome::Duplicate { message } if pad_space => assert_eq!(message.id, first),
        SendOutcome::Created { message, .. } if !pad_space => assert_ne!(message.id, first),
        other => panic!("unexpected outcome on {:?}: {other:?}", h.backend),
    }
    assert_gap_free(s, conv).await;
}
