//! The OpenAPI document's frame (info, security scheme, shared schemas) and the
//! completion step that documents every operation's error responses with the `Problem`
//! schema, refines the schemas ([`super::openapi_refine`]) and adds the response links
//! ([`super::openapi_links`]).

use utoipa::OpenApi;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::Response;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr};

use super::model::auth::OAuthErrorResponse;
use super::problem::{PROBLEM_JSON, Problem};

#[derive(OpenApi)]
#[openapi(
    info(title = "chat-sys REST API", description = "Channels, DMs, messages, reactions, pins, receipts and catch-up of chat-sys. Errors are RFC 9457 problem bodies."),
    components(schemas(Problem, OAuthErrorResponse)),
    tags(
        (name = "auth", description = "Registration, login, tokens (OAuth2, JWKS)"),
        (name = "users", description = "Users"),
        (name = "conversations", description = "Channels, DMs, group DMs, members, acks, events"),
        (name = "messages", description = "Messages, edits, threads"),
        (name = "reactions", description = "Reactions"),
        (name = "pins", description = "Pins"),
        (name = "attachments", description = "File uploads and downloads (members only)"),
        (name = "search", description = "Full-text search over the caller's conversations"),
        (name = "health", description = "Liveness and readiness"),
        (name = "meta", description = "This document")
    )
)]
struct ApiDoc;

/// The frame the routes are added to.
pub(super) fn base() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
    );
    components.add_security_scheme(
        "accessTokenCookie",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("accessToken"))),
    );
    doc
}

fn string_schema() -> RefOr<utoipa::openapi::schema::Schema> {
    ObjectBuilder::new().schema_type(Type::String).into()
}

/// A problem response of `status`.
fn problem_response(status: u16, description: &str) -> Response {
    let mut r = Response::new(description);
    r.content.insert(PROBLEM_JSON.to_string(), RefOr::T(Content::new(Some(Ref::from_schema_name("Problem")))));
    match status {
        401 => {
            r.headers.insert(
                "WWW-Authenticate".into(),
                HeaderBuilder::new().schema(Some(string_schema())).description(Some("`Bearer`")).build().into(),
            );
        }
        429 => {
            r.headers.insert(
                "Retry-After".into(),
                HeaderBuilder::new()
                    .schema(Some(string_schema()))
                    .description(Some("Seconds until the request will be accepted"))
                    .build()
                    .into(),
            );
        }
        _ => {}
    }
    r
}

fn describe(status: u16) -> &'static str {
    match status {
        400 => "Malformed request: bad JSON syntax, path parameter or query string",
        401 => "Missing, invalid or expired access token",
        403 => "Not allowed (e.g. not a member of a public channel, not the author or an owner, a service token)",
        404 => "Not found, or invisible to the caller",
        409 => "Conflicts with the current state",
        413 => "Request body too large",
        415 => "Content type is not application/json",
        422 => "Well-formed but invalid input (the `field` names it)",
        429 => "Rate limited or slow mode (`retryAfterMs`, `Retry-After`)",
        500 => "Unexpected error (logged)",
        503 => "A dependency (the database) is unavailable",
        _ => "Error",
    }
}

/// The error statuses an operation can answer, derived from what it takes.
fn error_statuses(path: &str, method: &str, op: &Operation) -> Vec<u16> {
    if path == "/oauth2/token" {
        return Vec::new();
    }
    let mut s = vec![500];
    let has_body = op.request_body.is_some();
    let has_params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let secured = op.security.as_ref().is_some_and(|v| !v.is_empty());
    let service_backed = path.starts_with("/api/v1/") || path.starts_with("/auth/");
    if has_body || has_params {
        s.push(400);
    }
    if has_body {
        s.extend([413, 415, 422]);
    }
    if secured {
        s.extend([401, 403]);
    }
    if service_backed {
        s.extend([404, 422, 503]);
        if method != "get" {
            s.extend([409, 429]);
        }
    }
    if path == "/readyz" {
        s.push(503);
    }
    s.sort_unstable();
    s.dedup();
    s
}

/// Adds the problem responses to every operation (keeping those the handler declared), the
/// schema refinements and the response links.
pub(super) fn finish(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    super::openapi_refine::apply(&mut doc);
    super::openapi_links::add(&mut doc);
    for (path, item) in doc.paths.paths.iter_mut() {
        let ops = [
            ("get", &mut item.get),
            ("put", &mut item.put),
            ("post", &mut item.post),
            ("delete", &mut item.delete),
            ("patch", &mut item.patch),
        ];
        for (method, op) in ops {
            let Some(op) = op.as_mut() else { continue };
            for status in error_statuses(path, method, op) {
                op.responses
                    .responses
                    .entry(status.to_string())
                    .or_insert_with(|| RefOr::T(problem_response(status, describe(status))));
            }
        }
    }
    doc
}
