//! Messages: send and list (under a conversation), read, edit, delete, versions, thread
//! replies, reactions and pins.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use chat_domain::{ConversationId, MessageId};
use chat_storage::SendOutcome;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::extract::{Actor, ApiJson, ApiQuery, PathParams};
use super::model::request::{AfterSeqQuery, EditMessageRequest, MessagesQuery, SendMessageRequest};
use super::model::{MessageDto, MessageVersionDto, PinDto, ReactionDto, list};
use super::problem::ApiResult;

/// Sends a message. 201 when stored now; 200 with the original message when `clientMsgId`
/// was already used by the caller in this conversation (idempotent retry).
#[utoipa::path(post, path = "/api/v1/conversations/{id}/messages", tag = "messages", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id")),
    request_body = SendMessageRequest,
    responses(
        (status = 201, description = "Stored", body = MessageDto,
            headers(("Location" = String, description = "URL of the message"))),
        (status = 200, description = "Duplicate of an earlier send: the original message", body = MessageDto)))]
pub async fn send(
    State(s): State<AppState>,
    Actor(actor): Actor,
    p: PathParams,
    ApiJson(req): ApiJson<SendMessageRequest>,
) -> ApiResult<(StatusCode, HeaderMap, ApiJson<MessageDto>)> {
    let conv: ConversationId = p.id("id")?;
    let outcome = s.service.send(actor, req.into_send(conv)).await?;
    let dto = MessageDto::from(outcome.message());
    let mut headers = HeaderMap::new();
    let status = match outcome {
        SendOutcome::Created { .. } => {
            if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/messages/{}", dto.message_id)) {
                headers.insert(header::LOCATION, v);
            }
            StatusCode::CREATED
        }
        SendOutcome::Duplicate { .. } => StatusCode::OK,
    };
    Ok((status, headers, ApiJson(dto)))
}

/// Messages in the window `afterSeq < serverSeq < beforeSeq`, ascending; without `afterSeq`
/// the newest of the window.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/messages", tag = "messages", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id"), MessagesQuery),
    responses((status = 200, description = "Messages in seq order", body = Vec<MessageDto>)))]
pub async fn history(
    State(s): State<AppState>,
    Actor(actor): Actor,
    p: PathParams,
    ApiQuery(q): ApiQuery<MessagesQuery>,
) -> ApiResult<ApiJson<Vec<MessageDto>>> {
    let conv: ConversationId = p.id("id")?;
    Ok(ApiJson(list(&s.service.messages(actor, conv, (&q).into()).await?)))
}

/// A message.
#[utoipa::path(get, path = "/api/v1/messages/{id}", tag = "messages", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Message id")),
    responses((status = 200, description = "The message", body = MessageDto)))]
pub async fn get_message(
    State(s): State<AppState>,
    Actor(actor): Actor,
    p: PathParams,
) -> ApiResult<ApiJson<MessageDto>> {
    let id: MessageId = p.id("id")?;
    Ok(ApiJson((&s.service.message(actor, id).await?).into()))
}

/// Edits the text of the caller's own message (the old text is kept as a version).
#[utoipa::path(patch, path = "/api/v1/messages/{id}", tag = "messages", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Message id")),
    request_body = EditMessageRequest,
    responses((status = 200, description = "The edited message", body = MessageDto)))]
pub async fn edit(
    State(s): State<AppState>,
    Actor(actor): Actor,
    p: PathParams,
    ApiJson(req): ApiJson<EditMessageRequest>,
) -> ApiResult<ApiJson<MessageDto>> {
    let id: MessageId = p.id("id")?;
    Ok(ApiJson((&s.service.edit_message(actor, id, req.text).await?).into()))
}

/// Deletes a message (its author, or an owner): returns the tombstone.
#[utoipa::path(delete, path = "/api/v1/messages/{id}", tag = "messages", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Message id")),
    responses((status = 200, description = "The tombstone", body = MessageDto)))]
pub async fn delete(State(s): State<AppState>, Actor(actor): Actor, p: PathParams) -> ApiResult<ApiJson<MessageDto>> {
    let id: MessageId = p.id("id")?;
    Ok(ApiJson((&s.service.delete_message(actor, id).await?).into()))
}

/// Edit history of a message, oldest first.
#[utoipa::path(get, path = "/api/v1/messages/{id}/versions", tag = "messages", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Message id")),
    responses((status = 200, description = "Previous texts", body = Vec<MessageVersionDto>)))]
pub async fn versions(
    State(s): State<AppState>,
    Actor(actor): Actor,
    p: PathParams,
) -> ApiResult<ApiJson<Vec<MessageVersionDto>>> {
    let id: MessageId = p.id("id")?;
    Ok(ApiJson(list(&s.service.versions(actor, id).await?)))
}

/// Thread replies of a root message with `serverSeq > afterSeq`, ascending.
#[utoipa::path(get, path = "/api/v1/messages/{id}/replies", tag = "messages", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Thread root message id"), AfterSeqQuery),
    responses((status = 200, description = "Replies in seq order", body = Vec<MessageDto>)))]
pub async fn replies(
    State(s): State<AppState>,
    Actor(actor): Actor,
    p: PathParams,
    ApiQuery(q): ApiQuery<AfterSeqQuery>,
) -> ApiResult<ApiJson<Vec<MessageDto>>> {
    let id: MessageId = p.id("id")?;
    Ok(ApiJson(list(&s.service.thread_replies(actor, id, q.window()).await?)))
}

/// Adds the caller's reaction (idempotent).
#[utoipa::path(put, path = "/api/v1/messages/{id}/reactions/{emoji}", tag = "reactions", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Message id"),
        ("emoji" = String, Path, description = "Emoji (1..=64 bytes), percent-encoded", min_length = 1, max_length = 64)),
    responses((status = 204, description = "Reacted")))]
pub async fn react(State(s): State<AppState>, Actor(actor): Actor, p: PathParams) -> ApiResult<StatusCode> {
    let id: MessageId = p.id("id")?;
    s.service.add_reaction(actor, id, p.text("emoji")?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes the caller's reaction (idempotent).
#[utoipa::path(delete, path = "/api/v1/messages/{id}/reactions/{emoji}", tag = "reactions",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Message id"),
        ("emoji" = String, Path, description = "Emoji (1..=64 bytes), percent-encoded", min_length = 1, max_length = 64)),
    responses((status = 204, description = "Reaction removed")))]
pub async fn unreact(State(s): State<AppState>, Actor(actor): Actor, p: PathParams) -> ApiResult<StatusCode> {
    let id: MessageId = p.id("id")?;
    s.service.remove_reaction(actor, id, p.text("emoji")?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Reactions of a message, oldest first.
#[utoipa::path(get, path = "/api/v1/messages/{id}/reactions", tag = "reactions", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Message id")),
    responses((status = 200, description = "Reactions", body = Vec<ReactionDto>)))]
pub async fn reactions(
    State(s): State<AppState>,
    Actor(actor): Actor,
    p: PathParams,
) -> ApiResult<ApiJson<Vec<ReactionDto>>> {
    let id: MessageId = p.id("id")?;
    Ok(ApiJson(list(&s.service.reactions(actor, id).await?)))
}

/// Pins a message (idempotent).
#[utoipa::path(put, path = "/api/v1/messages/{id}/pin", tag = "pins", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Message id")),
    responses((status = 204, description = "Pinned")))]
pub async fn pin(State(s): State<AppState>, Actor(actor): Actor, p: PathParams) -> ApiResult<StatusCode> {
    let id: MessageId = p.id("id")?;
    s.service.pin(actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Unpins a message (idempotent).
#[utoipa::path(delete, path = "/api/v1/messages/{id}/pin", tag = "pins", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Message id")),
    responses((status = 204, description = "Unpinned")))]
pub async fn unpin(State(s): State<AppState>, Actor(actor): Actor, p: PathParams) -> ApiResult<StatusCode> {
    let id: MessageId = p.id("id")?;
    s.service.unpin(actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Pins of a conversation, newest first.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/pins", tag = "pins", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id")),
    responses((status = 200, description = "Pins", body = Vec<PinDto>)))]
pub async fn pins(State(s): State<AppState>, Actor(actor): Actor, p: PathParams) -> ApiResult<ApiJson<Vec<PinDto>>> {
    let id: ConversationId = p.id("id")?;
    Ok(ApiJson(list(&s.service.pins(actor, id).await?)))
}

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(send, history))
        .routes(routes!(get_message, edit, delete))
        .routes(routes!(versions))
        .routes(routes!(replies))
        .routes(routes!(react, unreact))
        .routes(routes!(reactions))
        .routes(routes!(pin, unpin))
        .routes(routes!(pins))
}
