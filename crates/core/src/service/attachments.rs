//! Attachments: upload (streamed to the blob store while counting and hashing), the checks a
//! send with attachments must pass, authorized download, and the cleanup.
//!
//! Rules:
//! - Only members upload into a conversation; the upload is `PENDING` and visible to its
//!   uploader only until a send of the uploader in that conversation attaches it (in the
//!   send's transaction; each attachment once).
//! - Content larger than `limits.max_attachment_bytes` is refused while streaming
//!   ([`UploadError::TooLarge`]) and whatever was stored is removed. Empty files are refused.
//! - The media type (from the part header, `application/octet-stream` when absent) must be
//!   on the allowlist ([`AttachmentPolicy`]); images are checked by their magic bytes (a
//!   declared image type must match the content; undeclared or `application/octet-stream`
//!   content that is an image takes the image type), and their dimensions are read from the
//!   first bytes when the header has them.
//! - Downloads follow the history rule: members of the conversation (404 for private
//!   conversations, 403 for public channels they have not joined). Attachments of deleted
//!   messages are gone (404) at once; the cleanup removes their content later.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use chat_blob::{Blob, BlobError, BlobStore, BlobWriter};
use chat_domain::authz;
use chat_domain::{
    Attachment, AttachmentId, AttachmentStatus, Conversation, ConversationId, DomainError, Millis, UserId,
};
use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};

use super::{ChatService, ServiceResult};

/// The media types accepted by default. `type/*` entries accept any subtype.
pub const DEFAULT_ALLOWED_CONTENT_TYPES: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/bmp",
    "application/pdf",
    "text/plain",
    "text/csv",
    "text/markdown",
    "application/json",
    "application/zip",
    "application/gzip",
    "application/octet-stream",
    "audio/mpeg",
    "audio/ogg",
    "video/mp4",
    "video/webm",
];

/// Image types a browser may render inline (no scripts); everything else downloads.
pub const INLINE_CONTENT_TYPES: &[&str] = &["image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp"];

/// Bytes buffered before the first write: magic bytes and image headers are read from them.
const SNIFF_BYTES: usize = 64 * 1024;
/// Longest stored file name (bytes of UTF-8).
const MAX_NAME_BYTES: usize = 255;

/// What uploads may contain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachmentPolicy {
    /// Allowed media types (lowercase; `type/*` for any subtype). Default
    /// [`DEFAULT_ALLOWED_CONTENT_TYPES`].
    pub allowed_content_types: Vec<String>,
}

impl Default for AttachmentPolicy {
    fn default() -> Self {
        AttachmentPolicy {
            allowed_content_types: DEFAULT_ALLOWED_CONTENT_TYPES.iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl AttachmentPolicy {
    /// Is `content_type` (an essence: lowercase `type/subtype`) allowed?
    pub fn allows(&self, content_type: &str) -> bool {
        let Some((top, sub)) = content_type.split_once('/') else { return false };
        let token =
            |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b));
        if !token(top) || !token(sub) {
            return false;
        }
        self.allowed_content_types.iter().any(|a| {
            let a = a.trim().to_ascii_lowercase();
            a == content_type || a.strip_suffix("/*").is_some_and(|t| t == top)
        })
    }
}

/// The attachments part of the service: where content goes and what it may be.
#[derive(Clone, Debug)]
pub(crate) struct Attachments {
    pub(crate) blobs: BlobStore,
    pub(crate) policy: AttachmentPolicy,
}

/// An upload's metadata (the file part's headers).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Upload {
    /// Target conversation (the actor must be a member).
    pub conversation_id: ConversationId,
    /// File name (any path is stripped, control characters removed; default `file`).
    pub name: Option<String>,
    /// Declared media type (parameters are ignored).
    pub content_type: Option<String>,
}

/// Why reading the upload's body failed (reported by the interface).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyError {
    /// The interface's own body limit was hit.
    TooLarge,
    /// The body could not be read (malformed multipart, connection lost).
    Read(String),
}

/// Why an upload was refused.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// Authorization, validation or availability, as everywhere.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// Larger than `limits.max_attachment_bytes` (HTTP 413).
    #[error("the file is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// A media type that is not allowed or does not match the content (HTTP 415).
    #[error("{0}")]
    UnsupportedType(String),
    /// The body could not be read (HTTP 400).
    #[error("could not read the upload: {0}")]
    Body(String),
}

/// An attachment's content, for an authorized download.
#[derive(Debug)]
pub struct Download {
    /// Its metadata.
    pub attachment: Attachment,
    /// Its content.
    pub blob: Blob,
}

/// What a cleanup removed.
#[derive(Debug, Default)]
pub struct CleanupReport {
    /// Removed attachments (their rows and content), with whether content was found.
    pub removed: Vec<(Attachment, bool)>,
    /// Attachments whose content could not be removed (kept as `PURGING`, retried next time).
    pub failed: Vec<(Attachment, String)>,
}

impl ChatService {
    /// Enables attachments: content in `blobs`, media types by `policy`. Without this,
    /// uploads and downloads answer `Unavailable`.
    pub fn with_attachments(mut self, blobs: BlobStore, policy: AttachmentPolicy) -> Self {
        self.attachments = Some(std::sync::Arc::new(Attachments { blobs, policy }));
        self
    }

    /// The blob store, when attachments are enabled (readiness probes).
    pub fn blob_store(&self) -> Option<&BlobStore> {
        self.attachments.as_deref().map(|a| &a.blobs)
    }

    fn attachments_cfg(&self) -> ServiceResult<&Attachments> {
        self.attachments
            .as_deref()
            .ok_or_else(|| DomainError::Unavailable("attachments are not configured on this node".into()))
    }

    /// Checks that the actor may upload into `conv` (before any byte is read).
    ///
    /// # Errors
    /// As [`authz::require_member`]; `Unavailable` when attachments are not configured.
    pub async fn check_upload(&self, actor: UserId, conv: ConversationId) -> ServiceResult<()> {
        self.attachments_cfg()?;
        self.conv_as_member(actor, conv).await.map(|_| ())
    }

    /// Uploads a file into a conversation: checks membership, streams `body` to the blob
    /// store (multipart upload beyond one part) while counting and hashing, and stores the
    /// attachment as `PENDING`.
    ///
    /// # Errors
    /// [`UploadError::TooLarge`], [`UploadError::UnsupportedType`], [`UploadError::Body`];
    /// `Domain`: as [`ChatService::check_upload`], `Invalid("file")` for an empty file,
    /// `Unavailable` when the blob store or database fails. Nothing is left behind on error
    /// (a row and content left by a crash are removed by the cleanup).
    pub async fn upload<S>(&self, actor: UserId, up: Upload, body: S) -> Result<Attachment, UploadError>
    where
        S: Stream<Item = Result<Bytes, BodyError>> + Send,
    {
        let cfg = self.attachments_cfg()?;
        self.conv_as_member(actor, up.conversation_id).await?;
        let limit = self.limits().max_attachment_bytes;
        let mut body = std::pin::pin!(body);
        let mut head = BytesMut::new();
        let mut total = 0u64;
        let mut eof = false;
        while head.len() < SNIFF_BYTES {
            match next_chunk(&mut body, &mut total, limit).await? {
                Some(b) => head.extend_from_slice(&b),
                None => {
                    eof = true;
                    break;
                }
            }
        }
        if total == 0 {
            return Err(DomainError::invalid("file", "the file is empty").into());
        }
        let content_type = checked_content_type(&cfg.policy, up.content_type.as_deref(), &head)?;
        let (width, height) = if content_type.starts_with("image/") {
            imagesize::blob_size(&head)
                .map(|s| (u32::try_from(s.width).ok(), u32::try_from(s.height).ok()))
                .unwrap_or((None, None))
        } else {
            (None, None)
        };
        let id = AttachmentId::new();
        let mut a = Attachment {
            id,
            conversation_id: up.conversation_id,
            uploader_id: actor,
            message_id: None,
            name: sanitize_name(up.name.as_deref()),
            content_type,
            size: 0,
            width,
            height,
            sha256: String::new(),
            object_key: format!("{}/{}", up.conversation_id, id),
            status: AttachmentStatus::Uploading,
            created_at: Millis::now(),
            deleted_at: None,
        };
        self.store.insert_attachment(&a).await.map_err(DomainError::from)?;
        let mut writer = match cfg.blobs.writer(&a.object_key) {
            Ok(w) => w,
            Err(e) => {
                self.abandon(&a, None).await;
                return Err(blob_unavailable(e).into());
            }
        };
        let mut hash = Sha256::new();
        hash.update(&head);
        let mut result = writer.write(head.freeze()).await.map_err(|e| UploadError::from(blob_unavailable(e)));
        while result.is_ok() && !eof {
            result = match next_chunk(&mut body, &mut total, limit).await {
                Ok(Some(b)) => {
                    hash.update(&b);
                    writer.write(b).await.map_err(|e| blob_unavailable(e).into())
                }
                Ok(None) => {
                    eof = true;
                    Ok(())
                }
                Err(e) => Err(e),
            };
        }
        if let Err(e) = result {
            self.abandon(&a, Some(writer)).await;
            return Err(e);
        }
        if let Err(e) = writer.finish().await {
            self.abandon(&a, None).await;
            return Err(blob_unavailable(e).into());
        }
        a.size = i64::try_from(total).unwrap_or(i64::MAX);
        a.sha256 = hex(&hash.finalize());
        a.status = AttachmentStatus::Pending;
        match self.store.complete_upload(&a).await {
            Ok(true) => Ok(a),
            Ok(false) => Err(DomainError::Conflict("the upload was removed while it was being stored".into()).into()),
            Err(e) => {
                self.abandon(&a, None).await;
                Err(DomainError::from(e).into())
            }
        }
    }

    /// Removes what a failed upload left: its partial content and its `UPLOADING` row.
    /// Failures are logged; the cleanup removes what remains.
    async fn abandon(&self, a: &Attachment, writer: Option<BlobWriter>) {
        if let Some(w) = writer
            && let Err(e) = w.abort().await
        {
            tracing::warn!(attachment = %a.id, error = %e, "aborting a failed upload");
        }
        if let Some(cfg) = self.attachments.as_deref()
            && let Err(e) = cfg.blobs.delete(&a.object_key).await
        {
            tracing::warn!(attachment = %a.id, error = %e, "removing the content of a failed upload");
        }
        if let Err(e) = self.store.remove_attachment(a.id, AttachmentStatus::Uploading).await {
            tracing::warn!(attachment = %a.id, error = %e, "removing the row of a failed upload");
        }
    }

    /// An attachment's metadata, if the actor may see it: attached ones to members of the
    /// conversation, pending ones to their uploader.
    ///
    /// # Errors
    /// `NotFound("attachment")` (also when invisible: a private conversation, someone
    /// else's pending upload, a deleted message's attachment); `Forbidden` for a public
    /// channel the actor has not joined.
    pub async fn attachment(&self, actor: UserId, id: AttachmentId) -> ServiceResult<Attachment> {
        let a = self.store.attachment(id).await?.ok_or(DomainError::NotFound("attachment"))?;
        let visible = match a.status {
            AttachmentStatus::Attached => true,
            AttachmentStatus::Pending => a.uploader_id == actor,
            _ => false,
        };
        if !visible {
            return Err(DomainError::NotFound("attachment"));
        }
        let (conv, member) = match self.conv_and_member(actor, a.conversation_id).await {
            Err(DomainError::NotFound(_)) => return Err(DomainError::NotFound("attachment")),
            other => other?,
        };
        match authz::require_member(&conv, member.as_ref()) {
            Ok(_) => Ok(a),
            Err(DomainError::NotFound(_)) => Err(DomainError::NotFound("attachment")),
            Err(e) => Err(e),
        }
    }

    /// An attachment's content, authorized as [`ChatService::attachment`].
    ///
    /// # Errors
    /// As [`ChatService::attachment`]; `NotFound` when the content is missing from the
    /// store (logged); `Unavailable` when the store fails or attachments are not configured.
    pub async fn download(&self, actor: UserId, id: AttachmentId) -> ServiceResult<Download> {
        let cfg = self.attachments_cfg()?;
        let attachment = self.attachment(actor, id).await?;
        match cfg.blobs.get(&attachment.object_key).await {
            Ok(blob) => Ok(Download { attachment, blob }),
            Err(BlobError::NotFound(key)) => {
                tracing::error!(attachment = %id, key, "attachment content missing from the object store");
                Err(DomainError::NotFound("attachment"))
            }
            Err(e) => Err(blob_unavailable(e)),
        }
    }

    /// The checks of a send with attachments: at most `limits.max_attachments_per_message`,
    /// no repeats, each a `PENDING` upload of the actor in this conversation. (The store
    /// checks again in the send's transaction.)
    ///
    /// # Errors
    /// `Invalid("attachmentIds")`.
    pub(crate) async fn check_send_attachments(
        &self,
        actor: UserId,
        conv: &Conversation,
        ids: &[AttachmentId],
    ) -> ServiceResult<()> {
        let max = self.limits().max_attachments_per_message;
        if ids.len() > max {
            return Err(DomainError::invalid("attachmentIds", format!("at most {max} attachments per message")));
        }
        for (i, id) in ids.iter().enumerate() {
            if ids[..i].contains(id) {
                return Err(DomainError::invalid("attachmentIds", format!("attachment {id} is listed twice")));
            }
            let ok = self.store.attachment(*id).await?.is_some_and(|a| {
                a.conversation_id == conv.id && a.uploader_id == actor && a.status == AttachmentStatus::Pending
            });
            if !ok {
                return Err(DomainError::invalid(
                    "attachmentIds",
                    format!("attachment {id} is not an unattached upload of yours in this conversation"),
                ));
            }
        }
        Ok(())
    }

    /// Removes what nobody can use any more: uploads never attached (or never finished)
    /// older than `older_than`, and the attachments of deleted messages. Content first,
    /// then the row; content that cannot be removed is reported and retried next time.
    /// Runs in rounds of `batch` until nothing is left.
    ///
    /// # Errors
    /// `Unavailable` when the database fails or attachments are not configured.
    pub async fn cleanup_attachments(&self, older_than: Duration, batch: i64) -> ServiceResult<CleanupReport> {
        let cfg = self.attachments_cfg()?;
        let batch = batch.max(1);
        let before = Millis(Millis::now().0 - i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX));
        let mut report = CleanupReport::default();
        let mut failed_ids = std::collections::HashSet::new();
        loop {
            let stale = self.store.stale_attachments(before, batch + failed_ids.len() as i64).await?;
            let todo: Vec<Attachment> = stale.iter().filter(|a| !failed_ids.contains(&a.id)).cloned().collect();
            if todo.is_empty() {
                break;
            }
            for a in todo {
                let claimed = a.status == AttachmentStatus::Purging
                    || self.store.set_attachment_status(a.id, a.status, AttachmentStatus::Purging).await?;
                if !claimed {
                    // Attached (or removed) meanwhile: no longer stale.
                    failed_ids.insert(a.id);
                    continue;
                }
                match cfg.blobs.delete(&a.object_key).await {
                    Ok(existed) => {
                        self.store.remove_attachment(a.id, AttachmentStatus::Purging).await?;
                        report.removed.push((a, existed));
                    }
                    Err(e) => {
                        failed_ids.insert(a.id);
                        report.failed.push((a, e.to_string()));
                    }
                }
            }
        }
        Ok(report)
    }
}

/// The next chunk of the body, counted against the limit.
async fn next_chunk<S>(
    body: &mut std::pin::Pin<&mut S>,
    total: &mut u64,
    limit: u64,
) -> Result<Option<Bytes>, UploadError>
where
    S: Stream<Item = Result<Bytes, BodyError>>,
{
    match body.next().await {
        None => Ok(None),
        Some(Ok(b)) => {
            *total += b.len() as u64;
            if *total > limit { Err(UploadError::TooLarge { limit }) } else { Ok(Some(b)) }
        }
        Some(Err(BodyError::TooLarge)) => Err(UploadError::TooLarge { limit }),
        Some(Err(BodyError::Read(why))) => Err(UploadError::Body(why)),
    }
}

fn blob_unavailable(e: BlobError) -> DomainError {
    DomainError::Unavailable(format!("attachment storage: {e}"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The lowercase `type/subtype` of a media type, with common aliases normalized.
fn essence(ct: &str) -> String {
    let e = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match e.as_str() {
        "image/jpg" | "image/pjpeg" => "image/jpeg".into(),
        "image/x-png" => "image/png".into(),
        _ => e,
    }
}

/// The media type the content's magic bytes say, for the types checked by content.
fn sniff(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(b"%PDF-") {
        return Some("application/pdf");
    }
    match imagesize::image_type(head).ok()? {
        imagesize::ImageType::Png => Some("image/png"),
        imagesize::ImageType::Jpeg => Some("image/jpeg"),
        imagesize::ImageType::Gif => Some("image/gif"),
        imagesize::ImageType::Webp => Some("image/webp"),
        imagesize::ImageType::Bmp => Some("image/bmp"),
        _ => None,
    }
}

/// The stored media type: declared (or sniffed when undeclared), checked against the
/// allowlist and, for images, against the content.
fn checked_content_type(policy: &AttachmentPolicy, declared: Option<&str>, head: &[u8]) -> Result<String, UploadError> {
    let declared = declared.map(essence).filter(|d| !d.is_empty());
    let sniffed = sniff(head);
    let ct = match (declared, sniffed) {
        (None, Some(s)) => s.to_string(),
        (Some(d), Some(s)) if d == "application/octet-stream" => s.to_string(),
        (None, None) => "application/octet-stream".to_string(),
        (Some(d), _) => d,
    };
    if !policy.allows(&ct) {
        return Err(UploadError::UnsupportedType(format!(
            "content type {ct} is not allowed; allowed: {}",
            policy.allowed_content_types.join(", ")
        )));
    }
    if ct.starts_with("image/") && sniffed != Some(ct.as_str()) {
        let what = sniffed.map_or_else(|| "not an image of a known type".to_string(), |s| s.to_string());
        return Err(UploadError::UnsupportedType(format!("declared {ct} but the content is {what}")));
    }
    Ok(ct)
}

/// A safe file name: the last path segment, without control characters, trimmed, at most
/// 255 bytes; `file` when nothing is left.
pub fn sanitize_name(raw: Option<&str>) -> String {
    let base = raw.unwrap_or("").rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base.chars().filter(|c| !c.is_control()).collect();
    let trimmed = cleaned.trim();
    let name = if trimmed.is_empty() || trimmed == "." || trimmed == ".." { "file" } else { trimmed };
    let mut end = name.len().min(MAX_NAME_BYTES);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG_1X1: &[u8] = &[
        0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, b'I', b'H', b'D', b'R', 0, 0, 0, 3, 0, 0, 0, 2, 8,
        6, 0, 0, 0,
    ];

    #[test]
    fn names_are_sanitized() {
        assert_eq!(sanitize_name(Some("../../etc/passwd")), "passwd");
        assert_eq!(sanitize_name(Some("C:\\Users\\me\\report.pdf")), "report.pdf");
        assert_eq!(sanitize_name(Some(" a\u{0}b\n.txt ")), "ab.txt");
        assert_eq!(sanitize_name(None), "file");
        assert_eq!(sanitize_name(Some("..")), "file");
        let long = "é".repeat(200);
        let s = sanitize_name(Some(&long));
        assert!(s.len() <= 255 && s.is_char_boundary(s.len()));
    }

    #[test]
    fn content_types_are_checked() {
        let p = AttachmentPolicy::default();
        assert_eq!(checked_content_type(&p, Some("image/png"), PNG_1X1).unwrap(), "image/png");
        assert_eq!(checked_content_type(&p, None, PNG_1X1).unwrap(), "image/png");
        assert_eq!(checked_content_type(&p, Some("application/octet-stream"), PNG_1X1).unwrap(), "image/png");
        assert_eq!(checked_content_type(&p, Some("text/plain; charset=utf-8"), b"hello").unwrap(), "text/plain");
        assert_eq!(checked_content_type(&p, None, b"hello").unwrap(), "application/octet-stream");
        assert!(matches!(checked_content_type(&p, Some("image/jpeg"), PNG_1X1), Err(UploadError::UnsupportedType(_))));
        assert!(matches!(checked_content_type(&p, Some("image/png"), b"<svg>"), Err(UploadError::UnsupportedType(_))));
        assert!(matches!(checked_content_type(&p, Some("text/html"), b"<html>"), Err(UploadError::UnsupportedType(_))));
        assert!(matches!(
            checked_content_type(&p, Some("image/svg+xml"), b"<svg>"),
            Err(UploadError::UnsupportedType(_))
        ));
        let wild = AttachmentPolicy { allowed_content_types: vec!["text/*".into()] };
        assert!(wild.allows("text/html") && !wild.allows("image/png") && !wild.allows("text/"));
        assert!(!wild.allows("text/a b"));
    }

    #[test]
    fn png_dimensions_come_from_the_header() {
        let s = imagesize::blob_size(PNG_1X1).unwrap();
        assert_eq!((s.width, s.height), (3, 2));
    }
}
