//! `StreamAckOffsets`: acks in, echoes and ack updates out.
//!
//! Each ack (`status` `DELIVERED`, the default, or `SEEN`/`READ`) goes through
//! `ChatService::ack` (membership checked, positions never lowered, clamped to the latest
//! seq); the caller gets an echo carrying the resulting position. The update is also published
//! on this process's [`AckHub`], from which every other open ack stream forwards it when its
//! caller is a member of the conversation (a user token; membership re-checked at most every
//! [`MEMBERSHIP_TTL`]) or is a service (which sees all, to route them itself). Acks recorded
//! through other interfaces (REST, STOMP) or on other core processes are not forwarded.
//!
//! The stream stays open after the client half-closes (it may only listen) until the client
//! cancels or the server shuts down; a refused ack ends it with that ack's status code.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chat_auth::Principal;
use chat_domain::{ConversationId, Millis, UserId};
use tokio::sync::{broadcast, mpsc};
use tonic::{Status, Streaming};

use crate::Shared;
use crate::authn::{acting_user, is_service, parse_id};
use crate::convert::timestamp;
use crate::error::domain_status;
use crate::pb::message::v1::AckOffset;

/// How long a stream trusts a membership answer before asking the store again.
pub(crate) const MEMBERSHIP_TTL: Duration = Duration::from_secs(5);

/// One recorded position, as broadcast between the ack streams of this process.
#[derive(Clone, Debug)]
pub(crate) struct AckUpdate {
    /// The stream that recorded it (not forwarded back to it: it got the echo).
    origin: u64,
    conversation_id: ConversationId,
    user_id: UserId,
    acked_seq: i64,
    status: &'static str,
    acked_at: Millis,
}

impl AckUpdate {
    fn to_proto(&self, client_msg_id: String) -> AckOffset {
        AckOffset {
            conversation_id: self.conversation_id.to_string(),
            user_id: self.user_id.to_string(),
            acked_seq: self.acked_seq,
            status: self.status.into(),
            client_msg_id,
            acked_at: Some(timestamp(self.acked_at)),
        }
    }
}

/// The broadcast of ack updates between the ack streams of this process. Bounded: a stream
/// that falls behind skips the oldest updates (positions only grow, later ones supersede).
pub(crate) struct AckHub {
    tx: broadcast::Sender<Arc<AckUpdate>>,
    /// Stream ids start at 1; 0 marks updates recorded outside a stream.
    next_stream: AtomicU64,
}

impl AckHub {
    /// A hub keeping at most `capacity` updates per lagging subscriber.
    pub(crate) fn new(capacity: usize) -> Self {
        AckHub { tx: broadcast::channel(capacity).0, next_stream: AtomicU64::new(1) }
    }
}

impl AckHub {
    /// Publishes positions recorded outside any ack stream (`UpdateReadPosition`) to every
    /// open ack stream.
    pub(crate) fn publish(&self, conversation_id: ConversationId, user_id: UserId, positions: &[(&'static str, i64)]) {
        for &(status, acked_seq) in positions {
            let update = AckUpdate { origin: 0, conversation_id, user_id, acked_seq, status, acked_at: Millis::now() };
            let _ = self.tx.send(Arc::new(update)); // Err: no open stream
        }
    }
}

/// Which position an ack moves.
fn parse_status(s: &str) -> Result<&'static str, Status> {
    match s.trim().to_ascii_uppercase().as_str() {
        "" | "DELIVERED" => Ok("DELIVERED"),
        "SEEN" | "READ" => Ok("SEEN"),
        _ => Err(Status::invalid_argument("invalid status: expected DELIVERED or SEEN")),
    }
}

/// Records one ack; returns the update (the echo is its proto form).
async fn record(shared: &Shared, p: &Principal, origin: u64, ack: &AckOffset) -> Result<AckUpdate, Status> {
    let user = acting_user(p, "user_id", &ack.user_id)?;
    if ack.conversation_id.trim().is_empty() {
        return Err(Status::invalid_argument("conversation_id is required"));
    }
    let conv: ConversationId = parse_id("conversation_id", &ack.conversation_id)?;
    let status = parse_status(&ack.status)?;
    let seq = Some(ack.acked_seq);
    let (delivered, seen) = if status == "SEEN" { (seq, seq) } else { (seq, None) };
    let member = shared.service.ack(user, conv, delivered, seen).await.map_err(domain_status)?;
    let acked_seq = if status == "SEEN" { member.seen_seq } else { member.delivered_seq };
    Ok(AckUpdate { origin, conversation_id: conv, user_id: user, acked_seq, status, acked_at: Millis::now() })
}

/// Per-stream membership cache for forwarding other members' updates.
struct Visibility {
    me: Option<UserId>,
    cache: HashMap<ConversationId, (bool, Instant)>,
}

impl Visibility {
    async fn visible(&mut self, shared: &Shared, conv: ConversationId) -> bool {
        let Some(me) = self.me else { return true }; // services see every update
        if let Some((member, at)) = self.cache.get(&conv)
            && at.elapsed() < MEMBERSHIP_TTL
        {
            return *member;
        }
        let member = matches!(shared.service.store().member(conv, me).await, Ok(Some(_)));
        if self.cache.len() > 10_000 {
            self.cache.clear();
        }
        self.cache.insert(conv, (member, Instant::now()));
        member
    }
}

/// Starts the stream's task; returns the receiving side of its responses.
pub(crate) fn start(
    shared: Arc<Shared>,
    p: Principal,
    input: Streaming<AckOffset>,
) -> mpsc::Receiver<Result<AckOffset, Status>> {
    let (tx, rx) = mpsc::channel(shared.cfg.stream_buffer);
    // Subscribed before the call is answered: updates recorded after that are forwarded.
    let updates = shared.hub.tx.subscribe();
    tokio::spawn(run(shared, p, input, updates, tx));
    rx
}

async fn run(
    shared: Arc<Shared>,
    p: Principal,
    mut input: Streaming<AckOffset>,
    mut updates: broadcast::Receiver<Arc<AckUpdate>>,
    tx: mpsc::Sender<Result<AckOffset, Status>>,
) {
    let origin = shared.hub.next_stream.fetch_add(1, Ordering::Relaxed);
    let mut visibility = Visibility { me: if is_service(&p) { None } else { p.user_id() }, cache: HashMap::new() };
    let mut input_open = true;
    loop {
        let out = tokio::select! {
            () = shared.shutdown.cancelled() => Err(Status::unavailable("server shutting down")),
            () = tx.closed() => return,
            msg = input.message(), if input_open => match msg {
                Ok(Some(ack)) => match record(&shared, &p, origin, &ack).await {
                    Ok(update) => {
                        let echo = update.to_proto(ack.client_msg_id.clone());
                        let _ = shared.hub.tx.send(Arc::new(update)); // Err: no other stream
                        Ok(echo)
                    }
                    Err(status) => Err(status),
                },
                Ok(None) => {
                    input_open = false;
                    continue;
                }
                Err(status) => Err(status),
            },
            update = updates.recv() => match update {
                Ok(u) if u.origin != origin && visibility.visible(&shared, u.conversation_id).await => {
                    Ok(u.to_proto(String::new()))
                }
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::debug!(skipped = n, "ack stream fell behind; oldest updates skipped");
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        let end = out.is_err();
        if tx.send(out).await.is_err() || end {
            return;
        }
    }
}
