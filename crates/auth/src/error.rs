//! Errors of the authenticator: startup ([`AuthError`]) and the OAuth2 token endpoint
//! ([`OAuthError`], RFC 6749 section 5.2).

use chat_domain::DomainError;
use chat_storage::StoreError;
use serde_json::json;
use thiserror::Error;

/// Why [`crate::Authenticator::new`] failed.
#[derive(Debug, Error)]
pub enum AuthError {
    /// A configuration value is unusable (names the field and why).
    #[error("invalid auth configuration: {0}")]
    Config(String),
    /// The configured or stored signing key cannot be used (unparsable PEM, not RSA,
    /// shorter than 2048 bits), or key generation failed.
    #[error("invalid signing key: {0}")]
    Key(String),
    /// The store failed while loading or persisting the key or bootstrap clients.
    #[error("auth storage: {0}")]
    Storage(#[from] StoreError),
    /// Creating a bootstrap client failed validation.
    #[error("bootstrap client: {0}")]
    Client(#[from] DomainError),
}

/// OAuth2 error codes of the token endpoint (RFC 6749 section 5.2), plus `server_error` and
/// `temporarily_unavailable` (borrowed from section 4.1.2.1) for failures of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OAuthErrorCode {
    /// `invalid_request`: a parameter is missing, malformed or repeated.
    InvalidRequest,
    /// `invalid_client`: client authentication failed (HTTP 401).
    InvalidClient,
    /// `invalid_grant`: wrong credentials, or a refresh token that is invalid, expired,
    /// revoked or already used.
    InvalidGrant,
    /// `unauthorized_client`: the client may not use this grant type.
    UnauthorizedClient,
    /// `unsupported_grant_type`: the grant type is not one of password, refresh_token,
    /// client_credentials.
    UnsupportedGrantType,
    /// `invalid_scope`: a requested scope is unknown or not granted to the client.
    InvalidScope,
    /// `server_error`: an unexpected failure (HTTP 500).
    ServerError,
    /// `temporarily_unavailable`: the database is unreachable (HTTP 503).
    TemporarilyUnavailable,
}

impl OAuthErrorCode {
    /// The RFC 6749 `error` value, e.g. `"invalid_grant"`.
    pub fn as_str(self) -> &'static str {
        match self {
            OAuthErrorCode::InvalidRequest => "invalid_request",
            OAuthErrorCode::InvalidClient => "invalid_client",
            OAuthErrorCode::InvalidGrant => "invalid_grant",
            OAuthErrorCode::UnauthorizedClient => "unauthorized_client",
            OAuthErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            OAuthErrorCode::InvalidScope => "invalid_scope",
            OAuthErrorCode::ServerError => "server_error",
            OAuthErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }

    /// HTTP status of the error response: 400, except 401 for `invalid_client`
    /// (RFC 6749 section 5.2; the response then also carries `WWW-Authenticate`), 500 for
    /// `server_error` and 503 for `temporarily_unavailable`.
    pub fn http_status(self) -> u16 {
        match self {
            OAuthErrorCode::InvalidClient => 401,
            OAuthErrorCode::ServerError => 500,
            OAuthErrorCode::TemporarilyUnavailable => 503,
            _ => 400,
        }
    }
}

/// An RFC 6749 section 5.2 error response.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{}: {description}", error.as_str())]
pub struct OAuthError {
    /// The `error` code.
    pub error: OAuthErrorCode,
    /// The `error_description`: human-readable, ASCII, no secrets.
    pub description: String,
}

impl OAuthError {
    /// An error with a description.
    pub fn new(error: OAuthErrorCode, description: impl Into<String>) -> Self {
        OAuthError { error, description: description.into() }
    }

    /// The response body: `{"error": "...", "error_description": "..."}`.
    pub fn to_json(&self) -> serde_json::Value {
        json!({ "error": self.error.as_str(), "error_description": self.description })
    }

    /// Maps a domain error of a grant: `Unauthenticated` → `invalid_grant`, `Invalid` →
    /// `invalid_request`, `Unavailable` → `temporarily_unavailable`, anything else →
    /// `server_error` (details are not shown).
    pub(crate) fn from_grant_error(e: DomainError) -> Self {
        match e {
            DomainError::Unauthenticated(why) => OAuthError::new(OAuthErrorCode::InvalidGrant, why),
            DomainError::Invalid { field, reason } => {
                OAuthError::new(OAuthErrorCode::InvalidRequest, format!("invalid {field}: {reason}"))
            }
            DomainError::Unavailable(_) => {
                OAuthError::new(OAuthErrorCode::TemporarilyUnavailable, "service temporarily unavailable")
            }
            other => {
                tracing::error!(error = %other, "oauth2 grant failed");
                OAuthError::new(OAuthErrorCode::ServerError, "internal error")
            }
        }
    }
}
