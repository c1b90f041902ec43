//! Domain model of chat-sys.
//!
//! Architecture invariant: this crate does no I/O and knows no wire format (no STOMP, no
//! HTTP, no SQL). It owns the vocabulary every other crate speaks: typed ids
//! ([`ids`]), instants ([`Millis`]), entities ([`model`]), the conversation event log's
//! entries ([`event`]), the domain error ([`DomainError`]), configurable limits
//! ([`Limits`]) and the authorization rules of `product.md` ([`authz`]).

pub mod attachment;
pub mod authz;
pub mod error;
pub mod event;
pub mod ids;
pub mod limits;
pub mod model;
pub mod presence;
pub mod time;

pub use attachment::{Attachment, AttachmentInfo, AttachmentStatus};
pub use error::DomainError;
pub use event::{ConversationEvent, EventKind, EventPayload};
pub use ids::{AttachmentId, ConversationId, EventId, MessageId, UserId, WorkspaceId};
pub use limits::Limits;
pub use model::*;
pub use presence::{PresenceStatus, UserPresence};
pub use time::Millis;
