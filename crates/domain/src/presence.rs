//! Presence: whether a user has a live connection, and when it was last seen.
//!
//! Presence is ephemeral (product.md "Ephemeral events"): it is derived from the connection
//! registry (a user is online while at least one of its connections heart-beats within the
//! registry TTL), never appended to a conversation's log, and carries no sequence number.

use serde::{Deserialize, Serialize};

use crate::ids::UserId;
use crate::time::Millis;

/// Online or offline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PresenceStatus {
    /// At least one live connection (any device, any gateway).
    Online,
    /// No live connection.
    Offline,
}

impl PresenceStatus {
    /// `ONLINE` or `OFFLINE` (wire spelling).
    pub fn as_str(self) -> &'static str {
        match self {
            PresenceStatus::Online => "ONLINE",
            PresenceStatus::Offline => "OFFLINE",
        }
    }
}

/// One user's presence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserPresence {
    /// The user.
    pub user_id: UserId,
    /// Online or offline.
    pub status: PresenceStatus,
    /// Online: the latest heart-beat of any of its connections. Offline: when its last
    /// connection went away or expired; `None` when it was not seen since the presence
    /// tracker started.
    pub last_seen_at: Option<Millis>,
    /// Number of live connections (devices), 0 when offline.
    pub connections: u32,
}
