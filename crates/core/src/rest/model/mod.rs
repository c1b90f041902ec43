//! API models of the REST interface: the JSON shapes clients see (camelCase, ISO-8601
//! instants, UUID strings), each with an OpenAPI schema. They are separate from the domain
//! models; every conversion between the two lives in this module (responses here,
//! requests in [`request`], authentication shapes in [`auth`]).

pub mod auth;
pub mod json_int;
pub mod presence;
pub mod request;

use chat_domain::event::EventPayload;
use chat_domain::{
    Attachment, AttachmentId, AttachmentInfo, Conversation, ConversationEvent, ConversationKind, ConversationSettings,
    ConversationSummary, Member, MemberRole, Message, MessageVersion, Millis, Pin, Reaction, User,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

fn instant(m: Millis) -> String {
    m.to_rfc3339()
}

/// A user account.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserDto {
    /// User id.
    pub user_id: Uuid,
    /// Workspace of the user.
    pub workspace_id: Uuid,
    /// Login name.
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// Avatar URL.
    pub avatar_url: Option<String>,
    /// Creation instant (ISO-8601 UTC).
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<&User> for UserDto {
    fn from(u: &User) -> Self {
        UserDto {
            user_id: u.id.uuid(),
            workspace_id: u.workspace_id.uuid(),
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            avatar_url: u.avatar_url.clone(),
            created_at: instant(u.created_at),
        }
    }
}

/// Kind of conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConversationType {
    /// A named channel (public or private).
    Channel,
    /// A direct message between two users.
    Dm,
    /// A direct message among a fixed set of users.
    GroupDm,
}

impl From<ConversationKind> for ConversationType {
    fn from(k: ConversationKind) -> Self {
        match k {
            ConversationKind::Channel => ConversationType::Channel,
            ConversationKind::Dm => ConversationType::Dm,
            ConversationKind::GroupDm => ConversationType::GroupDm,
        }
    }
}

/// Role of a member.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    /// Renames, changes settings, adds and removes members, deletes any message.
    Owner,
    /// Ordinary member.
    Member,
}

impl From<MemberRole> for Role {
    fn from(r: MemberRole) -> Self {
        match r {
            MemberRole::Owner => Role::Owner,
            MemberRole::Member => Role::Member,
        }
    }
}

/// Conversation settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SettingsDto {
    /// Members may add reactions.
    pub allow_reactions: bool,
    /// Members may pin messages.
    pub allow_pins: bool,
    /// Members may reply in threads.
    pub allow_thread: bool,
    /// Minimum seconds between two messages of one member, 0..=86,400; 0 disables slow mode.
    #[serde(deserialize_with = "json_int::integer")]
    #[schema(minimum = 0, maximum = 86_400)]
    pub slow_mode_seconds: i64,
}

impl From<ConversationSettings> for SettingsDto {
    fn from(s: ConversationSettings) -> Self {
        SettingsDto {
            allow_reactions: s.allow_reactions,
            allow_pins: s.allow_pins,
            allow_thread: s.allow_thread,
            slow_mode_seconds: s.slow_mode_seconds,
        }
    }
}

impl From<SettingsDto> for ConversationSettings {
    fn from(s: SettingsDto) -> Self {
        ConversationSettings {
            allow_reactions: s.allow_reactions,
            allow_pins: s.allow_pins,
            allow_thread: s.allow_thread,
            slow_mode_seconds: s.slow_mode_seconds,
        }
    }
}

/// A conversation.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConversationDto {
    /// Conversation id.
    pub conversation_id: Uuid,
    /// Workspace.
    pub workspace_id: Uuid,
    /// `CHANNEL`, `DM` or `GROUP_DM`.
    #[serde(rename = "type")]
    pub kind: ConversationType,
    /// Channel name (null for DMs).
    pub name: Option<String>,
    /// Channel topic.
    pub topic: Option<String>,
    /// Private conversations are invisible to non-members.
    pub is_private: bool,
    /// Creator.
    pub created_by: Uuid,
    /// Creation instant.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Last metadata update.
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// Settings.
    pub settings: SettingsDto,
    /// Sequence number of the latest event (0 when none).
    pub last_seq: i64,
}

impl From<&Conversation> for ConversationDto {
    fn from(c: &Conversation) -> Self {
        ConversationDto {
            conversation_id: c.id.uuid(),
            workspace_id: c.workspace_id.uuid(),
            kind: c.kind.into(),
            name: c.name.clone(),
            topic: c.topic.clone(),
            is_private: c.is_private,
            created_by: c.created_by.uuid(),
            created_at: instant(c.created_at),
            updated_at: instant(c.updated_at),
            settings: c.settings.into(),
            last_seq: c.last_seq,
        }
    }
}

/// One of the caller's conversations with its read state: also the catch-up summary
/// (compare `lastSeq` with what the client has, then fetch events after it).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConversationSummaryDto {
    /// The conversation (includes `lastSeq`).
    #[serde(flatten)]
    pub conversation: ConversationDto,
    /// The caller's role.
    pub role: Role,
    /// Highest seq delivered to any of the caller's devices.
    pub delivered_seq: i64,
    /// Highest seq the caller has seen.
    pub seen_seq: i64,
    /// Messages by others after `seenSeq`, not deleted.
    pub unread_count: i64,
    /// Of those, messages mentioning the caller.
    pub mention_count: i64,
}

impl From<&ConversationSummary> for ConversationSummaryDto {
    fn from(s: &ConversationSummary) -> Self {
        ConversationSummaryDto {
            conversation: (&s.conversation).into(),
            role: s.member.role.into(),
            delivered_seq: s.member.delivered_seq,
            seen_seq: s.member.seen_seq,
            unread_count: s.unread_count,
            mention_count: s.mention_count,
        }
    }
}

/// A member of a conversation with its read positions.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberDto {
    /// Conversation.
    pub conversation_id: Uuid,
    /// Member.
    pub user_id: Uuid,
    /// Role.
    pub role: Role,
    /// Join instant.
    #[schema(format = DateTime)]
    pub joined_at: String,
    /// Highest seq delivered to any of the member's devices.
    pub delivered_seq: i64,
    /// Highest seq the member has seen.
    pub seen_seq: i64,
}

impl From<&Member> for MemberDto {
    fn from(m: &Member) -> Self {
        MemberDto {
            conversation_id: m.conversation_id.uuid(),
            user_id: m.user_id.uuid(),
            role: m.role.into(),
            joined_at: instant(m.joined_at),
            delivered_seq: m.delivered_seq,
            seen_seq: m.seen_seq,
        }
    }
}

/// Mentions of a message.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MentionsDto {
    /// Mentioned users.
    pub user_ids: Vec<Uuid>,
    /// `@channel` was used.
    pub channel: bool,
}

/// A message: the seed's fields plus ours.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageDto {
    /// Server message id.
    pub message_id: Uuid,
    /// Conversation.
    pub conversation_id: Uuid,
    /// Author.
    pub user_id: Uuid,
    /// Sequence number of the creation event.
    pub server_seq: i64,
    /// Thread root, for replies.
    pub thread_root_id: Option<Uuid>,
    /// Text (empty when deleted).
    pub text: String,
    /// Client-defined type (default `default`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Creation instant.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Last edit or delete instant.
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// Edited at least once.
    pub edited: bool,
    /// Soft-deleted.
    pub deleted: bool,
    /// The client's idempotency key.
    pub client_msg_id: Option<String>,
    /// Number of edits.
    pub version_count: i64,
    /// Number of thread replies (roots).
    pub reply_count: i64,
    /// Instant of the last thread reply.
    #[schema(format = DateTime)]
    pub last_reply_at: Option<String>,
    /// Parsed mentions.
    pub mentions: MentionsDto,
    /// Attached files (empty when none, and after delete).
    pub attachments: Vec<MessageAttachmentDto>,
}

impl From<&Message> for MessageDto {
    fn from(m: &Message) -> Self {
        MessageDto {
            message_id: m.id.uuid(),
            conversation_id: m.conversation_id.uuid(),
            user_id: m.user_id.uuid(),
            server_seq: m.server_seq,
            thread_root_id: m.thread_root_id.map(|id| id.uuid()),
            text: m.text.clone(),
            kind: m.kind.clone(),
            created_at: instant(m.created_at),
            updated_at: instant(m.updated_at),
            edited: m.edited,
            deleted: m.deleted,
            client_msg_id: m.client_msg_id.clone(),
            version_count: m.version_count,
            reply_count: m.thread.as_ref().map_or(0, |t| t.reply_count),
            last_reply_at: m.thread.as_ref().map(|t| instant(t.last_reply_at)),
            mentions: MentionsDto {
                user_ids: m.mentions.user_ids.iter().map(|u| u.uuid()).collect(),
                channel: m.mentions.channel,
            },
            attachments: list(&m.attachments),
        }
    }
}

/// The download path of an attachment.
fn attachment_url(id: AttachmentId) -> String {
    format!("/api/v1/attachments/{id}")
}

/// An uploaded file (`PENDING` until a send attaches it).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentDto {
    /// Attachment id: put it in `attachmentIds` of a send to attach it.
    pub attachment_id: Uuid,
    /// Conversation it was uploaded into (it can only be attached there).
    pub conversation_id: Uuid,
    /// File name (sanitized: no path, no control characters).
    pub name: String,
    /// Media type.
    pub content_type: String,
    /// Size in bytes.
    pub size: i64,
    /// Image width in pixels (images whose header has it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Image height in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Hex SHA-256 of the content.
    pub sha256: String,
    /// Upload instant.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Download path (members of the conversation only).
    pub url: String,
}

impl From<&Attachment> for AttachmentDto {
    fn from(a: &Attachment) -> Self {
        AttachmentDto {
            attachment_id: a.id.uuid(),
            conversation_id: a.conversation_id.uuid(),
            name: a.name.clone(),
            content_type: a.content_type.clone(),
            size: a.size,
            width: a.width,
            height: a.height,
            sha256: a.sha256.clone(),
            created_at: instant(a.created_at),
            url: attachment_url(a.id),
        }
    }
}

/// A file attached to a message.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageAttachmentDto {
    /// Attachment id.
    pub attachment_id: Uuid,
    /// File name.
    pub name: String,
    /// Media type.
    pub content_type: String,
    /// Size in bytes.
    pub size: i64,
    /// Image width in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Image height in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Download path (members of the conversation only).
    pub url: String,
}

impl From<&AttachmentInfo> for MessageAttachmentDto {
    fn from(a: &AttachmentInfo) -> Self {
        MessageAttachmentDto {
            attachment_id: a.attachment_id.uuid(),
            name: a.name.clone(),
            content_type: a.content_type.clone(),
            size: a.size,
            width: a.width,
            height: a.height,
            url: attachment_url(a.attachment_id),
        }
    }
}

/// A previous text of an edited message.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageVersionDto {
    /// Message.
    pub message_id: Uuid,
    /// 1 for the first edit, 2 for the second, ...
    pub version: i64,
    /// The text before this edit.
    pub old_text: String,
    /// Edit instant.
    #[schema(format = DateTime)]
    pub edited_at: String,
    /// Editor.
    pub edited_by: Uuid,
}

impl From<&MessageVersion> for MessageVersionDto {
    fn from(v: &MessageVersion) -> Self {
        MessageVersionDto {
            message_id: v.message_id.uuid(),
            version: v.version,
            old_text: v.old_text.clone(),
            edited_at: instant(v.edited_at),
            edited_by: v.edited_by.uuid(),
        }
    }
}

/// A reaction.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReactionDto {
    /// Message.
    pub message_id: Uuid,
    /// Emoji.
    pub emoji: String,
    /// Reacting user.
    pub user_id: Uuid,
    /// Instant.
    #[schema(format = DateTime)]
    pub reacted_at: String,
}

impl From<&Reaction> for ReactionDto {
    fn from(r: &Reaction) -> Self {
        ReactionDto {
            message_id: r.message_id.uuid(),
            emoji: r.emoji.clone(),
            user_id: r.user_id.uuid(),
            reacted_at: instant(r.reacted_at),
        }
    }
}

/// A pinned message.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PinDto {
    /// Message.
    pub message_id: Uuid,
    /// Conversation.
    pub conversation_id: Uuid,
    /// Pinning user.
    pub pinned_by: Uuid,
    /// Instant.
    #[schema(format = DateTime)]
    pub pinned_at: String,
}

impl From<&Pin> for PinDto {
    fn from(p: &Pin) -> Self {
        PinDto {
            message_id: p.message_id.uuid(),
            conversation_id: p.conversation_id.uuid(),
            pinned_by: p.pinned_by.uuid(),
            pinned_at: instant(p.pinned_at),
        }
    }
}

/// One entry of a conversation's event log.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventDto {
    /// Unique event id.
    pub event_id: Uuid,
    /// Conversation.
    pub conversation_id: Uuid,
    /// Position in the conversation's log (1, 2, 3, ... without gaps).
    pub seq: i64,
    /// Event type, e.g. `MESSAGE`, `MESSAGE_EDITED`, `REACTION_ADDED`, `USER_JOINED`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The user whose action caused the event.
    pub actor_id: Uuid,
    /// Commit instant.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Type-specific fields (camelCase), e.g. `message` for message events.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

impl From<&ConversationEvent> for EventDto {
    fn from(e: &ConversationEvent) -> Self {
        EventDto {
            event_id: e.event_id.uuid(),
            conversation_id: e.conversation_id.uuid(),
            seq: e.seq,
            kind: e.kind().as_str().to_string(),
            actor_id: e.actor_id.uuid(),
            created_at: instant(e.created_at),
            payload: payload_json(&e.payload),
        }
    }
}

/// The payload's fields without its `type` tag (carried by the event itself).
fn payload_json(p: &EventPayload) -> serde_json::Value {
    match serde_json::to_value(p) {
        Ok(serde_json::Value::Object(mut map)) => {
            map.remove("type");
            serde_json::Value::Object(map)
        }
        Ok(other) => other,
        Err(_) => serde_json::Value::Null,
    }
}

/// Maps a slice of domain values to API values.
pub fn list<'a, D: 'a, A: From<&'a D>>(items: &'a [D]) -> Vec<A> {
    items.iter().map(A::from).collect()
}
