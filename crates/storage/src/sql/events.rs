//! The conversation event log: the ONE place that takes sequence numbers and writes event and
//! outbox rows ([`lock_sequence`], [`reserve_seqs`], [`insert_event`]), and [`EventStore`].

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chat_domain::event::MessageData;
use chat_domain::{ConversationEvent, ConversationId, EventId, EventPayload, MessageId, Millis, UserId};
use sea_query::{CaseStatement, Expr, ExprTrait, LockType, Order, Query};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::schema::{
    ConversationEvents as Ev, ConversationSequences as Seqs, MessageProducerOutbox as Ob, Messages as M,
};
use super::writes::WriteBuffer;
use super::{Dialect, SqlStore, db_err, execute, fetch_all, fetch_optional, get_i64, get_id, get_str, json_err};
use crate::{EventStore, StoreError, StoreResult};

/// The event-log topic every outbox row is published to.
pub(crate) const TOPIC: &str = "message.all";

/// Locks the conversation's sequence row until the transaction ends (an UPDATE that changes
/// nothing still takes the row lock on MySQL and PostgreSQL; SQLite writers are serialized)
/// and returns its `last_seq`, or `None` when the conversation does not exist. Used before
/// reading state that the change depends on, so concurrent changes of one conversation
/// serialize.
pub(crate) async fn lock_sequence(
    tx: &mut AnyConnection,
    d: Dialect,
    conv: ConversationId,
) -> Result<Option<i64>, StoreError> {
    let lock = Query::update()
        .table(Seqs::Table)
        .value(Seqs::LastSeq, Expr::col(Seqs::LastSeq))
        .and_where(Expr::col(Seqs::ConversationId).eq(conv.to_string()))
        .to_owned();
    execute(&mut *tx, d, &lock).await?;
    let sel = Query::select()
        .column(Seqs::LastSeq)
        .from(Seqs::Table)
        .and_where(Expr::col(Seqs::ConversationId).eq(conv.to_string()))
        .to_owned();
    match fetch_optional(&mut *tx, d, &sel).await? {
        Some(row) => Ok(Some(get_i64(&row, "last_seq")?)),
        None => Ok(None),
    }
}

/// Takes the next `n >= 1` sequence numbers of a conversation atomically
/// (`UPDATE ... SET last_seq = last_seq + n`, then reads `last_seq` back in the same
/// transaction: the row lock is held to commit, never read-then-write). Returns the first
/// of the `n` consecutive numbers.
///
/// # Errors
/// [`StoreError::NotFound`] when the conversation does not exist (nothing changed).
pub(crate) async fn reserve_seqs(
    tx: &mut AnyConnection,
    d: Dialect,
    conv: ConversationId,
    n: i64,
    at: Millis,
) -> Result<i64, StoreError> {
    debug_assert!(n >= 1);
    let upd = Query::update()
        .table(Seqs::Table)
        .value(Seqs::LastSeq, Expr::col(Seqs::LastSeq).add(n))
        .value(Seqs::LastEventAt, at.0)
        .and_where(Expr::col(Seqs::ConversationId).eq(conv.to_string()))
        .to_owned();
    if execute(&mut *tx, d, &upd).await? == 0 {
        return Err(StoreError::NotFound("conversation"));
    }
    let sel = Query::select()
        .column(Seqs::LastSeq)
        .from(Seqs::Table)
        .and_where(Expr::col(Seqs::ConversationId).eq(conv.to_string()))
        .to_owned();
    let row = fetch_optional(&mut *tx, d, &sel).await?.ok_or(StoreError::NotFound("conversation"))?;
    Ok(get_i64(&row, "last_seq")? - n + 1)
}

/// Conversations per statement in the batch sequence statements (bind limits, statement size).
const CONVS_PER_STATEMENT: usize = 500;

/// Rows per multi-row INSERT of [`insert_events`] (7 columns: far under every bind limit).
const EVENTS_PER_INSERT: usize = 500;

/// [`lock_sequence`] for many conversations at once: locks their sequence rows until the
/// transaction ends and returns each existing one's `last_seq` (absent conversations are
/// missing from the map). `convs` must be ascending and distinct: rows are locked in that
/// order (`SELECT ... ORDER BY ... FOR UPDATE` on MySQL and PostgreSQL), so two batches never
/// wait on each other in a cycle; SQLite writers are serialized (`BEGIN IMMEDIATE`).
pub(crate) async fn lock_sequences(
    tx: &mut AnyConnection,
    d: Dialect,
    convs: &[ConversationId],
) -> Result<HashMap<ConversationId, i64>, StoreError> {
    debug_assert!(convs.windows(2).all(|w| w[0] < w[1]));
    let mut last = HashMap::with_capacity(convs.len());
    for chunk in convs.chunks(CONVS_PER_STATEMENT) {
        let mut sel = Query::select();
        sel.columns([Seqs::ConversationId, Seqs::LastSeq])
            .from(Seqs::Table)
            .and_where(Expr::col(Seqs::ConversationId).is_in(chunk.iter().map(|c| c.to_string())))
            .order_by(Seqs::ConversationId, Order::Asc);
        if d != Dialect::Sqlite {
            sel.lock(LockType::Update);
        }
        for row in fetch_all(&mut *tx, d, &sel).await? {
            last.insert(get_id(&row, "conversation_id")?, get_i64(&row, "last_seq")?);
        }
    }
    Ok(last)
}

/// Sets `last_seq` and `last_event_at` of conversations whose rows [`lock_sequences`] locked:
/// `(conversation, new last_seq, last event time)`, one `UPDATE ... SET last_seq = CASE ...`
/// per chunk of conversations. The new values must be the locked `last_seq` plus the number of
/// seqs taken (the caller holds the locks, so this is not a read-then-write race).
pub(crate) async fn advance_sequences(
    w: &mut WriteBuffer<'_>,
    advanced: &[(ConversationId, i64, Millis)],
) -> Result<(), StoreError> {
    for chunk in advanced.chunks(CONVS_PER_STATEMENT) {
        let mut seq = CaseStatement::new();
        let mut at = CaseStatement::new();
        for (conv, last, when) in chunk {
            seq = seq.case(Expr::col(Seqs::ConversationId).eq(conv.to_string()), *last);
            at = at.case(Expr::col(Seqs::ConversationId).eq(conv.to_string()), when.0);
        }
        let upd = Query::update()
            .table(Seqs::Table)
            .value(Seqs::LastSeq, seq.finally(Expr::col(Seqs::LastSeq)))
            .value(Seqs::LastEventAt, at.finally(Expr::col(Seqs::LastEventAt)))
            .and_where(Expr::col(Seqs::ConversationId).is_in(chunk.iter().map(|(c, _, _)| c.to_string())))
            .to_owned();
        w.push(&upd, Some(chunk.len() as u64)).await?;
    }
    Ok(())
}

/// Writes one event row and its PENDING outbox row (payload: the event's JSON).
pub(crate) async fn insert_event(tx: &mut AnyConnection, d: Dialect, ev: &ConversationEvent) -> Result<(), StoreError> {
    let mut w = WriteBuffer::new(tx, d);
    insert_events(&mut w, std::slice::from_ref(ev)).await?;
    w.flush().await
}

/// Writes event rows and their PENDING outbox rows (payload: the event's JSON), in multi-row
/// INSERTs of [`EVENTS_PER_INSERT`]; outbox ids follow the order of `events`.
pub(crate) async fn insert_events(w: &mut WriteBuffer<'_>, events: &[ConversationEvent]) -> Result<(), StoreError> {
    for chunk in events.chunks(EVENTS_PER_INSERT) {
        let mut ins = Query::insert();
        ins.into_table(Ev::Table).columns([
            Ev::ConversationId,
            Ev::Seq,
            Ev::EventId,
            Ev::Type,
            Ev::ActorId,
            Ev::Payload,
            Ev::CreatedAt,
        ]);
        let mut ob = Query::insert();
        ob.into_table(Ob::Table).columns([
            Ob::ConversationId,
            Ob::Seq,
            Ob::EventId,
            Ob::Topic,
            Ob::Payload,
            Ob::CreatedAt,
            Ob::Status,
        ]);
        for ev in chunk {
            let payload = serde_json::to_string(&ev.payload).map_err(json_err)?;
            let event_json = serde_json::to_string(ev).map_err(json_err)?;
            ins.values_panic([
                ev.conversation_id.to_string().into(),
                ev.seq.into(),
                ev.event_id.to_string().into(),
                ev.kind().as_str().into(),
                ev.actor_id.to_string().into(),
                payload.into(),
                ev.created_at.0.into(),
            ]);
            ob.values_panic([
                ev.conversation_id.to_string().into(),
                ev.seq.into(),
                ev.event_id.to_string().into(),
                TOPIC.into(),
                event_json.into(),
                ev.created_at.0.into(),
                "PENDING".into(),
            ]);
        }
        w.push(&ins, Some(chunk.len() as u64)).await?;
        w.push(&ob, Some(chunk.len() as u64)).await?;
    }
    Ok(())
}

/// Appends one event: takes the next seq ([`reserve_seqs`]) and writes it ([`insert_event`]).
pub(crate) async fn append_event(
    tx: &mut AnyConnection,
    d: Dialect,
    conv: ConversationId,
    actor: UserId,
    event_id: EventId,
    payload: EventPayload,
    at: Millis,
) -> Result<ConversationEvent, StoreError> {
    let seq = reserve_seqs(tx, d, conv, 1, at).await?;
    let ev = ConversationEvent { event_id, conversation_id: conv, seq, actor_id: actor, created_at: at, payload };
    insert_event(tx, d, &ev).await?;
    Ok(ev)
}

/// Decodes a `conversation_events` row.
fn decode_event(row: &AnyRow) -> Result<ConversationEvent, StoreError> {
    let payload: EventPayload = serde_json::from_str(&get_str(row, "payload")?).map_err(json_err)?;
    Ok(ConversationEvent {
        event_id: get_id(row, "event_id")?,
        conversation_id: get_id(row, "conversation_id")?,
        seq: get_i64(row, "seq")?,
        actor_id: get_id(row, "actor_id")?,
        created_at: Millis(get_i64(row, "created_at")?),
        payload,
    })
}

#[async_trait]
impl EventStore for SqlStore {
    async fn events_after(
        &self,
        conv: ConversationId,
        after_seq: i64,
        limit: i64,
    ) -> StoreResult<Vec<ConversationEvent>> {
        let d = self.dialect();
        let page = Query::select()
            .columns([Ev::ConversationId, Ev::Seq, Ev::EventId, Ev::ActorId, Ev::Payload, Ev::CreatedAt])
            .from(Ev::Table)
            .and_where(Expr::col(Ev::ConversationId).eq(conv.to_string()))
            .and_where(Expr::col(Ev::Seq).gt(after_seq))
            .order_by(Ev::Seq, Order::Asc)
            .limit(super::lim(limit))
            .to_owned();
        let mut conn = self.reader().acquire().await.map_err(db_err)?;
        let mut events = match d {
            Dialect::Sqlite => {
                let q = Query::select().expr_as(Expr::cust(PACKED_PAGE), "page").from_subquery(page, "p").to_owned();
                match fetch_optional(&mut *conn, d, &q).await? {
                    Some(row) => unpack_events(conv, super::get_opt_str(&row, "page")?.as_deref().unwrap_or(""))?,
                    None => Vec::new(),
                }
            }
            Dialect::MySql | Dialect::Postgres => {
                fetch_all(&mut *conn, d, &page).await?.iter().map(decode_event).collect::<StoreResult<_>>()?
            }
        };
        redact_deleted(&mut conn, d, &mut events).await?;
        Ok(events)
    }
}

/// SQLite: a page of events as ONE text value, so the driver hands over one row instead of
/// one per event (sqlx's SQLite driver runs each connection on its own thread and passes
/// every row through a channel: ~5 µs per row, most of a replay's cost). Per event, in seq
/// order: `<seq> <event_id> <actor_id> <created_at> <payload bytes>:<payload>`; the payload's
/// length prefix makes the format independent of its content ([`unpack_events`]).
const PACKED_PAGE: &str = "group_concat(seq || ' ' || event_id || ' ' || actor_id || ' ' || created_at || ' ' \
     || octet_length(payload) || ':' || payload, '' ORDER BY seq)";

/// Decodes a [`PACKED_PAGE`] value (empty: no events) into the events of `conv`.
fn unpack_events(conv: ConversationId, mut packed: &str) -> StoreResult<Vec<ConversationEvent>> {
    let bad = |what: &str| StoreError::Unexpected(anyhow::anyhow!("packed event page: {what}"));
    let mut events = Vec::new();
    while !packed.is_empty() {
        let colon = packed.find(':').ok_or_else(|| bad("no payload"))?;
        let mut head = packed[..colon].split(' ');
        let mut field = |name: &str| head.next().ok_or_else(|| bad(name));
        let seq: i64 = field("seq")?.parse().map_err(|_| bad("seq"))?;
        let event_id: uuid::Uuid = field("event_id")?.parse().map_err(|_| bad("event_id"))?;
        let actor_id: uuid::Uuid = field("actor_id")?.parse().map_err(|_| bad("actor_id"))?;
        let created_at: i64 = field("created_at")?.parse().map_err(|_| bad("created_at"))?;
        let len: usize = field("payload length")?.parse().map_err(|_| bad("payload length"))?;
        let rest = &packed[colon + 1..];
        let payload = rest.get(..len).ok_or_else(|| bad("payload cut short"))?;
        events.push(ConversationEvent {
            event_id: event_id.into(),
            conversation_id: conv,
            seq,
            actor_id: actor_id.into(),
            created_at: Millis(created_at),
            payload: decode_payload(payload)?,
        });
        packed = &rest[len..];
    }
    Ok(events)
}

/// Decodes a stored event payload. A `MESSAGE` payload (most of a log; stored as
/// `serde_json` writes it, tag first) is read straight into its fields: serde's internally
/// tagged enum would first buffer every field of every payload. Anything else, or a
/// message payload that does not read that way, goes through [`EventPayload`]'s own
/// `Deserialize`.
fn decode_payload(json: &str) -> StoreResult<EventPayload> {
    /// The fields of [`EventPayload::Message`] (the `type` tag is skipped as unknown).
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct MessagePayload {
        message: MessageData,
        thread_reply_count: Option<i64>,
    }
    if json.starts_with(r#"{"type":"MESSAGE","#)
        && let Ok(p) = serde_json::from_str::<MessagePayload>(json)
    {
        return Ok(EventPayload::Message { message: p.message, thread_reply_count: p.thread_reply_count });
    }
    serde_json::from_str(json).map_err(json_err)
}

/// The message snapshot an event carries, if any.
fn message_data(e: &mut ConversationEvent) -> Option<&mut MessageData> {
    match &mut e.payload {
        EventPayload::Message { message, .. }
        | EventPayload::MessageEdited { message }
        | EventPayload::MessageDeleted { message } => Some(message),
        _ => None,
    }
}

/// The log keeps what was said at the time; a deleted message's content must not be read back
/// from it. Blanks text, mentions and attachments in the snapshots of messages that are
/// deleted now. The page's own messages (created within its seq range: the snapshot's
/// `server_seq` is its creation event's seq) are looked up by that range on
/// `(conversation_id, server_seq)`, older ones (edits and deletions of earlier messages) by
/// id: at most two queries per page, neither with one parameter per event.
async fn redact_deleted(conn: &mut AnyConnection, d: Dialect, events: &mut [ConversationEvent]) -> StoreResult<()> {
    let (Some(first), Some(last)) = (events.first().map(|e| e.seq), events.last().map(|e| e.seq)) else {
        return Ok(());
    };
    let mut conv = None;
    let mut older: Vec<String> = Vec::new();
    let mut in_range = false;
    for m in events.iter_mut().filter_map(message_data) {
        conv = Some(m.conversation_id);
        if (first..=last).contains(&m.server_seq) {
            in_range = true;
        } else {
            older.push(m.message_id.to_string());
        }
    }
    let Some(conv) = conv else {
        return Ok(());
    };
    let mut deleted: HashSet<MessageId> = HashSet::new();
    if in_range {
        let q = Query::select()
            .column(M::MessageId)
            .from(M::Table)
            .and_where(Expr::col(M::ConversationId).eq(conv.to_string()))
            .and_where(Expr::col(M::ServerSeq).between(first, last))
            .and_where(Expr::col(M::Deleted).eq(1))
            .to_owned();
        for r in fetch_all(&mut *conn, d, &q).await? {
            deleted.insert(get_id(&r, "message_id")?);
        }
    }
    if !older.is_empty() {
        older.sort_unstable();
        older.dedup();
        let q = Query::select()
            .column(M::MessageId)
            .from(M::Table)
            .and_where(Expr::col(M::MessageId).is_in(older))
            .and_where(Expr::col(M::Deleted).eq(1))
            .to_owned();
        for r in fetch_all(&mut *conn, d, &q).await? {
            deleted.insert(get_id(&r, "message_id")?);
        }
    }
    for m in events.iter_mut().filter_map(message_data).filter(|m| deleted.contains(&m.message_id)) {
        m.text.clear();
        m.mentions = Default::default();
        m.attachments.clear();
        m.deleted = true;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chat_domain::{Mentions, MessageId};

    use super::*;

    fn message_payload(thread_reply_count: Option<i64>) -> EventPayload {
        let (conv, user) = (ConversationId::new(), UserId::new());
        EventPayload::Message {
            message: MessageData {
                message_id: MessageId::new(),
                conversation_id: conv,
                user_id: user,
                client_msg_id: Some("c: 1".into()),
                server_seq: 7,
                thread_root_id: Some(MessageId::new()),
                text: "{\"type\":\"MESSAGE\", ü 😀".into(),
                kind: "default".into(),
                created_at: Millis(1_000),
                updated_at: Millis(2_000),
                edited: true,
                deleted: false,
                version_count: 1,
                mentions: Mentions { user_ids: vec![user], channel: true },
                thread: None,
                attachments: Vec::new(),
            },
            thread_reply_count,
        }
    }

    #[test]
    fn payloads_decode_as_their_own_deserialize_does() {
        let reaction =
            EventPayload::ReactionAdded { message_id: MessageId::new(), emoji: "👍".into(), user_id: UserId::new() };
        for p in [message_payload(None), message_payload(Some(3)), reaction] {
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(decode_payload(&json).unwrap(), p, "{json}");
        }
        // Another key order still decodes (through the enum).
        let mut v = serde_json::to_value(message_payload(Some(1))).unwrap();
        let tag = v.as_object_mut().unwrap().remove("type").unwrap();
        v.as_object_mut().unwrap().insert("type".into(), tag);
        let reordered = serde_json::to_string(&v).unwrap();
        assert_eq!(decode_payload(&reordered).unwrap(), serde_json::from_value::<EventPayload>(v).unwrap());
        assert!(decode_payload(r#"{"type":"MESSAGE","message":{}}"#).is_err());
    }

    #[test]
    fn a_packed_page_unpacks_whatever_the_payload_holds() {
        let conv = ConversationId::new();
        let p = message_payload(None);
        let json = serde_json::to_string(&p).unwrap();
        let (e1, a1) = (EventId::new(), UserId::new());
        let packed = format!("5 {e1} {a1} 1000 {}:{json}6 {e1} {a1} 1001 {}:{json}", json.len(), json.len());
        let events = unpack_events(conv, &packed).unwrap();
        assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![5, 6]);
        assert!(events.iter().all(|e| e.payload == p && e.conversation_id == conv && e.actor_id == a1));
        assert_eq!(events[1].created_at, Millis(1001));
        assert!(unpack_events(conv, "").unwrap().is_empty());
        // A cut payload or a bad header is an error, never a wrong event.
        assert!(unpack_events(conv, &packed[..packed.len() - 1]).is_err());
        assert!(unpack_events(conv, &format!("x {e1} {a1} 1 2:{{}}")).is_err());
    }
}
