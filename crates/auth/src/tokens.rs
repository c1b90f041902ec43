//! JWT (RFC 7519) access and refresh tokens: issuing with our RS256 key and verifying with
//! per-key pinned algorithms (RFC 8725).

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chat_domain::{DomainError, Millis, UserId, WorkspaceId};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::keys::{SigningKey, VerifyingKey};

/// Longest token accepted for verification, in bytes (a guard against oversized input).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: u64 = 30;
/// `sub` prefix of tokens issued to OAuth2 clients (client_credentials grant).
pub const CLIENT_SUBJECT_PREFIX: &str = "client:";

/// A successful token response (RFC 6749 section 5.1). Serializes to the response body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TokenPair {
    /// The access token: a JWT signed RS256.
    pub access_token: String,
    /// The refresh token (a JWT too, single use: RFC 6749 section 10.4 rotation); `None` for
    /// the client_credentials grant (section 4.4.3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Always `"Bearer"` (RFC 6750).
    pub token_type: &'static str,
    /// Access token lifetime in seconds.
    pub expires_in: i64,
    /// Granted scopes, space-separated (RFC 6749 section 3.3), when any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// Who an access token was issued to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Subject {
    /// A user (`sub` is the user id).
    User(UserId),
    /// An OAuth2 client acting for itself (`sub` is `client:<client_id>`).
    Service {
        /// The `client_id`.
        client_id: String,
    },
}

/// The verified identity behind an access token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// User or service.
    pub subject: Subject,
    /// Workspace (`ws` claim; [`WorkspaceId::DEFAULT`] for services and external tokens
    /// without `ws`).
    pub workspace_id: WorkspaceId,
    /// The token's `jti`.
    pub token_id: String,
    /// The token's `exp`, in milliseconds.
    pub expires_at: Millis,
    /// Granted scopes (from the space-separated `scope` claim, or an `scp` array).
    pub scopes: Vec<String>,
}

impl Principal {
    /// The user id, `None` for services.
    pub fn user_id(&self) -> Option<UserId> {
        match &self.subject {
            Subject::User(id) => Some(*id),
            Subject::Service { .. } => None,
        }
    }

    /// Whether the scope was granted.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// Value of the `token_use` claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenUse {
    Access,
    Refresh,
}

impl TokenUse {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TokenUse::Access => "access",
            TokenUse::Refresh => "refresh",
        }
    }
}

/// Claims we issue.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Claims {
    pub(crate) iss: String,
    pub(crate) sub: String,
    pub(crate) aud: String,
    pub(crate) exp: i64,
    pub(crate) iat: i64,
    pub(crate) nbf: i64,
    pub(crate) jti: String,
    pub(crate) ws: String,
    pub(crate) token_use: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub(crate) scope: Option<String>,
}

/// Claims as read on verification: lenient, so a missing claim gets a specific reason.
#[derive(Debug, Deserialize)]
struct IncomingClaims {
    sub: Option<String>,
    exp: Option<i64>,
    jti: Option<String>,
    ws: Option<String>,
    token_use: Option<String>,
    typ: Option<serde_json::Value>,
    scope: Option<String>,
    scp: Option<Vec<String>>,
}

/// The part of a JOSE header we look at before choosing a key (RFC 7515 section 4.1).
#[derive(Debug, Deserialize)]
struct RawHeader {
    alg: Option<String>,
    kid: Option<serde_json::Value>,
    crit: Option<serde_json::Value>,
}

/// A verified token's claims.
#[derive(Clone, Debug)]
pub(crate) struct Verified {
    pub(crate) principal: Principal,
}

/// Issues and verifies tokens. Pure computation, no I/O.
#[derive(Clone)]
pub(crate) struct TokenService {
    pub(crate) signing: SigningKey,
    /// Every key a token may name in `kid`: ours and the external issuers'.
    keys: HashMap<String, VerifyingKey>,
    pub(crate) issuer: String,
    pub(crate) audience: String,
}

impl TokenService {
    pub(crate) fn new(
        signing: SigningKey,
        issuer: String,
        audience: String,
        external: Vec<(String, VerifyingKey)>,
    ) -> Self {
        let mut keys: HashMap<String, VerifyingKey> = external.into_iter().collect();
        let own = VerifyingKey {
            alg: Algorithm::RS256,
            key: signing.decoding.clone(),
            issuer: issuer.clone(),
            audience: audience.clone(),
            external: false,
        };
        keys.insert(signing.kid.clone(), own);
        TokenService { signing, keys, issuer, audience }
    }

    /// Whether a `kid` is known (used at startup to detect collisions).
    pub(crate) fn has_kid(keys: &[(String, VerifyingKey)], kid: &str) -> bool {
        keys.iter().any(|(k, _)| k == kid)
    }

    /// Signs claims with our key (header `alg: RS256`, `typ: JWT`, `kid`).
    pub(crate) fn sign(&self, claims: &Claims) -> Result<String, DomainError> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.signing.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.signing.encoding)
            .map_err(|e| DomainError::Internal(format!("signing a token: {e}")))
    }

    /// Builds and signs a token; returns it with its claims.
    pub(crate) fn issue(
        &self,
        sub: String,
        ws: WorkspaceId,
        token_use: TokenUse,
        ttl_secs: i64,
        scope: Option<String>,
    ) -> Result<(String, Claims), DomainError> {
        let now = Millis::now().0.div_euclid(1000);
        let claims = Claims {
            iss: self.issuer.clone(),
            sub,
            aud: self.audience.clone(),
            exp: now + ttl_secs,
            iat: now,
            nbf: now,
            jti: uuid::Uuid::now_v7().to_string(),
            ws: ws.to_string(),
            token_use: token_use.as_str().to_owned(),
            scope,
        };
        Ok((self.sign(&claims)?, claims))
    }

    /// Verifies a token for one use. `Err` is the specific reason, for
    /// [`DomainError::Unauthenticated`]. Refresh tokens are only accepted from our own key.
    pub(crate) fn verify(&self, token: &str, expected: TokenUse) -> Result<Verified, String> {
        if token.is_empty() {
            return Err("empty token".into());
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(format!("token longer than {MAX_TOKEN_BYTES} bytes"));
        }
        let mut parts = token.split('.');
        let (Some(head), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err("malformed token: not a JWS compact serialization (three dot-separated parts)".into());
        };
        let head = URL_SAFE_NO_PAD.decode(head).map_err(|_| "malformed token: header is not base64url".to_string())?;
        let header: RawHeader =
            serde_json::from_slice(&head).map_err(|_| "malformed token: header is not a JSON object".to_string())?;
        let alg = header.alg.ok_or("malformed token: header has no alg")?;
        if alg.eq_ignore_ascii_case("none") {
            return Err("unsigned token (alg none) rejected".into());
        }
        if header.crit.is_some() {
            return Err("unsupported critical header parameters (crit)".into());
        }
        // `kid` is an untrusted string: only ever a key of this in-memory map.
        let kid = match header.kid {
            Some(serde_json::Value::String(kid)) => kid,
            Some(_) => return Err("malformed token: kid is not a string".into()),
            None => return Err("token has no kid".into()),
        };
        let key = self.keys.get(&kid).ok_or("unknown signing key (kid)")?;
        // The algorithm is pinned per key, never taken from the token (RFC 8725 section 2.1).
        let pinned = format!("{:?}", key.alg);
        if alg != pinned {
            return Err(format!("algorithm {} not allowed for this key (expects {pinned})", truncate(&alg)));
        }
        if key.external && expected == TokenUse::Refresh {
            return Err("refresh tokens of external issuers are not accepted".into());
        }

        let mut validation = Validation::new(key.alg);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_issuer(&[&key.issuer]);
        validation.set_audience(&[&key.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data =
            jsonwebtoken::decode::<IncomingClaims>(token, &key.key, &validation).map_err(|e| reason(e.kind()))?;
        let c = data.claims;

        let token_use = c.token_use.as_deref().or(match &c.typ {
            Some(serde_json::Value::String(t)) => Some(t.as_str()),
            _ => None,
        });
        match (expected, token_use) {
            (TokenUse::Access, Some(u)) if u.eq_ignore_ascii_case("refresh") => {
                return Err("refresh token used as access token".into());
            }
            (TokenUse::Access, Some("access")) => {}
            (TokenUse::Access, _) if key.external => {} // external access tokens need no token_use
            (TokenUse::Access, _) => return Err("not an access token (token_use)".into()),
            (TokenUse::Refresh, Some("refresh")) => {}
            (TokenUse::Refresh, Some("access")) => return Err("access token used as refresh token".into()),
            (TokenUse::Refresh, _) => return Err("not a refresh token (token_use)".into()),
        }
        let jti = c.jti.filter(|j| !j.is_empty()).ok_or("missing required claim jti")?;
        let sub = c.sub.ok_or("missing required claim sub")?;
        let exp = c.exp.ok_or("missing required claim exp")?;
        let subject = if let Some(client_id) = sub.strip_prefix(CLIENT_SUBJECT_PREFIX) {
            if client_id.is_empty() {
                return Err("invalid sub claim".into());
            }
            Subject::Service { client_id: client_id.to_owned() }
        } else {
            Subject::User(sub.parse().map_err(|_| "sub claim is not a user id".to_string())?)
        };
        let workspace_id = match c.ws {
            Some(ws) => ws.parse().map_err(|_| "ws claim is not a workspace id".to_string())?,
            None if key.external => WorkspaceId::DEFAULT,
            None => return Err("missing required claim ws".into()),
        };
        let scopes = match (c.scope, c.scp) {
            (Some(s), _) => s.split_ascii_whitespace().map(str::to_owned).collect(),
            (None, Some(v)) => v,
            (None, None) => Vec::new(),
        };
        let principal =
            Principal { subject, workspace_id, token_id: jti, expires_at: Millis(exp.saturating_mul(1000)), scopes };
        Ok(Verified { principal })
    }
}

/// At most 32 characters of an untrusted string, for error messages.
fn truncate(s: &str) -> String {
    s.chars().take(32).collect()
}

/// The reason for a `jsonwebtoken` validation failure.
fn reason(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::ExpiredSignature => "token expired".into(),
        ErrorKind::ImmatureSignature => "token not yet valid (nbf)".into(),
        ErrorKind::InvalidIssuer => "wrong issuer (iss)".into(),
        ErrorKind::InvalidAudience => "wrong audience (aud)".into(),
        ErrorKind::InvalidSignature => "invalid signature".into(),
        ErrorKind::InvalidAlgorithm => "algorithm not allowed for this key".into(),
        ErrorKind::MissingRequiredClaim(c) => format!("missing required claim {c}"),
        ErrorKind::InvalidClaimFormat(c) => format!("malformed claim {c}"),
        ErrorKind::Base64(_) => "malformed token: not base64url".into(),
        ErrorKind::Json(_) | ErrorKind::Utf8(_) => "malformed token: claims are not a JSON object".into(),
        _ => "malformed or unverifiable token".into(),
    }
}

#[cfg(test)]
mod tests;
