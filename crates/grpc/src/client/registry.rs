//! [`GrpcRegistry`]: the connection registry of the core, through `connection.v1.ConnectionManager`.

use std::sync::Arc;

use async_trait::async_trait;
use chat_domain::{Millis, UserId, WorkspaceId};
use chat_pipeline::{Connection, ConnectionRegistry, PipelineError};

use super::conn::{CallError, Conn};
use super::decode;
use crate::convert::{connection, timestamp};
use crate::pb::connection::v1 as pb;
use crate::pb::connection::v1::connection_manager_client::ConnectionManagerClient;

/// [`ConnectionRegistry`] over the core's `ConnectionManager` rpcs, with the gateway's
/// service token (from [`super::GrpcCore::registry`]). Errors: an unreachable core (or token
/// endpoint) is [`PipelineError::Unavailable`]; a refusal or malformed reply
/// [`PipelineError::Unexpected`]. Each call is bounded by the core client's request timeout.
#[derive(Clone)]
pub struct GrpcRegistry {
    conn: Arc<Conn>,
}

impl std::fmt::Debug for GrpcRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcRegistry").field("endpoint", &self.conn.cfg.endpoint).finish_non_exhaustive()
    }
}

fn list(conns: Vec<pb::Connection>) -> Result<Vec<Connection>, PipelineError> {
    conns.into_iter().map(decode::connection).collect()
}

fn user_id(value: &str) -> Result<UserId, PipelineError> {
    decode::id("user_ids", value).map_err(|e| PipelineError::Unexpected(anyhow::anyhow!("{e}")))
}

impl GrpcRegistry {
    pub(crate) fn new(conn: Arc<Conn>) -> Self {
        GrpcRegistry { conn }
    }

    async fn by_user(&self, user: UserId) -> Result<Vec<Connection>, PipelineError> {
        let msg = pb::GetConnectionsByUserRequest { user_id: user.to_string() };
        let out = self
            .conn
            .unary(msg, |ch, r| async move { ConnectionManagerClient::new(ch).get_connections_by_user(r).await })
            .await
            .map_err(CallError::into_pipeline)?;
        list(out.connections)
    }
}

#[async_trait]
impl ConnectionRegistry for GrpcRegistry {
    async fn register(&self, conn: Connection) -> Result<(), PipelineError> {
        let msg =
            pb::RegisterConnectionRequest { user_id: conn.user_id.to_string(), connection: Some(connection(&conn)) };
        self.conn
            .unary(msg, |ch, r| async move { ConnectionManagerClient::new(ch).register_connection(r).await })
            .await
            .map_err(CallError::into_pipeline)?;
        Ok(())
    }

    async fn unregister(&self, connection_id: &str) -> Result<bool, PipelineError> {
        let msg = pb::UnregisterConnectionRequest { connection_id: connection_id.to_owned(), user_id: String::new() };
        let out = self
            .conn
            .unary(msg, |ch, r| async move { ConnectionManagerClient::new(ch).unregister_connection(r).await })
            .await
            .map_err(CallError::into_pipeline)?;
        Ok(out.success)
    }

    async fn touch(&self, connection_id: &str, at: Millis) -> Result<bool, PipelineError> {
        let msg =
            pb::UpdateLastPingRequest { connection_id: connection_id.to_owned(), last_ping_at: Some(timestamp(at)) };
        let out = self
            .conn
            .unary(msg, |ch, r| async move { ConnectionManagerClient::new(ch).update_last_ping(r).await })
            .await
            .map_err(CallError::into_pipeline)?;
        Ok(out.success)
    }

    async fn connections_of_user(&self, user: UserId) -> Result<Vec<Connection>, PipelineError> {
        self.by_user(user).await
    }

    async fn connections_of_users(&self, users: &[UserId]) -> Result<Vec<Connection>, PipelineError> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        // The core takes at most MAX_USERS_PER_LOOKUP distinct ids per call.
        for chunk in users.chunks(crate::connection_svc::MAX_USERS_PER_LOOKUP) {
            let msg = pb::GetConnectionsByUsersRequest { user_ids: chunk.iter().map(ToString::to_string).collect() };
            let got = self
                .conn
                .unary(msg, |ch, r| async move { ConnectionManagerClient::new(ch).get_connections_by_users(r).await })
                .await
                .map_err(CallError::into_pipeline)?;
            out.extend(list(got.connections)?);
        }
        Ok(out)
    }

    async fn connections_of_gateway(&self, gateway_node_id: &str) -> Result<Vec<Connection>, PipelineError> {
        let msg = pb::GetConnectionsByGatewayNodeRequest { gateway_node_id: gateway_node_id.to_owned() };
        let out = self
            .conn
            .unary(
                msg,
                |ch, r| async move { ConnectionManagerClient::new(ch).get_connections_by_gateway_node(r).await },
            )
            .await
            .map_err(CallError::into_pipeline)?;
        list(out.connections)
    }

    async fn all_connections(&self) -> Result<Vec<Connection>, PipelineError> {
        let out = self
            .conn
            .unary(pb::GetAllConnectionsRequest {}, |ch, r| async move {
                ConnectionManagerClient::new(ch).get_all_connections(r).await
            })
            .await
            .map_err(CallError::into_pipeline)?;
        list(out.connections)
    }

    async fn online_users(&self, workspace: Option<WorkspaceId>) -> Result<Vec<UserId>, PipelineError> {
        let msg = pb::GetOnlineUsersRequest { workspace_id: workspace.map(|w| w.to_string()).unwrap_or_default() };
        let out = self
            .conn
            .unary(msg, |ch, r| async move { ConnectionManagerClient::new(ch).get_online_users(r).await })
            .await
            .map_err(CallError::into_pipeline)?;
        out.user_ids.iter().map(|u| user_id(u)).collect()
    }
}
