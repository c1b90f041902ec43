//! The send path: group commit of a batch of new messages in one transaction.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use chat_domain::{
    Attachment, AttachmentId, ConversationEvent, ConversationId, EventPayload, Message, MessageId, UserId,
};
use sea_query::{Cond, Expr, ExprTrait, Query};
use sqlx::AnyConnection;

use super::attachments;
use super::events::{insert_event, lock_sequence, reserve_seqs};
use super::messages::{load_messages, message_select, normalize_mentions};
use super::schema::{MessageMentions as Mm, MessageThreads as Mt, Messages as M};
use super::{
    Dialect, SqlStore, b, db_err, execute, fetch_all, fetch_optional, get_i64, get_id, get_opt_id, is_retryable,
};
use crate::{NewMessage, SendOutcome, StoreError, StoreResult};

/// How often a batch is re-run after losing a race (unique violation, deadlock).
const MAX_ATTEMPTS: u32 = 8;

type Outcomes = Vec<Option<StoreResult<SendOutcome>>>;

impl SqlStore {
    /// [`crate::MessageStore::append_messages`]: runs the batch transaction, re-running it
    /// when it lost a race (a concurrent send with the same client message id committed
    /// first, or a deadlock); the re-run sees the winner and answers `Duplicate`.
    pub(crate) async fn append_batch(&self, batch: &[NewMessage]) -> StoreResult<Vec<StoreResult<SendOutcome>>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let mut attempt = 1;
        loop {
            match self.try_append(batch).await {
                Ok(out) => {
                    return Ok(out
                        .into_iter()
                        .map(|o| o.unwrap_or(Err(StoreError::Unexpected(anyhow::anyhow!("send not processed")))))
                        .collect());
                }
                Err(e) if attempt < MAX_ATTEMPTS && is_retryable(&e) => {
                    tracing::debug!(attempt, error = %e, "append_messages lost a race; retrying");
                    tokio::time::sleep(Duration::from_millis(u64::from(attempt) * 2)).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn try_append(&self, batch: &[NewMessage]) -> StoreResult<Outcomes> {
        let d = self.dialect();
        let mut out: Outcomes = (0..batch.len()).map(|_| None).collect();
        // Per conversation, in ascending id order (lock order: no deadlock between batches).
        let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, item) in batch.iter().enumerate() {
            groups.entry(item.conversation_id.to_string()).or_default().push(i);
        }
        let mut tx = self.begin().await?;
        for idxs in groups.values() {
            let conv = batch[idxs[0]].conversation_id;
            append_group(&mut tx, d, conv, batch, idxs, &mut out).await?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(out)
    }
}

/// Stores the items `idxs` of `batch` (all of conversation `conv`), filling `out`.
async fn append_group(
    tx: &mut AnyConnection,
    d: Dialect,
    conv: ConversationId,
    batch: &[NewMessage],
    idxs: &[usize],
    out: &mut Outcomes,
) -> StoreResult<()> {
    // Lock first: the idempotency and thread checks below then see every committed send of
    // this conversation, and nothing can commit between them and our inserts.
    if lock_sequence(tx, d, conv).await?.is_none() {
        for &i in idxs {
            out[i] = Some(Err(StoreError::NotFound("conversation")));
        }
        return Ok(());
    }
    let existing = existing_by_client_id(tx, d, conv, batch, idxs).await?;
    let roots = thread_roots(tx, d, batch, idxs).await?;
    let files = attachments::referenced(tx, d, batch, idxs).await?;
    let mut claimed: HashSet<AttachmentId> = HashSet::new();

    let mut accepted: Vec<usize> = Vec::new();
    let mut dup_of: Vec<(usize, usize)> = Vec::new();
    let mut batch_keys: HashMap<(UserId, &str), usize> = HashMap::new();
    let mut batch_ids: HashMap<MessageId, bool> = HashMap::new();
    for &i in idxs {
        let item = &batch[i];
        if let Some(cid) = item.client_msg_id.as_deref() {
            if let Some(m) = existing.get(&(item.user_id, cid.to_owned())) {
                out[i] = Some(Ok(SendOutcome::Duplicate { message: m.clone() }));
                continue;
            }
            if let Some(&j) = batch_keys.get(&(item.user_id, cid)) {
                dup_of.push((i, j));
                continue;
            }
        }
        if let Some(root) = item.thread_root_id {
            let root_is_reply = match (roots.get(&root), batch_ids.get(&root)) {
                (Some((root_conv, root_parent)), _) if *root_conv == conv => root_parent.is_some(),
                (None, Some(is_reply)) => *is_reply,
                _ => {
                    out[i] = Some(Err(StoreError::NotFound("thread root")));
                    continue;
                }
            };
            if root_is_reply {
                out[i] = Some(Err(StoreError::Conflict("cannot reply to a thread reply".into())));
                continue;
            }
        }
        if let Err(e) = attachments::claim(item, conv, &files, &mut claimed) {
            out[i] = Some(Err(e));
            continue;
        }
        if let Some(cid) = item.client_msg_id.as_deref() {
            batch_keys.insert((item.user_id, cid), i);
        }
        batch_ids.insert(item.id, item.thread_root_id.is_some());
        accepted.push(i);
    }
    if !accepted.is_empty() {
        let at = accepted.iter().map(|&i| batch[i].at).max().unwrap_or_default();
        let first = reserve_seqs(tx, d, conv, accepted.len() as i64, at).await?;
        for (k, &i) in accepted.iter().enumerate() {
            let outcome = insert_one(tx, d, &batch[i], first + k as i64, &files).await?;
            out[i] = Some(Ok(outcome));
        }
    }
    for (i, j) in dup_of {
        let message = match &out[j] {
            Some(Ok(o)) => o.message().clone(),
            _ => return Err(StoreError::Unexpected(anyhow::anyhow!("duplicate of an unstored send"))),
        };
        out[i] = Some(Ok(SendOutcome::Duplicate { message }));
    }
    Ok(())
}

/// Stored messages of `conv` with the (author, client message id) of any of the items.
async fn existing_by_client_id(
    tx: &mut AnyConnection,
    d: Dialect,
    conv: ConversationId,
    batch: &[NewMessage],
    idxs: &[usize],
) -> StoreResult<HashMap<(UserId, String), Message>> {
    let mut found = HashMap::new();
    let keyed: Vec<&NewMessage> = idxs.iter().map(|&i| &batch[i]).filter(|m| m.client_msg_id.is_some()).collect();
    for chunk in keyed.chunks(200) {
        let mut any = Cond::any();
        for m in chunk {
            any = any.add(
                Cond::all()
                    .add(Expr::col((M::Table, M::UserId)).eq(m.user_id.to_string()))
                    .add(Expr::col((M::Table, M::ClientMsgId)).eq(m.client_msg_id.clone())),
            );
        }
        let q = message_select()
            .and_where(Expr::col((M::Table, M::ConversationId)).eq(conv.to_string()))
            .cond_where(any)
            .to_owned();
        for m in load_messages(tx, d, &q).await? {
            if let Some(cid) = m.client_msg_id.clone() {
                found.insert((m.user_id, cid), m);
            }
        }
    }
    Ok(found)
}

/// For each thread root referenced by the items: its conversation and its own thread root.
async fn thread_roots(
    tx: &mut AnyConnection,
    d: Dialect,
    batch: &[NewMessage],
    idxs: &[usize],
) -> StoreResult<HashMap<MessageId, (ConversationId, Option<MessageId>)>> {
    let mut roots: Vec<String> = idxs.iter().filter_map(|&i| batch[i].thread_root_id.map(|r| r.to_string())).collect();
    roots.sort();
    roots.dedup();
    let mut found = HashMap::new();
    for chunk in roots.chunks(500) {
        let q = Query::select()
            .columns([M::MessageId, M::ConversationId, M::ThreadRootId])
            .from(M::Table)
            .and_where(Expr::col(M::MessageId).is_in(chunk.iter().cloned()))
            .to_owned();
        for r in fetch_all(&mut *tx, d, &q).await? {
            found
                .insert(get_id(&r, "message_id")?, (get_id(&r, "conversation_id")?, get_opt_id(&r, "thread_root_id")?));
        }
    }
    Ok(found)
}

/// Inserts one accepted send with its seq: message, mentions, attachments, thread summary,
/// event, outbox.
async fn insert_one(
    tx: &mut AnyConnection,
    d: Dialect,
    item: &NewMessage,
    seq: i64,
    files: &HashMap<AttachmentId, Attachment>,
) -> StoreResult<SendOutcome> {
    let mentions = normalize_mentions(&item.mentions);
    let message = Message {
        id: item.id,
        conversation_id: item.conversation_id,
        user_id: item.user_id,
        client_msg_id: item.client_msg_id.clone(),
        server_seq: seq,
        thread_root_id: item.thread_root_id,
        text: item.text.clone(),
        kind: item.kind.clone(),
        created_at: item.at,
        updated_at: item.at,
        edited: false,
        deleted: false,
        version_count: 0,
        thread: None,
        mentions,
        attachments: attachments::infos_for(item, files),
    };
    let ins = Query::insert()
        .into_table(M::Table)
        .columns([
            M::MessageId,
            M::ConversationId,
            M::UserId,
            M::ClientMsgId,
            M::ServerSeq,
            M::ThreadRootId,
            M::Text,
            M::Type,
            M::CreatedAt,
            M::UpdatedAt,
            M::Edited,
            M::Deleted,
            M::VersionCount,
            M::MentionsChannel,
        ])
        .values_panic([
            message.id.to_string().into(),
            message.conversation_id.to_string().into(),
            message.user_id.to_string().into(),
            message.client_msg_id.clone().into(),
            seq.into(),
            message.thread_root_id.map(|r| r.to_string()).into(),
            message.text.clone().into(),
            message.kind.clone().into(),
            message.created_at.0.into(),
            message.updated_at.0.into(),
            0i64.into(),
            0i64.into(),
            0i64.into(),
            b(message.mentions.channel).into(),
        ])
        .to_owned();
    execute(&mut *tx, d, &ins).await?;
    insert_mentions(tx, d, &message).await?;
    attachments::attach(tx, d, message.id, message.conversation_id, message.user_id, &item.attachment_ids).await?;
    let thread_reply_count = match message.thread_root_id {
        Some(root) => Some(bump_thread(tx, d, &message, root).await?),
        None => None,
    };
    let event = ConversationEvent {
        event_id: item.event_id,
        conversation_id: message.conversation_id,
        seq,
        actor_id: message.user_id,
        created_at: item.at,
        payload: EventPayload::Message { message: (&message).into(), thread_reply_count },
    };
    insert_event(tx, d, &event).await?;
    Ok(SendOutcome::Created { message, event })
}

/// Writes the mention rows of a message (its `mentions` must be normalized).
pub(crate) async fn insert_mentions(tx: &mut AnyConnection, d: Dialect, m: &Message) -> StoreResult<()> {
    if m.mentions.user_ids.is_empty() {
        return Ok(());
    }
    let mut ins = Query::insert();
    ins.into_table(Mm::Table).columns([Mm::MessageId, Mm::ConversationId, Mm::UserId]);
    for u in &m.mentions.user_ids {
        ins.values_panic([m.id.to_string().into(), m.conversation_id.to_string().into(), u.to_string().into()]);
    }
    execute(tx, d, &ins).await.map(|_| ())
}

/// Counts a reply in its root's thread summary (creating it) and returns the new count.
/// The conversation's sequence row is locked, so no other writer races on this row.
async fn bump_thread(tx: &mut AnyConnection, d: Dialect, reply: &Message, root: MessageId) -> StoreResult<i64> {
    let upd = Query::update()
        .table(Mt::Table)
        .value(Mt::ReplyCount, Expr::col(Mt::ReplyCount).add(1))
        .value(Mt::LastReplyAt, reply.created_at.0)
        .value(Mt::LastRepliedBy, reply.user_id.to_string())
        .and_where(Expr::col(Mt::ThreadRootId).eq(root.to_string()))
        .to_owned();
    if execute(&mut *tx, d, &upd).await? == 0 {
        let ins = Query::insert()
            .into_table(Mt::Table)
            .columns([Mt::ThreadRootId, Mt::ConversationId, Mt::ReplyCount, Mt::LastReplyAt, Mt::LastRepliedBy])
            .values_panic([
                root.to_string().into(),
                reply.conversation_id.to_string().into(),
                1i64.into(),
                reply.created_at.0.into(),
                reply.user_id.to_string().into(),
            ])
            .to_owned();
        execute(&mut *tx, d, &ins).await?;
    }
    let q = Query::select()
        .column(Mt::ReplyCount)
        .from(Mt::Table)
        .and_where(Expr::col(Mt::ThreadRootId).eq(root.to_string()))
        .to_owned();
    let row = fetch_optional(&mut *tx, d, &q).await?.ok_or(StoreError::NotFound("thread"))?;
    get_i64(&row, "reply_count")
}
