//! `/app/typing`: typing indicators (ephemeral, no seq), with expiry and a per-user rate
//! limit.
//!
//! A client sends `{conversationId, typing:true}` while its user types (refreshing it every
//! few seconds) and `{typing:false}` when the user stops. The other members' devices (never
//! the typist's own) receive
//! `{eventType:"TYPING", conversationId, userId, typing:true, ttlMs:5000}`: a start expires
//! [`TYPING_TTL_MS`] after it was received unless refreshed, so a client that vanishes
//! without a stop leaves no indicator behind. A stop is `{..., typing:false}`; the gateway
//! also sends one for every conversation the session was typing in when the session ends.
//!
//! Rate limit, per user and conversation on this gateway node (all of a user's sessions
//! share it): at most one start is forwarded per [`TYPING_REFRESH_MS`]; a stop is forwarded
//! only when a start was forwarded within the TTL. Extra frames are dropped silently, as the
//! big chat systems do (a typing frame is a hint, not a command; an ERROR would close the
//! connection), and counted in the metric [`TYPING_DROPPED_METRIC`]. Typing frames still
//! count against the session's frame rate (`send_rate_per_sec`).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use chat_domain::{ConversationId, Millis, UserId};
use chat_pipeline::EphemeralSignal;

use super::send::domain_error;
use super::{Session, StompError};
use crate::json::TypingSend;

/// A forwarded typing start expires this long after it was received unless refreshed
/// (the `ttlMs` of the signal).
pub const TYPING_TTL_MS: u64 = 5_000;
/// At most one typing start per user and conversation is forwarded per this interval.
pub const TYPING_REFRESH_MS: u64 = 1_000;
/// Counter of typing frames dropped by the rate limit (label `typing`: `start` or `stop`).
pub const TYPING_DROPPED_METRIC: &str = "gateway_typing_dropped_total";
/// The gate forgets expired entries when it holds more than this many.
const PRUNE_AT: usize = 100_000;

/// Forwarded typing starts per (user, conversation) on this node.
///
/// Concurrency: one `std::sync::Mutex` over a map, held for a lookup and an insert, never
/// across an `.await`. It is process-wide (every gateway of the process shares it, which is
/// what "per user on this node" means when one process runs one gateway).
#[derive(Debug, Default)]
pub(crate) struct TypingGate {
    last_start: Mutex<HashMap<(UserId, ConversationId), StartState>>,
}

/// The last forwarded start of a (user, conversation), and whether a stop has ended it. A
/// stop keeps the instant, so alternating start/stop frames cannot beat the start rate.
#[derive(Clone, Copy, Debug)]
struct StartState {
    at: Instant,
    active: bool,
}

impl TypingGate {
    /// The process-wide gate.
    pub fn global() -> &'static TypingGate {
        static GATE: OnceLock<TypingGate> = OnceLock::new();
        GATE.get_or_init(TypingGate::default)
    }

    /// Whether a start at `now` is forwarded (none forwarded within [`TYPING_REFRESH_MS`]).
    pub fn start(&self, user: UserId, conv: ConversationId, now: Instant) -> bool {
        let mut map = self.last_start.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(last) = map.get(&(user, conv))
            && now.saturating_duration_since(last.at) < Duration::from_millis(TYPING_REFRESH_MS)
        {
            return false;
        }
        if map.len() >= PRUNE_AT {
            map.retain(|_, last| now.saturating_duration_since(last.at) < Duration::from_millis(TYPING_TTL_MS));
        }
        map.insert((user, conv), StartState { at: now, active: true });
        true
    }

    /// Whether a stop at `now` is forwarded (a start was forwarded within the TTL and not
    /// stopped yet); ends the start but keeps its instant for the start rate.
    pub fn stop(&self, user: UserId, conv: ConversationId, now: Instant) -> bool {
        let mut map = self.last_start.lock().unwrap_or_else(|e| e.into_inner());
        match map.get_mut(&(user, conv)) {
            Some(last) if last.active => {
                last.active = false;
                now.saturating_duration_since(last.at) < Duration::from_millis(TYPING_TTL_MS)
            }
            _ => false,
        }
    }
}

impl Session {
    /// Handles a `/app/typing` body: authorizes (membership), applies the gate, forwards. A
    /// signal the gate drops is authorized against the cached member list; one that is
    /// forwarded, against the core's current list (which also names its recipients), so a
    /// removed member's typing is refused even while a cached list still holds them.
    pub(super) async fn send_typing(&mut self, body: TypingSend) -> Result<(), StompError> {
        let me = self.identity();
        let shared = &self.shared;
        shared.members.get(shared.core.as_ref(), me.user_id, body.conversation_id).await.map_err(domain_error)?;
        let gate = TypingGate::global();
        let now = Instant::now();
        let forward = if body.typing {
            gate.start(me.user_id, body.conversation_id, now)
        } else {
            gate.stop(me.user_id, body.conversation_id, now)
        };
        if !forward {
            let kind = if body.typing { "start" } else { "stop" };
            metrics::counter!(TYPING_DROPPED_METRIC, "typing" => kind).increment(1);
            return Ok(());
        }
        let members =
            shared.members.fetch(shared.core.as_ref(), me.user_id, body.conversation_id).await.map_err(domain_error)?;
        if body.typing {
            if self.typing_in.len() >= 1024 {
                self.typing_in
                    .retain(|_, at| now.saturating_duration_since(*at) < Duration::from_millis(TYPING_TTL_MS));
            }
            self.typing_in.insert(body.conversation_id, now);
        } else {
            self.typing_in.remove(&body.conversation_id);
        }
        let others: Vec<UserId> = members.iter().copied().filter(|u| *u != me.user_id).collect();
        self.forward_typing(body.conversation_id, body.typing, others).await;
        Ok(())
    }

    /// At session end: a stop for every conversation this session forwarded a start in
    /// within the TTL.
    pub(super) async fn stop_typing_on_close(&mut self) {
        let Some(me) = self.identity else { return };
        let now = Instant::now();
        let open: Vec<ConversationId> = self.typing_in.drain().map(|(c, _)| c).collect();
        for conv in open {
            if !TypingGate::global().stop(me.user_id, conv, now) {
                continue;
            }
            let shared = &self.shared;
            if let Ok(members) = shared.members.get(shared.core.as_ref(), me.user_id, conv).await {
                let others: Vec<UserId> = members.iter().copied().filter(|u| *u != me.user_id).collect();
                self.forward_typing(conv, false, others).await;
            }
        }
    }

    /// Publishes the signal to `recipients`' devices except this connection.
    async fn forward_typing(&self, conv: ConversationId, typing: bool, recipients: Vec<UserId>) {
        if recipients.is_empty() {
            return;
        }
        let payload = if typing {
            serde_json::json!({ "typing": true, "ttlMs": TYPING_TTL_MS })
        } else {
            serde_json::json!({ "typing": false })
        };
        let signal = EphemeralSignal {
            conversation_id: Some(conv),
            kind: "TYPING".into(),
            actor_id: self.identity().user_id,
            payload,
            exclude_connection: Some(self.id.to_string()),
            created_at: Millis::now(),
        };
        let shared = &self.shared;
        if let Err(e) =
            chat_pipeline::deliver_ephemeral(shared.registry.as_ref(), shared.streams.as_ref(), signal, &recipients)
                .await
        {
            tracing::debug!(error = %e, "typing signal not delivered");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_are_forwarded_once_per_refresh_interval_and_stops_only_after_a_start() {
        let gate = TypingGate::default();
        let (u, c) = (UserId::new(), ConversationId::new());
        let t0 = Instant::now();
        assert!(!gate.stop(u, c, t0), "no start: the stop is dropped");
        assert!(gate.start(u, c, t0));
        assert!(!gate.start(u, c, t0 + Duration::from_millis(TYPING_REFRESH_MS - 1)));
        assert!(gate.start(u, c, t0 + Duration::from_millis(TYPING_REFRESH_MS)));
        assert!(gate.start(UserId::new(), c, t0), "per user");
        assert!(gate.start(u, ConversationId::new(), t0), "per conversation");
        assert!(gate.stop(u, c, t0 + Duration::from_millis(TYPING_REFRESH_MS + 10)));
        assert!(!gate.stop(u, c, t0 + Duration::from_millis(TYPING_REFRESH_MS + 20)), "stopped already");
        assert!(
            !gate.start(u, c, t0 + Duration::from_millis(TYPING_REFRESH_MS + 30)),
            "a stop does not reset the start rate"
        );
        assert!(gate.start(u, c, t0 + Duration::from_millis(2 * TYPING_REFRESH_MS)), "a start a second later");
    }

    #[test]
    fn alternating_starts_and_stops_forward_at_most_one_start_per_interval() {
        let gate = TypingGate::default();
        let (u, c) = (UserId::new(), ConversationId::new());
        let t0 = Instant::now();
        let mut starts = 0;
        for i in 0..100u64 {
            let t = t0 + Duration::from_millis(i * 10);
            starts += usize::from(gate.start(u, c, t));
            gate.stop(u, c, t + Duration::from_millis(5));
        }
        assert_eq!(starts, 1, "100 start/stop pairs within one second forward one start");
    }

    #[test]
    fn a_stop_after_the_ttl_is_not_forwarded() {
        let gate = TypingGate::default();
        let (u, c) = (UserId::new(), ConversationId::new());
        let t0 = Instant::now();
        assert!(gate.start(u, c, t0));
        assert!(!gate.stop(u, c, t0 + Duration::from_millis(TYPING_TTL_MS)));
    }
}
