//! Test harness of the REST tests (zero-to-production style): each test spawns the real
//! router on 127.0.0.1:0 over a fresh, migrated temporary SQLite database.
#![allow(dead_code)]

use std::sync::Arc;

use chat_auth::{AuthConfig, Authenticator};
use chat_core::rest::{self, AppState};
use chat_core::service::{ChatService, ServiceConfig};
use chat_domain::{ConversationEvent, ConversationId, Limits, Message, Millis, SeqWindow, Workspace, WorkspaceId};
use chat_storage::{SqlStore, Store, UserStore};
use reqwest::{Client, Method, RequestBuilder, Response};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use uuid::Uuid;

/// A running app.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// A client without a cookie store (tests set cookies explicitly).
    pub client: Client,
    /// The store behind the app (to check what was written).
    pub store: Arc<dyn Store>,
    /// The concrete store (close it to simulate an outage).
    pub sql: SqlStore,
    /// The authenticator the app uses.
    pub auth: Arc<Authenticator>,
    /// The service behind the app.
    pub service: ChatService,
    _shutdown: oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

/// A registered, logged-in user.
#[derive(Clone, Debug)]
pub struct TestUser {
    /// User id.
    pub id: Uuid,
    /// Username.
    pub username: String,
    /// Access token.
    pub token: String,
    /// Refresh token.
    pub refresh: String,
}

/// Authentication settings with tiny Argon2 parameters (fast tests).
pub fn test_auth_config() -> AuthConfig {
    AuthConfig::for_tests()
}

/// A fresh migrated SQLite store in `dir` with the default workspace.
pub async fn fresh_store(dir: &tempfile::TempDir) -> SqlStore {
    let url = format!("sqlite:{}", dir.path().join("chat.db").display());
    let sql = SqlStore::connect(&url, Default::default()).await.expect("connect sqlite");
    sql.migrate().await.expect("migrate");
    sql.ensure_workspace(&Workspace { id: WorkspaceId::DEFAULT, name: "default".into(), created_at: Millis::now() })
        .await
        .expect("default workspace");
    sql
}

/// Spawns the app.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(Limits::default(), |s| s).await
}

/// Spawns the app with these limits and a service changed by `configure` (e.g. attachments).
pub async fn spawn_app_with(limits: Limits, configure: impl FnOnce(ChatService) -> ChatService) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let sql = fresh_store(&dir).await;
    let store: Arc<dyn Store> = Arc::new(sql.clone());
    let auth = Authenticator::new(test_auth_config(), store.clone(), store.clone()).await.expect("authenticator");
    let service = configure(ChatService::new(
        store.clone(),
        ServiceConfig { limits, max_batch: 64, writers: 1, ..ServiceConfig::default() },
    ));
    let state = AppState::new(service.clone(), auth);
    let auth = state.auth.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        rest::serve(listener, state, async move {
            let _ = rx.await;
        })
        .await
        .expect("serve");
    });
    TestApp { base, client: Client::new(), store, sql, auth, service, _shutdown: tx, _dir: dir }
}

impl TestApp {
    /// Absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request with a bearer token.
    pub fn req(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        self.client.request(method, self.url(path)).bearer_auth(token)
    }

    /// GET with a token.
    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.req(Method::GET, path, token).send().await.expect("request")
    }

    /// A JSON request with a token.
    pub async fn send_json(&self, method: Method, path: &str, token: &str, body: Value) -> Response {
        self.req(method, path, token).json(&body).send().await.expect("request")
    }

    /// POST JSON with a token.
    pub async fn post(&self, path: &str, token: &str, body: Value) -> Response {
        self.send_json(Method::POST, path, token, body).await
    }

    /// Registers `username` (password `password-<username>`); returns the response.
    pub async fn register_raw(&self, username: &str) -> Response {
        let body = json!({"username": username, "password": format!("password-{username}"), "displayName": username});
        self.client.post(self.url("/api/v1/auth/register")).json(&body).send().await.expect("register")
    }

    /// Registers and logs in `username`.
    pub async fn user(&self, username: &str) -> TestUser {
        let res = self.register_raw(username).await;
        assert_eq!(res.status(), 201, "register {username}");
        let user: Value = res.json().await.expect("user json");
        let id = Uuid::parse_str(user["userId"].as_str().expect("userId")).expect("uuid");
        let res = self
            .client
            .post(self.url("/auth/login"))
            .json(&json!({"username": username, "password": format!("password-{username}")}))
            .send()
            .await
            .expect("login");
        assert_eq!(res.status(), 200, "login {username}");
        let body: Value = res.json().await.expect("login json");
        TestUser {
            id,
            username: username.into(),
            token: body["data"]["accessToken"].as_str().expect("accessToken").into(),
            refresh: body["data"]["refreshToken"].as_str().expect("refreshToken").into(),
        }
    }

    /// Creates a channel owned by `owner`; returns its id.
    pub async fn channel(&self, owner: &TestUser, name: &str, private: bool) -> Uuid {
        let res = self
            .post("/api/v1/conversations", &owner.token, json!({"type": "CHANNEL", "name": name, "isPrivate": private}))
            .await;
        assert_eq!(res.status(), 201, "create channel");
        let v: Value = res.json().await.expect("json");
        Uuid::parse_str(v["conversationId"].as_str().expect("conversationId")).expect("uuid")
    }

    /// Sends a message; returns its JSON.
    pub async fn say(&self, who: &TestUser, conv: Uuid, text: &str) -> Value {
        let res = self.post(&format!("/api/v1/conversations/{conv}/messages"), &who.token, json!({"text": text})).await;
        assert_eq!(res.status(), 201, "send");
        res.json().await.expect("json")
    }

    /// All events of a conversation, straight from the store.
    pub async fn events(&self, conv: Uuid) -> Vec<ConversationEvent> {
        self.store.events_after(ConversationId::from(conv), 0, 10_000).await.expect("events")
    }

    /// All messages of a conversation, straight from the store.
    pub async fn messages(&self, conv: Uuid) -> Vec<Message> {
        let window = SeqWindow { after_seq: Some(0), before_seq: None, limit: 500 };
        self.store.messages(ConversationId::from(conv), window).await.expect("messages")
    }

    /// Number of users matching a prefix, straight from the store.
    pub async fn user_count(&self, prefix: &str) -> usize {
        self.store.search_users(WorkspaceId::DEFAULT, prefix, 1000).await.expect("users").len()
    }
}

/// Asserts a problem response: status, content type, and the RFC 9457 members; returns the body.
pub async fn assert_problem(res: Response, status: u16) -> Value {
    assert_eq!(res.status().as_u16(), status, "status");
    let ct = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    assert_eq!(ct, "application/problem+json", "content-type");
    let body: Value = res.json().await.expect("problem json");
    assert_eq!(body["status"], status, "problem status: {body}");
    assert!(body["type"].is_string(), "problem type: {body}");
    assert!(body["title"].as_str().is_some_and(|t| !t.is_empty()), "problem title: {body}");
    assert!(body["detail"].as_str().is_some_and(|t| !t.is_empty()), "problem detail: {body}");
    body
}
