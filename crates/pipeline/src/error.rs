//! Errors of the pipeline interfaces.

use chat_storage::StoreError;
use thiserror::Error;

/// Why a pipeline call failed.
///
/// Every operation is at-least-once: after an error nothing was acknowledged or committed, so
/// the caller retries the same input (the relay and the fanout worker do, with backoff).
#[derive(Debug, Error)]
pub enum PipelineError {
    /// The backing engine (Kafka broker, Redis, ...) is unreachable or timed out; retryable.
    #[error("pipeline backend unavailable: {0}")]
    Unavailable(String),
    /// The log or stream was closed (shutdown); no more records will come.
    #[error("closed")]
    Closed,
    /// A newer consumer of the same group (or gateway) took over; this one must stop. Its
    /// uncommitted records are redelivered to the newer consumer.
    #[error("consumer fenced: a newer consumer of {0:?} took over")]
    Fenced(String),
    /// Reading members from storage failed (see [`StoreError`]).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Anything else (serialization bug, unexpected backend reply).
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Result alias of this crate.
pub type Result<T, E = PipelineError> = std::result::Result<T, E>;
