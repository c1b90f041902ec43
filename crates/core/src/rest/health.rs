//! Health endpoints (`/healthz`, `/readyz`, seed-style `/actuator/health`) and the OpenAPI
//! document (`/openapi.json`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::problem::{ApiResult, Problem};

/// A health status, `{"status": "UP"}` (Spring Boot actuator style).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct HealthStatus {
    /// `UP`.
    pub status: String,
}

fn up() -> Json<HealthStatus> {
    Json(HealthStatus { status: "UP".into() })
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "Alive", body = HealthStatus)))]
pub async fn healthz() -> Json<HealthStatus> {
    up()
}

/// Readiness: the database is reachable.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, description = "Ready", body = HealthStatus)))]
pub async fn readyz(State(state): State<AppState>) -> ApiResult<Json<HealthStatus>> {
    match (state.readiness)().await {
        Ok(()) => Ok(up()),
        Err(why) => {
            tracing::warn!(error = %why, "readiness probe failed");
            Err(Problem::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the database is unreachable").into())
        }
    }
}

/// Seed-compatible health (`{"status":"UP"}`).
#[utoipa::path(get, path = "/actuator/health", tag = "health",
    responses((status = 200, description = "Alive", body = HealthStatus)))]
pub async fn actuator_health() -> Json<HealthStatus> {
    up()
}

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(get, path = "/openapi.json", tag = "meta",
    responses((status = 200, description = "OpenAPI 3.1 document", body = Object)))]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(super::openapi())
}

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(actuator_health))
        .routes(routes!(openapi_json))
}
