//! Tests of the member cache's batch warm-up ([`MemberCache::prefetch`], [`members_needed`])
//! over a real in-process core and SQLite store.

use std::sync::atomic::AtomicUsize;

use chat_auth::Authenticator;
use chat_core::service::{ChatService, CreateChannel, SendMessage};
use chat_domain::{EventKind, Millis, WorkspaceId};
use chat_pipeline::EphemeralSignal;
use tokio::sync::Barrier;

use super::*;
use crate::core::InProcessCore;
use crate::test_support::{Tap, TappedCore, sqlite_service};

/// Counts member list loads of a [`TappedCore`]. The first `hold` loads wait for each other
/// in groups of [`PREFETCH_CONCURRENCY`], so loading them one after another never finishes.
struct Counting {
    loads: AtomicUsize,
    hold: usize,
    gate: Barrier,
}

#[async_trait::async_trait]
impl Tap for Counting {
    async fn before_member_ids(&self) {
        if self.loads.fetch_add(1, Ordering::SeqCst) < self.hold {
            self.gate.wait().await;
        }
    }
}

/// A service over a temporary SQLite store, and its users `names`.
async fn service(dir: &tempfile::TempDir, names: &[&str]) -> (ChatService, Authenticator, Vec<UserId>) {
    let (service, auth) = sqlite_service(dir).await;
    let mut ids = Vec::new();
    for name in names {
        ids.push(auth.register(WorkspaceId::DEFAULT, name, "password-1", None).await.expect("register").id);
    }
    (service, auth, ids)
}

async fn channel(service: &ChatService, owner: UserId, members: &[UserId], name: &str) -> ConversationId {
    let req = CreateChannel { name: name.into(), member_ids: members.to_vec(), ..Default::default() };
    service.create_channel(owner, req).await.expect("channel").id
}

/// Cold lists are loaded concurrently (bounded), each once; later `get`s hit the cache; a
/// refused pair is not cached and `get` then reports the refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefetch_loads_cold_lists_concurrently_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (service, auth, ids) = service(&dir, &["alice", "bob", "carol"]).await;
    let [alice, bob, carol] = ids[..] else { unreachable!() };
    let mut shared = Vec::new();
    for i in 0..2 * PREFETCH_CONCURRENCY - 1 {
        shared.push(channel(&service, alice, &[bob], &format!("c{i}")).await);
    }
    let carols = channel(&service, carol, &[], "carols").await;
    let core = TappedCore {
        inner: InProcessCore::new(service, auth),
        tap: Counting {
            loads: AtomicUsize::new(0),
            hold: 2 * PREFETCH_CONCURRENCY,
            gate: Barrier::new(PREFETCH_CONCURRENCY),
        },
    };
    let cache = MemberCache::new(Duration::from_secs(600));
    let wanted: Vec<_> = shared.iter().map(|c| (alice, *c)).chain([(alice, carols)]).collect();
    let loaded = tokio::time::timeout(Duration::from_secs(60), cache.prefetch(&core, wanted))
        .await
        .expect("loads run PREFETCH_CONCURRENCY at a time (one after another never passes the gate)");
    assert_eq!(loaded, shared.len(), "every list alice may read was loaded");
    assert_eq!(core.tap.loads.load(Ordering::SeqCst), shared.len() + 1);
    for c in &shared {
        let mut got = cache.get(&core, bob, *c).await.expect("bob is a member").to_vec();
        got.sort();
        let mut want = vec![alice, bob];
        want.sort();
        assert_eq!(got, want);
    }
    assert_eq!(core.tap.loads.load(Ordering::SeqCst), shared.len() + 1, "cache hits load nothing");
    assert!(cache.get(&core, alice, carols).await.is_err(), "alice is not a member of carol's channel");
    assert_eq!(core.tap.loads.load(Ordering::SeqCst), shared.len() + 2, "the refusal was not cached");
}

/// One pair per conversation whose message events need members, taken from its first such
/// event and only before the conversation's first membership event in the batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_needed_is_one_pair_per_conversation_until_a_membership_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (service, _auth, ids) = service(&dir, &["alice", "bob", "carol"]).await;
    let [alice, bob, carol] = ids[..] else { unreachable!() };
    let (x, y, z) = (
        channel(&service, alice, &[bob], "x").await,
        channel(&service, alice, &[bob], "y").await,
        channel(&service, alice, &[], "z").await,
    );
    for conv in [x, x, y, z] {
        let req = SendMessage { conversation_id: conv, text: "hi".into(), ..Default::default() };
        service.send(alice, req).await.expect("send");
    }
    let of = |evs: &[ConversationEvent], kind: EventKind| -> Vec<Arc<ConversationEvent>> {
        evs.iter().filter(|e| e.kind() == kind).cloned().map(Arc::new).collect()
    };
    let xs = of(&service.events_after(alice, x, 0, 100).await.unwrap(), EventKind::Message);
    let ym = of(&service.events_after(alice, y, 0, 100).await.unwrap(), EventKind::Message);
    let zs = service.events_after(alice, z, 0, 100).await.unwrap();
    let (zm, zj) = (of(&zs, EventKind::Message), of(&zs, EventKind::UserJoined));
    let event = |e: &Arc<ConversationEvent>, recipients: &[UserId]| DeliveryEntry {
        id: 0,
        delivery: GatewayDelivery::Event { event: e.clone(), recipients: recipients.to_vec() },
    };
    let signal = EphemeralSignal {
        conversation_id: Some(x),
        kind: "TYPING".into(),
        actor_id: alice,
        payload: serde_json::json!({"typing": true}),
        exclude_connection: None,
        created_at: Millis::now(),
    };
    let entries = vec![
        DeliveryEntry {
            id: 0,
            delivery: GatewayDelivery::Ephemeral { signal: Arc::new(signal), recipients: vec![carol] },
        },
        event(&zj[0], &[alice]),
        event(&xs[0], &[bob, alice]),
        event(&xs[1], &[alice, bob]),
        event(&zm[0], &[alice]),
        event(&ym[0], &[]),
        event(&ym[0], &[alice]),
    ];
    assert_eq!(members_needed(&entries), vec![(bob, x), (alice, y)]);
}
