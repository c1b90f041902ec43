//! Authentication endpoints: register, login (seed `POST /auth/login` and
//! `/api/v1/auth/login`, with HttpOnly cookies), refresh (rotation), logout, JWKS, OpenID
//! discovery and the OAuth2 token endpoint (RFC 6749; its errors are RFC 6749 JSON, not
//! problems).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use chat_auth::{OAuthError, TokenPair};
use chat_domain::{DomainError, WorkspaceId};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::extract::{ACCESS_COOKIE, Actor, ApiJson, REFRESH_COOKIE, cookie_value, parse_json};
use super::model::UserDto;
use super::model::auth::{LoginResponse, OAuthErrorResponse, OAuthTokenRequest, OAuthTokenResponse};
use super::model::request::{LoginRequest, RefreshRequest, RegisterRequest};
use super::problem::{ApiResult, Problem};

/// Maps an authentication failure to a problem (bad credentials and bad tokens are 401).
fn auth_problem(e: impl Into<DomainError>) -> Problem {
    e.into().into()
}

fn set_cookie(headers: &mut HeaderMap, name: &str, value: &str, max_age: Option<i64>) {
    let mut c = format!("{name}={value}; HttpOnly; SameSite=Lax; Path=/");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if let Ok(v) = HeaderValue::from_str(&c) {
        headers.append(header::SET_COOKIE, v);
    }
}

/// Headers setting the token cookies of a login or refresh.
fn token_cookies(t: &TokenPair, refresh_ttl: i64) -> HeaderMap {
    let mut h = HeaderMap::new();
    set_cookie(&mut h, ACCESS_COOKIE, &t.access_token, Some(t.expires_in));
    if let Some(refresh) = &t.refresh_token {
        set_cookie(&mut h, REFRESH_COOKIE, refresh, Some(refresh_ttl));
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h
}

/// A JSON body that may be absent (empty): refresh and logout also work from the cookie.
fn optional_body(headers: &HeaderMap, body: &Bytes) -> Result<RefreshRequest, Problem> {
    if body.is_empty() {
        return Ok(RefreshRequest::default());
    }
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !ct.to_ascii_lowercase().starts_with("application/json") {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "expected a request body with content-type application/json",
        ));
    }
    parse_json(body)
}

fn refresh_token_of(headers: &HeaderMap, body: &Bytes) -> Result<String, Problem> {
    optional_body(headers, body)?
        .refresh_token
        .or_else(|| cookie_value(headers, REFRESH_COOKIE))
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Problem::bad_request("a refresh token is required (body refreshToken or the refreshToken cookie)")
                .with_field("refreshToken")
        })
}

/// Creates an account in the default workspace.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth",
    request_body = RegisterRequest,
    responses((status = 201, description = "Registered", body = UserDto)))]
pub async fn register(
    State(s): State<AppState>,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> ApiResult<(StatusCode, ApiJson<UserDto>)> {
    let user = s
        .auth
        .register(WorkspaceId::DEFAULT, &req.username, &req.password, req.display_name.as_deref())
        .await
        .map_err(auth_problem)?;
    Ok((StatusCode::CREATED, ApiJson((&user).into())))
}

async fn do_login(s: &AppState, req: LoginRequest) -> ApiResult<Response> {
    let tokens = s.auth.login(WorkspaceId::DEFAULT, &req.username, &req.password).await.map_err(auth_problem)?;
    Ok((token_cookies(&tokens, s.auth.config().refresh_ttl_secs), ApiJson(LoginResponse::from(&tokens)))
        .into_response())
}

/// Logs in (seed path): tokens in the body and as HttpOnly cookies.
#[utoipa::path(post, path = "/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses((status = 200, description = "Logged in; also sets the accessToken and refreshToken cookies",
        body = LoginResponse)))]
pub async fn seed_login(State(s): State<AppState>, ApiJson(req): ApiJson<LoginRequest>) -> ApiResult<Response> {
    do_login(&s, req).await
}

/// Logs in: tokens in the body and as HttpOnly cookies.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses((status = 200, description = "Logged in; also sets the accessToken and refreshToken cookies",
        body = LoginResponse)))]
pub async fn login(State(s): State<AppState>, ApiJson(req): ApiJson<LoginRequest>) -> ApiResult<Response> {
    do_login(&s, req).await
}

/// Exchanges a refresh token (body or cookie) for new tokens; the old refresh token is
/// revoked (rotation).
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth",
    request_body(content = RefreshRequest, description = "Optional: the refreshToken cookie is used without it"),
    responses((status = 200, description = "New tokens; cookies updated", body = LoginResponse)))]
pub async fn refresh(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> ApiResult<Response> {
    let token = refresh_token_of(&headers, &body)?;
    let tokens = s.auth.refresh(&token).await.map_err(auth_problem)?;
    Ok((token_cookies(&tokens, s.auth.config().refresh_ttl_secs), ApiJson(LoginResponse::from(&tokens)))
        .into_response())
}

/// Revokes the refresh token (body or cookie) and clears the cookies.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    request_body(content = RefreshRequest, description = "Optional: the refreshToken cookie is used without it"),
    responses((status = 204, description = "Logged out; cookies cleared")))]
pub async fn logout(State(s): State<AppState>, _actor: Actor, headers: HeaderMap, body: Bytes) -> ApiResult<Response> {
    let token = refresh_token_of(&headers, &body)?;
    s.auth.logout(&token).await.map_err(auth_problem)?;
    let mut h = HeaderMap::new();
    set_cookie(&mut h, ACCESS_COOKIE, "", Some(0));
    set_cookie(&mut h, REFRESH_COOKIE, "", Some(0));
    Ok((StatusCode::NO_CONTENT, h).into_response())
}

/// The public keys that verify access tokens (RFC 7517).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth",
    responses((status = 200, description = "JSON Web Key Set", body = Object)))]
pub async fn jwks(State(s): State<AppState>) -> Response {
    ([(header::CACHE_CONTROL, "public, max-age=300")], axum::Json(s.auth.jwks())).into_response()
}

/// OpenID Connect discovery document.
#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "auth",
    responses((status = 200, description = "OpenID provider metadata", body = Object)))]
pub async fn openid_configuration(State(s): State<AppState>) -> axum::Json<serde_json::Value> {
    axum::Json(s.auth.openid_configuration())
}

/// An RFC 6749 section 5.2 error answer.
fn oauth_error(status: StatusCode, error: &str, description: impl Into<String>, basic: bool) -> Response {
    let body = OAuthErrorResponse { error: error.to_string(), error_description: Some(description.into()) };
    let mut res = (status, [(header::CACHE_CONTROL, "no-store")], axum::Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        let scheme = if basic { "Basic realm=\"chat-sys\"" } else { "Bearer" };
        res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(scheme));
    }
    res
}

fn from_oauth(e: OAuthError, basic: bool) -> Response {
    let status = StatusCode::from_u16(e.error.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    oauth_error(status, e.error.as_str(), e.description.clone(), basic)
}

/// Client credentials from `Authorization: Basic` (RFC 6749 section 2.3.1: form-encoded id
/// and secret), if present.
/// `Err(())` for malformed Basic credentials.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, ()> {
    let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let Some((scheme, b64)) = value.split_once(' ') else { return Ok(None) };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(b64.trim()).map_err(|_| ())?;
    let text = String::from_utf8(decoded).map_err(|_| ())?;
    let (id, secret) = text.split_once(':').ok_or(())?;
    let dec = |s: &str| form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned());
    Ok(Some((dec(id).unwrap_or_default(), dec(secret).unwrap_or_default())))
}

/// The OAuth2 token endpoint (RFC 6749): grants `password`, `refresh_token` and
/// `client_credentials`; client authentication by HTTP Basic or form fields.
#[utoipa::path(post, path = "/oauth2/token", tag = "auth",
    request_body(content = OAuthTokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "RFC 6749 section 5.1 token response (Cache-Control: no-store)",
            body = OAuthTokenResponse),
        (status = 400, description = "RFC 6749 section 5.2 error", body = OAuthErrorResponse),
        (status = 401, description = "invalid_client", body = OAuthErrorResponse),
        (status = 500, description = "server_error", body = OAuthErrorResponse),
        (status = 503, description = "temporarily_unavailable", body = OAuthErrorResponse)))]
pub async fn token(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let form_ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    if !form_ct {
        let why = "expected content-type application/x-www-form-urlencoded";
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", why, false);
    }
    let req: OAuthTokenRequest = match serde_urlencoded::from_bytes(&body) {
        Ok(r) => r,
        Err(e) => {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", format!("malformed form: {e}"), false);
        }
    };
    let Ok(basic) = basic_credentials(&headers) else {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "malformed HTTP Basic credentials", true);
    };
    let used_basic = basic.is_some();
    let client = match (basic, req.client_id.clone()) {
        (Some(_), Some(_)) => {
            let why = "use only one client authentication method";
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", why, false);
        }
        (Some(c), None) => Some(c),
        (None, Some(id)) => Some((id, req.client_secret.clone().unwrap_or_default())),
        (None, None) => None,
    };
    let result = match req.grant_type.as_deref() {
        Some("password") => {
            let (Some(u), Some(p)) = (req.username.as_deref(), req.password.as_deref()) else {
                let why = "username and password are required";
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", why, false);
            };
            s.auth.password_grant(WorkspaceId::DEFAULT, u, p).await
        }
        Some("refresh_token") => {
            let Some(t) = req.refresh_token.as_deref() else {
                let why = "refresh_token is required";
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", why, false);
            };
            s.auth.refresh_grant(t).await
        }
        Some("client_credentials") => {
            let Some((id, secret)) = client else {
                let why = "client authentication is required";
                return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", why, true);
            };
            s.auth.client_credentials(&id, &secret, req.scope.as_deref()).await
        }
        Some(other) => {
            let why = format!("grant_type {other} is not supported");
            return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", why, false);
        }
        None => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "grant_type is required", false),
    };
    match result {
        Ok(t) => {
            let h = [(header::CACHE_CONTROL, "no-store"), (header::PRAGMA, "no-cache")];
            (h, axum::Json(OAuthTokenResponse::from(&t))).into_response()
        }
        Err(e) => from_oauth(e, used_basic),
    }
}

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(seed_login))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(jwks))
        .routes(routes!(openid_configuration))
        .routes(routes!(token))
}
