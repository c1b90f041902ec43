//! Storage errors.

use chat_domain::DomainError;
use thiserror::Error;

/// Why a storage call failed. Nothing is half-written on any of these: each write is one
/// transaction.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The row to change does not exist; names what.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A unique constraint: what conflicted.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database is unreachable or timed out (retryable).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else (bug, corrupt row, unexpected SQL error).
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<StoreError> for DomainError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => DomainError::NotFound(what),
            StoreError::Conflict(what) => DomainError::Conflict(what),
            StoreError::Unavailable(why) => DomainError::Unavailable(why),
            StoreError::Unexpected(e) => DomainError::Internal(format!("{e:#}")),
        }
    }
}
