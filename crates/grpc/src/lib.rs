//! The gRPC API of chat-sys, wire-compatible with the seed's (`seed-contract.md`): packages
//! `auth.v1` (`AuthService`), `connection.v1` (`ConnectionManager`) and `message.v1`
//! (`MessageService`), compiled from `proto/` at build time (protox, no system `protoc`), plus
//! the standard `grpc.health.v1.Health` and server reflection (`grpc.reflection.v1` and
//! `v1alpha`) so standard tools (grpcurl, grpc_cli, grpc-health-probe) discover it.
//!
//! Entry point: [`GrpcServer`]. Interfaces authenticate and convert; [`ChatService`] decides.
//! Extensions beyond the seed (new rpcs and fields, no new service): `UpdateReadPosition`,
//! `GetEventsAfter`, `GetConversationMemberIds` and `GetConnectionsByUsers`, what a gateway in
//! its own process needs; the [`client`] module is that gateway's side ([`GrpcCore`],
//! [`GrpcRegistry`]).
//!
//! # Authentication
//! Every rpc except `AuthService.Hello`, health and reflection needs `authorization: Bearer
//! <jwt>` metadata: a user access token, or a service credential (an OAuth2
//! client_credentials token, `Subject::Service`) for internal callers such as the gateway. A
//! service acts for the user named in the request (`user_id` / `userId`, then required); a
//! user acts only as itself (another user id is `PERMISSION_DENIED`; empty means itself).
//! [`GrpcConfig::service_scope`] can require a scope of service credentials.
//!
//! # Errors
//! [`chat_domain::DomainError`] maps to a status code in one place ([`domain_status`]):
//! `Unauthenticated` → UNAUTHENTICATED, `Forbidden` → PERMISSION_DENIED, `Invalid` →
//! INVALID_ARGUMENT, `NotFound` → NOT_FOUND, `Conflict` → ALREADY_EXISTS, `RateLimited` →
//! RESOURCE_EXHAUSTED (with `retry-after-ms` metadata), `Unavailable` → UNAVAILABLE,
//! `Internal` → INTERNAL (details logged, not sent).
//!
//! # Streams
//! `StreamCreateMessages` answers every request in request order, each after its commit,
//! with up to [`GrpcConfig::stream_window`] requests in flight. Requests for different
//! conversations run concurrently and share the service's group commits; requests for the
//! same conversation are sent one after another, so their seqs follow request order (the
//! service offers no ordered batch submission to pipeline them). A client that stops reading
//! stops the server from reading more: per stream the server holds at most the window, the
//! response buffer and what HTTP/2 flow control admits. `StreamAckOffsets` records acks through `ChatService::ack`, echoes each
//! with the resulting position and forwards the ack updates that other gRPC ack streams of
//! this process record for conversations the caller is a member of (acks made through other
//! interfaces or other core processes are not forwarded).

#![warn(missing_docs)]

mod acks;
mod auth_svc;
mod authn;
pub mod client;
mod connection_svc;
mod convert;
mod error;
mod message_svc;
mod reads;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chat_auth::Authenticator;
use chat_core::service::ChatService;
use chat_pipeline::ConnectionRegistry;
use tokio::net::TcpListener;
use tokio_stream::StreamExt as _;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

pub use client::{GrpcCore, GrpcCoreConfig, GrpcRegistry, status_domain};
pub use error::domain_status;

/// Generated protobuf messages, clients and servers (prost + tonic), one module per package.
pub mod pb {
    /// `auth.v1`: `AuthService`.
    pub mod auth {
        /// Version 1.
        #[allow(missing_docs, clippy::all, clippy::pedantic)]
        pub mod v1 {
            tonic::include_proto!("auth.v1");
        }
    }
    /// `connection.v1`: `ConnectionManager`.
    pub mod connection {
        /// Version 1.
        #[allow(missing_docs, clippy::all, clippy::pedantic)]
        pub mod v1 {
            tonic::include_proto!("connection.v1");
        }
    }
    /// `message.v1`: `MessageService`.
    pub mod message {
        /// Version 1.
        #[allow(missing_docs, clippy::all, clippy::pedantic)]
        pub mod v1 {
            tonic::include_proto!("message.v1");
        }
    }

    /// The encoded `FileDescriptorSet` of `proto/` (with imports and source info), as served
    /// by reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/chat_descriptor.bin"));
}

/// Fully-qualified names of the three chat services, as reflection lists them.
pub const SERVICE_NAMES: [&str; 3] =
    ["auth.v1.AuthService", "connection.v1.ConnectionManager", "message.v1.MessageService"];

/// Settings of [`GrpcServer`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrpcConfig {
    /// Requests of one `StreamCreateMessages` stream processed concurrently (at least 1;
    /// default 64). Responses still leave in request order; with the window full the server
    /// stops reading the stream until the oldest request is answered.
    pub stream_window: usize,
    /// Responses buffered per stream before the server waits for the client to read (at
    /// least 1; default 16).
    pub stream_buffer: usize,
    /// Ack updates buffered for slow `StreamAckOffsets` readers before the oldest are dropped
    /// (default 1,024). Positions only grow, so a dropped update is superseded by a later one.
    pub ack_hub_capacity: usize,
    /// When set, service credentials must carry this scope to act for users; `None` (the
    /// default) accepts any service credential (clients exist only when an operator created
    /// them).
    pub service_scope: Option<String>,
    /// Largest accepted request message, in bytes (default 1 MiB); a larger one is refused
    /// by tonic's decoder with OUT_OF_RANGE.
    pub max_message_bytes: usize,
}

impl Default for GrpcConfig {
    fn default() -> Self {
        GrpcConfig {
            stream_window: 64,
            stream_buffer: 16,
            ack_hub_capacity: 1024,
            service_scope: None,
            max_message_bytes: 1024 * 1024,
        }
    }
}

/// State shared by the three service implementations.
pub(crate) struct Shared {
    pub(crate) service: ChatService,
    pub(crate) auth: Authenticator,
    pub(crate) registry: Arc<dyn ConnectionRegistry>,
    pub(crate) cfg: GrpcConfig,
    pub(crate) hub: acks::AckHub,
    /// Cancelled at shutdown: ends the open-ended `StreamAckOffsets` calls.
    pub(crate) shutdown: CancellationToken,
}

/// The gRPC server of the core role: the three chat services, health and reflection.
///
/// ```no_run
/// # async fn demo(service: chat_core::service::ChatService, auth: chat_auth::Authenticator,
/// #   registry: std::sync::Arc<dyn chat_pipeline::ConnectionRegistry>) -> anyhow::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:9090").await?;
/// chat_grpc::GrpcServer::new(service, auth, registry).serve(listener, std::future::pending()).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct GrpcServer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for GrpcServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcServer").field("cfg", &self.shared.cfg).finish_non_exhaustive()
    }
}

impl GrpcServer {
    /// A server over the service, the authenticator and the connection registry, with
    /// [`GrpcConfig::default`].
    pub fn new(service: ChatService, auth: Authenticator, registry: Arc<dyn ConnectionRegistry>) -> Self {
        Self::with_config(service, auth, registry, GrpcConfig::default())
    }

    /// Like [`GrpcServer::new`] with explicit settings.
    pub fn with_config(
        service: ChatService,
        auth: Authenticator,
        registry: Arc<dyn ConnectionRegistry>,
        cfg: GrpcConfig,
    ) -> Self {
        let cfg = GrpcConfig {
            stream_window: cfg.stream_window.max(1),
            stream_buffer: cfg.stream_buffer.max(1),
            ack_hub_capacity: cfg.ack_hub_capacity.max(1),
            ..cfg
        };
        let hub = acks::AckHub::new(cfg.ack_hub_capacity);
        let shutdown = CancellationToken::new();
        GrpcServer { shared: Arc::new(Shared { service, auth, registry, cfg, hub, shutdown }) }
    }

    /// The settings in use.
    pub fn config(&self) -> &GrpcConfig {
        &self.shared.cfg
    }

    /// Every service (chat services, health, reflection v1 and v1alpha) as tonic routes.
    ///
    /// # Panics
    /// Never in practice: the embedded descriptor sets are generated at build time and valid.
    pub fn routes(&self) -> Routes {
        use pb::auth::v1::auth_service_server::AuthServiceServer;
        use pb::connection::v1::connection_manager_server::ConnectionManagerServer;
        use pb::message::v1::message_service_server::MessageServiceServer;

        let max = self.shared.cfg.max_message_bytes;
        let auth = AuthServiceServer::new(auth_svc::AuthApi(self.shared.clone())).max_decoding_message_size(max);
        let conn = ConnectionManagerServer::new(connection_svc::ConnectionApi(self.shared.clone()))
            .max_decoding_message_size(max);
        let msg =
            MessageServiceServer::new(message_svc::MessageApi(self.shared.clone())).max_decoding_message_size(max);

        let (reporter, health) = tonic_health::server::health_reporter();
        // The reporter's lock is uncontended here (nobody else holds it yet).
        futures::executor::block_on(async {
            for name in SERVICE_NAMES {
                reporter.set_service_status(name, tonic_health::ServingStatus::Serving).await;
            }
        });

        // Both reflection versions list the same services: ours, health and both reflections.
        let descriptors = |b: tonic_reflection::server::Builder<'static>| {
            b.include_reflection_service(false)
                .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
        };
        let reflection_v1 = descriptors(tonic_reflection::server::Builder::configure())
            .build_v1()
            .expect("embedded descriptor sets are valid");
        let reflection_v1alpha = descriptors(tonic_reflection::server::Builder::configure())
            .build_v1alpha()
            .expect("embedded descriptor sets are valid");

        Routes::new(auth)
            .add_service(conn)
            .add_service(msg)
            .add_service(health)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
    }

    /// Ends every open `StreamAckOffsets` call (with UNAVAILABLE), which would otherwise
    /// keep a graceful shutdown waiting. [`GrpcServer::serve`] calls it when its shutdown
    /// signal fires; call it yourself when serving [`GrpcServer::router`].
    pub fn close_streams(&self) {
        self.shared.shutdown.cancel();
    }

    /// The routes as an [`axum::Router`], to mount on an HTTP/2-capable (h2c) listener.
    pub fn router(&self) -> axum::Router {
        self.routes().prepare().into_axum_router()
    }

    /// Serves on `listener` (HTTP/2 cleartext, as gRPC clients speak it) until `shutdown`
    /// completes, then stops accepting and lets running calls finish.
    ///
    /// # Errors
    /// A transport failure of the server.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), tonic::transport::Error> {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener).map(|conn| {
            if let Ok(stream) = &conn {
                let _ = stream.set_nodelay(true);
            }
            conn
        });
        tonic::transport::Server::builder()
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(Duration::from_secs(20)))
            .add_routes(self.routes())
            .serve_with_incoming_shutdown(incoming, async move {
                shutdown.await;
                self.close_streams();
            })
            .await
    }
}
