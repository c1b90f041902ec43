//! Authentication of calls (bearer token in metadata) and the acting-user rule.

use std::str::FromStr;

use chat_auth::{Principal, Subject};
use chat_domain::UserId;
use tonic::Status;
use tonic::metadata::MetadataMap;

use crate::Shared;
use crate::error::domain_status;

impl Shared {
    /// Verifies the `authorization: Bearer <jwt>` metadata of a call.
    ///
    /// # Errors
    /// UNAUTHENTICATED when the header is missing or malformed or the token is not valid (the
    /// message says why); PERMISSION_DENIED for a service credential without the configured
    /// [`crate::GrpcConfig::service_scope`].
    pub(crate) fn authenticate(&self, md: &MetadataMap) -> Result<Principal, Status> {
        let Some(value) = md.get("authorization") else {
            return Err(Status::unauthenticated("missing authorization metadata (Bearer token)"));
        };
        let value = value.to_str().map_err(|_| Status::unauthenticated("authorization metadata is not ASCII"))?;
        let token = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => return Err(Status::unauthenticated("authorization metadata must be `Bearer <token>`")),
        };
        let principal = self.auth.verify_access_token(token).map_err(domain_status)?;
        if let (Subject::Service { client_id }, Some(scope)) = (&principal.subject, &self.cfg.service_scope)
            && !principal.has_scope(scope)
        {
            return Err(Status::permission_denied(format!("service client {client_id} lacks scope {scope}")));
        }
        Ok(principal)
    }
}

/// Whether the principal is a service (internal caller) rather than a user.
pub(crate) fn is_service(p: &Principal) -> bool {
    matches!(p.subject, Subject::Service { .. })
}

/// The user a call acts for. `requested` is the request's user id field (`field` names it in
/// messages). A user acts only as itself: empty means itself, another id is
/// PERMISSION_DENIED. A service acts for the named user, which is then required.
///
/// # Errors
/// INVALID_ARGUMENT (not a UUID, or missing for a service), PERMISSION_DENIED.
pub(crate) fn acting_user(p: &Principal, field: &str, requested: &str) -> Result<UserId, Status> {
    let requested = requested.trim();
    let parsed = if requested.is_empty() { None } else { Some(parse_id::<UserId>(field, requested)?) };
    match (&p.subject, parsed) {
        (Subject::User(me), None) => Ok(*me),
        (Subject::User(me), Some(u)) if u == *me => Ok(u),
        (Subject::User(_), Some(_)) => {
            Err(Status::permission_denied(format!("{field} does not match the authenticated user")))
        }
        (Subject::Service { .. }, Some(u)) => Ok(u),
        (Subject::Service { .. }, None) => {
            Err(Status::invalid_argument(format!("{field} is required with a service credential")))
        }
    }
}

/// Only service credentials may call this rpc.
///
/// # Errors
/// PERMISSION_DENIED for a user token.
pub(crate) fn require_service(p: &Principal, what: &str) -> Result<(), Status> {
    if is_service(p) { Ok(()) } else { Err(Status::permission_denied(format!("{what} needs a service credential"))) }
}

/// Parses a UUID-typed id field.
///
/// # Errors
/// INVALID_ARGUMENT naming the field.
pub(crate) fn parse_id<T: FromStr>(field: &str, value: &str) -> Result<T, Status> {
    value.trim().parse().map_err(|_| Status::invalid_argument(format!("invalid {field}: expected a UUID")))
}
