//! The scenarios: [`fanout`], [`ingest`], [`idle`], [`catchup`], each against chat-sys and,
//! where it means something, against the peers and the limit in the same run.
//!
//! Every load scenario has the same *shape* whatever the system: `connections` clients,
//! grouped into conversations (channels, topics) of `members`, `senders` of which send into
//! their conversation. [`shape`] builds that plan for any protocol.

pub mod catchup;
pub mod fanout;
pub mod idle;
pub mod ingest;

use std::time::Duration;

use crate::BenchError;
use crate::load::{ConnPlan, LoadPlan, Pacing, StreamPlan};
use crate::rest::{Rest, User};
use crate::target::Topology;
use crate::wire::{Credential, Protocol};

/// The shape and pacing of a load run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Shape {
    /// Client connections.
    pub connections: usize,
    /// Members per conversation (connections per channel/topic).
    pub members: usize,
    /// Sending connections.
    pub senders: usize,
    /// Pacing.
    pub pacing: Pacing,
    /// Message body bytes.
    pub body_bytes: usize,
    /// Warm-up.
    pub warmup: Duration,
    /// Measurement window.
    pub duration: Duration,
    /// Drain: give up after this long without progress.
    pub drain: Duration,
    /// Source addresses 127.0.0.1..=N.
    pub source_addrs: u8,
    /// chat-sys: whether message events carry `conversationMemberIds`.
    pub member_ids: crate::wire::MemberIds,
}

impl Shape {
    /// Conversations: `connections / members`.
    pub fn conversations(&self) -> usize {
        self.connections / self.members.max(1)
    }

    /// Checks the shape.
    ///
    /// # Errors
    /// [`BenchError::Param`] when members is 0, connections is not a multiple of members,
    /// or there are more senders than connections.
    pub fn validate(&self) -> Result<(), BenchError> {
        if self.members == 0 || self.connections == 0 || !self.connections.is_multiple_of(self.members) {
            return Err(BenchError::Param(
                "members",
                format!("connections ({}) must be a positive multiple of members ({})", self.connections, self.members),
            ));
        }
        if self.senders > self.connections {
            return Err(BenchError::Param("senders", format!("{} > connections {}", self.senders, self.connections)));
        }
        if self.duration.is_zero() {
            return Err(BenchError::Param("duration", "must be positive".into()));
        }
        Ok(())
    }

    /// The parameters as report key/values.
    pub fn params(&self) -> std::collections::BTreeMap<String, serde_json::Value> {
        let mut m = std::collections::BTreeMap::new();
        m.insert("connections".into(), self.connections.into());
        m.insert("members".into(), self.members.into());
        m.insert("conversations".into(), self.conversations().into());
        m.insert("senders".into(), self.senders.into());
        m.insert("body_bytes".into(), self.body_bytes.into());
        m.insert("member_ids".into(), self.member_ids.as_str().into());
        m.insert("warmup_s".into(), self.warmup.as_secs_f64().into());
        m.insert("duration_s".into(), self.duration.as_secs_f64().into());
        match self.pacing {
            Pacing::Rate(r) => m.insert("offered_per_sec".into(), r.into()),
            Pacing::Window(w) => m.insert("window".into(), w.into()),
        };
        m
    }
}

/// Builds the plan of `shape` for `protocol`: connection `i` is a member of conversation
/// `i / members`; stream `s` sends into conversation `s % conversations` from its
/// `(s / conversations)`-th member. `url(i, conv)` and `credential(i)` give each connection
/// its URL and credential; `destinations[conv]` is each conversation's destination.
pub fn shape(
    protocol: Protocol,
    s: &Shape,
    destinations: Vec<String>,
    url: impl Fn(usize, usize) -> String,
    credential: impl Fn(usize) -> Credential,
    server_pids: Vec<u32>,
) -> LoadPlan {
    let k = s.conversations().max(1);
    let connections = (0..s.connections)
        .map(|i| ConnPlan {
            url: url(i, i / s.members),
            credential: credential(i),
            conversations: vec![(i / s.members) as u32],
            member_ids: s.member_ids,
        })
        .collect();
    let streams = (0..s.senders)
        .map(|j| StreamPlan { connection: (j % k) * s.members + j / k, conversation: (j % k) as u32 })
        .collect();
    LoadPlan {
        protocol,
        connections,
        destinations,
        streams,
        pacing: s.pacing,
        body_bytes: s.body_bytes,
        warmup: s.warmup,
        duration: s.duration,
        drain: s.drain,
        source_addrs: s.source_addrs,
        connect_concurrency: 128,
        read_buffer: 16 * 1024,
        server_pids,
    }
}

/// chat-sys setup for `shape`: one user per connection, one channel per conversation with
/// its members. Returns the users and the channel ids (destinations).
///
/// # Errors
/// REST failures.
pub async fn chat_sys_setup(
    topology: &Topology,
    s: &Shape,
    prefix: &str,
) -> Result<(Vec<User>, Vec<String>), BenchError> {
    let rest = Rest::new(&topology.rest);
    let users = rest.users(prefix, s.connections, 16).await?;
    let mut channels = Vec::with_capacity(s.conversations());
    for c in 0..s.conversations() {
        let group = &users[c * s.members..(c + 1) * s.members];
        let others: Vec<String> = group[1..].iter().map(|u| u.id.clone()).collect();
        channels.push(rest.channel(&group[0], &format!("{prefix}-c{c}"), &others).await?);
    }
    Ok((users, channels))
}

/// The chat-sys plan of `shape` over prepared users and channels.
pub fn chat_sys_plan(topology: &Topology, s: &Shape, users: &[User], channels: &[String]) -> LoadPlan {
    let gws = topology.gateways.clone();
    shape(
        Protocol::ChatSys,
        s,
        channels.to_vec(),
        |i, _| gws[i % gws.len().max(1)].clone(),
        |i| Credential::Bearer(users[i].token.clone()),
        topology.pids.clone(),
    )
}

/// Prints one progress line on stderr.
pub fn progress(what: &str) {
    eprintln!("chat-bench: {what}");
}
