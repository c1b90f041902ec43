//! The one place errors become gRPC status codes.

use chat_domain::DomainError;
use chat_pipeline::PipelineError;
use tonic::{Code, Status};

/// Maps a [`DomainError`] to a [`Status`] with a message a client can act on:
///
/// | DomainError | Code |
/// |---|---|
/// | `Unauthenticated` | UNAUTHENTICATED |
/// | `Forbidden` | PERMISSION_DENIED |
/// | `Invalid` | INVALID_ARGUMENT (message `invalid <field>: <reason>`) |
/// | `NotFound` | NOT_FOUND |
/// | `Conflict` | ALREADY_EXISTS |
/// | `RateLimited` | RESOURCE_EXHAUSTED, metadata `retry-after-ms` |
/// | `Unavailable` | UNAVAILABLE |
/// | `Internal` | INTERNAL (the detail is logged, not sent) |
pub fn domain_status(err: DomainError) -> Status {
    match err {
        DomainError::Unauthenticated(m) => Status::unauthenticated(m),
        DomainError::Forbidden(m) => Status::permission_denied(m),
        e @ DomainError::Invalid { .. } => Status::invalid_argument(e.to_string()),
        e @ DomainError::NotFound(_) => Status::not_found(e.to_string()),
        DomainError::Conflict(m) => Status::already_exists(m),
        DomainError::RateLimited { reason, retry_after_ms } => {
            let mut s = Status::resource_exhausted(format!("{reason}; retry after {retry_after_ms} ms"));
            if let Ok(v) = retry_after_ms.to_string().parse() {
                s.metadata_mut().insert("retry-after-ms", v);
            }
            s
        }
        DomainError::Unavailable(m) => Status::unavailable(m),
        DomainError::Internal(m) => {
            tracing::error!(error = %m, "internal error in a gRPC call");
            Status::internal("internal error")
        }
    }
}

/// Maps a registry (pipeline) error: an unreachable or closed backend is UNAVAILABLE,
/// anything else INTERNAL.
pub(crate) fn pipeline_status(err: PipelineError) -> Status {
    match err {
        PipelineError::Unavailable(m) => Status::unavailable(format!("connection registry unavailable: {m}")),
        PipelineError::Closed => Status::unavailable("connection registry closed (shutting down)"),
        PipelineError::Store(e) => domain_status(e.into()),
        e => domain_status(DomainError::Internal(e.to_string())),
    }
}

/// The retry delay carried by a RESOURCE_EXHAUSTED status from [`domain_status`].
pub(crate) fn retry_after_ms(status: &Status) -> i64 {
    if status.code() != Code::ResourceExhausted {
        return 0;
    }
    status.metadata().get("retry-after-ms").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0)
}
