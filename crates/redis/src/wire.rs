//! The JSON carried in a delivery stream entry's `payload` field.
//!
//! ```json
//! {"type":"EVENT","messageEvent":{...ConversationEvent...},"recipientIds":["<user id>",...]}
//! {"type":"EPHEMERAL","ephemeral":{...EphemeralSignal...},"recipientIds":["<user id>",...]}
//! ```
//!
//! `messageEvent` keeps the seed's field name (the seed's entry was `{"messageEvent": {...},
//! "recipientId": "<user id>"}`, one entry per recipient); we write one entry per event per
//! gateway, so the recipients are a list, `recipientIds`. The event and the signal use their
//! serde forms from `chat-domain` / `chat-pipeline` (camelCase).

use std::sync::Arc;

use chat_domain::{ConversationEvent, UserId};
use chat_pipeline::{EphemeralSignal, GatewayDelivery};
use serde::{Deserialize, Serialize};

/// Borrowed form, for writing.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
enum EntryRef<'a> {
    #[serde(rename_all = "camelCase")]
    Event { message_event: &'a ConversationEvent, recipient_ids: &'a [UserId] },
    #[serde(rename_all = "camelCase")]
    Ephemeral { ephemeral: &'a EphemeralSignal, recipient_ids: &'a [UserId] },
}

/// Owned form, for reading.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
enum Entry {
    #[serde(rename_all = "camelCase")]
    Event { message_event: Box<ConversationEvent>, recipient_ids: Vec<UserId> },
    #[serde(rename_all = "camelCase")]
    Ephemeral { ephemeral: EphemeralSignal, recipient_ids: Vec<UserId> },
}

/// The `payload` JSON of one delivery.
pub(crate) fn encode(d: &GatewayDelivery) -> Result<String, serde_json::Error> {
    let entry = match d {
        GatewayDelivery::Event { event, recipients } => {
            EntryRef::Event { message_event: event, recipient_ids: recipients }
        }
        GatewayDelivery::Ephemeral { signal, recipients } => {
            EntryRef::Ephemeral { ephemeral: signal, recipient_ids: recipients }
        }
    };
    serde_json::to_string(&entry)
}

/// Parses a `payload` written by [`encode`].
pub(crate) fn decode(payload: &[u8]) -> Result<GatewayDelivery, serde_json::Error> {
    Ok(match serde_json::from_slice::<Entry>(payload)? {
        Entry::Event { message_event, recipient_ids } => {
            GatewayDelivery::Event { event: Arc::from(message_event), recipients: recipient_ids }
        }
        Entry::Ephemeral { ephemeral, recipient_ids } => {
            GatewayDelivery::Ephemeral { signal: Arc::new(ephemeral), recipients: recipient_ids }
        }
    })
}

#[cfg(test)]
mod tests {
    use chat_domain::{ConversationId, EventId, EventPayload, Millis};

    use super::*;

    #[test]
    fn both_kinds_round_trip_with_the_documented_field_names() {
        let user = UserId::new();
        let event = ConversationEvent {
            event_id: EventId::new(),
            conversation_id: ConversationId::new(),
            seq: 7,
            actor_id: user,
            created_at: Millis(1_700_000_000_000),
            payload: EventPayload::UserLeft { user_id: user },
        };
        let d = GatewayDelivery::Event { event: Arc::new(event), recipients: vec![user] };
        let json = encode(&d).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["type"], "EVENT");
        assert_eq!(v["messageEvent"]["seq"], 7);
        assert_eq!(v["recipientIds"][0], user.to_string());
        assert_eq!(decode(json.as_bytes()).unwrap(), d);

        let signal = EphemeralSignal {
            conversation_id: None,
            kind: "PRESENCE".into(),
            actor_id: user,
            payload: serde_json::json!({"status": "ONLINE"}),
            exclude_connection: Some("c1".into()),
            created_at: Millis(1),
        };
        let d = GatewayDelivery::Ephemeral { signal: Arc::new(signal), recipients: vec![user] };
        let json = encode(&d).unwrap();
        assert!(json.starts_with(r#"{"type":"EPHEMERAL","ephemeral":{"#), "{json}");
        assert_eq!(decode(json.as_bytes()).unwrap(), d);
        assert!(decode(b"{\"type\":\"OTHER\"}").is_err());
    }
}
