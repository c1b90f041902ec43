//! Consumer groups against a real broker (`bash scripts/kafka.sh start`): partitions split
//! between members, stale commits after a rebalance are not applied, and a member killed with
//! SIGKILL (a crash: no leave-group) hands everything it had not committed to the survivor.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chat_domain::EventId;
use chat_kafka::KafkaLog;
use chat_pipeline::{EventConsumer, EventLog, LogRecord};
use common::{Commit, PATIENCE, config, delete_topic, event_ids, events, group, ids, partitions_of, read_until};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// Event ids of `records` whose partition is in `parts`.
fn ids_in(part_of: &BTreeMap<EventId, u32>, parts: &[u32]) -> BTreeSet<EventId> {
    part_of.iter().filter(|(_, p)| parts.contains(p)).map(|(id, _)| *id).collect()
}

fn is_split_of(a: &[u32], b: &[u32], n: u32) -> bool {
    let union: BTreeSet<u32> = a.iter().chain(b).copied().collect();
    !a.is_empty() && !b.is_empty() && a.len() + b.len() == n as usize && union == (0..n).collect()
}

#[tokio::test]
async fn a_stale_commit_after_a_rebalance_is_not_applied() {
    let cfg = config(4);
    let log = KafkaLog::connect(cfg.clone()).await.expect("connect");
    let evs = events(16, 3);
    log.publish(&evs).await.expect("publish");
    let g = group();

    // A alone: all partitions, reads everything (the batch that goes stale).
    let mut a = log.consumer(&g).await.expect("consumer A");
    let mut stale = Vec::new();
    read_until(&mut a, &mut stale, Commit::Never, "A reading everything", |_, got| ids(got).len() == evs.len()).await;
    assert_eq!(a.assignment(), vec![0, 1, 2, 3]);
    let part_of = partitions_of(&stale);
    let e0 = a.epoch();

    // B joins: the group rebalances; A reads its new partitions again from the start.
    let mut b = log.consumer(&g).await.expect("consumer B");
    let (mut fresh_a, mut got_b) = (Vec::new(), Vec::new());
    let a_rebalanced = |a: &chat_kafka::KafkaConsumer, got: &[LogRecord]| {
        let parts = a.assignment();
        let now: Vec<LogRecord> = got.iter().filter(|r| r.epoch == a.epoch()).cloned().collect();
        a.epoch() > e0 && !parts.is_empty() && parts.len() < 4 && ids(&now).is_superset(&ids_in(&part_of, &parts))
    };
    tokio::join!(
        read_until(&mut a, &mut fresh_a, Commit::Never, "A's new assignment", a_rebalanced),
        read_until(&mut b, &mut got_b, Commit::Never, "B's assignment", |b, _| !b.assignment().is_empty()),
    );
    let (a_parts, b_parts) = (a.assignment(), b.assignment());
    assert!(is_split_of(&a_parts, &b_parts, 4), "A {a_parts:?} and B {b_parts:?} split the 4 partitions");
    assert!(stale.iter().all(|r| r.epoch < a.epoch()), "the first batch is of an older epoch");

    // The stale batch covers B's partitions: its commit must be skipped. The fresh records of
    // A's partitions are committed.
    a.commit(&stale).await.expect("stale commit is skipped, not an error");
    let fresh: Vec<LogRecord> = fresh_a.iter().filter(|r| r.epoch == a.epoch()).cloned().collect();
    a.commit(&fresh).await.expect("commit");
    a.close().await;
    b.close().await;

    // A new member finds exactly B's partitions uncommitted.
    let expected = ids_in(&part_of, &b_parts);
    let mut c = log.consumer(&g).await.expect("consumer C");
    let mut got_c = Vec::new();
    read_until(&mut c, &mut got_c, Commit::Never, "B's records via C", |_, got| ids(got).is_superset(&expected)).await;
    assert_eq!(ids(&got_c), expected, "only B's partitions were left uncommitted");
    c.close().await;
    delete_topic(&cfg).await;
}

/// What the child consumer printed.
#[derive(Debug, Default)]
struct ChildView {
    assignment: Vec<u32>,
    epoch: u64,
    /// (epoch, event id, partition) per record.
    records: Vec<(u64, EventId, u32)>,
}

impl ChildView {
    fn ids_at(&self, epoch: u64) -> BTreeSet<EventId> {
        self.records.iter().filter(|(e, _, _)| *e == epoch).map(|(_, id, _)| *id).collect()
    }
}

async fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn two_members_split_partitions_and_a_killed_one_hands_over_everything_uncommitted() {
    let cfg = config(4);
    let log = KafkaLog::connect(cfg.clone()).await.expect("connect");
    let evs = events(16, 4);
    log.publish(&evs).await.expect("publish");
    let all = event_ids(&evs);
    let g = group();

    // The member to be killed runs in its own process and never commits.
    let mut child = Command::new(env!("CARGO_BIN_EXE_chat-kafka-consume"))
        .args(["--bootstrap", &cfg.bootstrap, "--topic", &cfg.topic, "--group", &g, "--commit", "never"])
        .args(["--session-timeout-ms", &cfg.session_timeout.as_millis().to_string()])
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn chat-kafka-consume");
    let view = Arc::new(Mutex::new(ChildView::default()));
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let reader = {
        let view = Arc::clone(&view);
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let v: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
                let mut view = view.lock().unwrap();
                if let Some(parts) = v.get("assignment") {
                    view.assignment = serde_json::from_value(parts.clone()).expect("partitions");
                    view.epoch = v["epoch"].as_u64().expect("epoch");
                } else {
                    let id: EventId = serde_json::from_value(v["event_id"].clone()).expect("event id");
                    let partition = v["partition"].as_u64().expect("partition") as u32;
                    view.records.push((v["epoch"].as_u64().expect("epoch"), id, partition));
                }
            }
        })
    };
    let child_read_all = || {
        let v = view.lock().unwrap();
        v.assignment.len() == 4 && v.ids_at(v.epoch) == all
    };
    wait_for("the child to read everything alone", child_read_all).await;
    let part_of: BTreeMap<EventId, u32> = view.lock().unwrap().records.iter().map(|(_, id, p)| (*id, *p)).collect();

    // A joins: the partitions are split; each reads its own (the child from the start again).
    let mut a = log.consumer(&g).await.expect("consumer A");
    let mut got_a = Vec::new();
    read_until(&mut a, &mut got_a, Commit::EachBatch, "the split", |a, got| {
        let v = view.lock().unwrap();
        let mine = a.assignment();
        let a_now: Vec<LogRecord> = got.iter().filter(|r| r.epoch == a.epoch()).cloned().collect();
        is_split_of(&mine, &v.assignment, 4)
            && ids(&a_now).is_superset(&ids_in(&part_of, &mine))
            && v.ids_at(v.epoch).is_superset(&ids_in(&part_of, &v.assignment))
    })
    .await;
    let (mine, childs) = (a.assignment(), view.lock().unwrap().assignment.clone());
    assert!(is_split_of(&mine, &childs, 4), "A {mine:?} and the child {childs:?} split the 4 partitions");

    // Crash: SIGKILL, so the child never leaves the group; the broker drops it after the
    // session timeout and A gets its partitions, from the group's commit (none for them).
    child.start_kill().expect("SIGKILL");
    child.wait().await.expect("child exit");
    reader.await.expect("reader");
    let before = got_a.len();
    read_until(&mut a, &mut got_a, Commit::EachBatch, "A taking over", |a, got| {
        a.assignment() == vec![0, 1, 2, 3] && ids(&got[before..]).is_superset(&ids_in(&part_of, &childs))
    })
    .await;
    let taken: Vec<&LogRecord> = got_a[before..].iter().filter(|r| childs.contains(&r.position.partition)).collect();
    for p in &childs {
        assert!(
            taken.iter().any(|r| r.position.partition == *p && r.position.offset == 0),
            "partition {p} restarts at offset 0 (the child committed nothing)"
        );
    }
    assert_eq!(ids(&got_a), all, "A has now seen every event");
    a.close().await;
    delete_topic(&cfg).await;
}
