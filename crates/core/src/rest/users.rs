//! `/api/v1/users`: the caller, a user by id, and username prefix search.

use axum::extract::State;
use chat_domain::UserId;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::extract::{Actor, ApiJson, ApiQuery, PathParams};
use super::model::request::{DEFAULT_LIMIT, UserSearchQuery};
use super::model::{UserDto, list};
use super::problem::ApiResult;

/// The authenticated user.
#[utoipa::path(get, path = "/api/v1/users/me", tag = "users", security(("bearer" = [])),
    responses((status = 200, description = "The caller", body = UserDto)))]
pub async fn me(State(s): State<AppState>, Actor(actor): Actor) -> ApiResult<ApiJson<UserDto>> {
    Ok(ApiJson((&s.service.me(actor).await?).into()))
}

/// A user of the caller's workspace.
#[utoipa::path(get, path = "/api/v1/users/{userId}", tag = "users", security(("bearer" = [])),
    params(("userId" = Uuid, Path, description = "User id")),
    responses((status = 200, description = "The user", body = UserDto)))]
pub async fn user(State(s): State<AppState>, Actor(actor): Actor, p: PathParams) -> ApiResult<ApiJson<UserDto>> {
    let id: UserId = p.id("userId")?;
    Ok(ApiJson((&s.service.user(actor, id).await?).into()))
}

/// Users of the caller's workspace whose username starts with `prefix`, by username.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", security(("bearer" = [])),
    params(UserSearchQuery),
    responses((status = 200, description = "Matching users", body = Vec<UserDto>)))]
pub async fn search(
    State(s): State<AppState>,
    Actor(actor): Actor,
    ApiQuery(q): ApiQuery<UserSearchQuery>,
) -> ApiResult<ApiJson<Vec<UserDto>>> {
    let users = s.service.find_users(actor, &q.prefix, q.limit.unwrap_or(DEFAULT_LIMIT)).await?;
    Ok(ApiJson(list(&users)))
}

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(me)).routes(routes!(user)).routes(routes!(search))
}
