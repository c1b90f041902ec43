//! [`GatewayCore`]: what the gateway needs from the core service, and its in-process
//! implementation over [`ChatService`] and [`Authenticator`].
//!
//! The gateway authenticates and converts; every decision (membership, limits, idempotency)
//! is the core's. A remote implementation (gRPC) can stand behind the same trait.

use async_trait::async_trait;
use chat_auth::{Authenticator, Subject};
use chat_core::service::{ChatService, SendMessage, SendOutcome};
use chat_domain::{ConversationEvent, ConversationId, DomainError, Millis, UserId, WorkspaceId};

/// The authenticated principal of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The user.
    pub user_id: UserId,
    /// The user's workspace.
    pub workspace_id: WorkspaceId,
    /// When the access token expires (its `exp`, RFC 7519 section 4.1.4); the gateway closes
    /// the session then (ERROR "access token expired"), so a session never outlives its
    /// credential. `None`: no expiry known.
    pub expires_at: Option<Millis>,
}

/// The core operations a gateway uses. Every method except [`GatewayCore::verify_token`]
/// takes the authenticated actor and is authorized by the core.
#[async_trait]
pub trait GatewayCore: Send + Sync + 'static {
    /// Verifies an access token.
    ///
    /// # Errors
    /// `Unauthenticated` for an invalid, expired or non-user token.
    async fn verify_token(&self, token: &str) -> Result<Identity, DomainError>;

    /// Sends a message (idempotent on `client_msg_id`); returns after the commit.
    ///
    /// # Errors
    /// Whatever the service refuses (membership, validation, slow mode, ...).
    async fn send(&self, actor: UserId, req: SendMessage) -> Result<SendOutcome, DomainError>;

    /// Raises the actor's delivered/seen positions in a conversation.
    ///
    /// # Errors
    /// As the service's `ack`.
    async fn ack(
        &self,
        actor: UserId,
        conv: ConversationId,
        delivered: Option<i64>,
        seen: Option<i64>,
    ) -> Result<(), DomainError>;

    /// The member ids of a conversation the actor belongs to.
    ///
    /// # Errors
    /// `NotFound`/`Forbidden` when the actor is not a member.
    async fn member_ids(&self, actor: UserId, conv: ConversationId) -> Result<Vec<UserId>, DomainError>;

    /// Events of a conversation after `after_seq`, ascending, at most `limit`.
    ///
    /// # Errors
    /// `NotFound`/`Forbidden` when the actor is not a member; `Invalid` for a bad window.
    async fn events_after(
        &self,
        actor: UserId,
        conv: ConversationId,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<ConversationEvent>, DomainError>;

    /// The largest page [`GatewayCore::events_after`] accepts.
    fn max_page(&self) -> i64;
}

/// [`GatewayCore`] in the same process as the core (`chat-sys serve`).
#[derive(Clone)]
pub struct InProcessCore {
    service: ChatService,
    auth: Authenticator,
}

impl std::fmt::Debug for InProcessCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessCore").field("service", &self.service).finish_non_exhaustive()
    }
}

impl InProcessCore {
    /// Wraps a service and an authenticator.
    pub fn new(service: ChatService, auth: Authenticator) -> Self {
        InProcessCore { service, auth }
    }
}

#[async_trait]
impl GatewayCore for InProcessCore {
    async fn verify_token(&self, token: &str) -> Result<Identity, DomainError> {
        let principal = self.auth.verify_access_token(token)?;
        match principal.subject {
            Subject::User(user_id) => {
                Ok(Identity { user_id, workspace_id: principal.workspace_id, expires_at: Some(principal.expires_at) })
            }
            Subject::Service { .. } => Err(DomainError::Unauthenticated("a user access token is required".into())),
        }
    }

    async fn send(&self, actor: UserId, req: SendMessage) -> Result<SendOutcome, DomainError> {
        self.service.send(actor, req).await
    }

    async fn ack(
        &self,
        actor: UserId,
        conv: ConversationId,
        delivered: Option<i64>,
        seen: Option<i64>,
    ) -> Result<(), DomainError> {
        self.service.ack(actor, conv, delivered, seen).await.map(|_| ())
    }

    async fn member_ids(&self, actor: UserId, conv: ConversationId) -> Result<Vec<UserId>, DomainError> {
        Ok(self.service.members(actor, conv).await?.into_iter().map(|m| m.user_id).collect())
    }

    async fn events_after(
        &self,
        actor: UserId,
        conv: ConversationId,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<ConversationEvent>, DomainError> {
        self.service.events_after(actor, conv, after_seq, limit).await
    }

    fn max_page(&self) -> i64 {
        self.service.limits().max_page
    }
}
