//! Destinations: parsing and authorization of SEND and SUBSCRIBE targets into closed enums.
//!
//! | frame | destination | meaning |
//! |---|---|---|
//! | SEND | `/app/chat` | send a message (seed JSON body) |
//! | SEND | `/app/typing` | typing indicator `{conversationId, typing}` (ephemeral) |
//! | SEND | `/app/ack` | read position `{conversationId, deliveredSeq?, seenSeq?}` |
//! | SUBSCRIBE | `/user/queue/messages` | every conversation event and typing; optional `resume` header |
//! | SUBSCRIBE | `/user/queue/notifications/private` | ack offsets of the session's own sends |
//! | SUBSCRIBE | `/user/queue/errors` | accepted; errors are ERROR frames, nothing is sent here |
//!
//! Everything else is refused with an ERROR frame: SEND to a broker (`/topic`, `/queue`) or
//! user (`/user`) destination (clients must never forge server messages), SUBSCRIBE to a
//! broker destination or to another user's queue (`/user/<id>/queue/...`).

use std::fmt;

/// Where a SEND goes: the application destinations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SendDestination {
    /// `/app/chat`
    Chat,
    /// `/app/typing`
    Typing,
    /// `/app/ack`
    Ack,
}

/// What a SUBSCRIBE may target: the session's own user queues.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SubscribeDestination {
    /// `/user/queue/messages`: conversation events and typing.
    Messages,
    /// `/user/queue/notifications/private`: ack offsets.
    Notifications,
    /// `/user/queue/errors`: accepted for seed clients; nothing is delivered.
    Errors,
}

impl SubscribeDestination {
    /// The destination as clients write it (used in MESSAGE frames).
    pub fn as_str(self) -> &'static str {
        match self {
            SubscribeDestination::Messages => "/user/queue/messages",
            SubscribeDestination::Notifications => "/user/queue/notifications/private",
            SubscribeDestination::Errors => "/user/queue/errors",
        }
    }
}

/// Why a destination is refused. `Display` is the ERROR frame's `message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DestinationError {
    /// SEND to `/topic`, `/queue` or `/user`.
    SendToBroker(String),
    /// SUBSCRIBE to `/user/<someone>/...`.
    OtherUsersQueue(String),
    /// SUBSCRIBE to a broker destination.
    SubscribeToBroker(String),
    /// Not a destination of this server.
    Unknown(String),
}

impl fmt::Display for DestinationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DestinationError::SendToBroker(d) => {
                write!(f, "forbidden: clients may only SEND to /app destinations, not '{d}'")
            }
            DestinationError::OtherUsersQueue(d) => {
                write!(f, "forbidden: cannot subscribe to another user's queue '{d}'")
            }
            DestinationError::SubscribeToBroker(d) => write!(
                f,
                "forbidden: broker destination '{d}' cannot be subscribed; use /user/queue/messages or \
                 /user/queue/notifications/private"
            ),
            DestinationError::Unknown(d) => write!(f, "unknown destination '{d}'"),
        }
    }
}

impl std::error::Error for DestinationError {}

/// Truncates a client-supplied destination for error messages.
fn shown(d: &str) -> String {
    const MAX: usize = 96;
    if d.len() <= MAX {
        return d.to_owned();
    }
    let mut end = MAX;
    while !d.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &d[..end])
}

fn has_prefix(d: &str, prefix: &str) -> bool {
    d == prefix || d.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
}

/// Parses and authorizes a SEND destination.
///
/// # Errors
/// [`DestinationError::SendToBroker`] for `/topic`, `/queue`, `/user` (and anything under
/// them), [`DestinationError::Unknown`] otherwise.
pub fn parse_send(destination: &str) -> Result<SendDestination, DestinationError> {
    match destination {
        "/app/chat" => Ok(SendDestination::Chat),
        "/app/typing" => Ok(SendDestination::Typing),
        "/app/ack" => Ok(SendDestination::Ack),
        d if ["/topic", "/queue", "/user"].iter().any(|p| has_prefix(d, p)) => {
            Err(DestinationError::SendToBroker(shown(d)))
        }
        d => Err(DestinationError::Unknown(shown(d))),
    }
}

/// Parses and authorizes a SUBSCRIBE destination.
///
/// # Errors
/// [`DestinationError::OtherUsersQueue`] for `/user/<anything>/...` other than the session's
/// own queues, [`DestinationError::SubscribeToBroker`] for `/topic` and `/queue`,
/// [`DestinationError::Unknown`] otherwise.
pub fn parse_subscribe(destination: &str) -> Result<SubscribeDestination, DestinationError> {
    match destination {
        "/user/queue/messages" => Ok(SubscribeDestination::Messages),
        "/user/queue/notifications/private" | "/user/queue/notifications" => Ok(SubscribeDestination::Notifications),
        "/user/queue/errors" => Ok(SubscribeDestination::Errors),
        d if has_prefix(d, "/user") && !d.starts_with("/user/queue/") => {
            Err(DestinationError::OtherUsersQueue(shown(d)))
        }
        d if has_prefix(d, "/topic") || has_prefix(d, "/queue") || has_prefix(d, "/app") => {
            Err(DestinationError::SubscribeToBroker(shown(d)))
        }
        d => Err(DestinationError::Unknown(shown(d))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_destinations_are_sendable() {
        assert_eq!(parse_send("/app/chat"), Ok(SendDestination::Chat));
        assert_eq!(parse_send("/app/typing"), Ok(SendDestination::Typing));
        assert_eq!(parse_send("/app/ack"), Ok(SendDestination::Ack));
    }

    #[test]
    fn broker_and_user_destinations_are_not_sendable() {
        for d in ["/topic/x", "/queue/x", "/user/queue/messages", "/user/abc/queue/messages", "/topic"] {
            assert!(matches!(parse_send(d), Err(DestinationError::SendToBroker(_))), "{d}");
        }
        assert!(matches!(parse_send("/app/other"), Err(DestinationError::Unknown(_))));
        assert!(matches!(parse_send("/topical"), Err(DestinationError::Unknown(_))));
    }

    #[test]
    fn only_own_queues_are_subscribable() {
        assert_eq!(parse_subscribe("/user/queue/messages"), Ok(SubscribeDestination::Messages));
        assert_eq!(parse_subscribe("/user/queue/notifications/private"), Ok(SubscribeDestination::Notifications));
        let other = "/user/0192e4a0-0000-7000-8000-000000000001/queue/messages";
        assert!(matches!(parse_subscribe(other), Err(DestinationError::OtherUsersQueue(_))));
        assert!(matches!(parse_subscribe("/topic/x"), Err(DestinationError::SubscribeToBroker(_))));
        assert!(matches!(parse_subscribe("/queue/x"), Err(DestinationError::SubscribeToBroker(_))));
        assert!(matches!(parse_subscribe("/user/queue/other"), Err(DestinationError::Unknown(_))));
        assert!(parse_subscribe(&"x".repeat(1000)).unwrap_err().to_string().len() < 200);
    }
}
