//! Configuration of the authenticator ([`AuthConfig`]), deserialized from the `auth` section
//! of the server configuration. Every field has a default, so an empty section is valid.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Authentication settings. Deserialized with `#[serde(default)]`: missing fields take the
/// defaults documented on each field (see [`AuthConfig::default`]).
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct AuthConfig {
    /// `iss` claim of issued tokens and the issuer URL of the OpenID discovery document
    /// (OpenID Connect Discovery 1.0 section 3). Default `"http://localhost:8081"`.
    pub issuer: String,
    /// `aud` claim of issued tokens, required on verification (RFC 7519 section 4.1.3).
    /// Default `"chat-sys"`.
    pub audience: String,
    /// Access token lifetime in seconds. Default `900` (15 minutes).
    pub access_ttl_secs: i64,
    /// Refresh token lifetime in seconds. Default `2_592_000` (30 days).
    pub refresh_ttl_secs: i64,
    /// RSA private key (PKCS#8 `BEGIN PRIVATE KEY` or PKCS#1 `BEGIN RSA PRIVATE KEY` PEM, at
    /// least 2048 bits) to sign with. Default `None`: a 2048-bit key is generated on first
    /// start and persisted through the [`chat_storage::AuthStore`], so every node and every
    /// restart uses the same key.
    pub private_key_pem: Option<String>,
    /// External OpenID Connect issuers whose access tokens are accepted too. Default empty.
    pub external_jwks: Vec<ExternalIssuer>,
    /// Argon2id memory cost in KiB. Default `19456` (19 MiB, OWASP password storage cheat sheet).
    pub argon2_memory_kib: u32,
    /// Argon2id iterations (time cost). Default `2`.
    pub argon2_iterations: u32,
    /// Argon2id lanes (parallelism). Default `1`.
    pub argon2_parallelism: u32,
    /// OAuth2 confidential clients created at start when absent (client_credentials grant,
    /// RFC 6749 section 4.4). Default empty.
    pub bootstrap_clients: Vec<ClientSpec>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            issuer: "http://localhost:8081".to_owned(),
            audience: "chat-sys".to_owned(),
            access_ttl_secs: 900,
            refresh_ttl_secs: 30 * 24 * 3600,
            private_key_pem: None,
            external_jwks: Vec::new(),
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            bootstrap_clients: Vec::new(),
        }
    }
}

impl AuthConfig {
    /// Defaults with the cheapest Argon2id parameters (8 KiB, 1 iteration, 1 lane).
    /// For tests only: such hashes are fast to brute-force.
    pub fn for_tests() -> Self {
        AuthConfig { argon2_memory_kib: 8, argon2_iterations: 1, argon2_parallelism: 1, ..Default::default() }
    }
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("access_ttl_secs", &self.access_ttl_secs)
            .field("refresh_ttl_secs", &self.refresh_ttl_secs)
            .field("private_key_pem", &self.private_key_pem.as_ref().map(|_| "<redacted>"))
            .field("external_jwks", &self.external_jwks)
            .field("argon2_memory_kib", &self.argon2_memory_kib)
            .field("argon2_iterations", &self.argon2_iterations)
            .field("argon2_parallelism", &self.argon2_parallelism)
            .field("bootstrap_clients", &self.bootstrap_clients)
            .finish()
    }
}

/// An external OpenID Connect issuer whose tokens are accepted as access tokens.
///
/// Its tokens must carry `iss` = [`issuer`](Self::issuer), `aud` containing
/// [`audience`](Self::audience), `exp`, `jti`, and a `sub` that is a chat-sys user id (UUID)
/// or `client:<id>`; `ws` (workspace id) is optional and defaults to
/// [`chat_domain::WorkspaceId::DEFAULT`]. Each key's algorithm is pinned to its JWK `alg`
/// (or, when absent, to the one its key type implies: RSA → RS256, EC P-256 → ES256,
/// P-384 → ES384, OKP → EdDSA). Symmetric (`oct`) keys are refused.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExternalIssuer {
    /// Expected `iss` claim.
    pub issuer: String,
    /// Expected `aud` claim.
    pub audience: String,
    /// The issuer's JWK Set (RFC 7517 section 5) as JSON text, e.g. a copy of its `jwks_uri`
    /// document. Every key must have a `kid`.
    pub jwks_json: String,
}

/// An OAuth2 confidential client (RFC 6749 section 2.3.1).
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClientSpec {
    /// `client_id`: 1..=64 characters of `[A-Za-z0-9_.-]`.
    pub client_id: String,
    /// `client_secret`: 8..=256 bytes; stored only as an Argon2id hash.
    pub client_secret: String,
    /// Scopes the client may request (each non-empty, without spaces). Default empty.
    #[serde(default)]
    pub scopes: Vec<String>,
}

impl fmt::Debug for ClientSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSpec")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("scopes", &self.scopes)
            .finish()
    }
}
