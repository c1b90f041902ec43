//! The service credential of a remote gateway: an OAuth2 access token from the core's token
//! endpoint by the client_credentials grant (RFC 6749 section 4.4), cached and refreshed
//! before it expires.

use std::time::{Duration, Instant};

use chat_domain::DomainError;
use serde::Deserialize;
use tokio::sync::Mutex;

/// RFC 6749 section 5.1 token response (the fields used here).
#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    /// Lifetime in seconds.
    expires_in: u64,
}

/// RFC 6749 section 5.2 error response.
#[derive(Deserialize)]
struct TokenError {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// A token and when to replace it.
struct Cached {
    token: String,
    /// After this instant the next caller fetches a new token (three quarters of its life).
    refresh_at: Instant,
    /// The token's expiry as the endpoint stated it.
    expires_at: Instant,
}

/// The gateway's service token: fetched on first use, refreshed once three quarters of its
/// lifetime have passed (one fetch at a time; callers wait for it), and dropped when the
/// core refuses it ([`ServiceToken::invalidate`]).
pub(crate) struct ServiceToken {
    http: reqwest::Client,
    url: String,
    client_id: String,
    client_secret: String,
    scope: Option<String>,
    current: Mutex<Option<Cached>>,
}

impl ServiceToken {
    /// A token source for `url` (the core's `/oauth2/token`). `timeout` bounds each fetch.
    pub(crate) fn new(
        url: String,
        client_id: String,
        client_secret: String,
        scope: Option<String>,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder().timeout(timeout).connect_timeout(timeout).build()?;
        Ok(ServiceToken { http, url, client_id, client_secret, scope, current: Mutex::new(None) })
    }

    /// A valid token, fetching a new one when there is none or the current one is due.
    ///
    /// # Errors
    /// `Unavailable` when the token endpoint cannot be reached or refuses the client (the
    /// message names the RFC 6749 error code, e.g. `invalid_client`), unless the current
    /// token is still valid (then it is used and the refresh retried on the next call).
    pub(crate) async fn get(&self) -> Result<String, DomainError> {
        let mut current = self.current.lock().await;
        let now = Instant::now();
        if let Some(c) = current.as_ref()
            && now < c.refresh_at
        {
            return Ok(c.token.clone());
        }
        match self.fetch().await {
            Ok(fresh) => {
                let token = fresh.token.clone();
                *current = Some(fresh);
                Ok(token)
            }
            Err(e) => match current.as_ref() {
                Some(c) if now < c.expires_at => {
                    tracing::warn!(error = %e, "service token refresh failed; the current token is still valid");
                    Ok(c.token.clone())
                }
                _ => Err(e),
            },
        }
    }

    /// Forgets `token` when it is the current one (the core refused it), so the next
    /// [`ServiceToken::get`] fetches a new one.
    pub(crate) async fn invalidate(&self, token: &str) {
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|c| c.token == token) {
            *current = None;
        }
    }

    async fn fetch(&self) -> Result<Cached, DomainError> {
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = &self.scope {
            form.push(("scope", scope.as_str()));
        }
        let started = Instant::now();
        let resp = self
            .http
            .post(&self.url)
            .basic_auth(form_encode(&self.client_id), Some(form_encode(&self.client_secret)))
            .form(&form)
            .send()
            .await
            .map_err(|e| DomainError::Unavailable(format!("core token endpoint {} unreachable: {e}", self.url)))?;
        let status = resp.status();
        if !status.is_success() {
            let why = match resp.json::<TokenError>().await {
                Ok(e) => format!("{}{}", e.error, e.error_description.map(|d| format!(": {d}")).unwrap_or_default()),
                Err(_) => format!("HTTP {status}"),
            };
            return Err(DomainError::Unavailable(format!(
                "core token endpoint refused the gateway's client credentials ({why})"
            )));
        }
        let body: TokenResponse = resp
            .json()
            .await
            .map_err(|e| DomainError::Unavailable(format!("core token endpoint answered an invalid body: {e}")))?;
        let life = Duration::from_secs(body.expires_in);
        Ok(Cached { token: body.access_token, refresh_at: started + life * 3 / 4, expires_at: started + life })
    }
}

/// `application/x-www-form-urlencoded` encoding of a client id or secret, as RFC 6749 section
/// 2.3.1 requires before HTTP Basic.
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => out.push(char::from(b)),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::form_encode;

    #[test]
    fn client_credentials_are_form_encoded_for_basic() {
        assert_eq!(form_encode("gateway-1.a_b*"), "gateway-1.a_b*");
        assert_eq!(form_encode("s3cr:t /é"), "s3cr%3At+%2F%C3%A9");
    }
}
