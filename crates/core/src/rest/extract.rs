//! Extractors whose rejections are problem bodies: JSON bodies ([`ApiJson`]), path
//! parameters ([`PathParams`]), query strings ([`ApiQuery`]) and the authenticated caller
//! ([`Actor`], [`Caller`]).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chat_auth::{Principal, Subject};
use chat_domain::UserId;
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::AppState;
use super::problem::Problem;

/// The name of the access token cookie set at login (seed compatible).
pub const ACCESS_COOKIE: &str = "accessToken";
/// The name of the refresh token cookie set at login (seed compatible).
pub const REFRESH_COOKIE: &str = "refreshToken";

/// A JSON request body (`application/json` or `application/*+json`) deserialized strictly;
/// also a JSON response. Rejections: 415 wrong/missing content type, 413 body too large,
/// 400 malformed JSON, 422 well-formed but wrong shape (unknown/missing field, wrong type),
/// naming the field.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

fn is_json_content_type(parts: &axum::http::HeaderMap) -> bool {
    let Some(ct) = parts.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Deserializes JSON naming the failing field on error.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return Problem::new(StatusCode::BAD_REQUEST, "malformed-json", format!("malformed JSON: {inner}"));
        }
        let field = field_of(&path, &inner.to_string());
        Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-body", format!("invalid request body: {inner}"))
            .with_field(field)
    })?;
    de.end().map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "malformed-json", format!("malformed JSON: {e}")))?;
    Ok(value)
}

/// The field an error is about: the path, refined by a back-quoted name in serde's
/// `unknown field` / `missing field` messages (reported at the parent's path).
fn field_of(path: &str, message: &str) -> String {
    let named = ["unknown field `", "missing field `"].iter().find_map(|prefix| {
        let rest = message.split(prefix).nth(1)?;
        rest.split('`').next().map(str::to_string)
    });
    match named {
        Some(n) if path == "." => n,
        Some(n) if path == n || path.ends_with(&format!(".{n}")) => path.to_string(),
        Some(n) => format!("{path}.{n}"),
        None => path.to_string(),
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json_content_type(req.headers()) {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "expected a request body with content-type application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rej| {
            if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large", "request body too large")
            } else {
                Problem::bad_request(format!("could not read the request body: {rej}"))
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// A query string deserialized strictly; 400 naming the parameter on error.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de).map(ApiQuery).map_err(|e| {
            let path = e.path().to_string();
            let msg = e.into_inner().to_string();
            Problem::new(StatusCode::BAD_REQUEST, "invalid-query", format!("invalid query string: {msg}"))
                .with_field(field_of(&path, &msg))
        })
    }
}

/// The route's path parameters, percent-decoded; parse them with [`PathParams::id`] and
/// [`PathParams::text`] so a bad value is a 400 problem naming the parameter.
#[derive(Debug, Clone, Default)]
pub struct PathParams(Vec<(String, String)>);

impl PathParams {
    /// A UUID parameter as a typed id.
    ///
    /// # Errors
    /// 400 problem naming the parameter when it is missing or not a UUID.
    pub fn id<T: From<Uuid>>(&self, name: &str) -> Result<T, Problem> {
        let raw = self.text(name)?;
        Uuid::parse_str(raw).map(T::from).map_err(|_| {
            Problem::new(StatusCode::BAD_REQUEST, "invalid-path", format!("path parameter {name} must be a UUID"))
                .with_field(name)
        })
    }

    /// A text parameter.
    ///
    /// # Errors
    /// 400 problem when missing (a routing bug).
    pub fn text(&self, name: &str) -> Result<&str, Problem> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| Problem::bad_request(format!("missing path parameter {name}")).with_field(name))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PathParams {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let raw = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "invalid-path", format!("invalid path: {e}")))?;
        Ok(PathParams(raw.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()))
    }
}

/// The bearer token of a request: `Authorization: Bearer <jwt>`, else — for safe methods
/// only (GET, HEAD) — the `accessToken` cookie. A browser attaches cookies to cross-site
/// form posts, so a state-changing request authenticated by the cookie alone would be
/// forgeable (CSRF); those need the header, which no other site can set.
pub(crate) fn bearer_token(parts: &Parts) -> Option<String> {
    if let Some(auth) = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let (scheme, token) = auth.split_once(' ').unwrap_or((auth, ""));
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string());
    }
    if parts.method == axum::http::Method::GET || parts.method == axum::http::Method::HEAD {
        cookie_value(&parts.headers, ACCESS_COOKIE)
    } else {
        None
    }
}

/// The value of a cookie in the request's `Cookie` headers.
pub(crate) fn cookie_value(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == name).then(|| v.trim_matches('"').to_string())
    })
}

/// Any authenticated principal (user or service); 401 problem otherwise.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = bearer_token(parts)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Problem::unauthenticated("missing bearer token"))?;
        state.auth.verify_access_token(&token).map(Caller).map_err(Problem::from)
    }
}

/// The authenticated user acting on a user endpoint: 401 without a valid token, 403 for a
/// service principal. The actor of every operation is the token's subject, never a body field.
#[derive(Debug, Clone, Copy)]
pub struct Actor(pub UserId);

impl FromRequestParts<AppState> for Actor {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Caller(principal) = Caller::from_request_parts(parts, state).await?;
        match principal.subject {
            Subject::User(id) => Ok(Actor(id)),
            Subject::Service { .. } => Err(Problem::forbidden("service principals may not use user endpoints")),
        }
    }
}
