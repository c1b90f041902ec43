//! Connecting (one [`ConnectionManager`] per role object) and mapping redis errors.

use std::time::Duration;

use chat_pipeline::PipelineError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, RedisError, ServerErrorKind};

use crate::{ConnectError, RedisConnectConfig};

/// Opens a connection manager to `url` and waits for the first connection. `extra_reply_time`
/// is added to the command timeout (blocking reads).
pub(crate) async fn connect_manager(
    url: &str,
    cfg: &RedisConnectConfig,
    extra_reply_time: Duration,
) -> Result<ConnectionManager, ConnectError> {
    let client = redis::Client::open(url).map_err(|e| ConnectError::InvalidUrl(e.to_string()))?;
    let manager_cfg = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(cfg.connect_timeout))
        .set_response_timeout(Some(cfg.command_timeout + extra_reply_time))
        .set_number_of_retries(cfg.reconnect_retries)
        .set_max_delay(Duration::from_secs(1));
    let manager = ConnectionManager::new_with_config(client, manager_cfg).await.map_err(map_err)?;
    Ok(manager)
}

/// [`PipelineError::Unavailable`] for everything that means "Redis is not reachable right
/// now" (I/O, timeouts, dropped connections, a server still loading its data, a read-only
/// replica, a primary that is down); [`PipelineError::Unexpected`] for the rest (a reply of
/// the wrong shape, a script error).
pub(crate) fn map_err(e: RedisError) -> PipelineError {
    let unavailable = e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || matches!(
            e.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::ReadOnly
            )
        );
    if unavailable {
        PipelineError::Unavailable(format!("redis: {e}"))
    } else {
        PipelineError::Unexpected(anyhow::anyhow!("redis: {e}"))
    }
}

/// A reply that does not have the shape our scripts return.
pub(crate) fn bad_reply(what: &str) -> PipelineError {
    PipelineError::Unexpected(anyhow::anyhow!("redis: unexpected reply: {what}"))
}
