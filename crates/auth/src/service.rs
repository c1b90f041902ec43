//! [`Authenticator`]: registration, login, token refresh/revocation and the OAuth2 grants.

use std::collections::HashSet;
use std::sync::Arc;

use chat_domain::{DomainError, Millis, User, UserId, Workspace, WorkspaceId};
use chat_storage::{AuthStore, OAuthClientRecord, RefreshTokenRecord, SigningKeyRecord, StoreError, UserStore};
use serde_json::json;

use crate::config::{AuthConfig, ClientSpec};
use crate::error::{AuthError, OAuthError, OAuthErrorCode};
use crate::keys::{self, SigningKey};
use crate::password::SecretHasher;
use crate::tokens::{CLIENT_SUBJECT_PREFIX, Principal, TokenPair, TokenService, TokenUse};

/// The one message for every failed login, so responses do not reveal which usernames exist.
const BAD_LOGIN: &str = "invalid username or password";

/// The authentication service. Cheap to clone (one `Arc` inside); `Send + Sync`.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: AuthConfig,
    users: Arc<dyn UserStore>,
    store: Arc<dyn AuthStore>,
    tokens: TokenService,
    hasher: SecretHasher,
    /// A hash of a random secret, verified against when the user or client is unknown so
    /// that such requests take as long as a wrong password (no enumeration by timing).
    dummy_hash: String,
}

impl Authenticator {
    /// Starts the authenticator: loads the configured signing key, or the stored one, or
    /// generates a 2048-bit RSA key and stores it with
    /// [`AuthStore::insert_signing_key_if_absent`] (whose answer wins, so concurrent first
    /// starts agree); parses the external JWK Sets; ensures the default workspace exists;
    /// creates absent bootstrap clients.
    ///
    /// # Errors
    /// [`AuthError::Config`] for unusable settings (TTLs ≤ 0, Argon2 parameters, JWK Sets),
    /// [`AuthError::Key`] for an unusable key, [`AuthError::Storage`] when the store fails,
    /// [`AuthError::Client`] when a bootstrap client is invalid.
    pub async fn new(cfg: AuthConfig, users: Arc<dyn UserStore>, store: Arc<dyn AuthStore>) -> Result<Self, AuthError> {
        if cfg.access_ttl_secs <= 0 || cfg.refresh_ttl_secs <= 0 {
            return Err(AuthError::Config("access_ttl_secs and refresh_ttl_secs must be positive".into()));
        }
        if cfg.issuer.is_empty() || cfg.audience.is_empty() {
            return Err(AuthError::Config("issuer and audience must not be empty".into()));
        }
        let hasher = SecretHasher::new(cfg.argon2_memory_kib, cfg.argon2_iterations, cfg.argon2_parallelism)
            .map_err(AuthError::Config)?;

        let signing = match &cfg.private_key_pem {
            Some(pem) => SigningKey::from_pem(pem)?,
            None => load_or_generate_key(store.as_ref()).await?,
        };
        let mut external = Vec::new();
        for ext in &cfg.external_jwks {
            for (kid, key) in keys::external_keys(ext)? {
                if kid == signing.kid || TokenService::has_kid(&external, &kid) {
                    return Err(AuthError::Config(format!("external_jwks: duplicate kid {kid}")));
                }
                external.push((kid, key));
            }
        }
        let tokens = TokenService::new(signing, cfg.issuer.clone(), cfg.audience.clone(), external);

        let dummy_hash = {
            let h = hasher.clone();
            let secret = uuid::Uuid::new_v4().to_string();
            tokio::task::spawn_blocking(move || h.hash_blocking(secret.as_bytes()))
                .await
                .map_err(|e| AuthError::Config(format!("hash task: {e}")))??
        };

        users
            .ensure_workspace(&Workspace {
                id: WorkspaceId::DEFAULT,
                name: "default".into(),
                created_at: Millis::now(),
            })
            .await?;

        let this = Authenticator { inner: Arc::new(Inner { cfg, users, store, tokens, hasher, dummy_hash }) };
        for spec in &this.inner.cfg.bootstrap_clients {
            if this.inner.store.oauth_client(&spec.client_id).await?.is_none() {
                match this.create_client(spec).await {
                    Ok(()) | Err(DomainError::Conflict(_)) => {}
                    Err(e) => return Err(AuthError::Client(e)),
                }
            }
        }
        Ok(this)
    }

    /// The configuration in use.
    pub fn config(&self) -> &AuthConfig {
        &self.inner.cfg
    }

    /// The `kid` of the current signing key.
    pub fn key_id(&self) -> &str {
        &self.inner.tokens.signing.kid
    }

    /// Creates a user account with an Argon2id password hash. The username is lowercased
    /// and must then be 3..=32 characters of `[a-z0-9_.-]`; the password must be 8..=256
    /// bytes; the display name defaults to the username (trimmed, at most 64 characters).
    ///
    /// # Errors
    /// [`DomainError::Invalid`] (field `username`, `password` or `displayName`),
    /// [`DomainError::Conflict`] when the username is taken in the workspace, and
    /// `Unavailable`/`Internal` from storage.
    pub async fn register(
        &self,
        ws: WorkspaceId,
        username: &str,
        password: &str,
        display_name: Option<&str>,
    ) -> Result<User, DomainError> {
        let username = validate_username(username)?;
        validate_password(password)?;
        let display_name = match display_name.map(str::trim).filter(|d| !d.is_empty()) {
            Some(d) if d.chars().count() > 64 => {
                return Err(DomainError::invalid("displayName", "at most 64 characters"));
            }
            // Control characters (U+0000 among them) and bidi overrides/isolates, which can
            // make one name look like another (RFC 8264 section 9.5 on confusable names).
            Some(d)
                if d.chars()
                    .any(|c| c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')) =>
            {
                return Err(DomainError::invalid(
                    "displayName",
                    "must not contain control or bidi override characters",
                ));
            }
            Some(d) => d.to_owned(),
            None => username.clone(),
        };
        let hash = self.inner.hasher.hash(password).await?;
        let user = User {
            id: UserId::new(),
            workspace_id: ws,
            username,
            display_name,
            avatar_url: None,
            created_at: Millis::now(),
        };
        match self.inner.users.create_user(&user, &hash).await {
            Ok(()) => Ok(user),
            Err(StoreError::Conflict(_)) => Err(DomainError::Conflict("username is taken".into())),
            Err(e) => Err(e.into()),
        }
    }

    /// Checks a username and password and issues an access and a refresh token.
    ///
    /// # Errors
    /// [`DomainError::Unauthenticated`]`("invalid username or password")` for an unknown user
    /// and a wrong password alike (a password hash is verified either way, so both take the
    /// same time); `Unavailable`/`Internal` from storage.
    pub async fn login(&self, ws: WorkspaceId, username: &str, password: &str) -> Result<TokenPair, DomainError> {
        let found = match validate_username(username) {
            Ok(name) => self.inner.users.user_credentials(ws, &name).await?,
            Err(_) => None,
        };
        let (user, hash) = match found {
            Some((user, hash)) => (Some(user), hash),
            None => (None, self.inner.dummy_hash.clone()),
        };
        let ok = self.inner.hasher.verify(password, &hash).await?;
        match user {
            Some(user) if ok => self.issue_user_pair(user.id, user.workspace_id).await,
            _ => Err(DomainError::Unauthenticated(BAD_LOGIN.into())),
        }
    }

    /// Exchanges a refresh token for a new access token and a new refresh token of the same
    /// family. The old refresh token is revoked atomically
    /// ([`AuthStore::rotate_refresh_token`]), so each refresh token works once (RFC 6749
    /// section 10.4); presenting one that was already used or revoked also revokes every
    /// token of its family (OAuth 2.0 Security BCP, RFC 9700 section 4.14.2: of an attacker
    /// and the client holding copies, whoever refreshes second is refused, and the one who
    /// refreshed first loses the new token too).
    ///
    /// # Errors
    /// [`DomainError::Unauthenticated`] with the reason: invalid/expired token, an access
    /// token given, "refresh token revoked or already used", or the user no longer exists.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, DomainError> {
        let p =
            self.inner.tokens.verify(refresh_token, TokenUse::Refresh).map_err(DomainError::Unauthenticated)?.principal;
        let Some(user_id) = p.user_id() else {
            return Err(DomainError::Unauthenticated("not a user refresh token".into()));
        };
        if self.inner.users.user(user_id).await?.is_none() {
            return Err(DomainError::Unauthenticated("user no longer exists".into()));
        }
        let refused = || DomainError::Unauthenticated("refresh token revoked or already used".into());
        let Some(old) = self.inner.store.refresh_token(&p.token_id).await? else {
            tracing::warn!(user = %user_id, jti = %p.token_id, "unknown refresh token");
            return Err(refused());
        };
        let (refresh, record) = self.new_refresh_token(user_id, p.workspace_id, Some(&old.family_id))?;
        let now = Millis::now();
        if !self.inner.store.rotate_refresh_token(&p.token_id, &record, now).await? {
            let revoked = self.inner.store.revoke_refresh_family(&old.family_id, now).await?;
            tracing::warn!(
                user = %user_id, jti = %p.token_id, family = %old.family_id, revoked,
                "reuse of a revoked refresh token: its family is revoked"
            );
            return Err(refused());
        }
        self.pair_with_refresh(user_id, p.workspace_id, refresh)
    }

    /// Revokes a refresh token (logout). Revoking an already revoked token succeeds
    /// (idempotent, as in RFC 7009 section 2.2).
    ///
    /// # Errors
    /// [`DomainError::Unauthenticated`] when the token is not a valid refresh token of ours;
    /// `Unavailable`/`Internal` from storage.
    pub async fn logout(&self, refresh_token: &str) -> Result<(), DomainError> {
        let p =
            self.inner.tokens.verify(refresh_token, TokenUse::Refresh).map_err(DomainError::Unauthenticated)?.principal;
        self.inner.store.revoke_refresh_token(&p.token_id, Millis::now()).await?;
        Ok(())
    }

    /// Verifies an access token (ours, or an external issuer's). Synchronous, no I/O.
    ///
    /// # Errors
    /// [`DomainError::Unauthenticated`] with a specific reason, e.g. `token expired`,
    /// `wrong issuer (iss)`, `wrong audience (aud)`, `invalid signature`,
    /// `unsigned token (alg none) rejected`, `algorithm HS256 not allowed for this key
    /// (expects RS256)`, `unknown signing key (kid)`, `refresh token used as access token`,
    /// `malformed token: ...`, `missing required claim jti`.
    pub fn verify_access_token(&self, token: &str) -> Result<Principal, DomainError> {
        self.inner.tokens.verify(token, TokenUse::Access).map(|v| v.principal).map_err(DomainError::Unauthenticated)
    }

    /// The client_credentials grant (RFC 6749 section 4.4): authenticates the client and
    /// issues an access token with `sub` = `client:<client_id>`, workspace
    /// [`WorkspaceId::DEFAULT`] and no refresh token. `scope` is space-separated; every
    /// requested scope must be one of the client's; absent means all of them.
    ///
    /// # Errors
    /// `invalid_client` for an unknown client or wrong secret (same message, same timing),
    /// `invalid_scope`, `server_error`/`temporarily_unavailable` on storage failure.
    pub async fn client_credentials(
        &self,
        client_id: &str,
        client_secret: &str,
        scope: Option<&str>,
    ) -> Result<TokenPair, OAuthError> {
        let client =
            self.inner.store.oauth_client(client_id).await.map_err(|e| OAuthError::from_grant_error(e.into()))?;
        let hash = client.as_ref().map_or(self.inner.dummy_hash.as_str(), |c| c.secret_hash.as_str());
        let ok = self.inner.hasher.verify(client_secret, hash).await.map_err(OAuthError::from_grant_error)?;
        let client = match client {
            Some(c) if ok => c,
            _ => return Err(OAuthError::new(OAuthErrorCode::InvalidClient, "client authentication failed")),
        };
        let allowed: Vec<&str> = client.scopes.split_ascii_whitespace().collect();
        let granted: Vec<&str> = match scope.map(str::split_ascii_whitespace) {
            Some(requested) => {
                let mut seen = HashSet::new();
                let mut out = Vec::new();
                for s in requested {
                    if !allowed.contains(&s) {
                        return Err(OAuthError::new(OAuthErrorCode::InvalidScope, "scope not allowed for this client"));
                    }
                    if seen.insert(s) {
                        out.push(s);
                    }
                }
                out
            }
            None => allowed,
        };
        let scope = (!granted.is_empty()).then(|| granted.join(" "));
        let ttl = self.inner.cfg.access_ttl_secs;
        let sub = format!("{CLIENT_SUBJECT_PREFIX}{}", client.client_id);
        let (access, _) = self
            .inner
            .tokens
            .issue(sub, WorkspaceId::DEFAULT, TokenUse::Access, ttl, scope.clone())
            .map_err(OAuthError::from_grant_error)?;
        Ok(TokenPair { access_token: access, refresh_token: None, token_type: "Bearer", expires_in: ttl, scope })
    }

    /// The resource owner password credentials grant (RFC 6749 section 4.3): [`Self::login`]
    /// with RFC 6749 section 5.2 errors.
    ///
    /// # Errors
    /// `invalid_grant` for bad credentials, `server_error`/`temporarily_unavailable` on
    /// storage failure.
    pub async fn password_grant(
        &self,
        ws: WorkspaceId,
        username: &str,
        password: &str,
    ) -> Result<TokenPair, OAuthError> {
        self.login(ws, username, password).await.map_err(OAuthError::from_grant_error)
    }

    /// The refresh_token grant (RFC 6749 section 6): [`Self::refresh`] with RFC 6749
    /// section 5.2 errors.
    ///
    /// # Errors
    /// `invalid_grant` for an invalid, expired, revoked or reused refresh token.
    pub async fn refresh_grant(&self, refresh_token: &str) -> Result<TokenPair, OAuthError> {
        self.refresh(refresh_token).await.map_err(OAuthError::from_grant_error)
    }

    /// Registers an OAuth2 confidential client with an Argon2id hash of its secret.
    ///
    /// # Errors
    /// [`DomainError::Invalid`] (field `clientId`, `clientSecret` or `scopes`; see
    /// [`ClientSpec`]), [`DomainError::Conflict`] when the client id exists.
    pub async fn create_client(&self, spec: &ClientSpec) -> Result<(), DomainError> {
        let id = &spec.client_id;
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)) {
            return Err(DomainError::invalid("clientId", "1..=64 characters of [A-Za-z0-9_.-]"));
        }
        if !(8..=256).contains(&spec.client_secret.len()) {
            return Err(DomainError::invalid("clientSecret", "8..=256 bytes"));
        }
        if spec.scopes.iter().any(|s| s.is_empty() || s.contains(|c: char| c.is_whitespace() || c.is_control())) {
            return Err(DomainError::invalid("scopes", "each scope must be non-empty, without spaces"));
        }
        let record = OAuthClientRecord {
            client_id: id.clone(),
            secret_hash: self.inner.hasher.hash(&spec.client_secret).await?,
            scopes: spec.scopes.join(" "),
            created_at: Millis::now(),
        };
        self.inner.store.create_oauth_client(&record).await.map_err(|e| match e {
            StoreError::Conflict(_) => DomainError::Conflict("client id exists".into()),
            e => e.into(),
        })
    }

    /// The JWK Set of our signing key (RFC 7517 section 5), served at
    /// `/.well-known/jwks.json`: `{"keys":[{"kty":"RSA","use":"sig","alg":"RS256","kid":..,
    /// "n":..,"e":..}]}` with `n` and `e` base64url without padding.
    pub fn jwks(&self) -> serde_json::Value {
        json!({ "keys": [self.inner.tokens.signing.jwk()] })
    }

    /// The OpenID Provider metadata (OpenID Connect Discovery 1.0 section 3; RFC 8414),
    /// served at `/.well-known/openid-configuration`. URLs are relative to the issuer:
    /// `jwks_uri` = `<issuer>/.well-known/jwks.json`, `token_endpoint` =
    /// `<issuer>/oauth2/token`.
    pub fn openid_configuration(&self) -> serde_json::Value {
        let iss = &self.inner.cfg.issuer;
        let base = iss.trim_end_matches('/');
        json!({
            "issuer": iss,
            "jwks_uri": format!("{base}/.well-known/jwks.json"),
            "token_endpoint": format!("{base}/oauth2/token"),
            "grant_types_supported": ["password", "refresh_token", "client_credentials"],
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "ws", "token_use", "scope"],
        })
    }

    /// A new refresh token of `family` (`None`: the first of a new family, named after it).
    fn new_refresh_token(
        &self,
        user: UserId,
        ws: WorkspaceId,
        family: Option<&str>,
    ) -> Result<(String, RefreshTokenRecord), DomainError> {
        let ttl = self.inner.cfg.refresh_ttl_secs;
        let (token, claims) = self.inner.tokens.issue(user.to_string(), ws, TokenUse::Refresh, ttl, None)?;
        let record = RefreshTokenRecord {
            family_id: family.map_or_else(|| claims.jti.clone(), str::to_owned),
            jti: claims.jti,
            user_id: user,
            workspace_id: ws,
            issued_at: Millis(claims.iat * 1000),
            expires_at: Millis(claims.exp * 1000),
            revoked_at: None,
        };
        Ok((token, record))
    }

    fn pair_with_refresh(&self, user: UserId, ws: WorkspaceId, refresh: String) -> Result<TokenPair, DomainError> {
        let ttl = self.inner.cfg.access_ttl_secs;
        let (access, _) = self.inner.tokens.issue(user.to_string(), ws, TokenUse::Access, ttl, None)?;
        Ok(TokenPair {
            access_token: access,
            refresh_token: Some(refresh),
            token_type: "Bearer",
            expires_in: ttl,
            scope: None,
        })
    }

    async fn issue_user_pair(&self, user: UserId, ws: WorkspaceId) -> Result<TokenPair, DomainError> {
        let (refresh, record) = self.new_refresh_token(user, ws, None)?;
        self.inner.store.insert_refresh_token(&record).await?;
        self.pair_with_refresh(user, ws, refresh)
    }
}

/// Loads the stored signing key, or generates one and stores it unless a concurrent start
/// stored one first (then that one is used).
async fn load_or_generate_key(store: &dyn AuthStore) -> Result<SigningKey, AuthError> {
    if let Some(rec) = store.signing_key().await? {
        return SigningKey::from_pem(&rec.private_pem);
    }
    let pem = tokio::task::spawn_blocking(keys::generate_private_pem)
        .await
        .map_err(|e| AuthError::Key(format!("key generation task: {e}")))??;
    let key = SigningKey::from_pem(&pem)?;
    let record = SigningKeyRecord { kid: key.kid.clone(), private_pem: pem, created_at: Millis::now() };
    let current = store.insert_signing_key_if_absent(&record).await?;
    if current.kid == record.kid { Ok(key) } else { SigningKey::from_pem(&current.private_pem) }
}

/// Lowercases a username and checks it: 3..=32 characters of `[a-z0-9_.-]`.
///
/// # Errors
/// [`DomainError::Invalid`] with field `username`.
pub fn validate_username(username: &str) -> Result<String, DomainError> {
    let name = username.to_ascii_lowercase();
    let ok_chars = name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b));
    if !(3..=32).contains(&name.len()) || !ok_chars {
        return Err(DomainError::invalid("username", "3 to 32 characters of a-z, 0-9, '_', '.', '-'"));
    }
    Ok(name)
}

/// Checks a password's length: 8..=256 bytes (UTF-8).
///
/// # Errors
/// [`DomainError::Invalid`] with field `password`.
pub fn validate_password(password: &str) -> Result<(), DomainError> {
    if !(8..=256).contains(&password.len()) {
        return Err(DomainError::invalid("password", "8 to 256 bytes"));
    }
    Ok(())
}
