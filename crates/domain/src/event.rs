//! The conversation event log: one entry per durable change to a conversation.
//!
//! Invariant (product.md "Guarantees/Order"): each conversation's events carry sequence
//! numbers 1, 2, 3, ... with no gap and no repeat, assigned atomically in the same
//! transaction as the change they describe, together with one outbox row. A message's
//! `serverSeq` is the seq of its [`EventPayload::Message`] event. Ephemeral signals (typing,
//! presence) are not events and have no seq.
//!
//! The payload's serde form (JSON, `type` tag in `SCREAMING_SNAKE_CASE`, camelCase fields) is
//! the persistent format of the `conversation_events.payload` column and of the outbox, so
//! changing it is a data migration.

use serde::{Deserialize, Serialize};

use crate::attachment::AttachmentInfo;
use crate::ids::{ConversationId, EventId, MessageId, UserId};
use crate::model::{ConversationSettings, MemberRole, Mentions, Message, ThreadSummary};
use crate::time::Millis;

/// One entry of a conversation's event log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationEvent {
    /// Unique event id (UUID v7); consumers drop duplicates by it or by (conversation, seq).
    pub event_id: EventId,
    /// Conversation the event belongs to.
    pub conversation_id: ConversationId,
    /// Position in the conversation's log, starting at 1, gap-free.
    pub seq: i64,
    /// The user whose action caused the event.
    pub actor_id: UserId,
    /// Commit-time instant (server clock).
    pub created_at: Millis,
    /// What happened.
    pub payload: EventPayload,
}

impl ConversationEvent {
    /// The event's type name, e.g. `MESSAGE` or `REACTION_ADDED`.
    pub fn kind(&self) -> EventKind {
        self.payload.kind()
    }
}

/// Snapshot of a message as carried in events (the seed's message JSON fields plus ours).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageData {
    /// Server message id.
    pub message_id: MessageId,
    /// Conversation.
    pub conversation_id: ConversationId,
    /// Author.
    pub user_id: UserId,
    /// The client's idempotency key, if it sent one.
    pub client_msg_id: Option<String>,
    /// Seq of the message's creation event.
    pub server_seq: i64,
    /// Thread root, for replies.
    pub thread_root_id: Option<MessageId>,
    /// Current text (empty when deleted).
    pub text: String,
    /// Client-defined message type (seed `type`, default `"default"`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Creation instant.
    pub created_at: Millis,
    /// Last change instant.
    pub updated_at: Millis,
    /// Edited at least once.
    pub edited: bool,
    /// Soft-deleted.
    pub deleted: bool,
    /// Number of edits.
    pub version_count: i64,
    /// Parsed mentions.
    pub mentions: Mentions,
    /// Thread summary (roots with replies only).
    pub thread: Option<ThreadSummary>,
    /// Attached files (absent from the JSON when none, as in events stored before
    /// attachments existed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<AttachmentInfo>,
}

impl From<&Message> for MessageData {
    fn from(m: &Message) -> Self {
        MessageData {
            message_id: m.id,
            conversation_id: m.conversation_id,
            user_id: m.user_id,
            client_msg_id: m.client_msg_id.clone(),
            server_seq: m.server_seq,
            thread_root_id: m.thread_root_id,
            text: m.text.clone(),
            kind: m.kind.clone(),
            created_at: m.created_at,
            updated_at: m.updated_at,
            edited: m.edited,
            deleted: m.deleted,
            version_count: m.version_count,
            mentions: m.mentions.clone(),
            thread: m.thread.clone(),
            attachments: m.attachments.clone(),
        }
    }
}

/// What a conversation event says happened. Serialized with a `type` tag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE", rename_all_fields = "camelCase")]
pub enum EventPayload {
    /// A message was created (seed `MESSAGE`). For thread replies `thread_reply_count` is
    /// the root's reply count after this reply.
    Message {
        /// The new message.
        message: MessageData,
        /// Root's reply count after this reply (thread replies only).
        thread_reply_count: Option<i64>,
    },
    /// A message's text was edited; carries the new state.
    MessageEdited {
        /// The message after the edit (`edited = true`, new `version_count`).
        message: MessageData,
    },
    /// A message was soft-deleted; carries the tombstone.
    MessageDeleted {
        /// The tombstone (`deleted = true`, empty text).
        message: MessageData,
    },
    /// A reaction was added (seed `REACTION_ADDED`).
    ReactionAdded {
        /// Message reacted to.
        message_id: MessageId,
        /// Emoji.
        emoji: String,
        /// Reacting user.
        user_id: UserId,
    },
    /// A reaction was removed.
    ReactionRemoved {
        /// Message.
        message_id: MessageId,
        /// Emoji.
        emoji: String,
        /// User whose reaction was removed.
        user_id: UserId,
    },
    /// A message was pinned.
    MessagePinned {
        /// Message.
        message_id: MessageId,
        /// Pinning user.
        pinned_by: UserId,
    },
    /// A message was unpinned.
    MessageUnpinned {
        /// Message.
        message_id: MessageId,
        /// Unpinning user.
        unpinned_by: UserId,
    },
    /// A user became a member (seed `USER_JOINED`): joined, added, or a creator.
    UserJoined {
        /// New member.
        user_id: UserId,
        /// Its role.
        role: MemberRole,
    },
    /// A user stopped being a member (seed `USER_LEFT`): left or was removed.
    UserLeft {
        /// Former member.
        user_id: UserId,
    },
    /// Name, topic, privacy or settings changed; carries the new values.
    ConversationUpdated {
        /// Name.
        name: Option<String>,
        /// Topic.
        topic: Option<String>,
        /// Privacy.
        is_private: bool,
        /// Settings.
        settings: ConversationSettings,
    },
}

/// The type names of [`EventPayload`] variants, as on the wire and in the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// `MESSAGE`
    Message,
    /// `MESSAGE_EDITED`
    MessageEdited,
    /// `MESSAGE_DELETED`
    MessageDeleted,
    /// `REACTION_ADDED`
    ReactionAdded,
    /// `REACTION_REMOVED`
    ReactionRemoved,
    /// `MESSAGE_PINNED`
    MessagePinned,
    /// `MESSAGE_UNPINNED`
    MessageUnpinned,
    /// `USER_JOINED`
    UserJoined,
    /// `USER_LEFT`
    UserLeft,
    /// `CONVERSATION_UPDATED`
    ConversationUpdated,
}

impl EventKind {
    /// The type name, e.g. `REACTION_ADDED`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Message => "MESSAGE",
            EventKind::MessageEdited => "MESSAGE_EDITED",
            EventKind::MessageDeleted => "MESSAGE_DELETED",
            EventKind::ReactionAdded => "REACTION_ADDED",
            EventKind::ReactionRemoved => "REACTION_REMOVED",
            EventKind::MessagePinned => "MESSAGE_PINNED",
            EventKind::MessageUnpinned => "MESSAGE_UNPINNED",
            EventKind::UserJoined => "USER_JOINED",
            EventKind::UserLeft => "USER_LEFT",
            EventKind::ConversationUpdated => "CONVERSATION_UPDATED",
        }
    }
}

impl EventPayload {
    /// The payload's [`EventKind`].
    pub fn kind(&self) -> EventKind {
        match self {
            EventPayload::Message { .. } => EventKind::Message,
            EventPayload::MessageEdited { .. } => EventKind::MessageEdited,
            EventPayload::MessageDeleted { .. } => EventKind::MessageDeleted,
            EventPayload::ReactionAdded { .. } => EventKind::ReactionAdded,
            EventPayload::ReactionRemoved { .. } => EventKind::ReactionRemoved,
            EventPayload::MessagePinned { .. } => EventKind::MessagePinned,
            EventPayload::MessageUnpinned { .. } => EventKind::MessageUnpinned,
            EventPayload::UserJoined { .. } => EventKind::UserJoined,
            EventPayload::UserLeft { .. } => EventKind::UserLeft,
            EventPayload::ConversationUpdated { .. } => EventKind::ConversationUpdated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_serializes_with_seed_type_tag_and_camel_case() {
        let p =
            EventPayload::ReactionAdded { message_id: MessageId::new(), emoji: "👍".into(), user_id: UserId::new() };
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["type"], "REACTION_ADDED");
        assert!(v.get("messageId").is_some());
        assert_eq!(p.kind().as_str(), "REACTION_ADDED");
        let back: EventPayload = serde_json::from_value(v).unwrap();
        assert_eq!(back, p);
    }
}
