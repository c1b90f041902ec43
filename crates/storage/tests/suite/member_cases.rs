//! Batch member reads ([`ConversationStore::member_ids_of`], the fanout path).

use std::collections::HashSet;

use chat_domain::{ConversationId, MemberRole, Millis, UserId};
use chat_storage::{ConversationStore, MEMBER_IDS_CHUNK};
use futures::StreamExt;

use super::{Harness, channel, user};

/// Sorted copy of a member list (the batch read has no order).
fn sorted(mut ids: Vec<UserId>) -> Vec<UserId> {
    ids.sort();
    ids
}

/// Several conversations, an unknown one and one without members in one call: every requested
/// conversation is a key, with exactly its members (empty for the unknown and the empty one),
/// duplicates collapse, and each list equals the single-conversation read.
pub async fn member_ids_of_several_conversations(h: &Harness) {
    let s = &h.store;
    let a = user(s, "alice").await;
    let b = user(s, "bob").await;
    let c = user(s, "carol").await;
    let (ab, _) = channel(s, &[a.id, b.id]).await;
    let (abc, _) = channel(s, &[a.id, b.id, c.id]).await;
    let (solo, _) = channel(s, &[c.id]).await;
    let (emptied, _) = channel(s, &[b.id]).await;
    s.remove_member(emptied, b.id, b.id, Millis(3_000)).await.unwrap();
    s.add_member(solo, c.id, a.id, MemberRole::Member, Millis(3_000)).await.unwrap();
    let unknown = ConversationId::new();

    assert!(s.member_ids_of(&[]).await.unwrap().is_empty());
    let got = s.member_ids_of(&[ab, abc, unknown, solo, emptied, ab]).await.unwrap();
    assert_eq!(got.len(), 5, "one key per distinct requested conversation: {got:?}");
    assert_eq!(sorted(got[&ab].clone()), sorted(vec![a.id, b.id]));
    assert_eq!(sorted(got[&abc].clone()), sorted(vec![a.id, b.id, c.id]));
    assert_eq!(sorted(got[&solo].clone()), sorted(vec![a.id, c.id]));
    assert_eq!(got[&unknown], Vec::<UserId>::new());
    assert_eq!(got[&emptied], Vec::<UserId>::new());
    for conv in [ab, abc, solo, emptied, unknown] {
        assert_eq!(sorted(got[&conv].clone()), sorted(s.member_ids(conv).await.unwrap()), "{conv}");
    }
}

/// More conversations than one `IN` chunk holds: with `MEMBER_IDS_CHUNK + 1` real conversations
/// (so at least one falls outside the first chunk, whatever the order) plus as many unknown
/// ids, every conversation comes back with exactly its own member.
pub async fn member_ids_of_spans_chunks(h: &Harness) {
    let s = &h.store;
    let users = [user(s, "u0").await.id, user(s, "u1").await.id, user(s, "u2").await.id];
    let n = MEMBER_IDS_CHUNK + 1;
    let created: Vec<(ConversationId, UserId)> = futures::stream::iter(0..n)
        .map(|i| async move {
            let owner = users[i % users.len()];
            (channel(s, &[owner]).await.0, owner)
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let unknown: Vec<ConversationId> = (0..n).map(|_| ConversationId::new()).collect();
    let mut ask: Vec<ConversationId> = created.iter().map(|(c, _)| *c).collect();
    ask.extend(&unknown);
    assert!(ask.len() > 2 * MEMBER_IDS_CHUNK);

    let got = s.member_ids_of(&ask).await.unwrap();
    assert_eq!(got.len(), 2 * n);
    for (conv, owner) in &created {
        assert_eq!(got[conv], vec![*owner], "members of {conv}");
    }
    for conv in &unknown {
        assert!(got[conv].is_empty(), "unknown {conv} has members {:?}", got[conv]);
    }
    let distinct: HashSet<ConversationId> = got.keys().copied().collect();
    assert_eq!(distinct, ask.iter().copied().collect());
}

/// The one-query authorization read equals the two separate reads: for a member (its role and
/// read positions, the conversation with its settings and `last_seq`), for a non-member (the
/// conversation, no membership, whoever else is a member), after leaving, and `None` for an
/// unknown conversation.
pub async fn conversation_with_member_matches_separate_reads(h: &Harness) {
    let s = &h.store;
    let a = user(s, "alice").await;
    let b = user(s, "bob").await;
    let c = user(s, "carol").await;
    let (conv, _) = channel(s, &[a.id, b.id]).await;
    s.set_read_position(conv, b.id, Some(1), Some(1), Millis(4_000)).await.unwrap();

    for who in [a.id, b.id, c.id] {
        let (got_conv, got_member) = s.conversation_with_member(conv, who).await.unwrap().expect("exists");
        assert_eq!(Some(got_conv), s.conversation(conv).await.unwrap(), "conversation as read by {who}");
        assert_eq!(got_member, s.member(conv, who).await.unwrap(), "membership of {who}");
    }
    let (_, owner) = s.conversation_with_member(conv, a.id).await.unwrap().unwrap();
    let owner = owner.expect("alice is a member");
    assert_eq!((owner.conversation_id, owner.user_id, owner.role), (conv, a.id, MemberRole::Owner));
    let (_, bob) = s.conversation_with_member(conv, b.id).await.unwrap().unwrap();
    let bob = bob.expect("bob is a member");
    assert_eq!((bob.role, bob.delivered_seq, bob.seen_seq), (MemberRole::Member, 1, 1));
    assert_eq!(s.conversation_with_member(conv, c.id).await.unwrap().unwrap().1, None, "carol is no member");

    s.remove_member(conv, b.id, b.id, Millis(5_000)).await.unwrap();
    let (after, gone) = s.conversation_with_member(conv, b.id).await.unwrap().unwrap();
    assert_eq!(gone, None, "bob left");
    assert_eq!(after.last_seq, s.conversation(conv).await.unwrap().unwrap().last_seq);
    assert!(s.conversation_with_member(ConversationId::new(), a.id).await.unwrap().is_none());
}

/// The presence audience: every user sharing a conversation, once, never the user; none for a
/// user alone or unknown; a cap returns that many distinct co-members; leaving a conversation
/// drops the users shared only there.
pub async fn co_member_ids_lists_users_sharing_a_conversation(h: &Harness) {
    let s = &h.store;
    let a = user(s, "alice").await;
    let b = user(s, "bob").await;
    let c = user(s, "carol").await;
    let d = user(s, "dave").await;
    let (ab, _) = channel(s, &[a.id, b.id]).await;
    channel(s, &[a.id, b.id, c.id]).await;
    channel(s, &[d.id]).await;

    assert_eq!(sorted(s.co_member_ids(a.id, 100).await.unwrap()), sorted(vec![b.id, c.id]), "bob once, carol");
    assert_eq!(sorted(s.co_member_ids(c.id, 100).await.unwrap()), sorted(vec![a.id, b.id]));
    assert_eq!(s.co_member_ids(d.id, 100).await.unwrap(), Vec::<UserId>::new(), "dave is alone");
    assert_eq!(s.co_member_ids(UserId::new(), 100).await.unwrap(), Vec::<UserId>::new());
    let capped = s.co_member_ids(a.id, 1).await.unwrap();
    assert!(capped.len() == 1 && [b.id, c.id].contains(&capped[0]), "{capped:?}");
    assert!(s.co_member_ids(a.id, 0).await.unwrap().is_empty());

    s.remove_member(ab, b.id, b.id, Millis(3_000)).await.unwrap();
    assert_eq!(sorted(s.co_member_ids(a.id, 100).await.unwrap()), sorted(vec![b.id, c.id]), "bob still shares one");
    let (solo, _) = channel(s, &[d.id, a.id]).await;
    assert_eq!(sorted(s.co_member_ids(d.id, 100).await.unwrap()), vec![a.id]);
    s.remove_member(solo, a.id, a.id, Millis(4_000)).await.unwrap();
    assert!(s.co_member_ids(d.id, 100).await.unwrap().is_empty(), "alice left dave's only shared conversation");
}
