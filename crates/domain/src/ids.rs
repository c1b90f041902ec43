//! Typed identifiers. Every id is a UUID (RFC 9562); the server creates v7 ids so they sort by
//! creation time. Serialized as the canonical hyphenated lowercase string.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh time-ordered id (UUID v7, RFC 9562 section 5.7).
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// The wrapped UUID.
            pub fn uuid(self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            /// Parses any RFC 9562 text form (hyphenated, simple, braced, URN).
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }
    };
}

id_type!(
    /// A user account.
    UserId
);
id_type!(
    /// A workspace (tenant); every user and conversation belongs to exactly one.
    WorkspaceId
);
id_type!(
    /// A channel, DM or group DM.
    ConversationId
);
id_type!(
    /// A message. For sends over STOMP the server id is distinct from the client's
    /// `messageId`, which is kept as the idempotency key (`client_msg_id`).
    MessageId
);
id_type!(
    /// One entry of a conversation's event log (also the dedupe key downstream).
    EventId
);
id_type!(
    /// An uploaded file.
    AttachmentId
);

impl WorkspaceId {
    /// The default workspace every self-registered user joins:
    /// `00000000-0000-7000-8000-000000000001`.
    pub const DEFAULT: WorkspaceId = WorkspaceId(Uuid::from_u128(0x0000_0000_0000_7000_8000_0000_0000_0001));
}
