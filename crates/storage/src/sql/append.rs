//! The send path: group commit of a batch of new messages in one transaction.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use chat_domain::{
    Attachment, AttachmentId, ConversationEvent, ConversationId, EventPayload, Message, MessageId, Millis, UserId,
};
use sea_query::{Cond, Expr, ExprTrait, Query};
use sqlx::AnyConnection;

use super::attachments;
use super::events::{advance_sequences, insert_events, lock_sequences};
use super::messages::{load_messages, message_select, normalize_mentions};
use super::outbox::{MarkRequest, complete_marks, push_marks};
use super::schema::{MessageMentions as Mm, MessageThreads as Mt, Messages as M};
use super::writes::WriteBuffer;
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
    /// first, or a deadlock); the re-run sees the winner and answers `Duplicate`. The
    /// transaction also carries the outbox marks queued meanwhile (`outbox.rs`).
    pub(crate) async fn append_batch(&self, batch: &[NewMessage]) -> StoreResult<Vec<StoreResult<SendOutcome>>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let marks = self.marks.take();
        let mut attempt = 1;
        let result = loop {
            match self.try_append(batch, &marks).await {
                Ok(out) => {
                    break Ok(out
                        .into_iter()
                        .map(|o| o.unwrap_or(Err(StoreError::Unexpected(anyhow::anyhow!("send not processed")))))
                        .collect());
                }
                Err(e) if attempt < MAX_ATTEMPTS && is_retryable(&e) => {
                    tracing::debug!(attempt, error = %e, "append_messages lost a race; retrying");
                    tokio::time::sleep(Duration::from_millis(u64::from(attempt) * 2)).await;
                    attempt += 1;
                }
                Err(e) => break Err(e),
            }
        };
        complete_marks(marks, &result.as_ref().map(|_| ()).map_err(|e| StoreError::Unexpected(anyhow::anyhow!("{e}"))));
        result
    }

    async fn try_append(&self, batch: &[NewMessage], marks: &[MarkRequest]) -> StoreResult<Outcomes> {
        let d = self.dialect();
        let mut out: Outcomes = (0..batch.len()).map(|_| None).collect();
        // Per conversation, in ascending id order (the lock order: no deadlock between batches).
        let mut groups: BTreeMap<ConversationId, Vec<usize>> = BTreeMap::new();
        for (i, item) in batch.iter().enumerate() {
            groups.entry(item.conversation_id).or_default().push(i);
        }
        let convs: Vec<ConversationId> = groups.keys().copied().collect();
        let mut tx = self.begin().await?;
        // Lock first: the idempotency and thread checks below then see every committed send of
        // these conversations, and nothing can commit between them and our inserts.
        let last = lock_sequences(&mut tx, d, &convs).await?;
        groups.retain(|conv, idxs| {
            let exists = last.contains_key(conv);
            if !exists {
                for &i in idxs.iter() {
                    out[i] = Some(Err(StoreError::NotFound("conversation")));
                }
            }
            exists
        });
        let live: Vec<usize> = groups.values().flatten().copied().collect();
        let found = Found {
            existing: existing_by_client_id(&mut tx, d, batch, &live).await?,
            roots: thread_roots(&mut tx, d, batch, &live).await?,
            files: attachments::referenced(&mut tx, d, batch, &live).await?,
        };
        let mut claimed: HashSet<AttachmentId> = HashSet::new();
        let mut accepted: Vec<(usize, i64)> = Vec::new();
        let mut advanced: Vec<(ConversationId, i64, Millis)> = Vec::new();
        for (conv, idxs) in &groups {
            let taken = accept_group(d, *conv, batch, idxs, &found, &mut claimed, &mut out)?;
            if let Some(at) = taken.iter().map(|&i| batch[i].at).max() {
                let first = last[conv] + 1;
                accepted.extend(taken.iter().enumerate().map(|(k, &i)| (i, first + k as i64)));
                advanced.push((*conv, last[conv] + taken.len() as i64, at));
            }
        }
        let mut w = WriteBuffer::new(&mut tx, d);
        advance_sequences(&mut w, &advanced).await?;
        push_marks(&mut w, marks).await?;
        for (i, outcome) in insert_accepted(&mut w, batch, &accepted, &found.files).await? {
            out[i] = Some(Ok(outcome));
        }
        w.flush().await?;
        // Duplicates of a send of this same batch answer with the stored original.
        for (conv, idxs) in &groups {
            resolve_batch_duplicates(d, *conv, batch, idxs, &mut out)?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(out)
    }
}

/// A client message id as the dialect's unique index compares it: MySQL/MariaDB's
/// `utf8mb4_bin` is a PAD SPACE collation (trailing spaces are ignored), the others compare
/// exactly. Duplicates are detected the way the index will judge them, so a batch is never
/// failed by an id the index takes for another one (the API refuses such ids anyway:
/// `chat_core` validation).
fn client_key(d: Dialect, cid: &str) -> &str {
    match d {
        Dialect::MySql => cid.trim_end_matches(' '),
        Dialect::Sqlite | Dialect::Postgres => cid,
    }
}

/// What the batch's checks read from the database (under the sequence locks).
struct Found {
    /// Stored sends by (conversation, author, client message id).
    existing: HashMap<(ConversationId, UserId, String), Message>,
    /// Referenced thread roots: their conversation and their own thread root.
    roots: HashMap<MessageId, (ConversationId, Option<MessageId>)>,
    /// Referenced attachments.
    files: HashMap<AttachmentId, Attachment>,
}

/// Decides the items `idxs` of `batch` (all of conversation `conv`, in batch order): fills
/// `out` for duplicates of stored sends and refused items, and returns the accepted ones in
/// order. Duplicates of an accepted item of the same batch are left `None` (resolved after
/// the insert by [`resolve_batch_duplicates`]).
fn accept_group(
    d: Dialect,
    conv: ConversationId,
    batch: &[NewMessage],
    idxs: &[usize],
    found: &Found,
    claimed: &mut HashSet<AttachmentId>,
    out: &mut Outcomes,
) -> StoreResult<Vec<usize>> {
    let mut accepted: Vec<usize> = Vec::new();
    let mut batch_keys: HashSet<(UserId, &str)> = HashSet::new();
    let mut batch_ids: HashMap<MessageId, bool> = HashMap::new();
    for &i in idxs {
        let item = &batch[i];
        if let Some(cid) = item.client_msg_id.as_deref().map(|c| client_key(d, c)) {
            if let Some(m) = found.existing.get(&(conv, item.user_id, cid.to_owned())) {
                out[i] = Some(Ok(SendOutcome::Duplicate { message: m.clone() }));
                continue;
            }
            if batch_keys.contains(&(item.user_id, cid)) {
                continue;
            }
        }
        if let Some(root) = item.thread_root_id {
            let root_is_reply = match (found.roots.get(&root), batch_ids.get(&root)) {
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
        if let Err(e) = attachments::claim(item, conv, &found.files, claimed) {
            out[i] = Some(Err(e));
            continue;
        }
        if let Some(cid) = item.client_msg_id.as_deref().map(|c| client_key(d, c)) {
            batch_keys.insert((item.user_id, cid));
        }
        batch_ids.insert(item.id, item.thread_root_id.is_some());
        accepted.push(i);
    }
    Ok(accepted)
}

/// Answers the items of `idxs` still undecided (repeats of a (author, client message id) sent
/// earlier in the same batch) with the stored original.
fn resolve_batch_duplicates(
    d: Dialect,
    conv: ConversationId,
    batch: &[NewMessage],
    idxs: &[usize],
    out: &mut Outcomes,
) -> StoreResult<()> {
    let mut originals: HashMap<(UserId, &str), Message> = HashMap::new();
    for &i in idxs {
        let item = &batch[i];
        let Some(cid) = item.client_msg_id.as_deref().map(|c| client_key(d, c)) else { continue };
        match &out[i] {
            Some(Ok(SendOutcome::Created { message, .. })) => {
                originals.insert((item.user_id, cid), message.clone());
            }
            Some(_) => {}
            None => {
                let message = originals.get(&(item.user_id, cid)).cloned().ok_or_else(|| {
                    StoreError::Unexpected(anyhow::anyhow!("duplicate of an unstored send in conversation {conv}"))
                })?;
                out[i] = Some(Ok(SendOutcome::Duplicate { message }));
            }
        }
    }
    Ok(())
}

/// Stores the accepted sends `(index in batch, seq)`: messages, mentions and events (with
/// their outbox rows) as multi-row INSERTs, attachments and thread summaries per send that has
/// them. Returns each send's outcome by batch index.
async fn insert_accepted(
    w: &mut WriteBuffer<'_>,
    batch: &[NewMessage],
    accepted: &[(usize, i64)],
    files: &HashMap<AttachmentId, Attachment>,
) -> StoreResult<Vec<(usize, SendOutcome)>> {
    let messages: Vec<Message> = accepted.iter().map(|&(i, seq)| new_message(&batch[i], seq, files)).collect();
    insert_messages(w, &messages).await?;
    insert_mentions(w, &messages).await?;
    let mut events = Vec::with_capacity(messages.len());
    for (&(i, seq), message) in accepted.iter().zip(&messages) {
        let item = &batch[i];
        if !item.attachment_ids.is_empty() {
            let d = w.dialect();
            let tx = w.conn().await?;
            attachments::attach(tx, d, message.id, message.conversation_id, message.user_id, &item.attachment_ids)
                .await?;
        }
        let thread_reply_count = match message.thread_root_id {
            Some(root) => {
                let d = w.dialect();
                Some(bump_thread(w.conn().await?, d, message, root).await?)
            }
            None => None,
        };
        events.push(ConversationEvent {
            event_id: item.event_id,
            conversation_id: message.conversation_id,
            seq,
            actor_id: message.user_id,
            created_at: item.at,
            payload: EventPayload::Message { message: message.into(), thread_reply_count },
        });
    }
    insert_events(w, &events).await?;
    Ok(accepted
        .iter()
        .zip(messages.into_iter().zip(events))
        .map(|(&(i, _), (message, event))| (i, SendOutcome::Created { message, event }))
        .collect())
}

/// Stored messages with the (conversation, author, client message id) of any of the items.
async fn existing_by_client_id(
    tx: &mut AnyConnection,
    d: Dialect,
    batch: &[NewMessage],
    idxs: &[usize],
) -> StoreResult<HashMap<(ConversationId, UserId, String), Message>> {
    let mut found = HashMap::new();
    let keyed: Vec<&NewMessage> = idxs.iter().map(|&i| &batch[i]).filter(|m| m.client_msg_id.is_some()).collect();
    for chunk in keyed.chunks(200) {
        let mut any = Cond::any();
        for m in chunk {
            any = any.add(
                Cond::all()
                    .add(Expr::col((M::Table, M::ConversationId)).eq(m.conversation_id.to_string()))
                    .add(Expr::col((M::Table, M::UserId)).eq(m.user_id.to_string()))
                    .add(Expr::col((M::Table, M::ClientMsgId)).eq(m.client_msg_id.clone())),
            );
        }
        let q = message_select().cond_where(any).to_owned();
        for m in load_messages(tx, d, &q).await? {
            if let Some(cid) = m.client_msg_id.as_deref().map(|c| client_key(d, c).to_owned()) {
                found.insert((m.conversation_id, m.user_id, cid), m);
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

/// The stored form of an accepted send with its seq.
fn new_message(item: &NewMessage, seq: i64, files: &HashMap<AttachmentId, Attachment>) -> Message {
    Message {
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
        mentions: normalize_mentions(&item.mentions),
        attachments: attachments::infos_for(item, files),
    }
}

/// Rows per multi-row INSERT: keeps every statement under each engine's bind limit (SQLite
/// 32,766; MySQL and PostgreSQL 65,535) for tables of up to 60 columns.
const ROWS_PER_INSERT: usize = 500;

/// Inserts new messages (their `messages` rows only), `ROWS_PER_INSERT` per statement.
async fn insert_messages(w: &mut WriteBuffer<'_>, messages: &[Message]) -> StoreResult<()> {
    for chunk in messages.chunks(ROWS_PER_INSERT) {
        let mut ins = Query::insert();
        ins.into_table(M::Table).columns([
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
        ]);
        for m in chunk {
            ins.values_panic([
                m.id.to_string().into(),
                m.conversation_id.to_string().into(),
                m.user_id.to_string().into(),
                m.client_msg_id.clone().into(),
                m.server_seq.into(),
                m.thread_root_id.map(|r| r.to_string()).into(),
                m.text.clone().into(),
                m.kind.clone().into(),
                m.created_at.0.into(),
                m.updated_at.0.into(),
                b(m.edited).into(),
                b(m.deleted).into(),
                m.version_count.into(),
                b(m.mentions.channel).into(),
            ]);
        }
        w.push(&ins, Some(chunk.len() as u64)).await?;
    }
    Ok(())
}

/// Writes the mention rows of messages (their `mentions` must be normalized), in multi-row
/// INSERTs.
pub(crate) async fn insert_mentions(w: &mut WriteBuffer<'_>, messages: &[Message]) -> StoreResult<()> {
    let rows: Vec<(&Message, &UserId)> =
        messages.iter().flat_map(|m| m.mentions.user_ids.iter().map(move |u| (m, u))).collect();
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let mut ins = Query::insert();
        ins.into_table(Mm::Table).columns([Mm::MessageId, Mm::ConversationId, Mm::UserId]);
        for (m, u) in chunk {
            ins.values_panic([m.id.to_string().into(), m.conversation_id.to_string().into(), u.to_string().into()]);
        }
        w.push(&ins, Some(chunk.len() as u64)).await?;
    }
    Ok(())
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
