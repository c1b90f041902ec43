//! `/api/v1/conversations`: create (channel, DM, group DM), list mine (the catch-up
//! summary), public channels, read, update, join, leave, members, acks and events.

use axum::extract::State;
use axum::http::StatusCode;
use chat_domain::{ConversationId, DomainError, UserId};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::extract::{Actor, ApiJson, ApiQuery, PathParams};
use super::model::request::{
    AckRequest, AddMemberRequest, AfterSeqQuery, CreateConversationRequest, PatchConversationRequest,
};
use super::model::{ConversationDto, ConversationSummaryDto, ConversationType, EventDto, MemberDto, list};
use super::problem::ApiResult;

/// Creates a channel, or opens (creates if needed) a DM or group DM. 201 when created,
/// 200 when the DM or group DM already existed.
#[utoipa::path(post, path = "/api/v1/conversations", tag = "conversations", security(("bearer" = [])),
    request_body = CreateConversationRequest,
    responses(
        (status = 201, description = "Created", body = ConversationDto),
        (status = 200, description = "The existing DM or group DM", body = ConversationDto)))]
pub async fn create(
    State(s): State<AppState>,
    Actor(actor): Actor,
    ApiJson(req): ApiJson<CreateConversationRequest>,
) -> ApiResult<(StatusCode, ApiJson<ConversationDto>)> {
    if req.kind != ConversationType::Channel {
        // DMs and group DMs are private, unnamed and use default settings: refuse what would
        // otherwise be silently ignored.
        let refused = [
            ("name", req.name.is_some()),
            ("topic", req.topic.is_some()),
            ("isPrivate", req.is_private == Some(false)),
            ("settings", req.settings.is_some()),
        ];
        if let Some((field, _)) = refused.into_iter().find(|(_, set)| *set) {
            return Err(DomainError::invalid(field, "not accepted for a DM or group DM (private, unnamed)").into());
        }
    }
    let (conv, created) = match req.kind {
        ConversationType::Channel => (s.service.create_channel(actor, req.channel()).await?, true),
        ConversationType::Dm => {
            let [other] = req.member_ids.as_slice() else {
                return Err(DomainError::invalid("memberIds", "a DM needs exactly one other member").into());
            };
            s.service.open_dm(actor, UserId::from(*other)).await?
        }
        ConversationType::GroupDm => {
            let members = req.member_ids.iter().copied().map(UserId::from).collect();
            s.service.create_group_dm(actor, members).await?
        }
    };
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, ApiJson((&conv).into())))
}

/// The caller's conversations with `lastSeq`, read positions and unread/mention counts,
/// most recently active first (the catch-up summary).
#[utoipa::path(get, path = "/api/v1/conversations", tag = "conversations", security(("bearer" = [])),
    responses((status = 200, description = "My conversations", body = Vec<ConversationSummaryDto>)))]
pub async fn mine(State(s): State<AppState>, Actor(actor): Actor) -> ApiResult<ApiJson<Vec<ConversationSummaryDto>>> {
    Ok(ApiJson(list(&s.service.conversations(actor).await?)))
}

/// Public channels of the caller's workspace, by name.
#[utoipa::path(get, path = "/api/v1/conversations/public", tag = "conversations", security(("bearer" = [])),
    responses((status = 200, description = "Public channels", body = Vec<ConversationDto>)))]
pub async fn public(State(s): State<AppState>, Actor(actor): Actor) -> ApiResult<ApiJson<Vec<ConversationDto>>> {
    Ok(ApiJson(list(&s.service.public_channels(actor).await?)))
}

/// A conversation (members, or anyone in the workspace for public channels).
#[utoipa::path(get, path = "/api/v1/conversations/{id}", tag = "conversations", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id")),
    responses((status = 200, description = "The conversation", body = ConversationDto)))]
pub async fn get_conversation(
    State(s): State<AppState>,
    Actor(actor): Actor,
    p: PathParams,
) -> ApiResult<ApiJson<ConversationDto>> {
    let id: ConversationId = p.id("id")?;
    Ok(ApiJson((&s.service.conversation(actor, id).await?).into()))
}

/// Renames, changes topic, privacy or settings (owners).
#[utoipa::path(patch, path = "/api/v1/conversations/{id}", tag = "conversations", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id")),
    request_body = PatchConversationRequest,
    responses((status = 200, description = "The updated conversation", body = ConversationDto)))]
pub async fn update(
    State(s): State<AppState>,
    Actor(actor): Actor,
    p: PathParams,
    ApiJson(req): ApiJson<PatchConversationRequest>,
) -> ApiResult<ApiJson<ConversationDto>> {
    let id: ConversationId = p.id("id")?;
    Ok(ApiJson((&s.service.update_conversation(actor, id, req.into()).await?).into()))
}

/// Joins a public channel.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/join", tag = "conversations", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id")),
    responses((status = 200, description = "Joined; the conversation", body = ConversationDto)))]
pub async fn join(
    State(s): State<AppState>,
    Actor(actor): Actor,
    p: PathParams,
) -> ApiResult<ApiJson<ConversationDto>> {
    let id: ConversationId = p.id("id")?;
    Ok(ApiJson((&s.service.join(actor, id).await?).into()))
}

/// Leaves a channel.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/leave", tag = "conversations", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id")),
    responses((status = 204, description = "Left")))]
pub async fn leave(State(s): State<AppState>, Actor(actor): Actor, p: PathParams) -> ApiResult<StatusCode> {
    let id: ConversationId = p.id("id")?;
    s.service.leave(actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Members of a conversation with their read positions (members only).
#[utoipa::path(get, path = "/api/v1/conversations/{id}/members", tag = "conversations", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id")),
    responses((status = 200, description = "Members, by join time", body = Vec<MemberDto>)))]
pub async fn members(
    State(s): State<AppState>,
    Actor(actor): Actor,
    p: PathParams,
) -> ApiResult<ApiJson<Vec<MemberDto>>> {
    let id: ConversationId = p.id("id")?;
    Ok(ApiJson(list(&s.service.members(actor, id).await?)))
}

/// Adds a member to a channel (owners).
#[utoipa::path(post, path = "/api/v1/conversations/{id}/members", tag = "conversations", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id")),
    request_body = AddMemberRequest,
    responses((status = 201, description = "Added", body = MemberDto)))]
pub async fn add_member(
    State(s): State<AppState>,
    Actor(actor): Actor,
    p: PathParams,
    ApiJson(req): ApiJson<AddMemberRequest>,
) -> ApiResult<(StatusCode, ApiJson<MemberDto>)> {
    let id: ConversationId = p.id("id")?;
    let member = s.service.add_member(actor, id, UserId::from(req.user_id)).await?;
    Ok((StatusCode::CREATED, ApiJson((&member).into())))
}

/// Removes a member (owners; anyone may remove themselves).
#[utoipa::path(delete, path = "/api/v1/conversations/{id}/members/{userId}", tag = "conversations",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id"), ("userId" = Uuid, Path, description = "Member")),
    responses((status = 204, description = "Removed")))]
pub async fn remove_member(State(s): State<AppState>, Actor(actor): Actor, p: PathParams) -> ApiResult<StatusCode> {
    let id: ConversationId = p.id("id")?;
    let user: UserId = p.id("userId")?;
    s.service.remove_member(actor, id, user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Raises the caller's delivered and/or seen positions; returns them.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/ack", tag = "conversations", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id")),
    request_body = AckRequest,
    responses((status = 200, description = "The caller's positions after the ack", body = MemberDto)))]
pub async fn ack(
    State(s): State<AppState>,
    Actor(actor): Actor,
    p: PathParams,
    ApiJson(req): ApiJson<AckRequest>,
) -> ApiResult<ApiJson<MemberDto>> {
    let id: ConversationId = p.id("id")?;
    Ok(ApiJson((&s.service.ack(actor, id, req.delivered_seq, req.seen_seq).await?).into()))
}

/// Events of the conversation's log with `seq > afterSeq`, in seq order (catch-up).
#[utoipa::path(get, path = "/api/v1/conversations/{id}/events", tag = "conversations", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id"), AfterSeqQuery),
    responses((status = 200, description = "Events in seq order", body = Vec<EventDto>)))]
pub async fn events(
    State(s): State<AppState>,
    Actor(actor): Actor,
    p: PathParams,
    ApiQuery(q): ApiQuery<AfterSeqQuery>,
) -> ApiResult<ApiJson<Vec<EventDto>>> {
    let id: ConversationId = p.id("id")?;
    let events = s.service.events_after(actor, id, q.after_seq.unwrap_or(0), q.limit()).await?;
    Ok(ApiJson(list(&events)))
}

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, mine))
        .routes(routes!(public))
        .routes(routes!(get_conversation, update))
        .routes(routes!(join))
        .routes(routes!(leave))
        .routes(routes!(members, add_member))
        .routes(routes!(remove_member))
        .routes(routes!(ack))
        .routes(routes!(events))
}
