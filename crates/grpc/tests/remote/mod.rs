//! Harness of the remote-gateway tests: a core (SQLite store, Authenticator with a bootstrap
//! service client, ChatService, the in-process pipeline, the gRPC server and the REST API for
//! `/oauth2/token`, all on 127.0.0.1:0) and a `chat_gateway::Gateway` on its own port that
//! reaches the core only through [`GrpcCore`] and [`GrpcRegistry`] (through a TCP proxy the
//! test can stall or cut to play "core down"). Deliveries come from the pipeline's in-process
//! streams, shared by core and gateway (in scale-out they are Redis streams).
#![allow(dead_code)]

pub mod proxy;
pub mod stomp;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chat_auth::{AuthConfig, Authenticator, ClientSpec};
use chat_core::rest::AppState;
use chat_core::service::{ChatService, CreateChannel, ServiceConfig};
use chat_domain::{ConversationId, Limits, Millis, UserId, Workspace, WorkspaceId};
use chat_gateway::{Gateway, GatewayConfig};
use chat_grpc::{GrpcCore, GrpcCoreConfig, GrpcServer};
use chat_pipeline::{Pipeline, PipelineConfig};
use chat_storage::{SqlStore, Store, UserStore};

pub use proxy::Proxy;
pub use stomp::Client;

/// How long tests wait for an expected frame or outcome.
pub const WAIT: Duration = Duration::from_secs(10);
/// The gateway's service client.
pub const CLIENT_ID: &str = "gateway";
/// Its secret.
pub const CLIENT_SECRET: &str = "gateway-secret-1";

/// A test user.
#[derive(Clone, Debug)]
pub struct TestUser {
    /// Id.
    pub id: UserId,
    /// Access token.
    pub token: String,
}

/// Core settings of a test.
#[derive(Clone, Debug)]
pub struct CoreOptions {
    /// Access token lifetime (service tokens too).
    pub access_ttl_secs: i64,
}

impl Default for CoreOptions {
    fn default() -> Self {
        CoreOptions { access_ttl_secs: 900 }
    }
}

/// A running core and a remote gateway.
pub struct Stack {
    /// The service (to set up conversations and inspect the store).
    pub service: ChatService,
    /// The authenticator.
    pub auth: Authenticator,
    /// The store.
    pub store: Arc<dyn Store>,
    /// The pipeline (its registry is the core's).
    pub pipeline: Pipeline,
    /// The core's gRPC address (direct).
    pub grpc_addr: SocketAddr,
    /// The core's REST address.
    pub rest_addr: SocketAddr,
    /// The proxy the gateway reaches the core's gRPC through.
    pub proxy: Proxy,
    /// Requests the token endpoint answered.
    pub token_requests: Arc<AtomicUsize>,
    /// The gateway's core client.
    pub core: GrpcCore,
    /// The gateway.
    pub gateway: Gateway,
    /// The gateway's address.
    pub gateway_addr: SocketAddr,
    _dir: tempfile::TempDir,
}

/// The gateway client settings of the tests (short timeouts keep "core down" quick).
pub fn core_config(stack_proxy: SocketAddr, rest: SocketAddr) -> GrpcCoreConfig {
    GrpcCoreConfig {
        endpoint: format!("http://{stack_proxy}"),
        token_url: format!("http://{rest}/oauth2/token"),
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
        ..GrpcCoreConfig::default()
    }
}

impl Stack {
    /// A stack with default options.
    pub async fn start() -> Stack {
        Self::start_with(CoreOptions::default(), |c| c).await
    }

    /// A stack with `opts`; `tweak` adjusts the gateway's core client settings.
    pub async fn start_with(opts: CoreOptions, tweak: impl FnOnce(GrpcCoreConfig) -> GrpcCoreConfig) -> Stack {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite:{}", dir.path().join("chat.db").display());
        let sql = SqlStore::connect(&url, Default::default()).await.expect("connect");
        sql.migrate().await.expect("migrate");
        let ws = Workspace { id: WorkspaceId::DEFAULT, name: "default".into(), created_at: Millis::now() };
        sql.ensure_workspace(&ws).await.expect("workspace");
        let store: Arc<dyn Store> = Arc::new(sql);
        let auth_cfg = AuthConfig {
            access_ttl_secs: opts.access_ttl_secs,
            bootstrap_clients: vec![ClientSpec {
                client_id: CLIENT_ID.into(),
                client_secret: CLIENT_SECRET.into(),
                scopes: vec!["internal".into()],
            }],
            ..AuthConfig::for_tests()
        };
        let auth = Authenticator::new(auth_cfg, store.clone(), store.clone()).await.expect("auth");
        // No per-user send rate: the load tests send faster than a person.
        let limits = Limits { sends_per_user_per_sec: 0, ..Limits::default() };
        let service = ChatService::new(
            store.clone(),
            ServiceConfig { limits, max_batch: 256, writers: 1, ..ServiceConfig::default() },
        );
        let pipeline = Pipeline::in_process(store.clone(), service.commit_notify(), PipelineConfig::default());

        // Core: gRPC and REST.
        let grpc = GrpcServer::new(service.clone(), auth.clone(), pipeline.registry());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind grpc");
        let grpc_addr = listener.local_addr().expect("addr");
        tokio::spawn(grpc.serve(listener, std::future::pending()));
        let token_requests = Arc::new(AtomicUsize::new(0));
        let counter = token_requests.clone();
        let rest = chat_core::rest::router(AppState::new(service.clone(), auth.clone())).layer(
            axum::middleware::from_fn(move |req: axum::extract::Request, next: axum::middleware::Next| {
                if req.uri().path() == "/oauth2/token" {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
                next.run(req)
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind rest");
        let rest_addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, rest).await });

        // Gateway: the core only through gRPC (via the proxy).
        let proxy = Proxy::start(grpc_addr).await;
        let core = GrpcCore::connect(tweak(core_config(proxy.addr, rest_addr))).expect("grpc core");
        let gw_cfg = GatewayConfig { send_rate_per_sec: 100_000, send_burst: 100_000, ..GatewayConfig::default() };
        let gateway = Gateway::new(gw_cfg, Arc::new(core.clone()), Arc::new(core.registry()), pipeline.streams());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind gateway");
        let gateway_addr = listener.local_addr().expect("addr");
        let gw = gateway.clone();
        tokio::spawn(async move { chat_gateway::serve(listener, gw, std::future::pending()).await });

        Stack {
            service,
            auth,
            store,
            pipeline,
            grpc_addr,
            rest_addr,
            proxy,
            token_requests,
            core,
            gateway,
            gateway_addr,
            _dir: dir,
        }
    }

    /// Registers and logs in a user.
    pub async fn user(&self, name: &str) -> TestUser {
        let password = format!("password-{name}");
        let user = self.auth.register(WorkspaceId::DEFAULT, name, &password, None).await.expect("register");
        let tokens = self.auth.login(WorkspaceId::DEFAULT, name, &password).await.expect("login");
        TestUser { id: user.id, token: tokens.access_token }
    }

    /// A channel owned by `owner` with `members`.
    pub async fn channel(&self, owner: &TestUser, name: &str, members: &[&TestUser]) -> ConversationId {
        let req = CreateChannel {
            name: name.into(),
            member_ids: members.iter().map(|m| m.id).collect(),
            ..Default::default()
        };
        self.service.create_channel(owner.id, req).await.expect("channel").id
    }

    /// A STOMP client on the gateway, connected with `user`'s token and subscribed to the
    /// messages and notifications queues.
    pub async fn client(&self, user: &TestUser) -> Client {
        let mut c = Client::open(self.gateway_addr, "/ws").await;
        c.connect(&[("authorization", &format!("Bearer {}", user.token))]).await;
        c.subscribe("m", "/user/queue/messages", &[]).await;
        c.subscribe("n", "/user/queue/notifications/private", &[]).await;
        c
    }
}
