//! Request bodies and query strings of the REST API, and their conversion to service inputs.
//! Bodies reject unknown fields.

use chat_domain::{AttachmentId, ConversationId, MessageId, SeqWindow, UserId};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{ConversationType, SettingsDto};
use crate::service::{ConversationPatch, CreateChannel, SendMessage};

/// Default page size of list endpoints.
pub const DEFAULT_LIMIT: i64 = 50;

/// Body of `POST /api/v1/auth/register`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterRequest {
    /// Login name: 3..=32 chars of `[a-z0-9_.-]` (ASCII letters are lowercased).
    #[schema(pattern = "^[A-Za-z0-9_.-]{3,32}$", min_length = 3, max_length = 32)]
    pub username: String,
    /// Password, 8..=256 bytes (UTF-8; the schema's lengths count characters, exact for ASCII).
    #[schema(min_length = 8, max_length = 256)]
    pub password: String,
    /// Display name (defaults to the username when absent or blank): at most 64 characters
    /// once trimmed (the pattern).
    #[serde(default)]
    pub display_name: Option<String>,
}

/// Body of `POST /auth/login` and `POST /api/v1/auth/login` (seed shape).
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoginRequest {
    /// Login name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// Body of `POST /api/v1/auth/refresh` and `/logout`; without it the `refreshToken` cookie
/// is used.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token.
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// Body of `POST /api/v1/conversations`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateConversationRequest {
    /// `CHANNEL`, `DM` (memberIds: exactly the other user) or `GROUP_DM` (memberIds: the others).
    #[serde(rename = "type")]
    pub kind: ConversationType,
    /// Channel name (channels only; required there): not blank, stored trimmed, at most 80
    /// bytes and no control characters once trimmed (the pattern of the `CHANNEL` variant).
    #[serde(default)]
    pub name: Option<String>,
    /// Channel topic, at most 1,024 bytes.
    #[serde(default)]
    #[schema(max_length = 1024)]
    pub topic: Option<String>,
    /// Private channel (default false).
    #[serde(default)]
    pub is_private: Option<bool>,
    /// Channel settings (defaults: everything allowed, no slow mode).
    #[serde(default)]
    pub settings: Option<SettingsDto>,
    /// Other initial members (the caller is always a member and, for channels, the owner).
    #[serde(default)]
    pub member_ids: Vec<Uuid>,
}

impl CreateConversationRequest {
    /// The channel to create (for `type = CHANNEL`).
    pub fn channel(&self) -> CreateChannel {
        CreateChannel {
            name: self.name.clone().unwrap_or_default(),
            topic: self.topic.clone(),
            is_private: self.is_private.unwrap_or(false),
            settings: self.settings.map(Into::into),
            member_ids: self.member_ids.iter().copied().map(UserId::from).collect(),
        }
    }
}

/// Body of `PATCH /api/v1/conversations/{id}`; absent fields stay unchanged.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchConversationRequest {
    /// New name (channels and group DMs): as on creation, not blank, stored trimmed, at most 80
    /// bytes and no control characters once trimmed.
    #[serde(default)]
    pub name: Option<String>,
    /// New topic, at most 1,024 bytes.
    #[serde(default)]
    #[schema(max_length = 1024)]
    pub topic: Option<String>,
    /// New privacy.
    #[serde(default)]
    pub is_private: Option<bool>,
    /// New settings (whole).
    #[serde(default)]
    pub settings: Option<SettingsDto>,
}

impl From<PatchConversationRequest> for ConversationPatch {
    fn from(p: PatchConversationRequest) -> Self {
        ConversationPatch {
            name: p.name,
            topic: p.topic,
            is_private: p.is_private,
            settings: p.settings.map(Into::into),
        }
    }
}

/// Body of `POST /api/v1/conversations/{id}/members`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddMemberRequest {
    /// The user to add.
    pub user_id: Uuid,
}

/// Body of `POST /api/v1/conversations/{id}/messages`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SendMessageRequest {
    /// Text: not blank (the pattern), at most 16,384 bytes (default limit).
    #[schema(min_length = 1, max_length = 16384)]
    pub text: String,
    /// Idempotency key (1..=128 bytes): a retry with the same key returns the original
    /// message (200).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 128)]
    pub client_msg_id: Option<String>,
    /// Thread root, to reply in a thread.
    #[serde(default)]
    pub thread_root_id: Option<Uuid>,
    /// Client-defined type, 1..=64 bytes without control characters (default `default`).
    #[serde(default, rename = "type")]
    #[schema(min_length = 1, max_length = 64)]
    pub kind: Option<String>,
    /// Uploads to attach (`POST /api/v1/conversations/{id}/attachments`), at most 10
    /// (default limit), distinct, each an unattached upload of the caller in this conversation.
    #[serde(default)]
    #[schema(max_items = 10)]
    pub attachment_ids: Vec<Uuid>,
}

impl SendMessageRequest {
    /// The send for the service.
    pub fn into_send(self, conversation_id: ConversationId) -> SendMessage {
        SendMessage {
            conversation_id,
            client_msg_id: self.client_msg_id,
            text: self.text,
            kind: self.kind,
            thread_root_id: self.thread_root_id.map(MessageId::from),
            attachment_ids: self.attachment_ids.into_iter().map(AttachmentId::from).collect(),
        }
    }
}

/// Body of `PATCH /api/v1/messages/{id}`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EditMessageRequest {
    /// New text: not blank (the pattern), at most 16,384 bytes (default limit).
    #[schema(min_length = 1, max_length = 16384)]
    pub text: String,
}

/// Body of `POST /api/v1/conversations/{id}/ack`.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AckRequest {
    /// Highest seq delivered to this device.
    #[serde(default, deserialize_with = "super::json_int::optional_integer")]
    #[schema(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)]
    pub delivered_seq: Option<i64>,
    /// Highest seq the user has seen.
    #[serde(default, deserialize_with = "super::json_int::optional_integer")]
    #[schema(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)]
    pub seen_seq: Option<i64>,
}

/// Query of `GET /api/v1/users`.
#[derive(Clone, Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserSearchQuery {
    /// Username prefix, at most 32 bytes.
    #[serde(default)]
    #[param(max_length = 32)]
    pub prefix: String,
    /// Maximum results, 1..=500 (default 50).
    #[serde(default)]
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// Query of `GET /api/v1/conversations/{id}/messages`: the window `afterSeq < seq < beforeSeq`.
#[derive(Clone, Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MessagesQuery {
    /// Exclusive lower bound.
    #[serde(default)]
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)]
    pub after_seq: Option<i64>,
    /// Exclusive upper bound.
    #[serde(default)]
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)]
    pub before_seq: Option<i64>,
    /// Maximum items, 1..=500 (default 50). Without `afterSeq` the newest of the window are
    /// returned.
    #[serde(default)]
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

impl From<&MessagesQuery> for SeqWindow {
    fn from(q: &MessagesQuery) -> Self {
        SeqWindow { after_seq: q.after_seq, before_seq: q.before_seq, limit: q.limit.unwrap_or(DEFAULT_LIMIT) }
    }
}

/// Query of `GET /api/v1/messages/{id}/replies` and `GET /api/v1/conversations/{id}/events`.
#[derive(Clone, Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AfterSeqQuery {
    /// Exclusive lower bound (default 0: from the start).
    #[serde(default)]
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)]
    pub after_seq: Option<i64>,
    /// Maximum items, 1..=500 (default 50).
    #[serde(default)]
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

impl AfterSeqQuery {
    /// The window of this query.
    pub fn window(&self) -> SeqWindow {
        SeqWindow { after_seq: Some(self.after_seq.unwrap_or(0)), before_seq: None, limit: self.limit() }
    }

    /// The limit (default applied).
    pub fn limit(&self) -> i64 {
        self.limit.unwrap_or(DEFAULT_LIMIT)
    }
}
