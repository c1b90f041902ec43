//! Full-text search: `GET /api/v1/search` over the messages the caller can read.
//!
//! Query parameters are camelCase like the rest of the API; the snake_case spellings
//! (`conversation_id`, `author_id`, `has_attachment`) are accepted too. The cursor is opaque:
//! base64url of `{createdAtMillis}:{messageId}` of a page's last hit.

use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chat_domain::{Conversation, Millis};
use chat_search::{AttachmentFilter, MentionFilter, SearchCursor, SnippetPart};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::AppState;
use super::extract::{Actor, ApiJson, ApiQuery};
use super::model::{ConversationDto, MessageDto};
use super::problem::{ApiResult, Problem};
use crate::service::{FoundMessage, SearchMessages, SearchResult};

/// Page size without `limit`.
pub const DEFAULT_SEARCH_LIMIT: i64 = 20;

/// `mentions` filter values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MentionsParam {
    /// Messages that mention the caller (`@username`, `@channel`, `@here`).
    Me,
}

/// Query of `GET /api/v1/search`.
#[derive(Clone, Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Words to find: all must occur in the text as whole words, case-insensitive (letters
    /// and digits; anything else separates words). At most 512 bytes and 16 words. Required
    /// unless `mentions=me`.
    #[serde(default)]
    #[param(min_length = 1, max_length = 512)]
    pub q: Option<String>,
    /// Only this conversation (the caller must be a member).
    #[serde(default, alias = "conversation_id")]
    pub conversation_id: Option<Uuid>,
    /// Only messages by this user.
    #[serde(default, alias = "author_id")]
    pub author_id: Option<Uuid>,
    /// Only messages created at or after this instant (RFC 3339).
    #[serde(default)]
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// Only messages created before this instant (RFC 3339; after `from`).
    #[serde(default)]
    #[param(format = DateTime)]
    pub to: Option<String>,
    /// `true`: only messages with attachments; `false`: only messages without.
    #[serde(default, alias = "has_attachment")]
    pub has_attachment: Option<bool>,
    /// `me`: only messages that mention the caller (`@username`, `@channel`, `@here`).
    #[serde(default)]
    #[param(inline)]
    pub mentions: Option<MentionsParam>,
    /// Page size, 1..=100 (default 20).
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `nextCursor` of the previous page.
    #[serde(default)]
    #[param(min_length = 1, max_length = 128)]
    pub cursor: Option<String>,
}

/// A piece of a snippet.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SnippetPartDto {
    /// Text of this piece.
    pub text: String,
    /// This piece is one of the query's words.
    #[serde(rename = "match")]
    pub matched: bool,
}

/// One search hit.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchHitDto {
    /// The message as it is now.
    pub message: MessageDto,
    /// Its conversation.
    pub conversation: ConversationDto,
    /// An excerpt of the text (at most 200 characters, `…` where cut) in pieces, the query's
    /// words marked with `match: true`; concatenate the `text`s to display it.
    pub snippet: Vec<SnippetPartDto>,
}

/// A page of search hits.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchResultsDto {
    /// Hits, newest first.
    pub results: Vec<SearchHitDto>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

fn bad_param(field: &str, detail: String) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, "invalid-query", detail).with_field(field)
}

fn instant(field: &str, v: Option<&str>) -> Result<Option<Millis>, Problem> {
    v.map(|s| {
        Millis::parse_rfc3339(s).map_err(|e| bad_param(field, format!("{field} is not an RFC 3339 instant: {e}")))
    })
    .transpose()
}

/// The opaque cursor of a page's last hit.
pub fn encode_cursor(c: &SearchCursor) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{}", c.created_at.0, c.message_id))
}

/// Parses a cursor made by [`encode_cursor`].
///
/// # Errors
/// A 400 problem naming `cursor` when it is not one.
pub fn decode_cursor(s: &str) -> Result<SearchCursor, Problem> {
    let bad = || bad_param("cursor", "cursor is not a nextCursor of this API".into());
    let raw = URL_SAFE_NO_PAD.decode(s).map_err(|_| bad())?;
    let text = std::str::from_utf8(&raw).map_err(|_| bad())?;
    let (at, id) = text.split_once(':').ok_or_else(bad)?;
    Ok(SearchCursor { created_at: Millis(at.parse().map_err(|_| bad())?), message_id: id.parse().map_err(|_| bad())? })
}

impl SearchParams {
    /// The service input of this query.
    ///
    /// # Errors
    /// A 400 problem for an unparseable instant or cursor.
    pub fn to_input(&self) -> Result<SearchMessages, Problem> {
        Ok(SearchMessages {
            text: self.q.clone(),
            conversation_id: self.conversation_id.map(Into::into),
            author_id: self.author_id.map(Into::into),
            from: instant("from", self.from.as_deref())?,
            to: instant("to", self.to.as_deref())?,
            attachments: self
                .has_attachment
                .map(|a| if a { AttachmentFilter::With } else { AttachmentFilter::Without }),
            mentions: match self.mentions {
                Some(MentionsParam::Me) => MentionFilter::Searcher,
                None => MentionFilter::Anyone,
            },
            after: self.cursor.as_deref().map(decode_cursor).transpose()?,
            limit: self.limit.unwrap_or(DEFAULT_SEARCH_LIMIT),
        })
    }
}

fn snippet_dto(p: &SnippetPart) -> SnippetPartDto {
    SnippetPartDto { text: p.text.clone(), matched: p.matched }
}

fn hit_dto(h: &FoundMessage) -> SearchHitDto {
    let conversation: &Conversation = &h.conversation;
    SearchHitDto {
        message: MessageDto::from(&h.message),
        conversation: ConversationDto::from(conversation),
        snippet: h.snippet.iter().map(snippet_dto).collect(),
    }
}

impl From<&SearchResult> for SearchResultsDto {
    fn from(r: &SearchResult) -> Self {
        SearchResultsDto {
            results: r.hits.iter().map(hit_dto).collect(),
            next_cursor: r.next.as_ref().map(encode_cursor),
        }
    }
}

/// Searches the messages of the caller's conversations, newest first. Never returns a
/// message of a conversation the caller is not a member of, nor a deleted one; an edited
/// message is found by its current text. Changes are searchable within about a second.
#[utoipa::path(get, path = "/api/v1/search", tag = "search", security(("bearer" = [])),
    params(SearchParams),
    responses(
        (status = 200, description = "A page of hits, newest first", body = SearchResultsDto),
        (status = 400, description = "A malformed parameter (instant, cursor, id)", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "A blank query, one without words, too long (512 bytes) or with too many words (16), none without mentions=me, a limit outside 1..=100, or `to` not after `from`",
            body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The search engine is unavailable", body = Problem,
            content_type = "application/problem+json")))]
pub async fn search_messages(
    State(s): State<AppState>,
    Actor(actor): Actor,
    ApiQuery(q): ApiQuery<SearchParams>,
) -> ApiResult<ApiJson<SearchResultsDto>> {
    let result = s.service.search(actor, q.to_input()?).await?;
    Ok(ApiJson(SearchResultsDto::from(&result)))
}

/// The search route.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(search_messages))
}
