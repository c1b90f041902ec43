//! The embedded tantivy index ([`TantivyIndex`]).
//!
//! One document per live message: `message_id`, `conversation_id`, `author_id` and `mentions`
//! (user ids, plus [`CHANNEL_MENTION`] for `@channel`/`@here`) as raw terms; `text` tokenized
//! like [`crate::terms`] (words of letters and digits, lower-cased, at most 64 bytes, no
//! positions); `created_at` (ms), `id_hi`/`id_lo` (the message UUID's two halves) as indexed
//! fast fields for date filters, the newest-first order and the keyset cursor;
//! `has_attachment` 0/1. Deleted messages have no document. Applying a message replaces its
//! document (delete by `message_id` term, then add), so applying the same state twice is
//! harmless.
//!
//! Commits carry a JSON payload `{"watermark": ms}`: the largest `updated_at` applied, from
//! which [`crate::Indexer`] catches up after a restart. The reader is reloaded by every
//! commit (manual reload policy), so a committed change is searchable when `commit` returns.
//! One writer per directory: opening a directory another writer holds fails with
//! [`crate::SearchError::Index`] (`LockBusy`).

use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chat_domain::event::MessageData;
use chat_domain::{ConversationId, Message, MessageId, Millis, UserId};
use chat_storage::SearchStore;
use chat_storage::search::{AttachmentFilter, MAX_SEARCH_LIMIT, MentionFilter, SearchHit, SearchPage, SearchQuery};
use serde::{Deserialize, Serialize};
use tantivy::collector::TopDocs;
use tantivy::directory::MmapDirectory;
use tantivy::query::{BooleanQuery, Occur, Query, RangeQuery, TermQuery, TermSetQuery};
use tantivy::schema::{
    Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions, Value,
};
use tantivy::tokenizer::{LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer};
use tantivy::{DocAddress, Index, IndexReader, IndexWriter, ReloadPolicy, SegmentReader, TantivyDocument, Term, doc};
use uuid::Uuid;

use crate::terms::MAX_TERM_BYTES;
use crate::{EngineKind, Result, SearchEngine, SearchError};

/// The `mentions` term of `@channel` / `@here`.
pub const CHANNEL_MENTION: &str = "@channel";
/// Name of the text analyzer registered on the index.
const TOKENIZER: &str = "chat_words";
/// Indexing memory budget of the single writer thread (bytes).
const WRITER_MEMORY: usize = 50_000_000;

/// A message as the index sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IndexedMessage {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub author_id: UserId,
    pub text: String,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub deleted: bool,
    pub has_attachment: bool,
    pub mentions: Vec<UserId>,
    pub mentions_channel: bool,
}

impl From<&Message> for IndexedMessage {
    fn from(m: &Message) -> Self {
        IndexedMessage {
            id: m.id,
            conversation_id: m.conversation_id,
            author_id: m.user_id,
            text: m.text.clone(),
            created_at: m.created_at,
            updated_at: m.updated_at,
            deleted: m.deleted,
            has_attachment: !m.attachments.is_empty(),
            mentions: m.mentions.user_ids.clone(),
            mentions_channel: m.mentions.channel,
        }
    }
}

impl From<&MessageData> for IndexedMessage {
    fn from(m: &MessageData) -> Self {
        IndexedMessage {
            id: m.message_id,
            conversation_id: m.conversation_id,
            author_id: m.user_id,
            text: m.text.clone(),
            created_at: m.created_at,
            updated_at: m.updated_at,
            deleted: m.deleted,
            has_attachment: !m.attachments.is_empty(),
            mentions: m.mentions.user_ids.clone(),
            mentions_channel: m.mentions.channel,
        }
    }
}

#[derive(Clone, Copy)]
struct Fields {
    message_id: Field,
    conversation_id: Field,
    author_id: Field,
    text: Field,
    created_at: Field,
    id_hi: Field,
    id_lo: Field,
    has_attachment: Field,
    mentions: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text_options = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default().set_tokenizer(TOKENIZER).set_index_option(IndexRecordOption::Basic),
    );
    let fast_indexed = tantivy::schema::NumericOptions::default().set_indexed().set_fast();
    let fields = Fields {
        message_id: b.add_text_field("message_id", STRING | STORED),
        conversation_id: b.add_text_field("conversation_id", STRING | STORED),
        author_id: b.add_text_field("author_id", STRING),
        text: b.add_text_field("text", text_options),
        created_at: b.add_i64_field("created_at", fast_indexed.clone()),
        id_hi: b.add_u64_field("id_hi", fast_indexed.clone()),
        id_lo: b.add_u64_field("id_lo", fast_indexed),
        has_attachment: b.add_u64_field("has_attachment", INDEXED),
        mentions: b.add_text_field("mentions", STRING),
    };
    (b.build(), fields)
}

/// The commit payload.
#[derive(Serialize, Deserialize)]
struct Payload {
    watermark: i64,
}

/// Size of the index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexStats {
    /// Live (searchable) messages.
    pub documents: u64,
    /// Largest `updated_at` applied (ms), 0 for a new index.
    pub watermark: Millis,
}

/// The embedded full-text index (see the module documentation). Cheap to share (`Arc`).
pub struct TantivyIndex {
    index: Index,
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    fields: Fields,
    store: Arc<dyn SearchStore>,
}

impl std::fmt::Debug for TantivyIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TantivyIndex").finish_non_exhaustive()
    }
}

fn uuid_parts(u: Uuid) -> (u64, u64) {
    u.as_u64_pair()
}

impl TantivyIndex {
    /// Opens the index in `dir` (created, with its parents, when missing) and takes its
    /// writer lock; `store` resolves the searcher's conversations. Blocking (file I/O): call
    /// it from `spawn_blocking` or before the runtime is busy.
    ///
    /// # Errors
    /// [`SearchError::Directory`] when `dir` cannot be created or opened;
    /// [`SearchError::Index`] when it holds an index of another schema, or another writer
    /// (process) holds its lock.
    pub fn open(dir: &Path, store: Arc<dyn SearchStore>) -> Result<Arc<TantivyIndex>> {
        let dir_err = |reason: String| SearchError::Directory { path: dir.display().to_string(), reason };
        std::fs::create_dir_all(dir).map_err(|e| dir_err(e.to_string()))?;
        let directory = MmapDirectory::open(dir).map_err(|e| dir_err(e.to_string()))?;
        let (schema, fields) = schema();
        let index = Index::open_or_create(directory, schema)?;
        index.tokenizers().register(
            TOKENIZER,
            TextAnalyzer::builder(SimpleTokenizer::default())
                .filter(RemoveLongFilter::limit(MAX_TERM_BYTES + 1))
                .filter(LowerCaser)
                .build(),
        );
        let writer = index.writer_with_num_threads(1, WRITER_MEMORY)?;
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        Ok(Arc::new(TantivyIndex { index, reader, writer: Mutex::new(writer), fields, store }))
    }

    fn writer(&self) -> MutexGuard<'_, IndexWriter> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the message's document with its current state (none when deleted). Not
    /// visible before [`TantivyIndex::commit`].
    pub(crate) fn apply(&self, m: &IndexedMessage) -> Result<()> {
        let f = self.fields;
        let writer = self.writer();
        writer.delete_term(Term::from_field_text(f.message_id, &m.id.to_string()));
        if m.deleted {
            return Ok(());
        }
        let (hi, lo) = uuid_parts(m.id.uuid());
        let mut d = doc!(
            f.message_id => m.id.to_string(),
            f.conversation_id => m.conversation_id.to_string(),
            f.author_id => m.author_id.to_string(),
            f.text => m.text.as_str(),
            f.created_at => m.created_at.0,
            f.id_hi => hi,
            f.id_lo => lo,
            f.has_attachment => u64::from(m.has_attachment),
        );
        for u in &m.mentions {
            d.add_text(f.mentions, u.to_string());
        }
        if m.mentions_channel {
            d.add_text(f.mentions, CHANNEL_MENTION);
        }
        writer.add_document(d)?;
        Ok(())
    }

    /// Removes every document (a rebuild's first step). Not visible before
    /// [`TantivyIndex::commit`].
    pub(crate) fn clear(&self) -> Result<()> {
        self.writer().delete_all_documents()?;
        Ok(())
    }

    /// Commits what was applied, recording `watermark` (ms; never lowered below the current
    /// one), and reloads the reader so the changes are searchable on return. Blocking (fsync).
    ///
    /// # Errors
    /// [`SearchError::Index`] when the commit fails (nothing applied since the last commit is
    /// kept; the caller applies it again).
    pub(crate) fn commit(&self, watermark: Millis) -> Result<()> {
        let watermark = watermark.0.max(self.stats()?.watermark.0);
        let mut writer = self.writer();
        let mut prepared = writer.prepare_commit()?;
        prepared.set_payload(&serde_json::to_string(&Payload { watermark }).unwrap_or_default());
        prepared.commit()?;
        drop(writer);
        self.reader.reload()?;
        Ok(())
    }

    /// Drops what was applied since the last commit (after a failed commit).
    pub(crate) fn rollback(&self) {
        if let Err(e) = self.writer().rollback() {
            tracing::warn!(error = %e, "search index rollback failed");
        }
    }

    /// Like [`TantivyIndex::commit`] but sets the watermark to exactly `watermark` (a
    /// rebuild).
    pub(crate) fn commit_rebuilt(&self, watermark: Millis) -> Result<()> {
        let mut writer = self.writer();
        let mut prepared = writer.prepare_commit()?;
        prepared.set_payload(&serde_json::to_string(&Payload { watermark: watermark.0 }).unwrap_or_default());
        prepared.commit()?;
        drop(writer);
        self.reader.reload()?;
        Ok(())
    }

    /// Live documents and the committed watermark.
    ///
    /// # Errors
    /// [`SearchError::Index`] when the index metadata cannot be read.
    pub fn stats(&self) -> Result<IndexStats> {
        let metas = self.index.load_metas()?;
        let watermark =
            metas.payload.as_deref().and_then(|p| serde_json::from_str::<Payload>(p).ok()).map_or(0, |p| p.watermark);
        Ok(IndexStats { documents: self.reader.searcher().num_docs(), watermark: Millis(watermark) })
    }

    /// The query of `q` restricted to `readable` conversations.
    fn query(&self, q: &SearchQuery, readable: &[ConversationId]) -> BooleanQuery {
        let f = self.fields;
        let text_term = |field: Field, v: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(Term::from_field_text(field, v), IndexRecordOption::Basic))
        };
        let i64_range = |lo: Bound<i64>, hi: Bound<i64>| -> Box<dyn Query> {
            let t = |v: i64| Term::from_field_i64(f.created_at, v);
            Box::new(RangeQuery::new(lo.map(t), hi.map(t)))
        };
        let u64_range = |field: Field, lo: Bound<u64>, hi: Bound<u64>| -> Box<dyn Query> {
            let t = |v: u64| Term::from_field_u64(field, v);
            Box::new(RangeQuery::new(lo.map(t), hi.map(t)))
        };
        let mut must: Vec<Box<dyn Query>> = vec![Box::new(TermSetQuery::new(
            readable.iter().map(|c| Term::from_field_text(f.conversation_id, &c.to_string())),
        ))];
        must.extend(q.terms.iter().map(|t| text_term(f.text, t)));
        if let Some(c) = q.conversation_id {
            must.push(text_term(f.conversation_id, &c.to_string()));
        }
        if let Some(a) = q.author_id {
            must.push(text_term(f.author_id, &a.to_string()));
        }
        if q.from.is_some() || q.to.is_some() {
            let lo = q.from.map_or(Bound::Unbounded, |m| Bound::Included(m.0));
            let hi = q.to.map_or(Bound::Unbounded, |m| Bound::Excluded(m.0));
            must.push(i64_range(lo, hi));
        }
        if let Some(a) = q.attachments {
            let v = u64::from(a == AttachmentFilter::With);
            must.push(Box::new(TermQuery::new(Term::from_field_u64(f.has_attachment, v), IndexRecordOption::Basic)));
        }
        if q.mentions == MentionFilter::Searcher {
            must.push(Box::new(TermSetQuery::new([
                Term::from_field_text(f.mentions, &q.searcher.to_string()),
                Term::from_field_text(f.mentions, CHANNEL_MENTION),
            ])));
        }
        if let Some(after) = q.after {
            let (hi, lo) = uuid_parts(after.message_id.uuid());
            let at = after.created_at.0;
            let same_ms = || i64_range(Bound::Included(at), Bound::Included(at));
            let before: Vec<(Occur, Box<dyn Query>)> = vec![
                (Occur::Should, i64_range(Bound::Unbounded, Bound::Excluded(at))),
                (
                    Occur::Should,
                    Box::new(BooleanQuery::new(vec![
                        (Occur::Must, same_ms()),
                        (Occur::Must, u64_range(f.id_hi, Bound::Unbounded, Bound::Excluded(hi))),
                    ])),
                ),
                (
                    Occur::Should,
                    Box::new(BooleanQuery::new(vec![
                        (Occur::Must, same_ms()),
                        (Occur::Must, u64_range(f.id_hi, Bound::Included(hi), Bound::Included(hi))),
                        (Occur::Must, u64_range(f.id_lo, Bound::Unbounded, Bound::Excluded(lo))),
                    ])),
                ),
            ];
            must.push(Box::new(BooleanQuery::new(before)));
        }
        BooleanQuery::new(must.into_iter().map(|q| (Occur::Must, q)).collect())
    }

    /// Runs `q` on the committed index for the given readable conversations. Blocking.
    fn search_blocking(&self, q: &SearchQuery, readable: &[ConversationId]) -> Result<SearchPage> {
        if readable.is_empty() {
            return Ok(SearchPage::default());
        }
        let limit = q.limit.clamp(1, MAX_SEARCH_LIMIT);
        let query = self.query(q, readable);
        let sort_key = |seg: &SegmentReader| {
            let ff = seg.fast_fields();
            let created = ff.i64("created_at").ok().map(|c| c.first_or_default_col(0));
            let hi = ff.u64("id_hi").ok().map(|c| c.first_or_default_col(0));
            let lo = ff.u64("id_lo").ok().map(|c| c.first_or_default_col(0));
            move |doc: tantivy::DocId| {
                (
                    created.as_ref().map_or(0, |c| c.get_val(doc)),
                    hi.as_ref().map_or(0, |c| c.get_val(doc)),
                    lo.as_ref().map_or(0, |c| c.get_val(doc)),
                )
            }
        };
        let searcher = self.reader.searcher();
        let top: Vec<((i64, u64, u64), DocAddress)> =
            searcher.search(&query, &TopDocs::with_limit(limit + 1).order_by(sort_key))?;
        let mut hits = Vec::with_capacity(top.len().min(limit));
        for ((created, hi, lo), addr) in top.into_iter().take(limit + 1) {
            let stored: TantivyDocument = searcher.doc(addr)?;
            let conversation = stored
                .get_first(self.fields.conversation_id)
                .and_then(|v| v.as_str())
                .and_then(|s| s.parse::<ConversationId>().ok());
            let Some(conversation_id) = conversation else {
                return Err(SearchError::Index(tantivy::TantivyError::InternalError(
                    "a document has no valid conversation_id".into(),
                )));
            };
            hits.push(SearchHit {
                message_id: MessageId::from(Uuid::from_u64_pair(hi, lo)),
                conversation_id,
                created_at: Millis(created),
            });
        }
        let more = hits.len() > limit;
        hits.truncate(limit);
        let next = if more { hits.last().map(SearchHit::cursor) } else { None };
        Ok(SearchPage { hits, next })
    }
}

/// Runs a blocking index operation on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| SearchError::Task(e.to_string()))?
}

#[async_trait]
impl SearchEngine for Arc<TantivyIndex> {
    async fn search(&self, q: &SearchQuery) -> Result<SearchPage> {
        let readable = self.store.readable_conversation_ids(q.searcher).await?;
        let (this, q) = (Arc::clone(self), q.clone());
        blocking(move || this.search_blocking(&q, &readable)).await
    }

    fn kind(&self) -> EngineKind {
        EngineKind::Tantivy
    }
}
