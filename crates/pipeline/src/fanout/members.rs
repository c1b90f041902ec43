//! The fanout worker's member cache: the member lists of recently fanned-out conversations, so
//! that most events need no [`chat_storage::ConversationStore::member_ids_of`] read.
//!
//! # The rule (exact without rebalance hooks)
//!
//! It rests on two facts of the storage layer: every event of a conversation carries a seq,
//! gap-free per conversation (`chat_storage`'s append paths), and every change of a
//! conversation's membership appends a `USER_JOINED` or `USER_LEFT` event to that
//! conversation in the same transaction (creation, add, remove: the only writes of
//! `conversation_members`; nothing deletes conversations or users).
//!
//! An entry holds, for one conversation, a member list read from the store and `last`: the
//! highest seq this worker fanned out with that list. The list was read after event `last`
//! committed (the log only holds committed events), so it is the membership at some position
//! at or after `last`. An event may use the entry only when
//! - it is not a membership event (`USER_JOINED`, `USER_LEFT`): those always re-read, so
//!   their own recipients are computed exactly as without the cache (and `USER_LEFT` still adds
//!   the user who left); and
//! - its seq is `last + 1`: there is no event between `last` and it, hence no membership
//!   change the list may have missed; or its seq is `<= last`: a re-published duplicate
//!   (clients drop it by seq; without the cache it got the current members too).
//!
//! Anything else re-reads: a conversation seen for the first time (or evicted, or after a
//! restart), and a gap in seqs (the events in between were fanned out elsewhere, e.g. by
//! another worker of the group while a Kafka rebalance gave it the partition, or were never
//! read). Within one batch, a conversation's events before its first miss use the entry, and
//! from the first miss on the batch's read (one `member_ids_of` call for all the misses of
//! the batch), which is what every event used before the cache existed: the membership when
//! the batch is planned, which may already include changes of later events of the batch.
//! Entries change only after the batch's deliveries were written (a failed batch is retried
//! with the cache as it was).
//!
//! # Bound
//!
//! At most `max_conversations` entries and `max_ids` member ids over all entries
//! ([`crate::FanoutConfig::member_cache_conversations`] and
//! [`crate::FanoutConfig::member_cache_ids`]; 16 bytes per id, about 100 bytes per entry);
//! past either, the least recently used entries are evicted. A conversation with more than
//! `max_ids` members is never kept (and evicts nothing). Either limit at 0 disables the cache.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chat_domain::{ConversationEvent, ConversationId, EventPayload, UserId};

/// A conversation's member ids: ascending, distinct, shared between the cache and the events
/// of a batch.
pub(crate) type Members = Arc<[UserId]>;

/// Sorts and dedupes `ids` into a [`Members`].
pub(crate) fn members_from(mut ids: Vec<UserId>) -> Members {
    ids.sort_unstable();
    ids.dedup();
    ids.into()
}

/// Whether `ev` changes its conversation's membership (and so must not use the cache).
fn changes_membership(ev: &ConversationEvent) -> bool {
    matches!(ev.payload, EventPayload::UserJoined { .. } | EventPayload::UserLeft { .. })
}

/// One cached conversation.
struct Entry {
    /// Highest seq fanned out with `members` (see the module doc).
    last: i64,
    members: Members,
    /// Position in [`MemberCache::order`].
    stamp: u64,
}

/// The cache (see the module doc). Owned by the worker's single task: no lock.
pub(crate) struct MemberCache {
    entries: HashMap<ConversationId, Entry>,
    /// Use order: stamp → conversation; the lowest stamp is the least recently used.
    order: BTreeMap<u64, ConversationId>,
    next_stamp: u64,
    /// Member ids over all entries.
    ids: usize,
    max_conversations: usize,
    max_ids: usize,
}

/// How a batch's events of one conversation get their members (see [`MemberCache::lookup`]).
struct Walk {
    /// The cache entry's list, if the conversation had one.
    cached: Option<Members>,
    /// Whether an event missed: that one and every later event of the conversation in the
    /// batch use the batch's read; the events before it use `cached`.
    read: bool,
    /// The highest seq of the batch's events and of the entry's `last`: the entry's `last`
    /// after the batch (the read, if any, happened after all of them committed).
    last: i64,
}

/// Where one event takes its members from.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum Source {
    /// The cache entry of its conversation.
    Cached,
    /// The batch's store read.
    Read,
}

/// The result of [`MemberCache::lookup`] for one batch.
pub(crate) struct Lookup {
    /// Per event of the batch, in order.
    sources: Vec<Source>,
    walks: HashMap<ConversationId, Walk>,
}

impl Lookup {
    /// Conversations to read (ascending, distinct): those with at least one [`Source::Read`]
    /// event. Empty when every event hit the cache.
    pub(crate) fn misses(&self) -> Vec<ConversationId> {
        let mut convs: Vec<ConversationId> = self.walks.iter().filter(|(_, w)| w.read).map(|(c, _)| *c).collect();
        convs.sort_unstable();
        convs
    }

    /// Per event of `events` (the batch given to [`MemberCache::lookup`]), its source and
    /// members, taking the misses' members from `read` (a [`Lookup::misses`] conversation
    /// absent from it has no members); and the cache update to apply once the batch is
    /// delivered ([`MemberCache::apply`]).
    pub(crate) fn resolve(
        self,
        events: &[Arc<ConversationEvent>],
        mut read: HashMap<ConversationId, Vec<UserId>>,
    ) -> (Vec<(Source, Members)>, Update) {
        let mut update = Update { entries: Vec::with_capacity(self.walks.len()) };
        let mut lists: HashMap<ConversationId, (Option<Members>, Option<Members>)> =
            HashMap::with_capacity(self.walks.len());
        for (conv, walk) in self.walks {
            let fresh = walk.read.then(|| members_from(read.remove(&conv).unwrap_or_default()));
            // Every walk has a cached list or read one (a walk without an entry reads).
            if let Some(members) = fresh.as_ref().or(walk.cached.as_ref()) {
                update.entries.push((conv, walk.last, Arc::clone(members)));
            }
            lists.insert(conv, (walk.cached, fresh));
        }
        let empty: Members = Arc::from([]);
        let per_event = events
            .iter()
            .zip(self.sources)
            .map(|(ev, source)| {
                let (cached, fresh) = &lists[&ev.conversation_id];
                let members = match source {
                    Source::Cached => cached.as_ref(),
                    Source::Read => fresh.as_ref(),
                };
                (source, Arc::clone(members.unwrap_or(&empty)))
            })
            .collect();
        (per_event, update)
    }
}

/// Cache entries to store after a delivered batch: (conversation, last, members).
pub(crate) struct Update {
    entries: Vec<(ConversationId, i64, Members)>,
}

impl MemberCache {
    /// An empty cache holding at most `max_conversations` entries and `max_ids` member ids.
    pub(crate) fn new(max_conversations: usize, max_ids: usize) -> Self {
        MemberCache {
            entries: HashMap::new(),
            order: BTreeMap::new(),
            next_stamp: 0,
            ids: 0,
            max_conversations,
            max_ids,
        }
    }

    /// Number of cached conversations.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Member ids held over all entries.
    #[cfg(test)]
    pub(crate) fn ids(&self) -> usize {
        self.ids
    }

    /// Decides, for each of `events` (a batch, in log order), whether it may use the cache
    /// (see the module doc). Changes nothing.
    pub(crate) fn lookup(&self, events: &[Arc<ConversationEvent>]) -> Lookup {
        let mut walks: HashMap<ConversationId, Walk> = HashMap::new();
        let mut sources = Vec::with_capacity(events.len());
        for ev in events {
            let walk = walks.entry(ev.conversation_id).or_insert_with(|| match self.entries.get(&ev.conversation_id) {
                Some(e) => Walk { cached: Some(Arc::clone(&e.members)), read: false, last: e.last },
                None => Walk { cached: None, read: true, last: i64::MIN },
            });
            let hit = !walk.read && !changes_membership(ev) && ev.seq <= walk.last.saturating_add(1);
            walk.read |= !hit;
            walk.last = walk.last.max(ev.seq);
            sources.push(if hit { Source::Cached } else { Source::Read });
        }
        Lookup { sources, walks }
    }

    /// Stores the entries of a delivered batch (most recently used now), then evicts the least
    /// recently used entries past the bounds.
    pub(crate) fn apply(&mut self, update: Update) {
        for (conv, last, members) in update.entries {
            if members.len() > self.max_ids || self.max_conversations == 0 {
                // Never kept: it would evict everything else and then itself.
                if let Some(old) = self.entries.remove(&conv) {
                    self.order.remove(&old.stamp);
                    self.ids -= old.members.len();
                }
                continue;
            }
            let stamp = self.next_stamp;
            self.next_stamp += 1;
            self.order.insert(stamp, conv);
            self.ids += members.len();
            let new = Entry { last, members, stamp };
            if let Some(old) = self.entries.insert(conv, new) {
                self.order.remove(&old.stamp);
                self.ids -= old.members.len();
            }
        }
        while self.entries.len() > self.max_conversations || self.ids > self.max_ids {
            let Some((_, conv)) = self.order.pop_first() else { break };
            if let Some(old) = self.entries.remove(&conv) {
                self.ids -= old.members.len();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chat_domain::{EventId, MemberRole, MessageId, Millis};

    use super::*;

    fn ev(conv: ConversationId, seq: i64, payload: EventPayload) -> Arc<ConversationEvent> {
        Arc::new(ConversationEvent {
            event_id: EventId::new(),
            conversation_id: conv,
            seq,
            actor_id: UserId::new(),
            created_at: Millis(0),
            payload,
        })
    }

    fn msg(conv: ConversationId, seq: i64) -> Arc<ConversationEvent> {
        ev(conv, seq, EventPayload::MessagePinned { message_id: MessageId::new(), pinned_by: UserId::new() })
    }

    /// Runs one batch through lookup, a fake read returning `members` for every miss, and apply;
    /// checks that read events got `members`.
    fn run(cache: &mut MemberCache, events: &[Arc<ConversationEvent>], members: &[UserId]) -> Vec<Source> {
        let lookup = cache.lookup(events);
        let read = lookup.misses().into_iter().map(|c| (c, members.to_vec())).collect();
        let (per_event, update) = lookup.resolve(events, read);
        cache.apply(update);
        for (s, m) in &per_event {
            if *s == Source::Read {
                assert_eq!(*m, members_from(members.to_vec()));
            }
        }
        per_event.into_iter().map(|(s, _)| s).collect()
    }

    #[test]
    fn events_before_the_first_miss_get_the_cached_list_and_the_rest_the_read() {
        let mut cache = MemberCache::new(10, 1000);
        let c = ConversationId::new();
        let (old, new) = ([UserId::new(), UserId::new()], [UserId::new()]);
        run(&mut cache, &[msg(c, 1)], &old);
        let left = ev(c, 3, EventPayload::UserLeft { user_id: old[1] });
        let batch = [msg(c, 2), left, msg(c, 4)];
        let lookup = cache.lookup(&batch);
        assert_eq!(lookup.misses(), vec![c]);
        let (per_event, update) = lookup.resolve(&batch, HashMap::from([(c, new.to_vec())]));
        let got: Vec<(Source, Vec<UserId>)> = per_event.into_iter().map(|(s, m)| (s, m.to_vec())).collect();
        let old_sorted = members_from(old.to_vec()).to_vec();
        assert_eq!(got, vec![(Source::Cached, old_sorted), (Source::Read, new.to_vec()), (Source::Read, new.to_vec())]);
        cache.apply(update);
        let next = [msg(c, 5)];
        let (per_event, _) = cache.lookup(&next).resolve(&next, HashMap::new());
        assert_eq!(per_event[0].1.to_vec(), new.to_vec(), "the entry now holds the read list, last = 4");
    }

    #[test]
    fn next_seq_and_duplicates_hit_gaps_and_membership_events_miss() {
        let mut cache = MemberCache::new(10, 1000);
        let c = ConversationId::new();
        let u = [UserId::new(), UserId::new()];
        use Source::{Cached as C, Read as R};
        assert_eq!(run(&mut cache, &[msg(c, 5)], &u), vec![R], "first sight");
        assert_eq!(run(&mut cache, &[msg(c, 6), msg(c, 7), msg(c, 3)], &u), vec![C, C, C]);
        assert_eq!(run(&mut cache, &[msg(c, 9)], &u), vec![R], "gap: 8 was fanned out elsewhere");
        let joined = ev(c, 10, EventPayload::UserJoined { user_id: u[0], role: MemberRole::Member });
        assert_eq!(run(&mut cache, &[joined, msg(c, 11)], &u), vec![R, R], "from the first miss on: the read");
        assert_eq!(run(&mut cache, &[msg(c, 12), ev(c, 13, EventPayload::UserLeft { user_id: u[1] })], &u), vec![C, R]);
        assert_eq!(run(&mut cache, &[msg(c, 14)], &u), vec![C]);
    }

    #[test]
    fn least_recently_used_entries_are_evicted_past_either_bound() {
        let three: Vec<UserId> = (0..3).map(|_| UserId::new()).collect();
        let mut cache = MemberCache::new(2, 1000);
        let (a, b, c) = (ConversationId::new(), ConversationId::new(), ConversationId::new());
        run(&mut cache, &[msg(a, 1)], &three);
        run(&mut cache, &[msg(b, 1)], &three);
        run(&mut cache, &[msg(a, 2)], &three); // a is now more recent than b
        run(&mut cache, &[msg(c, 1)], &three);
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.ids(), 6);
        assert_eq!(run(&mut cache, &[msg(a, 3)], &three), vec![Source::Cached]);
        assert_eq!(run(&mut cache, &[msg(b, 2)], &three), vec![Source::Read], "b was evicted");

        let mut cache = MemberCache::new(100, 7);
        run(&mut cache, &[msg(a, 1)], &three);
        run(&mut cache, &[msg(b, 1)], &three);
        run(&mut cache, &[msg(c, 1)], &three);
        assert_eq!((cache.len(), cache.ids()), (2, 6), "a third list of 3 ids would exceed 7");
        let big: Vec<UserId> = (0..8).map(|_| UserId::new()).collect();
        run(&mut cache, &[msg(ConversationId::new(), 1)], &big);
        assert_eq!((cache.len(), cache.ids()), (2, 6), "a list larger than the bound is not kept, evicts nothing");

        let mut off = MemberCache::new(0, 1000);
        assert_eq!(run(&mut off, &[msg(a, 1)], &three), vec![Source::Read]);
        assert_eq!(run(&mut off, &[msg(a, 2)], &three), vec![Source::Read], "0 disables the cache");
    }
}
