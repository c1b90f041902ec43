//! Entities of the chat domain, as the core service reasons about them.
//!
//! These are domain models, not API or database models: the REST layer and the storage layer
//! each convert to and from them in one place.

use serde::{Deserialize, Serialize};

use crate::ids::{ConversationId, MessageId, UserId, WorkspaceId};
use crate::time::Millis;

/// A tenant. Users and conversations live in exactly one workspace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workspace {
    /// Workspace id ([`WorkspaceId::DEFAULT`] for the default one).
    pub id: WorkspaceId,
    /// Human-readable name.
    pub name: String,
    /// Creation instant.
    pub created_at: Millis,
}

/// A user account (seed table `users`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// User id.
    pub id: UserId,
    /// The workspace the user belongs to.
    pub workspace_id: WorkspaceId,
    /// Unique login name within the workspace: 3..=32 chars of `[a-z0-9_.-]`.
    pub username: String,
    /// Free-form display name.
    pub display_name: String,
    /// Optional avatar URL.
    pub avatar_url: Option<String>,
    /// Creation instant.
    pub created_at: Millis,
}

/// Kind of conversation (seed `conversations.type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConversationKind {
    /// A named channel, public (joinable) or private (invisible to non-members).
    Channel,
    /// A direct message between exactly two users.
    Dm,
    /// A direct message among a fixed set of users.
    GroupDm,
}

impl ConversationKind {
    /// The seed's database/wire spelling: `CHANNEL`, `DM`, `GROUP_DM`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConversationKind::Channel => "CHANNEL",
            ConversationKind::Dm => "DM",
            ConversationKind::GroupDm => "GROUP_DM",
        }
    }

    /// Inverse of [`ConversationKind::as_str`]; `None` for any other string.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "CHANNEL" => Some(ConversationKind::Channel),
            "DM" => Some(ConversationKind::Dm),
            "GROUP_DM" => Some(ConversationKind::GroupDm),
            _ => None,
        }
    }
}

/// Per-conversation settings (seed table `conversation_settings`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationSettings {
    /// Members may add reactions.
    pub allow_reactions: bool,
    /// Members may pin messages.
    pub allow_pins: bool,
    /// Members may reply in threads.
    pub allow_thread: bool,
    /// Minimum seconds between two messages of one member; 0 disables slow mode.
    pub slow_mode_seconds: i64,
}

impl Default for ConversationSettings {
    fn default() -> Self {
        ConversationSettings { allow_reactions: true, allow_pins: true, allow_thread: true, slow_mode_seconds: 0 }
    }
}

/// A conversation (seed table `conversations` joined with its settings and sequence).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conversation {
    /// Conversation id.
    pub id: ConversationId,
    /// Owning workspace.
    pub workspace_id: WorkspaceId,
    /// Channel, DM or group DM.
    pub kind: ConversationKind,
    /// Channel name (DMs: `None`).
    pub name: Option<String>,
    /// Channel topic.
    pub topic: Option<String>,
    /// Private channels are invisible to non-members. DMs and group DMs are always private.
    pub is_private: bool,
    /// Creator.
    pub created_by: UserId,
    /// Creation instant.
    pub created_at: Millis,
    /// Last update of name/topic/settings.
    pub updated_at: Millis,
    /// Settings.
    pub settings: ConversationSettings,
    /// Sequence number of the latest event (0 when none).
    pub last_seq: i64,
}

/// Role of a member (seed `conversation_members.role`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MemberRole {
    /// May rename, change settings, add and remove members, delete any message.
    Owner,
    /// Ordinary member.
    Member,
}

impl MemberRole {
    /// `OWNER` or `MEMBER`.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberRole::Owner => "OWNER",
            MemberRole::Member => "MEMBER",
        }
    }

    /// Inverse of [`MemberRole::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "OWNER" => Some(MemberRole::Owner),
            "MEMBER" => Some(MemberRole::Member),
            _ => None,
        }
    }
}

/// A member of a conversation with its read positions (sequence numbers of the
/// conversation's event log; 0 = nothing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Conversation.
    pub conversation_id: ConversationId,
    /// Member user.
    pub user_id: UserId,
    /// Role.
    pub role: MemberRole,
    /// Join instant.
    pub joined_at: Millis,
    /// Highest seq delivered to any of the member's devices (monotonic).
    pub delivered_seq: i64,
    /// Highest seq the member has seen (monotonic, `<= ` latest seq).
    pub seen_seq: i64,
}

/// A message (seed table `messages`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Server-assigned id (UUID v7).
    pub id: MessageId,
    /// Conversation.
    pub conversation_id: ConversationId,
    /// Author.
    pub user_id: UserId,
    /// The client's idempotency key (seed `messageId` / `client_msg_id`), unique per
    /// (conversation, author).
    pub client_msg_id: Option<String>,
    /// Sequence number of the creation event.
    pub server_seq: i64,
    /// Root message when this is a thread reply.
    pub thread_root_id: Option<MessageId>,
    /// Text (empty after delete).
    pub text: String,
    /// Client-defined type, default `"default"`.
    pub kind: String,
    /// Creation instant.
    pub created_at: Millis,
    /// Last edit or delete instant.
    pub updated_at: Millis,
    /// Edited at least once.
    pub edited: bool,
    /// Soft-deleted (tombstone).
    pub deleted: bool,
    /// Number of edits (rows in `message_versions`).
    pub version_count: i64,
    /// Thread summary when this message is a thread root with replies.
    pub thread: Option<ThreadSummary>,
    /// `@username` mentions (user ids) and whether `@channel` was used.
    pub mentions: Mentions,
    /// Attached files (empty when none, and after delete).
    pub attachments: Vec<crate::attachment::AttachmentInfo>,
}

/// Mentions parsed from a message text.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mentions {
    /// Mentioned users.
    pub user_ids: Vec<UserId>,
    /// `@channel` was used (mentions every member).
    pub channel: bool,
}

/// Thread summary of a root message (seed table `message_threads`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThreadSummary {
    /// Number of replies.
    pub reply_count: i64,
    /// Instant of the last reply.
    pub last_reply_at: Millis,
    /// Author of the last reply.
    pub last_replied_by: UserId,
}

/// One previous text of an edited message (seed table `message_versions`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageVersion {
    /// Message.
    pub message_id: MessageId,
    /// 1 for the first edit, 2 for the second, ...
    pub version: i64,
    /// The text before this edit.
    pub old_text: String,
    /// Edit instant.
    pub edited_at: Millis,
    /// Editor.
    pub edited_by: UserId,
}

/// A reaction (seed table `message_reactions`); unique per (message, emoji, user).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reaction {
    /// Message.
    pub message_id: MessageId,
    /// Emoji (1..=64 bytes of text, e.g. `👍` or `:thumbsup:`).
    pub emoji: String,
    /// Reacting user.
    pub user_id: UserId,
    /// Instant.
    pub reacted_at: Millis,
}

/// A pin (seed table `message_pins`); at most one per message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pin {
    /// Message.
    pub message_id: MessageId,
    /// Conversation of the message.
    pub conversation_id: ConversationId,
    /// Pinning user.
    pub pinned_by: UserId,
    /// Instant.
    pub pinned_at: Millis,
}

/// A conversation as listed for one member: with its latest seq and unread counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConversationSummary {
    /// The conversation.
    pub conversation: Conversation,
    /// The caller's membership.
    pub member: Member,
    /// Messages by others after the caller's `seen_seq`, not deleted.
    pub unread_count: i64,
    /// Of those, messages mentioning the caller (directly or by `@channel`).
    pub mention_count: i64,
}

/// A window over a conversation's sequence numbers: `after_seq < seq < before_seq`,
/// at most `limit` items. With only `before_seq` (or neither) the newest items of the window
/// are returned; results are always in ascending seq order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeqWindow {
    /// Exclusive lower bound.
    pub after_seq: Option<i64>,
    /// Exclusive upper bound.
    pub before_seq: Option<i64>,
    /// Maximum number of items (1..=500).
    pub limit: i64,
}
