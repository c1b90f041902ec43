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

/// `conversationMemberIds` of one conversation serialized once (a JSON array of id strings),
/// for the many event bodies that carry it (a replay page renders it once, not per event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberIdsJson(String);

impl MemberIdsJson {
    /// Serializes `ids` (`["<uuid>",...]`, in the given order).
    pub fn new(ids: &[UserId]) -> Self {
        let mut s = String::with_capacity(2 + ids.len() * 39);
        s.push('[');
        for (n, id) in ids.iter().enumerate() {
            if n > 0 {
                s.push(',');
            }
            s.push('"');
            s.push_str(&id.to_string());
            s.push('"');
        }
        s.push(']');
        MemberIdsJson(s)
    }
}

/// Whether the body of an event with this payload carries `conversationMemberIds` (the
/// message events: `MESSAGE`, `MESSAGE_EDITED`, `MESSAGE_DELETED`).
pub fn carries_member_ids(payload: &EventPayload) -> bool {
    matches!(
        payload,
        EventPayload::Message { .. } | EventPayload::MessageEdited { .. } | EventPayload::MessageDeleted { .. }
    )
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
    let members = if carries_member_ids(&event.payload) { member_ids.map(MemberIdsJson::new) } else { None };
    event_body_with(event, members.as_ref())
}

/// [`event_body`] with the member ids already serialized. Message events are written
/// directly (the message snapshot serialized as is, then the event fields appended); other
/// events go through a JSON object.
pub fn event_body_with(event: &ConversationEvent, member_ids: Option<&MemberIdsJson>) -> Bytes {
    let (message, thread_reply_count) = match &event.payload {
        EventPayload::Message { message, thread_reply_count } => (message, Some(*thread_reply_count)),
        EventPayload::MessageEdited { message } | EventPayload::MessageDeleted { message } => (message, None),
        _ => return generic_body(event, None),
    };
    if message.conversation_id != event.conversation_id {
        return generic_body(event, member_ids);
    }
    let mut out = Vec::with_capacity(512 + member_ids.map_or(0, |m| m.0.len()));
    if serde_json::to_writer(&mut out, message).is_err() || out.last() != Some(&b'}') || out.len() < 2 {
        return generic_body(event, member_ids);
    }
    out.pop();
    if let Some(count) = thread_reply_count {
        match count {
            Some(c) => out.extend_from_slice(format!(",\"threadReplyCount\":{c}").as_bytes()),
            None => out.extend_from_slice(b",\"threadReplyCount\":null"),
        }
    }
    let kind = event.kind().as_str();
    let fields = format!(
        ",\"eventType\":\"{kind}\",\"eventId\":\"{}\",\"seq\":{},\"actorId\":\"{}\",\"eventCreatedAt\":\"{}\"",
        event.event_id,
        event.seq,
        event.actor_id,
        event.created_at.to_rfc3339()
    );
    out.extend_from_slice(fields.as_bytes());
    if let Some(ids) = member_ids {
        out.extend_from_slice(b",\"conversationMemberIds\":");
        out.extend_from_slice(ids.0.as_bytes());
    }
    out.push(b'}');
    Bytes::from(out)
}

/// Any event's body through a JSON object (payload fields, the message snapshot's fields
/// lifted to the top level, then the event fields).
fn generic_body(event: &ConversationEvent, member_ids: Option<&MemberIdsJson>) -> Bytes {
    let mut out = Map::new();
    let payload = serde_json::to_value(&event.payload).unwrap_or(Value::Null);
    let Value::Object(mut fields) = payload else {
        return Bytes::new();
    };
    fields.remove("type");
    let is_message = carries_member_ids(&event.payload);
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
            let ids: Value = serde_json::from_str(&ids.0).unwrap_or(Value::Null);
            out.insert("conversationMemberIds".into(), ids);
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

    /// The body as the generic (JSON object) renderer builds it, for comparison.
    fn generic(e: &ConversationEvent, members: Option<&[UserId]>) -> Value {
        let members = members.map(MemberIdsJson::new);
        serde_json::from_slice(&generic_body(e, members.as_ref())).unwrap()
    }

    #[test]
    fn direct_message_bodies_equal_the_generic_rendering() {
        use chat_domain::{AttachmentId, AttachmentInfo, ThreadSummary};

        let plain = message_event();
        let mut rich = message_event();
        if let EventPayload::Message { message, thread_reply_count } = &mut rich.payload {
            message.text = "quote \" backslash \\ newline \n tab \t ☃".into();
            message.thread_root_id = Some(MessageId::new());
            message.mentions = Mentions { user_ids: vec![UserId::new()], channel: true };
            message.thread =
                Some(ThreadSummary { reply_count: 3, last_reply_at: Millis(5_000), last_replied_by: UserId::new() });
            message.attachments = vec![AttachmentInfo {
                attachment_id: AttachmentId::new(),
                name: "a \"b\".png".into(),
                content_type: "image/png".into(),
                size: 10,
                width: Some(2),
                height: None,
            }];
            *thread_reply_count = Some(4);
        }
        let message = |e: &ConversationEvent| match &e.payload {
            EventPayload::Message { message, .. } => message.clone(),
            _ => unreachable!(),
        };
        let mut edited = plain.clone();
        edited.payload = EventPayload::MessageEdited { message: message(&rich) };
        let mut deleted = plain.clone();
        deleted.payload = EventPayload::MessageDeleted { message: message(&plain) };
        let members = [plain.actor_id, UserId::new(), UserId::new()];
        for e in [&plain, &rich, &edited, &deleted] {
            for m in [None, Some(&members[..]), Some(&[][..])] {
                let direct: Value = serde_json::from_slice(&event_body(e, m)).unwrap();
                assert_eq!(direct, generic(e, m), "{}", e.kind().as_str());
            }
        }
        let v: Value = serde_json::from_slice(&event_body(&rich, Some(&members))).unwrap();
        assert_eq!(v["threadReplyCount"], 4);
        assert_eq!(v["text"], "quote \" backslash \\ newline \n tab \t ☃");
        let ids: Vec<String> = members.iter().map(ToString::to_string).collect();
        assert_eq!(v["conversationMemberIds"], serde_json::json!(ids));
    }

    #[test]
    fn member_ids_are_serialized_once_as_a_json_array() {
        let ids = [UserId::new(), UserId::new()];
        let json = MemberIdsJson::new(&ids);
        let back: Vec<UserId> = serde_json::from_str(&json.0).unwrap();
        assert_eq!(back, ids);
        assert_eq!(MemberIdsJson::new(&[]).0, "[]");
        let e = message_event();
        assert_eq!(event_body_with(&e, Some(&json)), event_body(&e, Some(&ids)));
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
