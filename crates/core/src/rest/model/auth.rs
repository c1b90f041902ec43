//! Authentication shapes: the seed's login response and the OAuth2 token endpoint's
//! RFC 6749 bodies (snake_case, as that RFC defines them).

use chat_auth::TokenPair;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The tokens of a login or refresh, camelCase.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokensDto {
    /// Access token (RS256 JWT).
    pub access_token: String,
    /// Refresh token (rotated on every refresh).
    pub refresh_token: Option<String>,
    /// `Bearer`.
    pub token_type: String,
    /// Access token lifetime in seconds.
    pub expires_in: u64,
}

/// Response of login and refresh: the seed's `{"data": {"accessToken", "refreshToken"}}`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct LoginResponse {
    /// The tokens.
    pub data: TokensDto,
}

impl From<&TokenPair> for LoginResponse {
    fn from(t: &TokenPair) -> Self {
        LoginResponse {
            data: TokensDto {
                access_token: t.access_token.clone(),
                refresh_token: t.refresh_token.clone(),
                token_type: t.token_type.to_string(),
                expires_in: t.expires_in.max(0) as u64,
            },
        }
    }
}

/// RFC 6749 section 5.1 successful token response.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct OAuthTokenResponse {
    /// The access token.
    pub access_token: String,
    /// `Bearer`.
    pub token_type: String,
    /// Lifetime of the access token in seconds.
    pub expires_in: u64,
    /// Refresh token (password and refresh_token grants).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Granted scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl From<&TokenPair> for OAuthTokenResponse {
    fn from(t: &TokenPair) -> Self {
        OAuthTokenResponse {
            access_token: t.access_token.clone(),
            token_type: t.token_type.to_string(),
            expires_in: t.expires_in.max(0) as u64,
            refresh_token: t.refresh_token.clone(),
            scope: t.scope.clone().filter(|s| !s.is_empty()),
        }
    }
}

/// RFC 6749 section 5.2 error response.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct OAuthErrorResponse {
    /// Error code: `invalid_request`, `invalid_client`, `invalid_grant`, `unauthorized_client`,
    /// `unsupported_grant_type`, `invalid_scope`, or `server_error`.
    pub error: String,
    /// Human-readable detail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

/// RFC 6749 token request (form fields; client credentials may come by HTTP Basic instead).
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
pub struct OAuthTokenRequest {
    /// `password`, `refresh_token` or `client_credentials`.
    pub grant_type: Option<String>,
    /// Username (password grant).
    pub username: Option<String>,
    /// Password (password grant).
    pub password: Option<String>,
    /// Refresh token (refresh_token grant).
    pub refresh_token: Option<String>,
    /// Requested scope.
    pub scope: Option<String>,
    /// Client id (when not sent by HTTP Basic).
    pub client_id: Option<String>,
    /// Client secret (when not sent by HTTP Basic).
    pub client_secret: Option<String>,
}
