//! Stress: 200 receiving connections (100 users × 2 devices), 20 channels, 5,000 messages
//! from 20 concurrent senders. Every device must get every message of its channels exactly
//! once, in seq order.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{Stack, TestUser, message_body, test_config};

const USERS: usize = 100;
const DEVICES: usize = 2;
const CHANNELS: usize = 20;
const MESSAGES: usize = 5_000;
const WINDOW: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_connections_many_messages_nothing_lost_or_reordered() {
    let started = Instant::now();
    let stack = Stack::start(test_config()).await;
    let mut users: Vec<TestUser> = Vec::new();
    for i in 0..USERS {
        users.push(stack.user(&format!("user{i}")).await);
    }
    let mut senders = Vec::new();
    for k in 0..CHANNELS {
        senders.push(stack.user(&format!("sender{k}")).await);
    }
    // User i is in channels i % 20 and (i * 7 + 3) % 20.
    let channels_of = |i: usize| {
        let (x, y) = (i % CHANNELS, (i * 7 + 3) % CHANNELS);
        if x == y { vec![x] } else { vec![x, y] }
    };
    let mut channels = Vec::new();
    for (k, sender) in senders.iter().enumerate() {
        let members: Vec<&TestUser> = (0..USERS).filter(|i| channels_of(*i).contains(&k)).map(|i| &users[i]).collect();
        channels.push(stack.channel(sender, &format!("c{k}"), &members).await);
    }
    eprintln!("setup: {:?}", started.elapsed());

    let per_channel = MESSAGES / CHANNELS;
    let mut receivers = Vec::new();
    for (i, user) in users.iter().enumerate() {
        for _ in 0..DEVICES {
            let mut c = stack.client(user).await;
            let mine: Vec<String> = channels_of(i).iter().map(|k| channels[*k].to_string()).collect();
            receivers.push(tokio::spawn(async move {
                let mut seqs: HashMap<String, Vec<i64>> = HashMap::new();
                let done = |seqs: &HashMap<String, Vec<i64>>| {
                    mine.iter().all(|conv| seqs.get(conv).map_or(0, Vec::len) >= per_channel)
                };
                while !done(&seqs) {
                    let Some(f) = c.next_frame_within(Duration::from_secs(60)).await else {
                        panic!("receiver stalled: {:?}", seqs.iter().map(|(k, v)| (k, v.len())).collect::<Vec<_>>());
                    };
                    if let Some(m) = message_body(&f, "/user/queue/messages")
                        && m["eventType"] == "MESSAGE"
                    {
                        seqs.entry(m["conversationId"].as_str().unwrap().to_owned())
                            .or_default()
                            .push(m["seq"].as_i64().unwrap());
                    }
                }
                for (conv, list) in &seqs {
                    assert!(list.windows(2).all(|w| w[0] < w[1]), "out of order or duplicate in {conv}");
                    assert_eq!(list.len(), per_channel, "count in {conv}");
                }
                c
            }));
        }
    }
    assert_eq!(stack.gateway.session_count(), USERS * DEVICES);
    eprintln!("connected {} receivers: {:?}", receivers.len(), started.elapsed());

    let send_start = Instant::now();
    let mut tasks = Vec::new();
    for (k, sender) in senders.iter().enumerate() {
        let mut c = stack.ws("/ws").await;
        c.connect(&[("authorization", &format!("Bearer {}", sender.token))]).await;
        let (conv, me) = (channels[k], sender.id);
        tasks.push(tokio::spawn(async move {
            let mut i = 0;
            while i < per_channel {
                let mut receipts = Vec::new();
                for _ in 0..WINDOW.min(per_channel - i) {
                    receipts.push(c.send_chat(conv, me, &format!("{k}-{i}"), &format!("message {i}")).await);
                    i += 1;
                }
                for r in receipts {
                    c.until_receipt(&r).await;
                }
            }
            c
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    eprintln!("sent {MESSAGES} in {:?}", send_start.elapsed());
    for r in receivers {
        r.await.unwrap();
    }
    eprintln!("delivered to all in {:?} (total {:?})", send_start.elapsed(), started.elapsed());
}
