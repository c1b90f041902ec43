//! CONNECT / STOMP: version and heart-beat negotiation, authentication, session limits,
//! registration in the hub and the connection registry, CONNECTED.
//!
//! The access token is taken from, in order: the `Authorization: Bearer <JWT>` header of the
//! CONNECT frame, its `passcode` header, the handshake query `?token=` (seed). Tokens are
//! never logged.

use std::borrow::Cow;

use chat_domain::{DomainError, Millis};
use chat_pipeline::{Connection, SessionState};
use chat_stomp::{ConnectFrame, server};

use super::{Handled, Next, Session, StompError};
use crate::delivery::{ConnectedCmd, Outbound};

impl Session {
    pub(super) async fn on_connect(&mut self, connect: ConnectFrame) -> Handled {
        let version = connect.negotiate_version().map_err(|e| {
            let mut err = StompError::new(e.to_string());
            err.version_header = true;
            err
        })?;
        self.version = version;
        self.decoder.set_version(version);

        // Header names are case-sensitive in STOMP, but clients send `Authorization` too.
        let authorization =
            connect.headers.iter().find(|(name, _)| name.eq_ignore_ascii_case("authorization")).map(|(_, value)| value);
        let token = bearer(authorization)
            .or(connect.passcode.as_deref().filter(|p| !p.is_empty()))
            .or(self.peer.query_token.as_deref().filter(|t| !t.is_empty()))
            .map(str::to_owned)
            .ok_or_else(|| {
                StompError::new(
                    "authentication required - send an access token in the CONNECT 'Authorization Bearer' or \
                     'passcode' header, or as ?token= at the handshake",
                )
            })?;
        let identity = self.shared.core.verify_token(&token).await.map_err(|e| {
            // Sent before CONNECTED: no ':' (see `StompError::to_frame`).
            let reason = match e {
                DomainError::Unauthenticated(reason) => reason,
                other => other.to_string(),
            };
            StompError::new(format!("authentication failed - {reason}"))
        })?;

        let max = self.shared.cfg.max_sessions_per_user;
        if !self.shared.hub.add(identity.user_id, self.handle.clone(), max) {
            return Err(StompError::new(format!("sessions per user limit exceeded (max_sessions_per_user = {max})")));
        }
        self.identity = Some(identity);
        self.registered = true;
        metrics::gauge!("gateway_sessions").increment(1.0);
        let device = connect.headers.get("device-type").map(|d| Cow::Owned(d.to_owned()));
        self.device_type = device.unwrap_or_else(|| device_from_user_agent(self.peer.user_agent.as_deref()).into());
        // Only CONNECT needs them: not held for the life of the connection.
        self.peer.query_token = None;
        self.peer.user_agent = None;
        self.register_connection().await;

        let hb = self.shared.cfg.heartbeat().negotiate(connect.heart_beat);
        self.receive_timeout = hb.receive_timeout;
        let server_name = concat!("chat-sys/", env!("CARGO_PKG_VERSION"));
        let frame = server::connected(version, hb.reply, Some(server_name), Some(&self.id));
        let frame = self.encode(&frame).ok_or_else(|| StompError::new("internal error: cannot encode CONNECTED"))?;
        self.queue(Outbound::Connected(Box::new(ConnectedCmd {
            frame,
            version,
            identity,
            send_interval: hb.send_interval,
        })));
        tracing::debug!(session = %self.id, user = %identity.user_id, %version, "session connected");
        Ok(Next::Continue)
    }

    /// Registers (again) this connection in the registry; failures are logged (deliveries
    /// then miss this connection until the next touch re-registers it; clients catch up by seq).
    pub(super) async fn register_connection(&mut self) {
        let Some(identity) = self.identity else { return };
        let now = Millis::now();
        let conn = Connection {
            connection_id: self.id.to_string(),
            user_id: identity.user_id,
            workspace_id: identity.workspace_id,
            gateway_node_id: self.shared.cfg.node_id.clone(),
            connected_at: now,
            last_ping_at: now,
            device_type: self.device_type.to_string(),
            ip_address: self.peer.addr.map(|a| a.ip().to_string()).unwrap_or_default(),
            state: SessionState::Connected,
        };
        if let Err(e) = self.shared.registry.register(conn).await {
            tracing::warn!(error = %e, session = %self.id, "registry register failed");
        }
    }
}

/// The token of an `Authorization: Bearer <token>` value (scheme case-insensitive).
fn bearer(value: Option<&str>) -> Option<&str> {
    let v = value?.trim();
    let (scheme, token) = v.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}

/// A coarse device type from a `User-Agent`: `mobile`, `web`, or `other`.
fn device_from_user_agent(ua: Option<&str>) -> &'static str {
    match ua {
        Some(ua) if ["Android", "iPhone", "iPad", "Mobile"].iter().any(|k| ua.contains(k)) => "mobile",
        Some(ua) if ua.contains("Mozilla") => "web",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_token_is_extracted() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearer")), None);
        assert_eq!(bearer(None), None);
    }

    #[test]
    fn device_type_from_user_agent() {
        assert_eq!(device_from_user_agent(Some("Mozilla/5.0 (iPhone)")), "mobile");
        assert_eq!(device_from_user_agent(Some("Mozilla/5.0 (X11)")), "web");
        assert_eq!(device_from_user_agent(None), "other");
    }
}
