//! Test harness: a real in-process stack (temporary SQLite store, Authenticator with tiny
//! Argon2 parameters and a bootstrap service client, ChatService, InMemoryRegistry) behind a
//! [`GrpcServer`] on 127.0.0.1:0, and the generated tonic clients.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chat_auth::{AuthConfig, Authenticator, ClientSpec};
use chat_core::service::{ChatService, CreateChannel, ServiceConfig};
use chat_domain::{ConversationId, ConversationSettings, Limits, Millis, UserId, Workspace, WorkspaceId};
use chat_grpc::pb::auth::v1::auth_service_client::AuthServiceClient;
use chat_grpc::pb::connection::v1::connection_manager_client::ConnectionManagerClient;
use chat_grpc::pb::message::v1::message_service_client::MessageServiceClient;
use chat_grpc::pb::message::v1::{CreateMessageRequest, Message};
use chat_grpc::{GrpcConfig, GrpcServer};
use chat_pipeline::{ConnectionRegistry, InMemoryRegistry};
use chat_storage::{SqlStore, Store, UserStore};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

/// How long tests wait for an expected stream item.
pub const WAIT: Duration = Duration::from_secs(10);
/// The bootstrap service client (client_credentials grant).
pub const SERVICE_CLIENT: &str = "gateway";
/// Its secret.
pub const SERVICE_SECRET: &str = "gateway-secret-1";

/// A running stack.
pub struct Stack {
    /// Server address.
    pub addr: SocketAddr,
    /// The service.
    pub service: ChatService,
    /// The authenticator.
    pub auth: Authenticator,
    /// The store.
    pub store: Arc<dyn Store>,
    /// The registry behind `ConnectionManager`.
    pub registry: Arc<dyn ConnectionRegistry>,
    /// A client channel to the server.
    pub channel: Channel,
    /// Stops the server.
    pub stop: CancellationToken,
    /// The server task.
    pub server: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
    _dir: tempfile::TempDir,
}

/// A test user.
#[derive(Clone, Debug)]
pub struct TestUser {
    /// Id.
    pub id: UserId,
    /// Access token.
    pub token: String,
}

impl Stack {
    /// A stack with the default gRPC settings and an in-memory registry.
    pub async fn start() -> Stack {
        Self::start_with(GrpcConfig::default(), None).await
    }

    /// A stack with `cfg` and, when given, `registry` instead of an in-memory one.
    pub async fn start_with(cfg: GrpcConfig, registry: Option<Arc<dyn ConnectionRegistry>>) -> Stack {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite:{}", dir.path().join("chat.db").display());
        let sql = SqlStore::connect(&url, Default::default()).await.expect("connect");
        sql.migrate().await.expect("migrate");
        sql.ensure_workspace(&Workspace {
            id: WorkspaceId::DEFAULT,
            name: "default".into(),
            created_at: Millis::now(),
        })
        .await
        .expect("workspace");
        let store: Arc<dyn Store> = Arc::new(sql);
        let auth_cfg = AuthConfig {
            bootstrap_clients: vec![ClientSpec {
                client_id: SERVICE_CLIENT.into(),
                client_secret: SERVICE_SECRET.into(),
                scopes: vec!["internal".into()],
            }],
            ..AuthConfig::for_tests()
        };
        let auth = Authenticator::new(auth_cfg, store.clone(), store.clone()).await.expect("auth");
        let service =
            // No per-user send rate here: the stream tests push thousands of sends for one user.
            ChatService::new(
                store.clone(),
                ServiceConfig {
                    limits: Limits { sends_per_user_per_sec: 0, ..Limits::default() },
                    max_batch: 256,
                    writers: 1,
                    ..ServiceConfig::default()
                },
            );
        let registry = registry
            .unwrap_or_else(|| Arc::new(InMemoryRegistry::new(Duration::from_secs(30))) as Arc<dyn ConnectionRegistry>);
        let server = GrpcServer::with_config(service.clone(), auth.clone(), registry.clone(), cfg);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stop = CancellationToken::new();
        let server = tokio::spawn(server.serve(listener, stop.clone().cancelled_owned()));
        let channel = Channel::from_shared(format!("http://{addr}")).expect("uri").connect().await.expect("connect");
        Stack { addr, service, auth, store, registry, channel, stop, server, _dir: dir }
    }

    /// Registers and logs in a user.
    pub async fn user(&self, name: &str) -> TestUser {
        let user = self.auth.register(WorkspaceId::DEFAULT, name, "password-123", None).await.expect("register");
        let pair = self.auth.login(WorkspaceId::DEFAULT, name, "password-123").await.expect("login");
        TestUser { id: user.id, token: pair.access_token }
    }

    /// A service credential (client_credentials grant).
    pub async fn service_token(&self) -> String {
        self.auth
            .client_credentials(SERVICE_CLIENT, SERVICE_SECRET, None)
            .await
            .expect("client credentials")
            .access_token
    }

    /// A channel owned by `owner` with `members`.
    pub async fn channel_with(&self, owner: &TestUser, members: &[&TestUser]) -> ConversationId {
        self.channel_with_settings(owner, members, ConversationSettings::default()).await
    }

    /// A channel with explicit settings.
    pub async fn channel_with_settings(
        &self,
        owner: &TestUser,
        members: &[&TestUser],
        settings: ConversationSettings,
    ) -> ConversationId {
        let name = format!("c-{}", uuid_suffix());
        let conv = self
            .service
            .create_channel(
                owner.id,
                CreateChannel {
                    name,
                    topic: None,
                    is_private: false,
                    settings: Some(settings),
                    member_ids: members.iter().map(|m| m.id).collect(),
                },
            )
            .await
            .expect("create channel");
        conv.id
    }

    /// An `AuthService` client.
    pub fn auth_client(&self) -> AuthServiceClient<Channel> {
        AuthServiceClient::new(self.channel.clone())
    }

    /// A `ConnectionManager` client.
    pub fn conn_client(&self) -> ConnectionManagerClient<Channel> {
        ConnectionManagerClient::new(self.channel.clone())
    }

    /// A `MessageService` client.
    pub fn msg_client(&self) -> MessageServiceClient<Channel> {
        MessageServiceClient::new(self.channel.clone())
    }
}

fn uuid_suffix() -> String {
    UserId::new().to_string()[24..].to_owned()
}

/// A request carrying `authorization: Bearer <token>`.
pub fn authed<T>(token: &str, msg: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.metadata_mut().insert("authorization", format!("Bearer {token}").parse().expect("ascii"));
    req
}

/// A create request for `conv` with `text` and an optional idempotency key.
pub fn create_req(conv: ConversationId, text: &str, key: Option<&str>) -> CreateMessageRequest {
    CreateMessageRequest {
        message: Some(Message { conversation_id: conv.to_string(), text: text.into(), ..Default::default() }),
        client_msg_id: key.unwrap_or_default().into(),
        attachment_ids: Vec::new(),
    }
}
