//! [`AttachmentStore`] and the attachment steps of the message paths: attach in the send's
//! transaction (`append.rs`), hide on delete (`edits.rs`), load with messages
//! (`messages.rs`).
//!
//! Table `message_attachments` (seed) with the columns of migration `0002_attachments`:
//! `type` is the kind (`image`/`file`), `url` the API download path, `metadata` JSON with
//! `sha256`, `width`, `height`.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chat_domain::{
    Attachment, AttachmentId, AttachmentInfo, AttachmentStatus, ConversationId, MessageId, Millis, UserId,
};
use sea_query::{Cond, Expr, ExprTrait, Iden, Order, Query, SelectStatement};
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::{
    Dialect, SqlStore, execute, fetch_all, fetch_optional, get_i64, get_id, get_opt_i64, get_opt_id, get_opt_str,
    get_str, lim,
};
use crate::{AttachmentStore, NewMessage, StoreError, StoreResult};

/// `message_attachments`
#[derive(Iden, Clone, Copy)]
enum MessageAttachments {
    Table,
    AttachmentId,
    MessageId,
    Type,
    Url,
    Metadata,
    CreatedAt,
    ConversationId,
    UploaderId,
    Name,
    ContentType,
    SizeBytes,
    ObjectKey,
    Status,
    DeletedAt,
}
use MessageAttachments as A;

/// The `metadata` JSON column.
#[derive(Default, Serialize, Deserialize)]
struct Metadata {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    height: Option<u32>,
}

fn metadata_json(a: &Attachment) -> String {
    let m = Metadata { sha256: a.sha256.clone(), width: a.width, height: a.height };
    serde_json::to_string(&m).unwrap_or_else(|_| "{}".into())
}

fn kind_of(content_type: &str) -> &'static str {
    if content_type.starts_with("image/") { "image" } else { "file" }
}

fn select() -> SelectStatement {
    Query::select()
        .columns([
            A::AttachmentId,
            A::MessageId,
            A::Metadata,
            A::CreatedAt,
            A::ConversationId,
            A::UploaderId,
            A::Name,
            A::ContentType,
            A::SizeBytes,
            A::ObjectKey,
            A::Status,
            A::DeletedAt,
        ])
        .from(A::Table)
        .to_owned()
}

fn decode(row: &AnyRow) -> Result<Attachment, StoreError> {
    let meta: Metadata = match get_opt_str(row, "metadata")? {
        Some(s) if !s.is_empty() => serde_json::from_str(&s).unwrap_or_default(),
        _ => Metadata::default(),
    };
    let status = get_str(row, "status")?;
    Ok(Attachment {
        id: get_id(row, "attachment_id")?,
        conversation_id: get_id(row, "conversation_id")?,
        uploader_id: get_id(row, "uploader_id")?,
        message_id: get_opt_id(row, "message_id")?,
        name: get_str(row, "name")?,
        content_type: get_str(row, "content_type")?,
        size: get_i64(row, "size_bytes")?,
        width: meta.width,
        height: meta.height,
        sha256: meta.sha256,
        object_key: get_str(row, "object_key")?,
        status: AttachmentStatus::parse(&status)
            .ok_or_else(|| StoreError::Unexpected(anyhow::anyhow!("unknown attachment status {status:?}")))?,
        created_at: Millis(get_i64(row, "created_at")?),
        deleted_at: get_opt_i64(row, "deleted_at")?.map(Millis),
    })
}

#[async_trait]
impl AttachmentStore for SqlStore {
    async fn insert_attachment(&self, a: &Attachment) -> StoreResult<()> {
        let ins = Query::insert()
            .into_table(A::Table)
            .columns([
                A::AttachmentId,
                A::MessageId,
                A::Type,
                A::Url,
                A::Metadata,
                A::CreatedAt,
                A::ConversationId,
                A::UploaderId,
                A::Name,
                A::ContentType,
                A::SizeBytes,
                A::ObjectKey,
                A::Status,
                A::DeletedAt,
            ])
            .values_panic([
                a.id.to_string().into(),
                a.message_id.map(|m| m.to_string()).into(),
                kind_of(&a.content_type).into(),
                format!("/api/v1/attachments/{}", a.id).into(),
                metadata_json(a).into(),
                a.created_at.0.into(),
                a.conversation_id.to_string().into(),
                a.uploader_id.to_string().into(),
                a.name.clone().into(),
                a.content_type.clone().into(),
                a.size.into(),
                a.object_key.clone().into(),
                a.status.as_str().into(),
                a.deleted_at.map(|t| t.0).into(),
            ])
            .to_owned();
        execute(self.writer(), self.dialect(), &ins).await.map(|_| ())
    }

    async fn complete_upload(&self, a: &Attachment) -> StoreResult<bool> {
        let upd = Query::update()
            .table(A::Table)
            .value(A::Status, AttachmentStatus::Pending.as_str())
            .value(A::SizeBytes, a.size)
            .value(A::ContentType, a.content_type.clone())
            .value(A::Type, kind_of(&a.content_type))
            .value(A::Metadata, metadata_json(a))
            .and_where(Expr::col(A::AttachmentId).eq(a.id.to_string()))
            .and_where(Expr::col(A::Status).eq(AttachmentStatus::Uploading.as_str()))
            .to_owned();
        Ok(execute(self.writer(), self.dialect(), &upd).await? == 1)
    }

    async fn attachment(&self, id: AttachmentId) -> StoreResult<Option<Attachment>> {
        let q = select().and_where(Expr::col(A::AttachmentId).eq(id.to_string())).to_owned();
        fetch_optional(self.reader(), self.dialect(), &q).await?.as_ref().map(decode).transpose()
    }

    async fn set_attachment_status(
        &self,
        id: AttachmentId,
        from: AttachmentStatus,
        to: AttachmentStatus,
    ) -> StoreResult<bool> {
        let upd = Query::update()
            .table(A::Table)
            .value(A::Status, to.as_str())
            .and_where(Expr::col(A::AttachmentId).eq(id.to_string()))
            .and_where(Expr::col(A::Status).eq(from.as_str()))
            .to_owned();
        Ok(execute(self.writer(), self.dialect(), &upd).await? == 1)
    }

    async fn remove_attachment(&self, id: AttachmentId, status: AttachmentStatus) -> StoreResult<bool> {
        let del = Query::delete()
            .from_table(A::Table)
            .and_where(Expr::col(A::AttachmentId).eq(id.to_string()))
            .and_where(Expr::col(A::Status).eq(status.as_str()))
            .to_owned();
        Ok(execute(self.writer(), self.dialect(), &del).await? == 1)
    }

    async fn stale_attachments(&self, unattached_before: Millis, limit: i64) -> StoreResult<Vec<Attachment>> {
        let unattached = [AttachmentStatus::Uploading.as_str(), AttachmentStatus::Pending.as_str()];
        let gone = [AttachmentStatus::Deleted.as_str(), AttachmentStatus::Purging.as_str()];
        let q = select()
            .cond_where(
                Cond::any()
                    .add(
                        Cond::all()
                            .add(Expr::col(A::Status).is_in(unattached))
                            .add(Expr::col(A::CreatedAt).lt(unattached_before.0)),
                    )
                    .add(Expr::col(A::Status).is_in(gone)),
            )
            .order_by(A::CreatedAt, Order::Asc)
            .order_by(A::AttachmentId, Order::Asc)
            .limit(lim(limit))
            .to_owned();
        fetch_all(self.reader(), self.dialect(), &q).await?.iter().map(decode).collect()
    }
}

/// The attached files of messages (status `ATTACHED`), per message, by attachment id
/// (upload order: ids are UUID v7).
pub(crate) async fn infos_of_messages(
    conn: &mut AnyConnection,
    d: Dialect,
    message_ids: &[String],
) -> StoreResult<HashMap<MessageId, Vec<AttachmentInfo>>> {
    let mut out: HashMap<MessageId, Vec<AttachmentInfo>> = HashMap::new();
    for chunk in message_ids.chunks(500) {
        let q = select()
            .and_where(Expr::col(A::MessageId).is_in(chunk.iter().cloned()))
            .and_where(Expr::col(A::Status).eq(AttachmentStatus::Attached.as_str()))
            .order_by(A::AttachmentId, Order::Asc)
            .to_owned();
        for row in fetch_all(&mut *conn, d, &q).await? {
            let a = decode(&row)?;
            if let Some(m) = a.message_id {
                out.entry(m).or_default().push(a.info());
            }
        }
    }
    Ok(out)
}

/// The attachments the items of a batch refer to, by id (inside the send's transaction).
pub(crate) async fn referenced(
    tx: &mut AnyConnection,
    d: Dialect,
    batch: &[NewMessage],
    idxs: &[usize],
) -> StoreResult<HashMap<AttachmentId, Attachment>> {
    let mut ids: Vec<String> =
        idxs.iter().flat_map(|&i| batch[i].attachment_ids.iter().map(|a| a.to_string())).collect();
    ids.sort();
    ids.dedup();
    let mut out = HashMap::new();
    for chunk in ids.chunks(500) {
        let q = select().and_where(Expr::col(A::AttachmentId).is_in(chunk.iter().cloned())).to_owned();
        for row in fetch_all(&mut *tx, d, &q).await? {
            let a = decode(&row)?;
            out.insert(a.id, a);
        }
    }
    Ok(out)
}

/// Checks that a send may attach its attachments: each exists, was uploaded by the sender
/// into this conversation, is `PENDING`, and is not claimed by an earlier send of the batch
/// (nor listed twice). On success the ids are claimed; on failure nothing is.
pub(crate) fn claim(
    item: &NewMessage,
    conv: ConversationId,
    found: &HashMap<AttachmentId, Attachment>,
    claimed: &mut HashSet<AttachmentId>,
) -> StoreResult<()> {
    let mut mine = HashSet::new();
    for id in &item.attachment_ids {
        let ok = found.get(id).is_some_and(|a| {
            a.conversation_id == conv && a.uploader_id == item.user_id && a.status == AttachmentStatus::Pending
        });
        if !ok || claimed.contains(id) || !mine.insert(*id) {
            return Err(StoreError::Conflict(format!(
                "attachment {id} is not a pending upload of the sender in this conversation"
            )));
        }
    }
    claimed.extend(mine);
    Ok(())
}

/// The metadata of a send's (claimed) attachments, in the order messages are read back.
pub(crate) fn infos_for(item: &NewMessage, found: &HashMap<AttachmentId, Attachment>) -> Vec<AttachmentInfo> {
    let mut ids = item.attachment_ids.clone();
    ids.sort();
    ids.dedup();
    ids.iter().filter_map(|id| found.get(id)).map(Attachment::info).collect()
}

/// Attaches a stored send's claimed attachments to it.
///
/// # Errors
/// [`StoreError::Conflict`] (the batch is re-run) when one of them stopped being a pending
/// upload of the sender since it was claimed (the cleanup raced).
pub(crate) async fn attach(
    tx: &mut AnyConnection,
    d: Dialect,
    message_id: MessageId,
    conv: ConversationId,
    author: UserId,
    ids: &[AttachmentId],
) -> StoreResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let upd = Query::update()
        .table(A::Table)
        .value(A::MessageId, message_id.to_string())
        .value(A::Status, AttachmentStatus::Attached.as_str())
        .and_where(Expr::col(A::AttachmentId).is_in(ids.iter().map(|i| i.to_string())))
        .and_where(Expr::col(A::ConversationId).eq(conv.to_string()))
        .and_where(Expr::col(A::UploaderId).eq(author.to_string()))
        .and_where(Expr::col(A::Status).eq(AttachmentStatus::Pending.as_str()))
        .to_owned();
    let n = execute(tx, d, &upd).await?;
    let distinct: HashSet<&AttachmentId> = ids.iter().collect();
    if n != distinct.len() as u64 {
        return Err(StoreError::Conflict("an attachment changed while it was being attached".into()));
    }
    Ok(())
}

/// Hides the attachments of a deleted message (status `DELETED`, for the cleanup).
pub(crate) async fn hide_for_message(
    tx: &mut AnyConnection,
    d: Dialect,
    message_id: MessageId,
    at: Millis,
) -> StoreResult<()> {
    let upd = Query::update()
        .table(A::Table)
        .value(A::Status, AttachmentStatus::Deleted.as_str())
        .value(A::DeletedAt, at.0)
        .and_where(Expr::col(A::MessageId).eq(message_id.to_string()))
        .and_where(Expr::col(A::Status).eq(AttachmentStatus::Attached.as_str()))
        .to_owned();
    execute(tx, d, &upd).await.map(|_| ())
}
