//! [`OutboxStore`]: the relay's view of `message_producer_outbox`.
//!
//! Rows are selected by status (PENDING), not by "id greater than the last one seen", so a
//! row whose transaction committed after a row with a higher id is still found. Within one
//! conversation ids increase with seq (rows are inserted while the conversation's sequence
//! row is locked), so id order is (conversation, seq) order per conversation.

use async_trait::async_trait;
use chat_domain::{ConversationEvent, Millis};
use sea_query::{Expr, ExprTrait, Order, Query};

use super::schema::MessageProducerOutbox as Ob;
use super::{SqlStore, db_err, execute, fetch_all, get_i64, get_str, json_err};
use crate::{OutboxRow, OutboxStore, StoreResult};

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

    async fn mark_outbox_processed(&self, ids: &[i64], at: Millis) -> StoreResult<()> {
        for chunk in ids.chunks(500) {
            let q = Query::update()
                .table(Ob::Table)
                .value(Ob::Status, "PROCESSED")
                .value(Ob::ProcessedAt, at.0)
                .and_where(Expr::col(Ob::Id).is_in(chunk.iter().copied()))
                .to_owned();
            execute(self.writer(), self.dialect(), &q).await?;
        }
        Ok(())
    }
}
