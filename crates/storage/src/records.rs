//! Inputs and outputs of the storage traits that are not domain entities.

use chat_domain::{
    AttachmentId, ConversationEvent, ConversationId, ConversationKind, ConversationSettings, EventId, MemberRole,
    Mentions, Message, MessageId, Millis, UserId, WorkspaceId,
};

/// An RS256 signing key pair (PKCS#8 PEM private key; the public key is derived).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// Key id published in JWKS and in JWT headers (`kid`, RFC 7517 section 4.5).
    pub kid: String,
    /// PKCS#8 PEM of the RSA private key.
    pub private_pem: String,
    /// Creation instant.
    pub created_at: Millis,
}

/// A refresh token's server-side record (RFC 6749 section 1.5); looked up by its `jti`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshTokenRecord {
    /// The token's `jti` claim.
    pub jti: String,
    /// Owner.
    pub user_id: UserId,
    /// Owner's workspace.
    pub workspace_id: WorkspaceId,
    /// Issue instant.
    pub issued_at: Millis,
    /// Expiry instant.
    pub expires_at: Millis,
    /// Revocation instant (logout, rotation, or reuse of a token of its family).
    pub revoked_at: Option<Millis>,
    /// The family: the `jti` of the token the login issued; rotation passes it on (RFC 9700
    /// section 4.14.2: reuse of a rotated token revokes the family).
    pub family_id: String,
}

/// An OAuth2 confidential client (RFC 6749 section 2.3.1) for the client_credentials grant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthClientRecord {
    /// `client_id`.
    pub client_id: String,
    /// Argon2id PHC hash of the `client_secret`.
    pub secret_hash: String,
    /// Space-separated scopes it may request.
    pub scopes: String,
    /// Creation instant.
    pub created_at: Millis,
}

/// A conversation to create, with its initial members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewConversation {
    /// Id (UUID v7, made by the caller).
    pub id: ConversationId,
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// Kind.
    pub kind: ConversationKind,
    /// Channel name.
    pub name: Option<String>,
    /// Topic.
    pub topic: Option<String>,
    /// Private (always true for DMs).
    pub is_private: bool,
    /// Creator (also the first member).
    pub created_by: UserId,
    /// Settings.
    pub settings: ConversationSettings,
    /// Initial members with roles, creator first.
    pub members: Vec<(UserId, MemberRole)>,
    /// For DMs and group DMs: the sorted member ids joined by `,`, unique, so one DM per pair.
    pub dm_key: Option<String>,
    /// Creation instant.
    pub at: Millis,
}

/// A change of conversation metadata; `None` fields stay as they are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConversationUpdate {
    /// Conversation.
    pub id: ConversationId,
    /// Acting user (the event's actor).
    pub actor: UserId,
    /// New name.
    pub name: Option<String>,
    /// New topic.
    pub topic: Option<String>,
    /// New privacy.
    pub is_private: Option<bool>,
    /// New settings (whole).
    pub settings: Option<ConversationSettings>,
    /// Instant.
    pub at: Millis,
}

/// A message to store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewMessage {
    /// Server id (UUID v7, made by the caller).
    pub id: MessageId,
    /// Event id of its creation event.
    pub event_id: EventId,
    /// Conversation.
    pub conversation_id: ConversationId,
    /// Author.
    pub user_id: UserId,
    /// Client idempotency key.
    pub client_msg_id: Option<String>,
    /// Thread root.
    pub thread_root_id: Option<MessageId>,
    /// Text.
    pub text: String,
    /// Client type (default `"default"`).
    pub kind: String,
    /// Parsed mentions.
    pub mentions: Mentions,
    /// Attachments to attach in the send's transaction: each must be a `PENDING` upload of
    /// the author in this conversation (else the send fails with `Conflict`).
    pub attachment_ids: Vec<AttachmentId>,
    /// Instant.
    pub at: Millis,
}

/// The result of one send in a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant, reason = "short-lived per-send result; boxing would change the shared API")]
pub enum SendOutcome {
    /// Stored now; the event to publish.
    Created {
        /// The stored message.
        message: Message,
        /// Its `MESSAGE` event.
        event: ConversationEvent,
    },
    /// A retry: the message stored earlier under the same client message id.
    Duplicate {
        /// The original message (its `server_seq` is the original seq).
        message: Message,
    },
}

impl SendOutcome {
    /// The stored message either way.
    pub fn message(&self) -> &Message {
        match self {
            SendOutcome::Created { message, .. } | SendOutcome::Duplicate { message } => message,
        }
    }
}

/// A text edit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageEdit {
    /// Message.
    pub id: MessageId,
    /// Editor.
    pub editor: UserId,
    /// New text.
    pub text: String,
    /// New mentions.
    pub mentions: Mentions,
    /// Instant.
    pub at: Millis,
    /// Event id for the `MESSAGE_EDITED` event.
    pub event_id: EventId,
}

/// One row of the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxRow {
    /// Autoincrement id.
    pub id: i64,
    /// Topic (`message.all`).
    pub topic: String,
    /// The event (its JSON is the row's payload).
    pub event: ConversationEvent,
}
