//! The REST interface of the core service (`/api/v1`, authentication, health, OpenAPI).
//!
//! Entry points: [`AppState`], [`router`], [`openapi`] and [`serve`]. Handlers only
//! authenticate (the [`extract::Actor`] extractor), convert API models ([`model`]) and call
//! [`ChatService`], which authorizes; every error is an RFC 9457 problem ([`problem`]).
//! Conventions: camelCase JSON, ISO-8601 UTC instants, UUID ids, unknown body fields
//! rejected, 1 MiB request body limit.

pub mod attachments;
pub mod auth;
pub mod conversations;
pub mod cors;
pub mod extract;
pub mod health;
pub mod messages;
pub mod model;
mod openapi_doc;
mod openapi_links;
mod openapi_refine;
pub mod presence;
pub mod problem;
pub mod search;
pub mod users;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use chat_auth::Authenticator;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;

use crate::service::ChatService;

/// Maximum request body size (1 MiB); larger bodies get a 413 problem.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A readiness probe: `Ok` when the dependencies (the database) are reachable.
pub type ReadinessProbe =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync + 'static>;

/// What every handler shares: the domain service, the authenticator and the readiness probe.
#[derive(Clone)]
pub struct AppState {
    /// The core service (authorizes every operation).
    pub service: ChatService,
    /// Token issuing and verification.
    pub auth: Arc<Authenticator>,
    /// Readiness probe of `/readyz`.
    pub readiness: ReadinessProbe,
    /// Cross-origin policy (default: any origin, no credentials; see [`cors`]).
    pub cors: cors::CorsPolicy,
}

impl AppState {
    /// State with the default readiness probe: a one-row query through the service's store
    /// (fails when the database is unreachable).
    pub fn new(service: ChatService, auth: Authenticator) -> Self {
        let store = service.store().clone();
        let readiness: ReadinessProbe = Arc::new(move || {
            let store = store.clone();
            Box::pin(async move { store.signing_key().await.map(|_| ()).map_err(|e| e.to_string()) })
        });
        AppState { service, auth: Arc::new(auth), readiness, cors: cors::CorsPolicy::default() }
    }

    /// Replaces the readiness probe (e.g. with `SqlStore::ping`).
    pub fn with_readiness(mut self, probe: ReadinessProbe) -> Self {
        self.readiness = probe;
        self
    }

    /// Replaces the cross-origin policy (e.g. `CorsPolicy::from_list(&config_origins)?`).
    pub fn with_cors(mut self, policy: cors::CorsPolicy) -> Self {
        self.cors = policy;
        self
    }
}

/// All documented routes, collected with their OpenAPI operations.
fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi_doc::base())
        .merge(auth::routes())
        .merge(users::routes())
        .merge(conversations::routes())
        .merge(messages::routes())
        .merge(attachments::routes())
        .merge(search::routes())
        .merge(presence::routes())
        .merge(health::routes())
}

/// The OpenAPI 3.1 document of the REST API, generated from the handlers; every operation
/// lists its success and error responses (errors with the `Problem` schema), the schemas
/// state what the server validates, and response links lead from created resources to the
/// operations that take their ids.
pub fn openapi() -> utoipa::openapi::OpenApi {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(|| openapi_doc::finish(api_router().into_openapi())).clone()
}

/// The REST router with its state: every route of [`openapi`], a 404 problem fallback, the
/// body limit, panics caught as 500, the mapping of any remaining non-problem error
/// response to a problem, request tracing, and the CORS policy ([`AppState::cors`]) outside
/// everything (so error responses carry it too).
pub fn router(state: AppState) -> Router {
    let (routes, _) = api_router().split_for_parts();
    let cors = state.cors.layer();
    let routes = routes
        .fallback(problem::not_found_fallback)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(CatchPanicLayer::new())
        .layer(axum::middleware::map_response(problem::problemize))
        .layer(TraceLayer::new_for_http());
    match cors {
        Some(cors) => routes.layer(cors).with_state(state),
        None => routes.with_state(state),
    }
}

/// Serves [`router`] on `listener` until `shutdown` completes, then drains in-flight
/// requests (graceful shutdown).
///
/// # Errors
/// I/O errors of the listener.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}
