//! The domain error: what went wrong, in terms a client can act on.
//!
//! Every interface maps it in one place: HTTP (RFC 9457 problem + status), STOMP (`ERROR`
//! frame `message` header), gRPC (status code).

use thiserror::Error;

/// Why a domain operation was refused or failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DomainError {
    /// No valid credentials (HTTP 401, gRPC UNAUTHENTICATED).
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// Authenticated but not allowed (HTTP 403, gRPC PERMISSION_DENIED).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The thing does not exist or is invisible to the caller (HTTP 404, gRPC NOT_FOUND).
    /// The string names what, e.g. `conversation`.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Input failed validation (HTTP 400/422, gRPC INVALID_ARGUMENT).
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The offending field, camelCase as in the API.
        field: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// Conflicts with existing state, e.g. a taken username (HTTP 409, gRPC ALREADY_EXISTS).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A limit or slow mode was hit (HTTP 429 with Retry-After, gRPC RESOURCE_EXHAUSTED).
    #[error("rate limited: {reason}; retry after {retry_after_ms} ms")]
    RateLimited {
        /// Which limit.
        reason: String,
        /// Milliseconds until the action will be accepted.
        retry_after_ms: u64,
    },
    /// A dependency (database) is unreachable; nothing was written (HTTP 503, gRPC UNAVAILABLE).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A bug or unexpected failure; details are logged, not shown (HTTP 500, gRPC INTERNAL).
    #[error("internal error: {0}")]
    Internal(String),
}

impl DomainError {
    /// Shorthand for [`DomainError::Invalid`].
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        DomainError::Invalid { field, reason: reason.into() }
    }
}
