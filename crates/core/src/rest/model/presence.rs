//! API model of presence (`GET /api/v1/users/{userId}/presence`,
//! `GET /api/v1/conversations/{id}/presence`).

use chat_domain::{PresenceStatus, UserPresence};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// Online or offline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PresenceStatusDto {
    /// At least one live connection (any device).
    Online,
    /// No live connection.
    Offline,
}

/// A user's presence (ephemeral state from the connection registry; the same values the
/// STOMP `PRESENCE` signal pushes).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PresenceDto {
    /// The user.
    pub user_id: Uuid,
    /// Online or offline.
    pub status: PresenceStatusDto,
    /// Online: latest heart-beat of any of its connections. Offline: when its last
    /// connection went away or expired; `null` when not seen since the server started.
    #[schema(format = DateTime)]
    pub last_seen_at: Option<String>,
    /// Live connections (devices); 0 when offline.
    pub connections: u32,
}

impl From<&UserPresence> for PresenceDto {
    fn from(p: &UserPresence) -> Self {
        PresenceDto {
            user_id: p.user_id.uuid(),
            status: match p.status {
                PresenceStatus::Online => PresenceStatusDto::Online,
                PresenceStatus::Offline => PresenceStatusDto::Offline,
            },
            last_seen_at: p.last_seen_at.map(|m| m.to_rfc3339()),
            connections: p.connections,
        }
    }
}
