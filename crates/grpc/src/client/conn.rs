//! The shared connection to the core: a lazily connecting tonic [`Channel`] (it reconnects by
//! itself) and the service token, with the call helper that attaches the token, bounds the
//! wait and retries once with a fresh token when the core refuses the current one.

use std::future::Future;
use std::time::Duration;

use chat_domain::DomainError;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Response, Status};

use super::token::ServiceToken;
use super::{ClientError, GrpcCoreConfig};

/// Why a call to the core failed.
#[derive(Debug)]
pub(crate) enum CallError {
    /// No service token (the token endpoint is unreachable or refuses the client).
    Token(DomainError),
    /// The call's status (the core's answer, a transport failure, or the timeout).
    Status(Status),
}

impl CallError {
    /// As the domain error the core had (see [`super::status_domain`]).
    pub(crate) fn into_domain(self) -> DomainError {
        match self {
            CallError::Token(e) => e,
            CallError::Status(s) => super::status_domain(&s),
        }
    }

    /// As a registry error.
    pub(crate) fn into_pipeline(self) -> chat_pipeline::PipelineError {
        match self {
            CallError::Token(e) => chat_pipeline::PipelineError::Unavailable(e.to_string()),
            CallError::Status(s) => super::status::pipeline_error(&s),
        }
    }
}

/// Channel, token and settings, shared by [`super::GrpcCore`], its send stream and
/// [`super::GrpcRegistry`].
pub(crate) struct Conn {
    pub(crate) channel: Channel,
    pub(crate) token: ServiceToken,
    pub(crate) cfg: GrpcCoreConfig,
}

impl Conn {
    /// Validates the settings and creates the (not yet connected) channel. Needs a tokio
    /// runtime (the channel spawns its worker).
    pub(crate) fn new(cfg: GrpcCoreConfig) -> Result<Conn, ClientError> {
        let endpoint = Endpoint::from_shared(cfg.endpoint.clone())
            .map_err(|e| ClientError::Endpoint(format!("{}: {e}", cfg.endpoint)))?;
        if !(cfg.endpoint.starts_with("http://") || cfg.endpoint.starts_with("https://")) {
            return Err(ClientError::Endpoint(format!("{}: expected http://host:port", cfg.endpoint)));
        }
        let url = reqwest::Url::parse(&cfg.token_url)
            .map_err(|e| ClientError::TokenUrl(format!("{}: {e}", cfg.token_url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ClientError::TokenUrl(format!("{}: expected an http(s) URL", cfg.token_url)));
        }
        if cfg.client_id.trim().is_empty() {
            return Err(ClientError::Credentials("client_id is empty"));
        }
        if cfg.client_secret.is_empty() {
            return Err(ClientError::Credentials("client_secret is empty"));
        }
        if cfg.request_timeout.is_zero() || cfg.connect_timeout.is_zero() {
            return Err(ClientError::Settings("request_timeout and connect_timeout must be positive"));
        }
        if cfg.max_in_flight_sends == 0 {
            return Err(ClientError::Settings("max_in_flight_sends must be at least 1"));
        }
        let channel = endpoint
            .connect_timeout(cfg.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(20))
            .keep_alive_timeout(Duration::from_secs(10))
            .keep_alive_while_idle(true)
            .connect_lazy();
        let token = ServiceToken::new(
            cfg.token_url.clone(),
            cfg.client_id.clone(),
            cfg.client_secret.clone(),
            cfg.scope.clone(),
            cfg.request_timeout,
        )
        .map_err(|e| ClientError::Http(e.to_string()))?;
        Ok(Conn { channel, token, cfg })
    }

    /// `msg` with `authorization: Bearer <token>`.
    pub(crate) fn authed<T>(token: &str, msg: T) -> Result<Request<T>, CallError> {
        let mut req = Request::new(msg);
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| CallError::Token(DomainError::Internal("service token is not ASCII".into())))?;
        req.metadata_mut().insert("authorization", value);
        Ok(req)
    }

    /// One unary call: `call` gets a tonic client channel and the authorized request. Bounded
    /// by `request_timeout` (DEADLINE_EXCEEDED); when the core answers UNAUTHENTICATED (our
    /// service token expired or its key changed) the token is fetched again and the call
    /// retried once.
    pub(crate) async fn unary<Q, R, F, Fut>(&self, msg: Q, call: F) -> Result<R, CallError>
    where
        Q: Clone,
        F: Fn(Channel, Request<Q>) -> Fut,
        Fut: Future<Output = Result<Response<R>, Status>>,
    {
        let mut retried = false;
        loop {
            let token = self.token.get().await.map_err(CallError::Token)?;
            let req = Self::authed(&token, msg.clone())?;
            let out = match tokio::time::timeout(self.cfg.request_timeout, call(self.channel.clone(), req)).await {
                Ok(out) => out,
                Err(_) => Err(Status::deadline_exceeded(format!(
                    "no answer within {} ms",
                    self.cfg.request_timeout.as_millis()
                ))),
            };
            match out {
                Ok(resp) => return Ok(resp.into_inner()),
                Err(s) if s.code() == Code::Unauthenticated && !retried => {
                    self.token.invalidate(&token).await;
                    retried = true;
                }
                Err(s) => return Err(CallError::Status(s)),
            }
        }
    }
}
