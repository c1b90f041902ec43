//! `auth.v1.AuthService`.

use std::sync::Arc;

use chat_auth::Subject;
use chat_domain::DomainError;
use tonic::{Request, Response, Status};

use crate::Shared;
use crate::convert::timestamp;
use crate::pb::auth::v1::auth_service_server::AuthService;
use crate::pb::auth::v1::{HelloRequest, HelloResponse, VerifyRequest, VerifyResponse};

/// Longest name `Hello` echoes, in characters.
const MAX_HELLO_NAME: usize = 256;

/// The `AuthService` implementation.
pub(crate) struct AuthApi(pub(crate) Arc<Shared>);

#[tonic::async_trait]
impl AuthService for AuthApi {
    async fn verify_access_token(&self, req: Request<VerifyRequest>) -> Result<Response<VerifyResponse>, Status> {
        self.0.authenticate(req.metadata())?;
        let token = req.into_inner().access_token;
        let token = token.trim();
        let token = token.strip_prefix("Bearer ").unwrap_or(token);
        let invalid = |reason: String| VerifyResponse { reason, ..Default::default() };
        let out = match self.0.auth.verify_access_token(token) {
            Ok(p) => match p.subject {
                Subject::User(user) => VerifyResponse {
                    user_id: user.to_string(),
                    workspace_id: p.workspace_id.to_string(),
                    valid: true,
                    reason: String::new(),
                    expires_at: Some(timestamp(p.expires_at)),
                },
                Subject::Service { .. } => invalid("not a user access token (service credential)".into()),
            },
            Err(DomainError::Unauthenticated(reason)) => invalid(reason),
            Err(e) => invalid(e.to_string()),
        };
        Ok(Response::new(out))
    }

    async fn hello(&self, req: Request<HelloRequest>) -> Result<Response<HelloResponse>, Status> {
        let name = req.into_inner().name;
        let name = name.trim();
        let name: String = if name.is_empty() { "world".into() } else { name.chars().take(MAX_HELLO_NAME).collect() };
        Ok(Response::new(HelloResponse { message: format!("Hello, {name}!") }))
    }
}
