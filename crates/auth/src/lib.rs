//! Authentication of chat-sys.
//!
//! - Access and refresh tokens are JWTs (RFC 7519) signed RS256 (RFC 7518 section 3.3) with
//!   a server key that is configured ([`AuthConfig::private_key_pem`]) or generated on first
//!   start and persisted through [`chat_storage::AuthStore`]. Claims: `iss`, `sub` (user id or
//!   `client:<client_id>`), `aud`, `exp`, `iat`, `nbf`, `jti` (UUID v7), `ws` (workspace id),
//!   `token_use` (`access` | `refresh`) and, when granted, `scope`. Header: `alg`, `typ`, `kid`.
//! - Verification follows RFC 8725: the algorithm is pinned per key (never read from the
//!   token), `kid` only selects a key from an in-memory map, `iss`/`aud`/`exp`/`nbf` are
//!   checked with [`tokens::LEEWAY_SECS`] of leeway, and `exp`, `sub`, `jti` are required.
//! - The public key is published as a JWK Set ([`Authenticator::jwks`], RFC 7517) next to an
//!   OpenID discovery document ([`Authenticator::openid_configuration`]).
//! - Passwords and client secrets are hashed with Argon2id (RFC 9106) on the blocking pool.
//! - OAuth2 token endpoint grants (RFC 6749): password (section 4.3), refresh_token
//!   (section 6, with rotation: every refresh token is single-use) and client_credentials
//!   (section 4.4).
//! - Access tokens of external OpenID Connect issuers are accepted when configured
//!   ([`AuthConfig::external_jwks`]).

#![warn(missing_docs)]

mod config;
mod error;
mod keys;
mod password;
mod service;
pub mod tokens;

pub use config::{AuthConfig, ClientSpec, ExternalIssuer};
pub use error::{AuthError, OAuthError, OAuthErrorCode};
pub use service::{Authenticator, validate_password, validate_username};
pub use tokens::{Principal, Subject, TokenPair};
