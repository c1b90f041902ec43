//! gRPC status → [`DomainError`] (the inverse of [`crate::domain_status`]) and →
//! [`PipelineError`], so a remote gateway reports the core's refusals as the in-process one
//! does (the same STOMP `ERROR` messages).

use chat_domain::DomainError;
use chat_pipeline::PipelineError;
use tonic::{Code, Status};

/// Field names the core reports in `invalid <field>: <reason>` (the API's camelCase names).
const FIELDS: &[&str] = &[
    "afterSeq",
    "attachmentIds",
    "beforeSeq",
    "clientId",
    "clientMsgId",
    "clientSecret",
    "conversationId",
    "deliveredSeq",
    "displayName",
    "emoji",
    "file",
    "isPrivate",
    "limit",
    "memberIds",
    "name",
    "password",
    "prefix",
    "scopes",
    "seenSeq",
    "slowModeSeconds",
    "text",
    "threadRootId",
    "topic",
    "type",
    "userId",
    "username",
];

/// Things the core reports as `<thing> not found`.
const THINGS: &[&str] = &["attachment", "conversation", "member", "message", "thread root", "thread", "user"];

/// The `retry-after-ms` metadata of a RESOURCE_EXHAUSTED status (0 when absent).
fn retry_after(status: &Status) -> u64 {
    status.metadata().get("retry-after-ms").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Maps a status from the core (or from the transport on the way to it) to the
/// [`DomainError`] the core had, as far as the status carries it:
///
/// | Code | DomainError |
/// |---|---|
/// | UNAUTHENTICATED | `Unauthenticated(message)` |
/// | PERMISSION_DENIED | `Forbidden(message)` |
/// | INVALID_ARGUMENT | `Invalid { field, reason }` parsed from `invalid <field>: <reason>` (known API field names; otherwise field `request` and the whole message) |
/// | OUT_OF_RANGE, FAILED_PRECONDITION | `Invalid { field: "request", reason: message }` |
/// | NOT_FOUND | `NotFound(thing)` parsed from `<thing> not found` (else `resource`) |
/// | ALREADY_EXISTS | `Conflict(message)` |
/// | RESOURCE_EXHAUSTED | `RateLimited` with the reason and the `retry-after-ms` metadata |
/// | UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED, ABORTED, UNKNOWN | `Unavailable("the core is unavailable: ...")` |
/// | INTERNAL, DATA_LOSS, UNIMPLEMENTED, OK | `Internal(...)` |
pub fn status_domain(status: &Status) -> DomainError {
    domain_error(status.code(), status.message(), retry_after(status))
}

/// [`status_domain`] from the parts of a status (a refused `StreamCreateMessages` request
/// carries them as fields of its response).
pub(crate) fn domain_error(code: Code, message: &str, retry_after_ms: u64) -> DomainError {
    let m = message.to_owned();
    match code {
        Code::Unauthenticated => DomainError::Unauthenticated(m),
        Code::PermissionDenied => DomainError::Forbidden(m),
        Code::InvalidArgument => invalid(message),
        Code::OutOfRange | Code::FailedPrecondition => DomainError::invalid("request", m),
        Code::NotFound => {
            let thing = message.strip_suffix(" not found").and_then(|t| THINGS.iter().find(|k| **k == t));
            DomainError::NotFound(thing.copied().unwrap_or("resource"))
        }
        Code::AlreadyExists => DomainError::Conflict(m),
        Code::ResourceExhausted => {
            let reason = message.rsplit_once("; retry after ").map_or(message, |(r, _)| r).to_owned();
            DomainError::RateLimited { reason, retry_after_ms }
        }
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Aborted | Code::Unknown => {
            DomainError::Unavailable(format!(
                "the core is unavailable: {}",
                if m.is_empty() { code_name(code) } else { m }
            ))
        }
        Code::Internal | Code::DataLoss | Code::Unimplemented | Code::Ok => {
            DomainError::Internal(format!("core answered {}: {m}", code_name(code)))
        }
    }
}

fn code_name(code: Code) -> String {
    format!("{code:?}")
}

/// `invalid <field>: <reason>` with a known field, else the whole message under `request`.
fn invalid(message: &str) -> DomainError {
    let parsed = message.strip_prefix("invalid ").and_then(|rest| rest.split_once(": "));
    match parsed.and_then(|(field, reason)| FIELDS.iter().find(|f| **f == field).map(|f| (*f, reason))) {
        Some((field, reason)) => DomainError::invalid(field, reason),
        None => DomainError::invalid("request", message),
    }
}

/// Maps a status of a `ConnectionManager` call: transport-level and UNAVAILABLE codes are
/// [`PipelineError::Unavailable`] (retryable), anything else [`PipelineError::Unexpected`].
pub(crate) fn pipeline_error(status: &Status) -> PipelineError {
    match status.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Aborted | Code::Unknown => {
            PipelineError::Unavailable(format!("core connection registry: {}", status.message()))
        }
        code => PipelineError::Unexpected(anyhow::anyhow!(
            "core connection registry answered {}: {}",
            code_name(code),
            status.message()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain_status;

    /// Every error the core sends comes back as itself (the message the gateway shows).
    #[test]
    fn inverse_of_domain_status() {
        let cases = [
            DomainError::Unauthenticated("token expired".into()),
            DomainError::Forbidden("not a member of this conversation".into()),
            DomainError::invalid("text", "must not be empty or only whitespace"),
            DomainError::invalid("clientMsgId", "at most 128 bytes"),
            DomainError::NotFound("conversation"),
            DomainError::NotFound("thread root"),
            DomainError::Conflict("already a member".into()),
            DomainError::RateLimited { reason: "slow mode".into(), retry_after_ms: 1500 },
        ];
        for e in cases {
            assert_eq!(status_domain(&domain_status(e.clone())), e);
        }
    }

    #[test]
    fn unknown_fields_and_transport_codes_still_say_what_happened() {
        let e = status_domain(&Status::invalid_argument("message.conversation_id is required"));
        assert_eq!(e, DomainError::invalid("request", "message.conversation_id is required"));
        assert_eq!(status_domain(&Status::not_found("widget not found")), DomainError::NotFound("resource"));
        let e = status_domain(&Status::unavailable("tcp connect error"));
        assert_eq!(e, DomainError::Unavailable("the core is unavailable: tcp connect error".into()));
        let e = status_domain(&domain_status(DomainError::Unavailable("database down".into())));
        assert_eq!(e.to_string(), "unavailable: the core is unavailable: database down");
        assert!(matches!(status_domain(&Status::internal("internal error")), DomainError::Internal(_)));
        assert!(matches!(pipeline_error(&Status::unavailable("x")), PipelineError::Unavailable(_)));
        assert!(matches!(pipeline_error(&Status::permission_denied("x")), PipelineError::Unexpected(_)));
    }
}
