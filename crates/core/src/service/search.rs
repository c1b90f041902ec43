//! Full-text search over the messages the actor can read ([`ChatService::search`]).
//!
//! The engine ([`chat_search::SearchEngine`]: the embedded tantivy index or the database's
//! full-text search) is attached with [`ChatService::with_search`]; without one, searches
//! fail with `Unavailable`. The engine restricts every query to the conversations the actor
//! is a member of; the service validates the input, checks an explicit conversation filter
//! like any read (`NotFound` / `Forbidden`), then loads each hit's current message and
//! conversation from the store (a hit deleted meanwhile is left out) and marks the query's
//! words in a snippet.

use std::collections::HashMap;
use std::sync::Arc;

use chat_domain::{Conversation, ConversationId, DomainError, Message, Millis, UserId};
use chat_search::{
    AttachmentFilter, MAX_SEARCH_LIMIT, MentionFilter, SearchCursor, SearchEngine, SearchError, SearchQuery,
    SnippetPart, TermsError,
};

use super::{ChatService, ServiceResult};

/// Characters of message text in a [`SearchResult`] snippet.
pub const SNIPPET_CHARS: usize = 200;

/// Input of [`ChatService::search`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchMessages {
    /// The words to find (all must occur; case-insensitive; at most
    /// [`chat_search::MAX_QUERY_BYTES`] bytes and [`chat_search::MAX_TERMS`] words). `None`
    /// only with `mentions = Searcher` (the "mentions me" list).
    pub text: Option<String>,
    /// Only this conversation (the actor must be a member).
    pub conversation_id: Option<ConversationId>,
    /// Only messages by this author.
    pub author_id: Option<UserId>,
    /// Only messages created at or after this instant.
    pub from: Option<Millis>,
    /// Only messages created before this instant (after `from`).
    pub to: Option<Millis>,
    /// Attachment condition.
    pub attachments: Option<AttachmentFilter>,
    /// Mention condition ([`MentionFilter::Searcher`]: messages that mention the actor by
    /// `@username`, `@channel` or `@here`).
    pub mentions: MentionFilter,
    /// Continue after this hit (a previous page's `next`).
    pub after: Option<SearchCursor>,
    /// Page size, 1..=[`MAX_SEARCH_LIMIT`].
    pub limit: i64,
}

/// One search hit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundMessage {
    /// The message as it is now.
    pub message: Message,
    /// Its conversation.
    pub conversation: Conversation,
    /// An excerpt of the text with the query's words marked.
    pub snippet: Vec<SnippetPart>,
}

/// A page of search hits, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchResult {
    /// Hits, newest first.
    pub hits: Vec<FoundMessage>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<SearchCursor>,
}

fn terms_error(e: TermsError) -> DomainError {
    DomainError::invalid("q", e.to_string())
}

fn search_error(e: SearchError) -> DomainError {
    match e {
        SearchError::Store(s) => s.into(),
        other => DomainError::Unavailable(other.to_string()),
    }
}

impl ChatService {
    /// Attaches the search engine that answers [`ChatService::search`].
    pub fn with_search(mut self, engine: Arc<dyn SearchEngine>) -> Self {
        self.search = Some(engine);
        self
    }

    /// Searches the messages of the conversations the actor is a member of (see
    /// [`SearchMessages`]); never returns a deleted message or one of a conversation the
    /// actor cannot read.
    ///
    /// # Errors
    /// `Invalid` (`q`, `limit`, `to`) for bad input: a blank or too long query, no words, too
    /// many words, no query without `mentions = Searcher`, a limit outside 1..=100, `to` not
    /// after `from`; `NotFound` / `Forbidden` for a conversation filter the actor cannot read;
    /// `Unavailable` without a search engine or when it fails.
    pub async fn search(&self, actor: UserId, input: SearchMessages) -> ServiceResult<SearchResult> {
        self.actor_user(actor).await?;
        let terms = match input.text.as_deref() {
            Some(t) => chat_search::terms(t).map_err(terms_error)?,
            None if input.mentions == MentionFilter::Searcher => Vec::new(),
            None => return Err(DomainError::invalid("q", "a query is required (or mentions=me)")),
        };
        if !(1..=MAX_SEARCH_LIMIT as i64).contains(&input.limit) {
            return Err(DomainError::invalid("limit", format!("must be in 1..={MAX_SEARCH_LIMIT}")));
        }
        if let (Some(from), Some(to)) = (input.from, input.to)
            && to <= from
        {
            return Err(DomainError::invalid("to", "must be after from"));
        }
        if let Some(conv) = input.conversation_id {
            self.conv_as_member(actor, conv).await?;
        }
        let engine = self.search.as_ref().ok_or_else(|| DomainError::Unavailable("search is not configured".into()))?;
        let query = SearchQuery {
            searcher: actor,
            terms,
            conversation_id: input.conversation_id,
            author_id: input.author_id,
            from: input.from,
            to: input.to,
            attachments: input.attachments,
            mentions: input.mentions,
            after: input.after,
            limit: input.limit as usize,
        };
        let page = engine.search(&query).await.map_err(search_error)?;
        let mut conversations: HashMap<ConversationId, Conversation> = HashMap::new();
        let mut hits = Vec::with_capacity(page.hits.len());
        for hit in &page.hits {
            let Some(message) = self.store.message(hit.message_id).await? else { continue };
            if message.deleted {
                continue;
            }
            let conversation = match conversations.get(&hit.conversation_id) {
                Some(c) => c.clone(),
                None => {
                    let Some(c) = self.store.conversation(hit.conversation_id).await? else { continue };
                    conversations.insert(c.id, c.clone());
                    c
                }
            };
            let snippet = chat_search::snippet(&message.text, &query.terms, SNIPPET_CHARS);
            hits.push(FoundMessage { message, conversation, snippet });
        }
        Ok(SearchResult { hits, next: page.next })
    }
}
