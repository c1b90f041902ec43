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
