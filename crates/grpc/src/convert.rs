//! Conversions between domain types and protobuf messages, in one place.

use chat_domain::event::MessageData;
use chat_domain::{ConversationEvent, EventPayload, Message, Millis};
use chat_pipeline::{Connection, SessionState};
use prost_types::Timestamp;

use crate::pb::connection::v1 as cpb;
use crate::pb::message::v1 as mpb;

/// Milliseconds since the epoch as a protobuf timestamp.
pub(crate) fn timestamp(at: Millis) -> Timestamp {
    let secs = at.0.div_euclid(1000);
    let nanos = i32::try_from(at.0.rem_euclid(1000) * 1_000_000).unwrap_or(0);
    Timestamp { seconds: secs, nanos }
}

/// A protobuf timestamp as milliseconds (sub-millisecond precision truncated).
pub(crate) fn millis(ts: &Timestamp) -> Millis {
    Millis(ts.seconds.saturating_mul(1000).saturating_add(i64::from(ts.nanos.clamp(0, 999_999_999)) / 1_000_000))
}

/// A domain message as `message.v1.Message`.
pub(crate) fn message(m: &Message) -> mpb::Message {
    mpb::Message {
        message_id: m.id.to_string(),
        conversation_id: m.conversation_id.to_string(),
        user_id: m.user_id.to_string(),
        server_seq: m.server_seq,
        thread_root_id: m.thread_root_id.map(|t| t.to_string()).unwrap_or_default(),
        text: m.text.clone(),
        r#type: m.kind.clone(),
        created_at: Some(timestamp(m.created_at)),
        updated_at: Some(timestamp(m.updated_at)),
        edited: m.edited,
        deleted: m.deleted,
        client_msg_id: m.client_msg_id.clone().unwrap_or_default(),
    }
}

/// The fields of an event payload without its `type` tag (carried by the event itself), as
/// a JSON object: the REST API's event `payload`.
pub(crate) fn payload_json(p: &EventPayload) -> String {
    match serde_json::to_value(p) {
        Ok(serde_json::Value::Object(mut map)) => {
            map.remove("type");
            serde_json::Value::Object(map).to_string()
        }
        Ok(other) => other.to_string(),
        Err(e) => {
            tracing::error!(error = %e, "event payload does not serialize");
            "{}".into()
        }
    }
}

/// A domain event as `message.v1.ConversationEvent`.
pub(crate) fn conversation_event(e: &ConversationEvent) -> mpb::ConversationEvent {
    mpb::ConversationEvent {
        event_id: e.event_id.to_string(),
        conversation_id: e.conversation_id.to_string(),
        seq: e.seq,
        r#type: e.kind().as_str().into(),
        actor_id: e.actor_id.to_string(),
        created_at: Some(timestamp(e.created_at)),
        payload_json: payload_json(&e.payload),
    }
}

/// A domain message as the JSON of a `MESSAGE` event's `message` object.
pub(crate) fn message_json(m: &Message) -> String {
    serde_json::to_string(&MessageData::from(m)).unwrap_or_else(|e| {
        tracing::error!(error = %e, "message does not serialize");
        String::new()
    })
}

/// A registry connection as `connection.v1.Connection`.
pub(crate) fn connection(c: &Connection) -> cpb::Connection {
    cpb::Connection {
        connection_id: c.connection_id.clone(),
        user_id: c.user_id.to_string(),
        workspace_id: c.workspace_id.to_string(),
        gateway_node_id: c.gateway_node_id.clone(),
        connected_at: Some(timestamp(c.connected_at)),
        last_ping_at: Some(timestamp(c.last_ping_at)),
        device_type: c.device_type.clone(),
        ip_address: c.ip_address.clone(),
        session_state: session_state(c.state) as i32,
    }
}

/// The registry's session state as the proto enum.
pub(crate) fn session_state(s: SessionState) -> cpb::SessionState {
    cpb::SessionState::try_from(s.as_i32()).unwrap_or(cpb::SessionState::Unknown)
}

/// Connections as the list response.
pub(crate) fn connections(list: &[Connection]) -> Vec<cpb::Connection> {
    let mut out: Vec<cpb::Connection> = list.iter().map(connection).collect();
    out.sort_by(|a, b| a.connection_id.cmp(&b.connection_id));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_including_before_the_epoch() {
        for ms in [0, 1, 999, 1000, 1_764_000_000_123, -1, -1001] {
            let ts = timestamp(Millis(ms));
            assert!((0..1_000_000_000).contains(&ts.nanos));
            assert_eq!(millis(&ts), Millis(ms));
        }
    }
}
