//! Test support shared by the crate's unit tests: a real in-process core over a temporary
//! SQLite store, and [`TappedCore`], that core with hooks around the calls a test observes.

use std::sync::Arc;

use chat_auth::{AuthConfig, Authenticator};
use chat_core::service::{ChatService, SendMessage, SendOutcome, ServiceConfig};
use chat_domain::{ConversationEvent, ConversationId, DomainError, Limits, Millis, UserId, Workspace, WorkspaceId};
use chat_storage::{SqlStore, Store, UserStore};

use crate::core::{GatewayCore, Identity, InProcessCore};

/// A service (no per-user send rate) and its authenticator over a fresh SQLite file in `dir`.
pub(crate) async fn sqlite_service(dir: &tempfile::TempDir) -> (ChatService, Authenticator) {
    let url = format!("sqlite:{}", dir.path().join("chat.db").display());
    let sql = SqlStore::connect(&url, Default::default()).await.expect("connect");
    sql.migrate().await.expect("migrate");
    let ws = Workspace { id: WorkspaceId::DEFAULT, name: "default".into(), created_at: Millis::now() };
    sql.ensure_workspace(&ws).await.expect("workspace");
    let store: Arc<dyn Store> = Arc::new(sql);
    let auth = Authenticator::new(AuthConfig::for_tests(), store.clone(), store.clone()).await.expect("auth");
    let limits = Limits { sends_per_user_per_sec: 0, ..Limits::default() };
    (ChatService::new(store, ServiceConfig { limits, ..ServiceConfig::default() }), auth)
}

/// Hooks around the calls of a [`TappedCore`]; every hook does nothing by default.
#[async_trait::async_trait]
pub(crate) trait Tap: Send + Sync {
    /// Before a member list is loaded.
    async fn before_member_ids(&self) {}
    /// Before a page of events `(after_seq, limit)` is read.
    async fn before_events_after(&self, _after_seq: i64, _limit: i64) {}
    /// After that read returned.
    fn after_events_after(&self) {}
}

/// The in-process core, calling `tap`'s hooks around member list and event page reads.
pub(crate) struct TappedCore<T> {
    /// The core every call goes to.
    pub inner: InProcessCore,
    /// What the test observes.
    pub tap: T,
}

#[async_trait::async_trait]
impl<T: Tap + 'static> GatewayCore for TappedCore<T> {
    async fn verify_token(&self, token: &str) -> Result<Identity, DomainError> {
        self.inner.verify_token(token).await
    }
    async fn send(&self, actor: UserId, req: SendMessage) -> Result<SendOutcome, DomainError> {
        self.inner.send(actor, req).await
    }
    async fn ack(
        &self,
        actor: UserId,
        conv: ConversationId,
        delivered: Option<i64>,
        seen: Option<i64>,
    ) -> Result<(), DomainError> {
        self.inner.ack(actor, conv, delivered, seen).await
    }
    async fn member_ids(&self, actor: UserId, conv: ConversationId) -> Result<Vec<UserId>, DomainError> {
        self.tap.before_member_ids().await;
        self.inner.member_ids(actor, conv).await
    }
    async fn events_after(
        &self,
        actor: UserId,
        conv: ConversationId,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<ConversationEvent>, DomainError> {
        self.tap.before_events_after(after_seq, limit).await;
        let out = self.inner.events_after(actor, conv, after_seq, limit).await;
        self.tap.after_events_after();
        out
    }
    fn max_page(&self) -> i64 {
        self.inner.max_page()
    }
}
