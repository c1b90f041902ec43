//! Attachments: files uploaded into a conversation and attached to a message at send time
//! (seed table `message_attachments`).
//!
//! Life cycle ([`AttachmentStatus`]): `UPLOADING` (row written before the first byte goes to
//! the object store) → `PENDING` (stored, not yet attached; only its uploader sees it) →
//! `ATTACHED` (to exactly one message, in the send's transaction) → `DELETED` (its message
//! was deleted: hidden at once). The cleanup removes `UPLOADING`/`PENDING` rows older than a
//! threshold and every `DELETED` one, object first (`PURGING` marks a removal in progress).

use serde::{Deserialize, Serialize};

use crate::ids::{AttachmentId, ConversationId, MessageId, UserId};
use crate::time::Millis;

/// Where an attachment is in its life cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttachmentStatus {
    /// The row exists; the content is being streamed to the object store.
    Uploading,
    /// Stored and complete; not attached to a message yet.
    Pending,
    /// Attached to a message.
    Attached,
    /// Its message was deleted: hidden, waiting for the cleanup.
    Deleted,
    /// The cleanup is removing its object (a failed removal is retried by the next cleanup).
    Purging,
}

impl AttachmentStatus {
    /// The stored name (`UPLOADING`, `PENDING`, `ATTACHED`, `DELETED`, `PURGING`).
    pub fn as_str(self) -> &'static str {
        match self {
            AttachmentStatus::Uploading => "UPLOADING",
            AttachmentStatus::Pending => "PENDING",
            AttachmentStatus::Attached => "ATTACHED",
            AttachmentStatus::Deleted => "DELETED",
            AttachmentStatus::Purging => "PURGING",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<AttachmentStatus> {
        Some(match s {
            "UPLOADING" => AttachmentStatus::Uploading,
            "PENDING" => AttachmentStatus::Pending,
            "ATTACHED" => AttachmentStatus::Attached,
            "DELETED" => AttachmentStatus::Deleted,
            "PURGING" => AttachmentStatus::Purging,
            _ => return None,
        })
    }
}

/// An uploaded file and its metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// Id (UUID v7).
    pub id: AttachmentId,
    /// The conversation it was uploaded into (it can only be attached there).
    pub conversation_id: ConversationId,
    /// The uploader (only the uploader can attach it).
    pub uploader_id: UserId,
    /// The message it is attached to, once attached.
    pub message_id: Option<MessageId>,
    /// File name as given by the uploader (sanitized: no path, no control characters).
    pub name: String,
    /// Media type (checked against the allowlist; images checked by their magic bytes).
    pub content_type: String,
    /// Size in bytes (0 while uploading).
    pub size: i64,
    /// Image width in pixels, when the content is an image whose header says so.
    pub width: Option<u32>,
    /// Image height in pixels.
    pub height: Option<u32>,
    /// Hex SHA-256 of the content (empty while uploading).
    pub sha256: String,
    /// Key of the content in the object store.
    pub object_key: String,
    /// Life-cycle state.
    pub status: AttachmentStatus,
    /// Upload start instant.
    pub created_at: Millis,
    /// When its message was deleted.
    pub deleted_at: Option<Millis>,
}

impl Attachment {
    /// The metadata carried by messages and their events.
    pub fn info(&self) -> AttachmentInfo {
        AttachmentInfo {
            attachment_id: self.id,
            name: self.name.clone(),
            content_type: self.content_type.clone(),
            size: self.size,
            width: self.width,
            height: self.height,
        }
    }
}

/// An attachment as carried by a message and its events (camelCase JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentInfo {
    /// Attachment id (download: `GET /api/v1/attachments/{id}`).
    pub attachment_id: AttachmentId,
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
}
