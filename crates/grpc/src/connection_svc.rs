//! `connection.v1.ConnectionManager`, backed by the [`chat_pipeline::ConnectionRegistry`].
//!
//! Authorization: a service credential may do everything (acting for the user named in the
//! request); a user token registers, pings, lists and removes only its own connections (a
//! connection id registered by another user is ALREADY_EXISTS; a gateway node without live
//! connections, i.e. one no gateway registered, is FAILED_PRECONDITION), sees
//! online users of its own workspace only, and may not list by gateway node or everything
//! (nor look up other users with `GetConnectionsByUsers`).

use std::sync::Arc;

use chat_auth::Principal;
use chat_domain::{DomainError, Millis, UserId, WorkspaceId};
use chat_pipeline::{Connection, SessionState};
use tonic::{Request, Response, Status};

use crate::Shared;
use crate::authn::{acting_user, is_service, parse_id, require_service};
use crate::convert::{connections, millis};
use crate::error::{domain_status, pipeline_status};
use crate::pb::connection::v1 as pb;
use crate::pb::connection::v1::connection_manager_server::ConnectionManager;

/// Longest connection id and gateway node id, in bytes.
const MAX_ID_BYTES: usize = 128;
/// Live connections a user may register for itself with a user token (the gateway's
/// `max_sessions_per_user` default); beyond it RESOURCE_EXHAUSTED.
const MAX_USER_CONNECTIONS: usize = 16;
/// Longest device type and IP address, in bytes.
const MAX_INFO_BYTES: usize = 64;
/// Most distinct user ids of one `GetConnectionsByUsers` call.
pub(crate) const MAX_USERS_PER_LOOKUP: usize = 10_000;

/// The `ConnectionManager` implementation.
pub(crate) struct ConnectionApi(pub(crate) Arc<Shared>);

fn check_len(field: &str, value: &str, min: usize, max: usize) -> Result<(), Status> {
    if (min..=max).contains(&value.len()) {
        Ok(())
    } else {
        Err(Status::invalid_argument(format!("invalid {field}: {min}..={max} bytes")))
    }
}

impl ConnectionApi {
    /// Whether `connection_id` is a live connection of `user`.
    async fn owns(&self, user: UserId, connection_id: &str) -> Result<bool, Status> {
        let mine = self.0.registry.connections_of_user(user).await.map_err(pipeline_status)?;
        Ok(mine.iter().any(|c| c.connection_id == connection_id))
    }

    /// The workspace of the connection being registered: a user's own (a different one in the
    /// request is PERMISSION_DENIED); for a service, the named user's (which must exist).
    async fn workspace_of(&self, p: &Principal, user: UserId, requested: &str) -> Result<WorkspaceId, Status> {
        let requested: Option<WorkspaceId> =
            if requested.trim().is_empty() { None } else { Some(parse_id("connection.workspace_id", requested)?) };
        let actual = if is_service(p) {
            let found = self.0.service.store().user(user).await.map_err(|e| domain_status(e.into()))?;
            found.ok_or_else(|| domain_status(DomainError::NotFound("user")))?.workspace_id
        } else {
            p.workspace_id
        };
        match requested {
            Some(w) if w != actual => {
                Err(Status::permission_denied("connection.workspace_id is not the user's workspace"))
            }
            _ => Ok(actual),
        }
    }
}

#[tonic::async_trait]
impl ConnectionManager for ConnectionApi {
    async fn register_connection(
        &self,
        req: Request<pb::RegisterConnectionRequest>,
    ) -> Result<Response<pb::RegisterConnectionResponse>, Status> {
        let p = self.0.authenticate(req.metadata())?;
        let req = req.into_inner();
        let c = req.connection.ok_or_else(|| Status::invalid_argument("connection is required"))?;
        let (outer, inner) = (req.user_id.trim(), c.user_id.trim());
        if !outer.is_empty() && !inner.is_empty() && outer != inner {
            return Err(Status::invalid_argument("userId and connection.user_id differ"));
        }
        let user = acting_user(&p, "userId", if outer.is_empty() { inner } else { outer })?;
        check_len("connection.connection_id", &c.connection_id, 1, MAX_ID_BYTES)?;
        check_len("connection.gateway_node_id", &c.gateway_node_id, 1, MAX_ID_BYTES)?;
        check_len("connection.device_type", &c.device_type, 0, MAX_INFO_BYTES)?;
        check_len("connection.ip_address", &c.ip_address, 0, MAX_INFO_BYTES)?;
        let workspace_id = self.workspace_of(&p, user, &c.workspace_id).await?;
        let now = Millis::now();
        let (connected_at, last_ping_at) = if is_service(&p) {
            // A gateway's clock: taken as given, but never in the future (a ping "from the
            // future" would keep a connection alive past its TTL).
            let connected_at = c.connected_at.as_ref().map_or(now, millis).min(now);
            (connected_at, c.last_ping_at.as_ref().map_or(connected_at, millis).min(now))
        } else {
            // A user may replace its own connection, never take over another user's id, and
            // holds a bounded number of live connections; its instants are the server's.
            let mine = self.0.registry.connections_of_user(user).await.map_err(pipeline_status)?;
            let replaces = mine.iter().any(|x| x.connection_id == c.connection_id);
            if !replaces && mine.len() >= MAX_USER_CONNECTIONS {
                return Err(domain_status(DomainError::RateLimited {
                    reason: format!("at most {MAX_USER_CONNECTIONS} live connections per user"),
                    retry_after_ms: 30_000,
                }));
            }
            let all = self.0.registry.all_connections().await.map_err(pipeline_status)?;
            if all.iter().any(|x| x.connection_id == c.connection_id && x.user_id != user) {
                return Err(domain_status(DomainError::Conflict("connection_id is registered by another user".into())));
            }
            // Only a gateway (service credential) brings a node into being: a user naming
            // nodes at will would make the delivery layer keep a stream per invented name.
            if !all.iter().any(|x| x.gateway_node_id == c.gateway_node_id) {
                return Err(Status::failed_precondition(
                    "connection.gateway_node_id names no gateway with live connections",
                ));
            }
            (now, now)
        };
        let conn = Connection {
            connection_id: c.connection_id,
            user_id: user,
            workspace_id,
            gateway_node_id: c.gateway_node_id,
            connected_at,
            last_ping_at,
            device_type: c.device_type,
            ip_address: c.ip_address,
            state: SessionState::Connected,
        };
        self.0.registry.register(conn).await.map_err(pipeline_status)?;
        Ok(Response::new(pb::RegisterConnectionResponse { success: true }))
    }

    async fn unregister_connection(
        &self,
        req: Request<pb::UnregisterConnectionRequest>,
    ) -> Result<Response<pb::UnregisterConnectionResponse>, Status> {
        let p = self.0.authenticate(req.metadata())?;
        let req = req.into_inner();
        check_len("connection_id", &req.connection_id, 1, MAX_ID_BYTES)?;
        let owner = if is_service(&p) && req.user_id.trim().is_empty() {
            None
        } else {
            Some(acting_user(&p, "userId", &req.user_id)?)
        };
        if let Some(user) = owner
            && !self.owns(user, &req.connection_id).await?
        {
            return Ok(Response::new(pb::UnregisterConnectionResponse { success: false }));
        }
        let success = self.0.registry.unregister(&req.connection_id).await.map_err(pipeline_status)?;
        Ok(Response::new(pb::UnregisterConnectionResponse { success }))
    }

    async fn update_last_ping(
        &self,
        req: Request<pb::UpdateLastPingRequest>,
    ) -> Result<Response<pb::UpdateLastPingResponse>, Status> {
        let p = self.0.authenticate(req.metadata())?;
        let req = req.into_inner();
        check_len("connection_id", &req.connection_id, 1, MAX_ID_BYTES)?;
        if let Some(user) = p.user_id()
            && !self.owns(user, &req.connection_id).await?
        {
            return Ok(Response::new(pb::UpdateLastPingResponse { success: false }));
        }
        // Users ping with the server's clock; a service's instant is never in the future.
        let now = Millis::now();
        let at = if is_service(&p) { req.last_ping_at.as_ref().map_or(now, millis).min(now) } else { now };
        let success = self.0.registry.touch(&req.connection_id, at).await.map_err(pipeline_status)?;
        Ok(Response::new(pb::UpdateLastPingResponse { success }))
    }

    async fn get_connections_by_user(
        &self,
        req: Request<pb::GetConnectionsByUserRequest>,
    ) -> Result<Response<pb::GetConnectionsByUserResponse>, Status> {
        let p = self.0.authenticate(req.metadata())?;
        let user = acting_user(&p, "user_id", &req.get_ref().user_id)?;
        let list = self.0.registry.connections_of_user(user).await.map_err(pipeline_status)?;
        Ok(Response::new(pb::GetConnectionsByUserResponse { connections: connections(&list) }))
    }

    async fn get_online_users(
        &self,
        req: Request<pb::GetOnlineUsersRequest>,
    ) -> Result<Response<pb::GetOnlineUsersResponse>, Status> {
        let p = self.0.authenticate(req.metadata())?;
        let ws = req.get_ref().workspace_id.trim();
        let requested: Option<WorkspaceId> = if ws.is_empty() { None } else { Some(parse_id("workspace_id", ws)?) };
        let scope = if is_service(&p) {
            requested
        } else {
            match requested {
                Some(w) if w != p.workspace_id => {
                    return Err(Status::permission_denied("users see online users of their own workspace only"));
                }
                _ => Some(p.workspace_id),
            }
        };
        let users = self.0.registry.online_users(scope).await.map_err(pipeline_status)?;
        Ok(Response::new(pb::GetOnlineUsersResponse { user_ids: users.iter().map(ToString::to_string).collect() }))
    }

    async fn get_connections_by_gateway_node(
        &self,
        req: Request<pb::GetConnectionsByGatewayNodeRequest>,
    ) -> Result<Response<pb::GetConnectionsByGatewayNodeResponse>, Status> {
        let p = self.0.authenticate(req.metadata())?;
        require_service(&p, "GetConnectionsByGatewayNode")?;
        let node = &req.get_ref().gateway_node_id;
        check_len("gateway_node_id", node, 1, MAX_ID_BYTES)?;
        let list = self.0.registry.connections_of_gateway(node).await.map_err(pipeline_status)?;
        Ok(Response::new(pb::GetConnectionsByGatewayNodeResponse { connections: connections(&list) }))
    }

    async fn get_connections_by_users(
        &self,
        req: Request<pb::GetConnectionsByUsersRequest>,
    ) -> Result<Response<pb::GetConnectionsByUserResponse>, Status> {
        let p = self.0.authenticate(req.metadata())?;
        let mut users: Vec<UserId> =
            req.get_ref().user_ids.iter().map(|u| parse_id("user_ids", u)).collect::<Result<_, Status>>()?;
        users.sort();
        users.dedup();
        if users.len() > MAX_USERS_PER_LOOKUP {
            return Err(Status::invalid_argument(format!(
                "invalid user_ids: at most {MAX_USERS_PER_LOOKUP} distinct ids"
            )));
        }
        if let Some(me) = p.user_id()
            && users.iter().any(|u| *u != me)
        {
            return Err(Status::permission_denied("a user token may look up only its own connections"));
        }
        let list = self.0.registry.connections_of_users(&users).await.map_err(pipeline_status)?;
        Ok(Response::new(pb::GetConnectionsByUserResponse { connections: connections(&list) }))
    }

    async fn get_all_connections(
        &self,
        req: Request<pb::GetAllConnectionsRequest>,
    ) -> Result<Response<pb::GetConnectionsByGatewayNodeResponse>, Status> {
        let p = self.0.authenticate(req.metadata())?;
        require_service(&p, "GetAllConnections")?;
        let list = self.0.registry.all_connections().await.map_err(pipeline_status)?;
        Ok(Response::new(pb::GetConnectionsByGatewayNodeResponse { connections: connections(&list) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_states_are_the_proto_enum_numbers() {
        for s in [SessionState::Unknown, SessionState::Connected, SessionState::Disconnected, SessionState::Expired] {
            assert_eq!(crate::convert::session_state(s) as i32, s.as_i32());
        }
    }
}
