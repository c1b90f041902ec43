//! [`OutboxStore`]: the relay's view of `message_producer_outbox`.
//!
//! Rows are selected by status (PENDING), not by "id greater than the last one seen", so a
//! row whose transaction committed after a row with a higher id is still found. Within one
//! conversation ids increase with seq (rows are inserted while the conversation's sequence
//! row is locked), so id order is (conversation, seq) order per conversation.
//!
//! Marks ride the group commit: [`OutboxStore::mark_outbox_processed`] queues its ids in
//! [`PendingMarks`] and the next send batch's transaction (`append.rs`) applies them before
//! it commits, so marking costs no commit (no fsync, no turn of SQLite's single writer) of
//! its own while sends are flowing. A mark that no batch took within [`MARK_PIGGYBACK_WAIT`]
//! runs in its own transaction.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chat_domain::{ConversationEvent, Millis};
use sea_query::{Expr, ExprTrait, Order, Query};
use tokio::sync::oneshot;

use super::schema::MessageProducerOutbox as Ob;
use super::writes::WriteBuffer;
use super::{SqlStore, db_err, fetch_all, get_i64, get_str, json_err};
use crate::{OutboxRow, OutboxStore, StoreError, StoreResult};

/// How long a mark waits for a send batch to carry it before committing alone.
pub const MARK_PIGGYBACK_WAIT: Duration = Duration::from_millis(10);

/// Ids marked per UPDATE statement.
const MARK_CHUNK: usize = 500;

/// A queued mark: its rows, the instant to record, and who waits for its outcome.
#[derive(Debug)]
pub(crate) struct MarkRequest {
    ticket: u64,
    ids: Vec<i64>,
    at: Millis,
    done: oneshot::Sender<StoreResult<()>>,
}

/// Marks waiting for a transaction to carry them (see the module documentation).
///
/// Concurrency: a `std` mutex held only to push, take or withdraw requests, never across an
/// await.
#[derive(Debug, Default)]
pub(crate) struct PendingMarks {
    queue: Mutex<(u64, Vec<MarkRequest>)>,
}

impl PendingMarks {
    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, Vec<MarkRequest>)> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a mark; returns its ticket and the receiver of its outcome.
    fn push(&self, ids: Vec<i64>, at: Millis) -> (u64, oneshot::Receiver<StoreResult<()>>) {
        let (done, rx) = oneshot::channel();
        let mut q = self.lock();
        q.0 += 1;
        let ticket = q.0;
        q.1.push(MarkRequest { ticket, ids, at, done });
        (ticket, rx)
    }

    /// Takes the mark `ticket` back if no transaction took it yet.
    fn withdraw(&self, ticket: u64) -> Option<MarkRequest> {
        let mut q = self.lock();
        let i = q.1.iter().position(|r| r.ticket == ticket)?;
        Some(q.1.swap_remove(i))
    }

    /// Takes every queued mark (for a transaction to carry).
    pub(crate) fn take(&self) -> Vec<MarkRequest> {
        std::mem::take(&mut self.lock().1)
    }
}

/// Adds the UPDATEs of `marks` to a transaction's writes. Any row count is fine: a row may
/// have been marked already (a mark retried after a commit whose outcome was lost).
pub(crate) async fn push_marks(w: &mut WriteBuffer<'_>, marks: &[MarkRequest]) -> StoreResult<()> {
    for m in marks {
        for chunk in m.ids.chunks(MARK_CHUNK) {
            let q = Query::update()
                .table(Ob::Table)
                .value(Ob::Status, "PROCESSED")
                .value(Ob::ProcessedAt, m.at.0)
                .and_where(Expr::col(Ob::Id).is_in(chunk.iter().copied()))
                .to_owned();
            w.push(&q, None).await?;
        }
    }
    Ok(())
}

/// Tells each waiting mark the outcome of the transaction that carried it.
pub(crate) fn complete_marks(marks: Vec<MarkRequest>, outcome: &StoreResult<()>) {
    for m in marks {
        let r = match outcome {
            Ok(()) => Ok(()),
            Err(e) => Err(StoreError::Unexpected(anyhow::anyhow!("the transaction carrying the mark failed: {e}"))),
        };
        let _ = m.done.send(r);
    }
}

#[async_trait]
impl OutboxStore for SqlStore {
    async fn pending_outbox(&self, limit: i64) -> StoreResult<Vec<OutboxRow>> {
        let q = Query::select()
            .columns([Ob::Id, Ob::Topic, Ob::Payload])
            .from(Ob::Table)
            .and_where(Expr::col(Ob::Status).eq("PENDING"))
            .order_by(Ob::Id, Order::Asc)
            .limit(super::lim(limit))
            .to_owned();
        let mut conn = self.reader().acquire().await.map_err(db_err)?;
        let rows = fetch_all(&mut *conn, self.dialect(), &q).await?;
        rows.iter()
            .map(|r| {
                let event: ConversationEvent = serde_json::from_str(&get_str(r, "payload")?).map_err(json_err)?;
                Ok(OutboxRow { id: get_i64(r, "id")?, topic: get_str(r, "topic")?, event })
            })
            .collect()
    }

    /// Queues the mark for the next send batch's transaction; commits it alone when none
    /// took it within [`MARK_PIGGYBACK_WAIT`].
    async fn mark_outbox_processed(&self, ids: &[i64], at: Millis) -> StoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let (ticket, mut rx) = self.marks.push(ids.to_vec(), at);
        tokio::select! {
            r = &mut rx => return r.unwrap_or_else(|_| Err(dropped())),
            () = tokio::time::sleep(MARK_PIGGYBACK_WAIT) => {}
        }
        let Some(mark) = self.marks.withdraw(ticket) else {
            // A transaction took it meanwhile: wait for its outcome.
            return rx.await.unwrap_or_else(|_| Err(dropped()));
        };
        self.commit_marks(std::slice::from_ref(&mark)).await
    }
}

fn dropped() -> StoreError {
    StoreError::Unexpected(anyhow::anyhow!("the transaction carrying the mark was dropped"))
}

impl SqlStore {
    /// Commits `marks` in a transaction of their own.
    async fn commit_marks(&self, marks: &[MarkRequest]) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let mut w = WriteBuffer::new(&mut tx, self.dialect());
        push_marks(&mut w, marks).await?;
        w.flush().await?;
        tx.commit().await.map_err(db_err)
    }
}

#[cfg(test)]
mod tests {
    use chat_domain::{
        ConversationId, ConversationKind, ConversationSettings, EventId, MemberRole, Mentions, MessageId, User, UserId,
        WorkspaceId,
    };

    use super::*;
    use crate::{ConnectOptions, ConversationStore, MessageStore, NewConversation, NewMessage, UserStore};

    async fn store_with_channel() -> (tempfile::TempDir, SqlStore, ConversationId, UserId) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("marks.db").display());
        let s = SqlStore::connect(&url, ConnectOptions::default()).await.unwrap();
        s.migrate().await.unwrap();
        let u = User {
            id: UserId::new(),
            workspace_id: WorkspaceId::DEFAULT,
            username: "alice".into(),
            display_name: "Alice".into(),
            avatar_url: None,
            created_at: Millis(1),
        };
        s.create_user(&u, "$argon2id$fake").await.unwrap();
        let new = NewConversation {
            id: ConversationId::new(),
            workspace_id: WorkspaceId::DEFAULT,
            kind: ConversationKind::Channel,
            name: Some("general".into()),
            topic: None,
            is_private: false,
            created_by: u.id,
            settings: ConversationSettings::default(),
            members: vec![(u.id, MemberRole::Owner)],
            dm_key: None,
            at: Millis(2),
        };
        let (c, _) = s.create_conversation(&new).await.unwrap();
        (dir, s, c.id, u.id)
    }

    fn msg(conv: ConversationId, user: UserId) -> NewMessage {
        NewMessage {
            id: MessageId::new(),
            event_id: EventId::new(),
            conversation_id: conv,
            user_id: user,
            client_msg_id: None,
            thread_root_id: None,
            text: "hi".into(),
            kind: "default".into(),
            mentions: Mentions::default(),
            attachment_ids: Vec::new(),
            at: Millis::now(),
        }
    }

    /// A queued mark is applied by the next send batch's transaction and answered when that
    /// batch returns (no timer involved: the request is queued directly).
    #[tokio::test]
    async fn a_queued_mark_rides_the_next_send_batch() {
        let (_dir, s, conv, user) = store_with_channel().await;
        let pending: Vec<i64> = s.pending_outbox(100).await.unwrap().iter().map(|r| r.id).collect();
        assert!(!pending.is_empty(), "the channel's creation events");
        let (_, mut rx) = s.marks.push(pending.clone(), Millis(7));
        s.append_messages(&[msg(conv, user)]).await.unwrap().pop().unwrap().unwrap();
        assert!(matches!(rx.try_recv(), Ok(Ok(()))), "answered by the batch's commit");
        let left = s.pending_outbox(100).await.unwrap();
        assert_eq!(left.len(), 1, "only the new message's row is pending");
        assert!(!pending.contains(&left[0].id));
        assert!(s.marks.take().is_empty(), "the queue was drained");
    }

    /// Without sends, a mark commits alone after the piggyback wait.
    #[tokio::test]
    async fn a_mark_without_sends_commits_alone() {
        let (_dir, s, _conv, _user) = store_with_channel().await;
        let pending: Vec<i64> = s.pending_outbox(100).await.unwrap().iter().map(|r| r.id).collect();
        let started = std::time::Instant::now();
        s.mark_outbox_processed(&pending, Millis(7)).await.unwrap();
        assert!(started.elapsed() >= MARK_PIGGYBACK_WAIT);
        assert!(s.pending_outbox(100).await.unwrap().is_empty());
        assert!(s.marks.take().is_empty(), "withdrawn from the queue");
    }

    /// Marks and sends issued concurrently all land, whichever path each mark takes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_marks_and_sends_all_land() {
        let (_dir, s, conv, user) = store_with_channel().await;
        for _ in 0..20 {
            let ids: Vec<i64> = s.pending_outbox(100).await.unwrap().iter().map(|r| r.id).collect();
            let s2 = s.clone();
            let mark = tokio::spawn(async move { s2.mark_outbox_processed(&ids, Millis(7)).await });
            s.append_messages(&[msg(conv, user)]).await.unwrap().pop().unwrap().unwrap();
            mark.await.unwrap().unwrap();
        }
        let ids: Vec<i64> = s.pending_outbox(100).await.unwrap().iter().map(|r| r.id).collect();
        s.mark_outbox_processed(&ids, Millis(8)).await.unwrap();
        assert!(s.pending_outbox(100).await.unwrap().is_empty());
    }
}
