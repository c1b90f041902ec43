//! Protobuf → domain conversions of the client side (the inverse of `crate::convert`).
//!
//! A reply that does not decode is the core's bug or a version mismatch: `Internal`.

use std::str::FromStr;

use chat_domain::event::MessageData;
use chat_domain::{ConversationEvent, DomainError, EventPayload, Message, Millis, WorkspaceId};
use chat_pipeline::{Connection, PipelineError, SessionState};

use crate::convert::millis;
use crate::pb::connection::v1 as cpb;
use crate::pb::message::v1 as mpb;

/// Parses an id field of a reply.
pub(crate) fn id<T: FromStr>(field: &str, value: &str) -> Result<T, DomainError> {
    value.parse().map_err(|_| DomainError::Internal(format!("core reply: {field} {value:?} is not a UUID")))
}

/// `message.v1.ConversationEvent` → the domain event (the payload's `type` tag comes back
/// from the event's `type`).
pub(crate) fn event(e: &mpb::ConversationEvent) -> Result<ConversationEvent, DomainError> {
    let bad = |what: String| DomainError::Internal(format!("core reply: event {} seq {}: {what}", e.event_id, e.seq));
    let mut payload = match serde_json::from_str::<serde_json::Value>(&e.payload_json) {
        Ok(serde_json::Value::Object(map)) => map,
        Ok(_) => return Err(bad("payload_json is not an object".into())),
        Err(err) => return Err(bad(format!("payload_json: {err}"))),
    };
    payload.insert("type".into(), serde_json::Value::String(e.r#type.clone()));
    let payload: EventPayload =
        serde_json::from_value(serde_json::Value::Object(payload)).map_err(|err| bad(format!("payload: {err}")))?;
    Ok(ConversationEvent {
        event_id: id("event_id", &e.event_id)?,
        conversation_id: id("conversation_id", &e.conversation_id)?,
        seq: e.seq,
        actor_id: id("actor_id", &e.actor_id)?,
        created_at: e.created_at.as_ref().map_or(Millis(0), millis),
        payload,
    })
}

/// The domain message of a send response, from its `message_json` (every field); a core
/// that does not send it yields the fields of `message.v1.Message` (no mentions, thread
/// summary or attachments, `version_count` 0).
pub(crate) fn sent_message(resp: &mpb::CreateMessageResponse) -> Result<Message, DomainError> {
    if !resp.message_json.is_empty() {
        let d: MessageData = serde_json::from_str(&resp.message_json)
            .map_err(|e| DomainError::Internal(format!("core reply: message_json: {e}")))?;
        return Ok(Message {
            id: d.message_id,
            conversation_id: d.conversation_id,
            user_id: d.user_id,
            client_msg_id: d.client_msg_id,
            server_seq: d.server_seq,
            thread_root_id: d.thread_root_id,
            text: d.text,
            kind: d.kind,
            created_at: d.created_at,
            updated_at: d.updated_at,
            edited: d.edited,
            deleted: d.deleted,
            version_count: d.version_count,
            thread: d.thread,
            mentions: d.mentions,
            attachments: d.attachments,
        });
    }
    let m = resp.message.as_ref().ok_or_else(|| DomainError::Internal("core reply: no message".into()))?;
    Ok(Message {
        id: id("message_id", &m.message_id)?,
        conversation_id: id("conversation_id", &m.conversation_id)?,
        user_id: id("user_id", &m.user_id)?,
        client_msg_id: Some(m.client_msg_id.clone()).filter(|k| !k.is_empty()),
        server_seq: m.server_seq,
        thread_root_id: match m.thread_root_id.as_str() {
            "" => None,
            t => Some(id("thread_root_id", t)?),
        },
        text: m.text.clone(),
        kind: m.r#type.clone(),
        created_at: m.created_at.as_ref().map_or(Millis(0), millis),
        updated_at: m.updated_at.as_ref().map_or(Millis(0), millis),
        edited: m.edited,
        deleted: m.deleted,
        version_count: 0,
        thread: None,
        mentions: Default::default(),
        attachments: Vec::new(),
    })
}

/// `connection.v1.Connection` → the registry's connection.
pub(crate) fn connection(c: cpb::Connection) -> Result<Connection, PipelineError> {
    let unexpected = |e: DomainError| PipelineError::Unexpected(anyhow::anyhow!("{e}"));
    let connected_at = c.connected_at.as_ref().map_or(Millis(0), millis);
    Ok(Connection {
        user_id: id("user_id", &c.user_id).map_err(unexpected)?,
        workspace_id: id::<WorkspaceId>("workspace_id", &c.workspace_id).map_err(unexpected)?,
        connected_at,
        last_ping_at: c.last_ping_at.as_ref().map_or(connected_at, millis),
        state: SessionState::from_i32(c.session_state),
        connection_id: c.connection_id,
        gateway_node_id: c.gateway_node_id,
        device_type: c.device_type,
        ip_address: c.ip_address,
    })
}

#[cfg(test)]
mod tests {
    use chat_domain::{ConversationId, EventId, MemberRole, MessageId, UserId};

    use super::*;
    use crate::convert::conversation_event;

    #[test]
    fn events_round_trip_through_the_proto_form() {
        let conv = ConversationId::new();
        let payloads = [
            EventPayload::UserJoined { user_id: UserId::new(), role: MemberRole::Owner },
            EventPayload::ReactionAdded { message_id: MessageId::new(), emoji: "👍".into(), user_id: UserId::new() },
            EventPayload::UserLeft { user_id: UserId::new() },
        ];
        for (i, payload) in payloads.into_iter().enumerate() {
            let e = ConversationEvent {
                event_id: EventId::new(),
                conversation_id: conv,
                seq: i as i64 + 1,
                actor_id: UserId::new(),
                created_at: Millis(1_764_000_000_123),
                payload,
            };
            let wire = conversation_event(&e);
            assert!(!wire.payload_json.contains("\"type\""), "{}", wire.payload_json);
            assert_eq!(event(&wire).expect("decodes"), e);
        }
    }

    #[test]
    fn a_malformed_event_is_an_internal_error() {
        let wire = mpb::ConversationEvent { payload_json: "[1]".into(), ..Default::default() };
        assert!(matches!(event(&wire), Err(DomainError::Internal(m)) if m.contains("not an object")));
    }
}
