//! RFC 9457 problem details: the one error body of the REST API.
//!
//! Every error answer under `/api/v1` (and the auth, health and fallback routes) is an
//! `application/problem+json` body built here: domain errors, authentication failures, and
//! axum's own rejections (mapped by the extractors in [`super::extract`] and, as a last
//! resort, by [`problemize`]). The one exception is `POST /oauth2/token`, which answers
//! RFC 6749 section 5.2 error JSON.

use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode, header};
use axum::response::IntoResponse;
use chat_domain::DomainError;
use serde::Serialize;
use utoipa::ToSchema;

/// The media type of problem bodies.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem details object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// A URI reference naming the problem type (`about:blank` or `urn:chat-sys:problem:<slug>`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Short, human-readable summary of the problem type.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// Explanation specific to this occurrence.
    pub detail: String,
    /// The offending input field (camelCase), for invalid input.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Milliseconds until the request will be accepted, for 429.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

impl Problem {
    /// A problem of the given status with a `urn:chat-sys:problem:<slug>` type.
    pub fn new(status: StatusCode, slug: &str, detail: impl Into<String>) -> Self {
        Problem {
            kind: format!("urn:chat-sys:problem:{slug}"),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            field: None,
            retry_after_ms: None,
        }
    }

    /// Sets the offending field.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// 400 for syntactically malformed input.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::BAD_REQUEST, "bad-request", detail)
    }

    /// 401 with the reason; the response carries `WWW-Authenticate: Bearer`.
    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::UNAUTHORIZED, "unauthenticated", detail)
    }

    /// 403.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::NOT_FOUND, "not-found", detail)
    }

    /// 422 for well-formed but invalid input.
    pub fn invalid(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", detail).with_field(field)
    }

    /// 500 with a generic detail (the cause is logged by the caller).
    pub fn internal() -> Self {
        Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "an unexpected error occurred; it has been logged")
    }

    /// The status as a [`StatusCode`].
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<DomainError> for Problem {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Unauthenticated(why) => Problem::unauthenticated(why),
            DomainError::Forbidden(why) => Problem::forbidden(why),
            DomainError::NotFound(what) => Problem::not_found(format!("{what} not found")),
            DomainError::Invalid { field, reason } => Problem::invalid(field, reason),
            DomainError::Conflict(why) => Problem::new(StatusCode::CONFLICT, "conflict", why),
            DomainError::RateLimited { reason, retry_after_ms } => {
                let mut p = Problem::new(StatusCode::TOO_MANY_REQUESTS, "rate-limited", reason);
                p.retry_after_ms = Some(retry_after_ms);
                p
            }
            DomainError::Unavailable(why) => {
                tracing::warn!(error = %why, "dependency unavailable");
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "a dependency is unavailable; retry later")
            }
            DomainError::Internal(why) => {
                tracing::error!(error = %why, "internal error");
                Problem::internal()
            }
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> axum::response::Response {
        let status = self.status_code();
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut res = Response::new(Body::from(body));
        *res.status_mut() = status;
        let h = res.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if status == StatusCode::UNAUTHORIZED {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(ms) = self.retry_after_ms {
            let secs = ms.div_ceil(1000).max(1);
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                h.insert(header::RETRY_AFTER, v);
            }
        }
        res
    }
}

/// The error type of every handler: a problem, convertible from [`DomainError`] and from
/// unexpected errors (logged, answered as a generic 500).
#[derive(Debug)]
pub struct ApiError(pub Problem);

impl From<Problem> for ApiError {
    fn from(p: Problem) -> Self {
        ApiError(p)
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        ApiError(e.into())
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        tracing::error!(error = format!("{e:#}"), "unexpected error");
        ApiError(Problem::internal())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> axum::response::Response {
        self.0.into_response()
    }
}

/// Result alias of handlers.
pub type ApiResult<T> = Result<T, ApiError>;

/// Last-resort response mapping: an error status whose body is not JSON (axum's 405, a
/// panic, a layer's plain-text rejection) is replaced by a problem of the same status, so
/// nothing answers `text/plain`. Headers such as `Allow` and `Retry-After` are kept.
pub async fn problemize(res: axum::response::Response) -> axum::response::Response {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with(PROBLEM_JSON) || ct.starts_with("application/json"));
    if is_json {
        return res;
    }
    let (parts, _) = res.into_parts();
    let (slug, detail) = match status {
        StatusCode::NOT_FOUND => ("not-found", "no such resource".to_string()),
        StatusCode::METHOD_NOT_ALLOWED => ("method-not-allowed", "method not allowed on this resource".to_string()),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload-too-large", "request body too large".to_string()),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported-media-type", "unsupported content type".to_string()),
        s if s.is_server_error() => ("internal", "an unexpected error occurred".to_string()),
        s => ("error", s.canonical_reason().unwrap_or("error").to_lowercase()),
    };
    let mut new = Problem::new(status, slug, detail).into_response();
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            new.headers_mut().insert(name.clone(), value.clone());
        }
    }
    new
}

/// The fallback of the router: a 404 problem for any unknown route.
pub async fn not_found_fallback(uri: axum::http::Uri) -> Problem {
    Problem::not_found(format!("no route for {}", uri.path()))
}
