//! Wire JSON of the gateway (camelCase), converted from domain types in this one place.
//!
//! Inbound bodies: [`ChatSend`] (`/app/chat`), [`TypingSend`] (`/app/typing`), [`AckSend`]
//! (`/app/ack`). Outbound bodies: [`event_body`] (conversation events on
//! `/user/queue/messages`), [`typing_body`] and [`ack_offset_body`]
//! (`/user/queue/notifications/private`).

use bytes::Bytes;
use chat_domain::{AttachmentId, ConversationEvent, ConversationId, EventPayload, Millis, UserId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Body of `SEND /app/chat` (seed shape). Unknown fields and the server-assigned ones
/// (`serverSeq`, `createdAt`, `updatedAt`, `edited`, `deleted`) are ignored.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatSend {
    /// The client's message id: the idempotency key (`client_msg_id`).
    #[serde(default)]
    pub message_id: Option<String>,
    /// Target conversation.
    pub conversation_id: ConversationId,
    /// Must equal the authenticated user (anti-spoofing); absent means the authenticated user.
    #[serde(default)]
    pub user_id: Option<UserId>,
    /// Thread root to reply to (`null` or `""` for none).
    #[serde(default)]
    pub thread_root_id: Option<String>,
    /// Message text.
    pub text: String,
    /// Client-defined type (default `"default"`).
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Uploads to attach (`POST /api/v1/conversations/{id}/attachments`), each an unattached
    /// upload of the sender in this conversation.
    #[serde(default)]
    pub attachment_ids: Vec<AttachmentId>,
}

/// Body of `SEND /app/typing`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TypingSend {
    /// Conversation the user types in.
    pub conversation_id: ConversationId,
    /// Started (`true`, default) or stopped typing.
    #[serde(default = "yes")]
    pub typing: bool,
}

fn yes() -> bool {
    true
}

/// Body of `SEND /app/ack`: the client's delivered/seen positions.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AckSend {
    /// Conversation.
    pub conversation_id: ConversationId,
    /// Highest seq delivered to the client.
    #[serde(default)]
    pub delivered_seq: Option<i64>,
    /// Highest seq the user has seen.
    #[serde(default)]
    pub seen_seq: Option<i64>,
}

/// Ack offset sent to the sender on `/user/queue/notifications/private` after the commit.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AckOffset<'a> {
    /// Conversation.
    pub conversation_id: ConversationId,
    /// The sender.
    pub user_id: UserId,
    /// The message's `serverSeq`.
    pub acked_seq: i64,
    /// `PERSISTED` (stored now) or `DUPLICATE` (a retry of a stored message).
    pub status: &'a str,
    /// The client's message id, when it sent one.
    pub client_msg_id: Option<&'a str>,
    /// The server message id.
    pub message_id: String,
    /// When the ack was produced.
    pub acked_at: Millis,
}

/// Serializes an ack offset.
pub fn ack_offset_body(ack: &AckOffset<'_>) -> Bytes {
    Bytes::from(serde_json::to_vec(ack).unwrap_or_default())
}

/// The typing signal delivered to the other members: `{eventType:"TYPING", conversationId,
/// userId, typing, ttlMs}` (`ttlMs` on starts only: the start expires that long after it
/// was sent unless refreshed); no seq (ephemeral).
pub fn typing_body(conversation_id: ConversationId, user_id: UserId, typing: bool) -> Bytes {
    let mut v = serde_json::json!({
        "eventType": "TYPING",
        "conversationId": conversation_id,
        "userId": user_id,
        "typing": typing,
    });
    if typing {
        v["ttlMs"] = serde_json::json!(crate::session::typing::TYPING_TTL_MS);
    }
    Bytes::from(serde_json::to_vec(&v).unwrap_or_default())
}

/// A conversation event as delivered on `/user/queue/messages`.
///
/// Every event carries `eventType` (`MESSAGE`, `MESSAGE_EDITED`, `REACTION_ADDED`,
/// `USER_JOINED`, ...), `eventId`, `conversationId`, `seq`, `actorId`, `eventCreatedAt`, and
/// the payload's fields (camelCase). Message events (`MESSAGE`, `MESSAGE_EDITED`,
/// `MESSAGE_DELETED`) carry the seed's message fields at the top level (`messageId`,
/// `conversationId`, `userId`, `serverSeq`, `threadRootId`, `text`, `type`, `createdAt`,
/// `updatedAt`, `edited`, `deleted`) plus `conversationMemberIds` when known. Other events
/// carry `createdAt` = the event's commit instant.
pub fn event_body(event: &ConversationEvent, member_ids: Option<&[UserId]>) -> Bytes {
    let mut out = Map::new();
    let payload = serde_json::to_value(&event.payload).unwrap_or(Value::Null);
    let Value::Object(mut fields) = payload else {
        return Bytes::new();
    };
    fields.remove("type");
    let is_message = matches!(
        event.payload,
        EventPayload::Message { .. } | EventPayload::MessageEdited { .. } | EventPayload::MessageDeleted { .. }
    );
    if let Some(Value::Object(message)) = fields.remove("message") {
        out.extend(message);
    }
    out.extend(fields);
    out.insert("eventType".into(), Value::from(event.kind().as_str()));
    out.insert("eventId".into(), Value::from(event.event_id.to_string()));
    out.insert("conversationId".into(), Value::from(event.conversation_id.to_string()));
    out.insert("seq".into(), Value::from(event.seq));
    out.insert("actorId".into(), Value::from(event.actor_id.to_string()));
    out.insert("eventCreatedAt".into(), Value::from(event.created_at.to_rfc3339()));
    out.entry("createdAt").or_insert_with(|| Value::from(event.created_at.to_rfc3339()));
    if is_message {
        out.entry("threadRootId").or_insert(Value::Null);
        if let Some(ids) = member_ids {
            out.insert(
                "conversationMemberIds".into(),
                Value::Array(ids.iter().map(|u| Value::from(u.to_string())).collect()),
            );
        }
    }
    Bytes::from(serde_json::to_vec(&Value::Object(out)).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use chat_domain::event::MessageData;
    use chat_domain::{EventId, Mentions, MessageId};

    use super::*;

    fn message_event() -> ConversationEvent {
        let conv = ConversationId::new();
        let user = UserId::new();
        ConversationEvent {
            event_id: EventId::new(),
            conversation_id: conv,
            seq: 7,
            actor_id: user,
            created_at: Millis(1_000),
            payload: EventPayload::Message {
                message: MessageData {
                    message_id: MessageId::new(),
                    conversation_id: conv,
                    user_id: user,
                    client_msg_id: Some("c1".into()),
                    server_seq: 7,
                    thread_root_id: None,
                    text: "héllo".into(),
                    kind: "default".into(),
                    created_at: Millis(1_000),
                    updated_at: Millis(1_000),
                    edited: false,
                    deleted: false,
                    version_count: 0,
                    mentions: Mentions::default(),
                    thread: None,
                    attachments: Vec::new(),
                },
                thread_reply_count: None,
            },
        }
    }

    #[test]
    fn message_event_has_seed_fields_and_event_fields() {
        let e = message_event();
        let members = [e.actor_id, UserId::new()];
        let v: Value = serde_json::from_slice(&event_body(&e, Some(&members))).unwrap();
        for key in [
            "messageId",
            "conversationId",
            "userId",
            "serverSeq",
            "threadRootId",
            "text",
            "type",
            "createdAt",
            "updatedAt",
            "edited",
            "deleted",
            "conversationMemberIds",
            "eventType",
            "seq",
            "eventId",
        ] {
            assert!(v.get(key).is_some(), "missing {key}: {v}");
        }
        assert_eq!(v["eventType"], "MESSAGE");
        assert_eq!(v["type"], "default");
        assert_eq!(v["seq"], 7);
        assert_eq!(v["serverSeq"], 7);
        assert_eq!(v["text"], "héllo");
        assert_eq!(v["createdAt"], "1970-01-01T00:00:01.000Z");
        assert_eq!(v["conversationMemberIds"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn reaction_event_carries_payload_fields() {
        let mut e = message_event();
        let m = MessageId::new();
        e.payload = EventPayload::ReactionAdded { message_id: m, emoji: "👍".into(), user_id: e.actor_id };
        let v: Value = serde_json::from_slice(&event_body(&e, None)).unwrap();
        assert_eq!(v["eventType"], "REACTION_ADDED");
        assert_eq!(v["messageId"], m.to_string());
        assert_eq!(v["emoji"], "👍");
        assert!(v.get("conversationMemberIds").is_none());
    }

    #[test]
    fn chat_send_parses_seed_body_and_ignores_server_fields() {
        let conv = ConversationId::new();
        let body = format!(
            r#"{{"messageId":"m-1","conversationId":"{conv}","userId":null,"text":"hi","serverSeq":99,
                "createdAt":"x","threadRootId":null,"edited":false}}"#
        );
        let s: ChatSend = serde_json::from_str(&body).unwrap();
        assert_eq!(s.message_id.as_deref(), Some("m-1"));
        assert_eq!(s.conversation_id, conv);
        assert!(s.kind.is_none() && s.user_id.is_none() && s.thread_root_id.is_none());
    }

    #[test]
    fn typing_has_no_seq() {
        let v: Value = serde_json::from_slice(&typing_body(ConversationId::new(), UserId::new(), true)).unwrap();
        assert_eq!(v["eventType"], "TYPING");
        assert!(v.get("seq").is_none());
    }
}
