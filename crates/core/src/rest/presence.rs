//! Presence over REST: one user's, or every member's of a conversation. Presence is
//! ephemeral (from the connection registry, see `service::presence`); live changes are
//! pushed over STOMP as `PRESENCE` signals.

use axum::extract::State;
use chat_domain::{ConversationId, UserId};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::extract::{Actor, ApiJson, PathParams};
use super::model::list;
use super::model::presence::PresenceDto;
use super::problem::ApiResult;

/// Presence of a user of the caller's workspace. 503 when presence is not enabled.
#[utoipa::path(get, path = "/api/v1/users/{userId}/presence", tag = "users", security(("bearer" = [])),
    params(("userId" = Uuid, Path, description = "User id")),
    responses((status = 200, description = "The user's presence", body = PresenceDto)))]
pub async fn user_presence(
    State(s): State<AppState>,
    Actor(actor): Actor,
    p: PathParams,
) -> ApiResult<ApiJson<PresenceDto>> {
    let id: UserId = p.id("userId")?;
    Ok(ApiJson((&s.service.presence(actor, id).await?).into()))
}

/// Presence of every member of a conversation, by join time (members only).
#[utoipa::path(get, path = "/api/v1/conversations/{id}/presence", tag = "conversations", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id")),
    responses((status = 200, description = "Members' presence", body = Vec<PresenceDto>)))]
pub async fn members_presence(
    State(s): State<AppState>,
    Actor(actor): Actor,
    p: PathParams,
) -> ApiResult<ApiJson<Vec<PresenceDto>>> {
    let id: ConversationId = p.id("id")?;
    Ok(ApiJson(list(&s.service.members_presence(actor, id).await?)))
}

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(user_presence)).routes(routes!(members_presence))
}
