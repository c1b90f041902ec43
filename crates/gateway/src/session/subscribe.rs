//! SUBSCRIBE and UNSUBSCRIBE.
//!
//! Only the session's own user queues can be subscribed (see [`crate::destinations`]); a
//! subscription id in use is an ERROR (never two deliveries for one id); at most
//! `max_subscriptions_per_session` subscriptions.
//!
//! # Resume
//! A SUBSCRIBE to `/user/queue/messages` may carry `resume` headers, each a comma-separated
//! list of `conversationId:lastSeq` pairs, e.g.
//! `resume:0192f0c4-...-1a:42,0192f0c4-...-7b:0`. The header may be repeated (header lines
//! are limited to `max_header_line_bytes`). For each pair the gateway first replays, from
//! the store, every event of that conversation with `seq > lastSeq`, in order, then live
//! events follow with no gap and no duplicate at the seam. The RECEIPT (when asked) comes
//! after the replay. Conversations the user is not a member of are skipped. A `lastSeq`
//! beyond the conversation's latest seq is clamped to it (nothing is replayed; the next live
//! event is delivered), so a forged position cannot mute the conversation.
//!
//! # Member ids
//! Message events carry `conversationMemberIds` (the seed's shape). A SUBSCRIBE to
//! `/user/queue/messages` with the header `conversation-member-ids:omit` leaves the field out
//! of every event of that subscription (live and replayed); `include` is the default. Any
//! other value is an ERROR.

use chat_domain::ConversationId;
use chat_stomp::{AckMode, SubscribeFrame};

use super::send::short;
use super::{Handled, Next, Session, StompError};
use crate::delivery::{MemberIdsField, Outbound, SubscribeCmd};
use crate::destinations::{SubscribeDestination, parse_subscribe};

impl Session {
    pub(super) async fn on_subscribe(&mut self, frame: SubscribeFrame) -> Handled {
        if self.subscriptions.contains_key(&frame.id) {
            return Err(StompError::new(format!("subscription id '{}' is already in use", short(&frame.id))));
        }
        let max = self.shared.cfg.max_subscriptions_per_session;
        if self.subscriptions.len() >= max {
            return Err(StompError::new(format!(
                "subscriptions per session limit exceeded (max_subscriptions_per_session = {max})"
            )));
        }
        let destination = parse_subscribe(&frame.destination).map_err(|e| StompError::new(e.to_string()))?;
        let member_ids = parse_member_ids(frame.headers.get("conversation-member-ids"))?;
        let resume = if destination == SubscribeDestination::Messages {
            parse_resume(frame.headers.get_all("resume"), self.shared.cfg.max_resume_conversations)?
        } else {
            Vec::new()
        };
        self.subscriptions.insert(frame.id.clone(), destination);
        let receipt = frame.receipt.as_deref().and_then(|r| self.encode(&chat_stomp::server::receipt(r)));
        let cmd = SubscribeCmd {
            id: frame.id,
            destination,
            ack_header: frame.ack != AckMode::Auto,
            member_ids,
            resume,
            receipt,
        };
        self.queue(Outbound::Subscribe(Box::new(cmd)));
        Ok(Next::Continue)
    }

    pub(super) async fn on_unsubscribe(&mut self, id: String, receipt: Option<String>) -> Handled {
        // Unknown ids are accepted (idempotent unsubscribe).
        self.subscriptions.remove(&id);
        let receipt = receipt.as_deref().and_then(|r| self.encode(&chat_stomp::server::receipt(r)));
        self.queue(Outbound::Unsubscribe(Box::new((id, receipt))));
        Ok(Next::Continue)
    }
}

/// Parses the `conversation-member-ids` header (`include`, the default, or `omit`).
fn parse_member_ids(value: Option<&str>) -> Result<MemberIdsField, StompError> {
    match value.map(str::trim) {
        None | Some("include") => Ok(MemberIdsField::Include),
        Some("omit") => Ok(MemberIdsField::Omit),
        Some(other) => Err(StompError::new(format!(
            "invalid conversation-member-ids header '{}': expected include or omit",
            short(other)
        ))),
    }
}

/// Parses `resume` header values (`conversationId:lastSeq` pairs, comma-separated). A
/// conversation listed twice keeps its smallest position.
fn parse_resume<'a>(
    values: impl Iterator<Item = &'a str>,
    max: usize,
) -> Result<Vec<(ConversationId, i64)>, StompError> {
    let mut out: Vec<(ConversationId, i64)> = Vec::new();
    for value in values {
        for pair in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let bad = || {
                StompError::new(format!(
                    "invalid resume header entry '{}': expected conversationId:lastSeq",
                    short(pair)
                ))
            };
            let (conv, seq) = pair.rsplit_once(':').ok_or_else(bad)?;
            let conv: ConversationId = conv.trim().parse().map_err(|_| bad())?;
            let seq: i64 = seq.trim().parse().map_err(|_| bad())?;
            if seq < 0 {
                return Err(bad());
            }
            match out.iter_mut().find(|(c, _)| *c == conv) {
                Some(entry) => entry.1 = entry.1.min(seq),
                None => out.push((conv, seq)),
            }
            if out.len() > max {
                return Err(StompError::new(format!(
                    "resume header lists too many conversations (max_resume_conversations = {max})"
                )));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_header_parses_pairs() {
        let a = ConversationId::new();
        let b = ConversationId::new();
        let v = format!("{a}:5, {b}:0");
        let w = format!("{a}:3");
        let parsed = parse_resume([v.as_str(), w.as_str()].into_iter(), 10).unwrap();
        assert_eq!(parsed, vec![(a, 3), (b, 0)]);
        assert!(parse_resume(["x:1"].into_iter(), 10).is_err());
        assert!(parse_resume([format!("{a}:-1").as_str()].into_iter(), 10).is_err());
        assert!(parse_resume([format!("{a}").as_str()].into_iter(), 10).is_err());
        assert!(parse_resume([v.as_str()].into_iter(), 1).is_err());
        assert!(parse_resume(std::iter::empty(), 1).unwrap().is_empty());
    }
}
