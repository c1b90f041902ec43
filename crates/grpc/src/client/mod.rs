//! The client side of the gRPC API: a gateway running as its own process reaches the core
//! through [`GrpcCore`] (a [`chat_gateway::GatewayCore`]) and [`GrpcRegistry`] (a
//! [`chat_pipeline::ConnectionRegistry`]), as the seed's gateway does.
//!
//! ```no_run
//! # async fn demo(streams: std::sync::Arc<dyn chat_pipeline::DeliveryStreams>) -> anyhow::Result<()> {
//! use std::sync::Arc;
//! use chat_grpc::{GrpcCore, GrpcCoreConfig};
//! let core = GrpcCore::connect(GrpcCoreConfig {
//!     endpoint: "http://core:9090".into(),
//!     token_url: "http://core:8081/oauth2/token".into(),
//!     client_id: "gateway".into(),
//!     client_secret: "secret".into(),
//!     ..GrpcCoreConfig::default()
//! })?;
//! let registry = Arc::new(core.registry());
//! let gateway = chat_gateway::Gateway::new(Default::default(), Arc::new(core), registry, streams);
//! # Ok(()) }
//! ```
//!
//! # Calls
//! | [`GatewayCore`] / [`ConnectionRegistry`] | rpc |
//! |---|---|
//! | `verify_token` | `auth.v1.AuthService.VerifyAccessToken` |
//! | `send` | `message.v1.MessageService.StreamCreateMessages` (one stream, multiplexed; see below) |
//! | `ack` | `MessageService.UpdateReadPosition` |
//! | `member_ids` | `MessageService.GetConversationMemberIds` |
//! | `events_after` | `MessageService.GetEventsAfter` |
//! | `register`, `unregister`, `touch` | `connection.v1.ConnectionManager.RegisterConnection`, `UnregisterConnection`, `UpdateLastPing` |
//! | `connections_of_user(s)`, `_of_gateway`, `all_connections`, `online_users` | `GetConnectionsByUser`, `GetConnectionsByUsers`, `GetConnectionsByGatewayNode`, `GetAllConnections`, `GetOnlineUsers` |
//!
//! # Authentication
//! Every call carries a service token (OAuth2 client_credentials grant, RFC 6749 section
//! 4.4, at [`GrpcCoreConfig::token_url`] with HTTP Basic client authentication), fetched at
//! the first call and refreshed once three quarters of its lifetime have passed; when the
//! core answers UNAUTHENTICATED the token is fetched again and the call retried once. The
//! service acts for the user each request names (`user_id`).
//!
//! # Sends
//! All sends share ONE `StreamCreateMessages` call, opened at the first send and reopened
//! at the first send after it broke. Many sends are in flight at once (at most
//! [`GrpcCoreConfig::max_in_flight_sends`]); the core answers them in request order, each
//! after its commit, and the client hands each answer to its caller by the request's index.
//! The core runs sends of different conversations concurrently (sharing group commits) and
//! sends of one conversation one after another, so their seqs follow request order. When the
//! stream breaks, the sends in flight fail with `Unavailable` (retrying with the same client
//! message id is safe: sends are idempotent).
//!
//! # Errors
//! Status codes map back to [`DomainError`] by [`status_domain`] (the inverse of
//! [`crate::domain_status`]), so a remote gateway sends the same STOMP `ERROR` messages as
//! an in-process one; an unreachable core is `Unavailable` ("the core is unavailable: ...").
//! Every call is bounded by [`GrpcCoreConfig::request_timeout`].

mod conn;
mod decode;
mod registry;
mod sender;
mod status;
mod token;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chat_core::service::{SendMessage, SendOutcome};
use chat_domain::{ConversationEvent, ConversationId, DomainError, Limits, UserId};
use chat_gateway::{GatewayCore, Identity};
use chat_pipeline::ConnectionRegistry;

pub use registry::GrpcRegistry;
pub use status::status_domain;

use crate::pb::auth::v1 as apb;
use crate::pb::auth::v1::auth_service_client::AuthServiceClient;
use crate::pb::message::v1 as mpb;
use crate::pb::message::v1::message_service_client::MessageServiceClient;
use conn::Conn;
use sender::SendStream;

/// Where the core is and how the gateway authenticates to it.
#[derive(Clone, PartialEq, Eq)]
pub struct GrpcCoreConfig {
    /// The core's gRPC endpoint, `http://host:port` (default `http://127.0.0.1:9090`).
    pub endpoint: String,
    /// The core's OAuth2 token endpoint, `http(s)://host:port/oauth2/token` (default
    /// `http://127.0.0.1:8081/oauth2/token`).
    pub token_url: String,
    /// OAuth2 client id of the gateway's service client (`chat-sys client create`). Required.
    pub client_id: String,
    /// Its secret. Required.
    pub client_secret: String,
    /// Scope to request (space-separated), when the core requires one
    /// (`chat_grpc::GrpcConfig::service_scope`); default `None`.
    pub scope: Option<String>,
    /// TCP connect timeout to the core (default 3 s).
    pub connect_timeout: Duration,
    /// Longest wait for one call, a send's answer included (default 10 s); a send that
    /// times out fails with `Unavailable` (its outcome unknown: retry with the same key).
    pub request_timeout: Duration,
    /// Sends in flight on the send stream at once (default 256); more wait their turn.
    pub max_in_flight_sends: usize,
    /// Page size assumed for [`GatewayCore::max_page`] until the core states its own in a
    /// `GetEventsAfter` answer (default `Limits::default().max_page`, 500).
    pub max_page: i64,
}

impl Default for GrpcCoreConfig {
    fn default() -> Self {
        GrpcCoreConfig {
            endpoint: "http://127.0.0.1:9090".into(),
            token_url: "http://127.0.0.1:8081/oauth2/token".into(),
            client_id: String::new(),
            client_secret: String::new(),
            scope: None,
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(10),
            max_in_flight_sends: 256,
            max_page: Limits::default().max_page,
        }
    }
}

impl std::fmt::Debug for GrpcCoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcCoreConfig")
            .field("endpoint", &self.endpoint)
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("scope", &self.scope)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_in_flight_sends", &self.max_in_flight_sends)
            .field("max_page", &self.max_page)
            .finish()
    }
}

/// A [`GrpcCoreConfig`] that cannot work.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// `endpoint` is not an `http(s)://host:port` URI.
    #[error("invalid core gRPC endpoint {0}")]
    Endpoint(String),
    /// `token_url` is not an http(s) URL.
    #[error("invalid core token URL {0}")]
    TokenUrl(String),
    /// The client id or secret is missing.
    #[error("invalid gateway client credentials: {0}")]
    Credentials(&'static str),
    /// A timeout or bound is out of range.
    #[error("invalid gRPC client settings: {0}")]
    Settings(&'static str),
    /// The HTTP client for the token endpoint could not be built.
    #[error("cannot build the token endpoint's HTTP client: {0}")]
    Http(String),
}

/// [`GatewayCore`] over the core's gRPC API (a gateway in its own process). Cheap to clone;
/// clones share the connection, the token and the send stream.
#[derive(Clone)]
pub struct GrpcCore {
    conn: Arc<Conn>,
    sends: Arc<SendStream>,
    max_page: Arc<AtomicI64>,
}

impl std::fmt::Debug for GrpcCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcCore").field("cfg", &self.conn.cfg).finish_non_exhaustive()
    }
}

impl GrpcCore {
    /// Validates `cfg` and prepares the connection; nothing is connected or fetched until the
    /// first call (the channel connects lazily and reconnects by itself), so a gateway may
    /// start before its core. Needs a tokio runtime.
    ///
    /// # Errors
    /// [`ClientError`] for a malformed endpoint or token URL, missing credentials, or zero
    /// timeouts/bounds.
    pub fn connect(cfg: GrpcCoreConfig) -> Result<GrpcCore, ClientError> {
        let max_page = Arc::new(AtomicI64::new(cfg.max_page.max(1)));
        let conn = Arc::new(Conn::new(cfg)?);
        let sends = Arc::new(SendStream::spawn(conn.clone()));
        Ok(GrpcCore { conn, sends, max_page })
    }

    /// A [`GrpcRegistry`] sharing this core's connection and token.
    pub fn registry(&self) -> GrpcRegistry {
        GrpcRegistry::new(self.conn.clone())
    }

    /// The settings in use.
    pub fn config(&self) -> &GrpcCoreConfig {
        &self.conn.cfg
    }
}

/// The send request of `actor` (the service acts for it).
fn create_request(actor: UserId, req: SendMessage) -> mpb::CreateMessageRequest {
    mpb::CreateMessageRequest {
        message: Some(mpb::Message {
            conversation_id: req.conversation_id.to_string(),
            user_id: actor.to_string(),
            thread_root_id: req.thread_root_id.map(|t| t.to_string()).unwrap_or_default(),
            text: req.text,
            r#type: req.kind.unwrap_or_default(),
            ..Default::default()
        }),
        client_msg_id: req.client_msg_id.unwrap_or_default(),
        attachment_ids: req.attachment_ids.iter().map(ToString::to_string).collect(),
    }
}

#[async_trait]
impl GatewayCore for GrpcCore {
    async fn verify_token(&self, token: &str) -> Result<Identity, DomainError> {
        let msg = apb::VerifyRequest { access_token: token.to_owned() };
        let out = self
            .conn
            .unary(msg, |ch, r| async move { AuthServiceClient::new(ch).verify_access_token(r).await })
            .await
            .map_err(conn::CallError::into_domain)?;
        if !out.valid {
            let reason = if out.reason.is_empty() { "invalid access token".to_owned() } else { out.reason };
            return Err(DomainError::Unauthenticated(reason));
        }
        Ok(Identity {
            user_id: decode::id("user_id", &out.user_id)?,
            workspace_id: decode::id("workspace_id", &out.workspace_id)?,
            expires_at: out.expires_at.as_ref().map(|t| {
                chat_domain::Millis(t.seconds.saturating_mul(1000).saturating_add(i64::from(t.nanos / 1_000_000)))
            }),
        })
    }

    async fn send(&self, actor: UserId, req: SendMessage) -> Result<SendOutcome, DomainError> {
        let resp = self.sends.send(create_request(actor, req)).await?;
        let message = decode::sent_message(&resp)?;
        let status = resp.ack_offset.as_ref().map(|a| a.status.as_str()).unwrap_or_default();
        match (status, resp.event.as_ref()) {
            ("DUPLICATE", _) => Ok(SendOutcome::Duplicate { message }),
            (_, Some(event)) => Ok(SendOutcome::Created { message, event: decode::event(event)? }),
            (other, None) => {
                Err(DomainError::Internal(format!("core answered a send with status {other:?} and no event")))
            }
        }
    }

    async fn ack(
        &self,
        actor: UserId,
        conv: ConversationId,
        delivered: Option<i64>,
        seen: Option<i64>,
    ) -> Result<(), DomainError> {
        if delivered.is_none() && seen.is_none() {
            return Ok(()); // nothing to move (the core would refuse an empty update)
        }
        let msg = mpb::UpdateReadPositionRequest {
            conversation_id: conv.to_string(),
            user_id: actor.to_string(),
            delivered_seq: delivered,
            seen_seq: seen,
        };
        self.conn
            .unary(msg, |ch, r| async move { MessageServiceClient::new(ch).update_read_position(r).await })
            .await
            .map(|_| ())
            .map_err(conn::CallError::into_domain)
    }

    async fn member_ids(&self, actor: UserId, conv: ConversationId) -> Result<Vec<UserId>, DomainError> {
        let msg =
            mpb::GetConversationMemberIdsRequest { conversation_id: conv.to_string(), user_id: actor.to_string() };
        let out = self
            .conn
            .unary(msg, |ch, r| async move { MessageServiceClient::new(ch).get_conversation_member_ids(r).await })
            .await
            .map_err(conn::CallError::into_domain)?;
        out.user_ids.iter().map(|u| decode::id("user_ids", u)).collect()
    }

    async fn events_after(
        &self,
        actor: UserId,
        conv: ConversationId,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<ConversationEvent>, DomainError> {
        let msg = mpb::GetEventsAfterRequest {
            conversation_id: conv.to_string(),
            user_id: actor.to_string(),
            after_seq,
            limit,
        };
        let out = self
            .conn
            .unary(msg, |ch, r| async move { MessageServiceClient::new(ch).get_events_after(r).await })
            .await
            .map_err(conn::CallError::into_domain)?;
        if out.max_page > 0 {
            self.max_page.store(out.max_page, Ordering::Relaxed);
        }
        out.events.iter().map(decode::event).collect()
    }

    fn max_page(&self) -> i64 {
        self.max_page.load(Ordering::Relaxed)
    }
}

/// Compile-time check: the registry is usable as the gateway's trait object.
const _: fn(GrpcRegistry) -> Arc<dyn ConnectionRegistry> = |r| Arc::new(r);
