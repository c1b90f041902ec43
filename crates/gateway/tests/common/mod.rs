//! Test harness: a real in-process stack (temporary SQLite store, Authenticator with tiny
//! Argon2 parameters, ChatService, in-process pipeline, gateway on 127.0.0.1:0) and a small
//! STOMP-over-WebSocket client (tokio-tungstenite + the chat-stomp codec).
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use chat_auth::{AuthConfig, Authenticator};
use chat_core::service::{ChatService, CreateChannel, Realtime, RealtimeConfig, ServiceConfig};
use chat_domain::{ConversationId, Limits, Millis, SeqWindow, UserId, Workspace, WorkspaceId};
use chat_gateway::{Gateway, GatewayConfig, InProcessCore};
use chat_pipeline::{ConnectionRegistry, InMemoryRegistry, InProcessStreams, Pipeline, PipelineConfig, StreamsConfig};
use chat_stomp::{Command, Decoder, Frame, Item, Limits as StompLimits, encode};
use chat_storage::{SqlStore, Store, UserStore};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long tests wait for an expected frame.
pub const WAIT: Duration = Duration::from_secs(10);

/// A running stack.
pub struct Stack {
    /// Gateway address.
    pub addr: SocketAddr,
    /// The service (to create conversations and inspect the store).
    pub service: ChatService,
    /// The authenticator.
    pub auth: Authenticator,
    /// The store.
    pub store: Arc<dyn Store>,
    /// The gateway.
    pub gateway: Gateway,
    /// The pipeline (kept alive).
    pub pipeline: Pipeline,
    /// Presence tracking and SEEN receipts ([`Stack::start_realtime`] only).
    pub realtime: Option<Arc<Realtime>>,
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

/// How a test wraps the connection registry the gateway sees.
pub type RegistryWrap = dyn Fn(Arc<dyn ConnectionRegistry>) -> Arc<dyn ConnectionRegistry>;

/// Gateway settings for tests: generous send rate.
pub fn test_config() -> GatewayConfig {
    GatewayConfig { send_rate_per_sec: 100_000, send_burst: 100_000, ..GatewayConfig::default() }
}

/// Service limits for tests: the per-user send rate is off (the load tests send faster; the
/// gateway's own limits are what these tests exercise).
pub fn test_limits() -> Limits {
    Limits { sends_per_user_per_sec: 0, ..Limits::default() }
}

impl Stack {
    /// Starts a stack with `cfg` (no presence or SEEN signals).
    pub async fn start(cfg: GatewayConfig) -> Stack {
        Stack::start_with(cfg, None, &|r| r).await
    }

    /// Starts a stack with `cfg` whose service and gateway push presence and SEEN signals.
    pub async fn start_realtime(cfg: GatewayConfig, realtime: RealtimeConfig) -> Stack {
        Stack::start_with(cfg, Some(realtime), &|r| r).await
    }

    /// Starts a stack with `cfg` whose gateway sees the connection registry through `wrap`
    /// (the fanout uses the registry itself).
    pub async fn start_with_registry(cfg: GatewayConfig, wrap: &RegistryWrap) -> Stack {
        Stack::start_with(cfg, None, wrap).await
    }

    async fn start_with(cfg: GatewayConfig, realtime: Option<RealtimeConfig>, wrap: &RegistryWrap) -> Stack {
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
        let auth = Authenticator::new(AuthConfig::for_tests(), store.clone(), store.clone()).await.expect("auth");
        let service = ChatService::new(
            store.clone(),
            ServiceConfig { limits: test_limits(), max_batch: 256, writers: 1, ..ServiceConfig::default() },
        );
        let pipeline = Pipeline::in_process(store.clone(), service.commit_notify(), PipelineConfig::default());
        let realtime = realtime.map(|c| Realtime::start(pipeline.registry(), pipeline.streams(), store.clone(), c));
        let (service, registry) = match &realtime {
            Some(rt) => (service.with_realtime(rt.clone()), rt.registry()),
            None => (service, pipeline.registry()),
        };
        let core = Arc::new(InProcessCore::new(service.clone(), auth.clone()));
        let gateway = Gateway::new(cfg, core, wrap(registry), pipeline.streams());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let gw = gateway.clone();
        tokio::spawn(async move {
            chat_gateway::serve(listener, gw, std::future::pending()).await.expect("serve");
        });
        Stack { addr, service, auth, store, gateway, pipeline, realtime, _dir: dir }
    }

    /// A second gateway on this stack's core whose registry and delivery streams are private
    /// (not fed by the fanout): the test publishes deliveries itself.
    pub async fn private_gateway(&self) -> (SocketAddr, Arc<InProcessStreams>, Gateway) {
        let service = self.service.clone();
        let core = Arc::new(InProcessCore::new(service, self.auth.clone()));
        let registry = Arc::new(InMemoryRegistry::new(Duration::from_secs(30)));
        let streams = Arc::new(InProcessStreams::new(StreamsConfig::default()));
        let gateway = Gateway::new(test_config(), core, registry, streams.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let gw = gateway.clone();
        tokio::spawn(async move {
            chat_gateway::serve(listener, gw, std::future::pending()).await.expect("serve");
        });
        (addr, streams, gateway)
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

    /// A DM.
    pub async fn dm(&self, a: &TestUser, b: &TestUser) -> ConversationId {
        self.service.open_dm(a.id, b.id).await.expect("dm").0.id
    }

    /// Number of messages stored in `conv` (as seen by `member`).
    pub async fn message_count(&self, member: &TestUser, conv: ConversationId) -> usize {
        let window = SeqWindow { after_seq: None, before_seq: None, limit: 500 };
        self.service.messages(member.id, conv, window).await.expect("messages").len()
    }

    /// The last seq of `conv`.
    pub async fn last_seq(&self, member: &TestUser, conv: ConversationId) -> i64 {
        self.service.conversation(member.id, conv).await.expect("conversation").last_seq
    }

    /// Opens a raw WebSocket to `path` (e.g. `/ws?token=...`).
    pub async fn ws(&self, path: &str) -> Client {
        Client::open(self.addr, path, None).await.expect("ws open").0
    }

    /// A connected client (token in the CONNECT Authorization header) subscribed to the
    /// messages and notifications queues.
    pub async fn client(&self, user: &TestUser) -> Client {
        let mut c = self.ws("/ws").await;
        c.connect(&[("authorization", &format!("Bearer {}", user.token))]).await;
        c.subscribe("m", "/user/queue/messages", &[]).await;
        c.subscribe("n", "/user/queue/notifications/private", &[]).await;
        c
    }
}

/// A STOMP-over-WebSocket client.
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    decoder: Decoder,
    frames: VecDeque<Frame>,
    /// Heart-beats (bare EOLs) received so far.
    pub heartbeats: usize,
    /// The connection was closed by the server.
    pub closed: bool,
    next_receipt: u64,
}

impl Client {
    /// Opens a WebSocket; `protocols` is the `Sec-WebSocket-Protocol` offer.
    pub async fn open(
        addr: SocketAddr,
        path: &str,
        protocols: Option<&str>,
    ) -> Result<
        (Client, tokio_tungstenite::tungstenite::handshake::client::Response),
        tokio_tungstenite::tungstenite::Error,
    > {
        let mut req = format!("ws://{addr}{path}").into_client_request()?;
        if let Some(p) = protocols {
            req.headers_mut().insert("Sec-WebSocket-Protocol", p.parse().unwrap());
        }
        let (ws, resp) = tokio_tungstenite::connect_async(req).await?;
        let decoder =
            Decoder::new(StompLimits { max_frame_bytes: 1 << 24, max_body_bytes: 1 << 24, ..Default::default() });
        Ok((Client { ws, decoder, frames: VecDeque::new(), heartbeats: 0, closed: false, next_receipt: 0 }, resp))
    }

    /// Sends raw bytes as one text message.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        let text = String::from_utf8(bytes.to_vec()).expect("utf8");
        let _ = self.ws.send(Message::text(text)).await;
    }

    /// Sends raw bytes as one binary message.
    pub async fn send_binary(&mut self, bytes: &[u8]) {
        let _ = self.ws.send(Message::binary(bytes.to_vec())).await;
    }

    /// Sends a frame.
    pub async fn send_frame(&mut self, frame: &Frame) {
        let mut buf = BytesMut::new();
        encode(frame, &mut buf).expect("encode");
        self.send_raw(&buf).await;
    }

    /// Reads WebSocket messages until a frame is available or `timeout` passes.
    pub async fn next_frame_within(&mut self, timeout: Duration) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(f) = self.frames.pop_front() {
                return Some(f);
            }
            if self.closed {
                return None;
            }
            let msg = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return None,
                Ok(None) | Ok(Some(Err(_))) => {
                    self.closed = true;
                    continue;
                }
                Ok(Some(Ok(m))) => m,
            };
            let data = match msg {
                Message::Text(t) => t.as_bytes().to_vec(),
                Message::Binary(b) => b.to_vec(),
                Message::Close(_) => {
                    self.closed = true;
                    continue;
                }
                _ => continue,
            };
            let mut rest = &data[..];
            while let Some(item) = self.decoder.decode_next(&mut rest).expect("server frame decodes") {
                match item {
                    Item::Frame(f) => self.frames.push_back(f),
                    Item::HeartBeat => self.heartbeats += 1,
                }
            }
        }
    }

    /// The next frame (panics after [`WAIT`]).
    pub async fn next_frame(&mut self) -> Frame {
        self.next_frame_within(WAIT).await.expect("a frame within the wait")
    }

    /// Waits for the server to close the connection (true) within `timeout`.
    pub async fn wait_closed(&mut self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.closed {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            let _ = self.next_frame_within(left).await;
        }
        true
    }

    /// Sends CONNECT with `headers` and expects CONNECTED.
    pub async fn connect(&mut self, headers: &[(&str, &str)]) -> Frame {
        let f = self.connect_raw(headers).await;
        assert_eq!(f.command, Command::Connected, "expected CONNECTED, got {f:?}");
        f
    }

    /// Sends CONNECT and returns the reply.
    pub async fn connect_raw(&mut self, headers: &[(&str, &str)]) -> Frame {
        let mut f = Frame::new(Command::Connect).with_header("accept-version", "1.2").with_header("host", "chat");
        for (k, v) in headers {
            f = f.with_header(*k, *v);
        }
        self.send_frame(&f).await;
        self.next_frame().await
    }

    /// A fresh receipt id.
    pub fn receipt_id(&mut self) -> String {
        self.next_receipt += 1;
        format!("r-{}", self.next_receipt)
    }

    /// SUBSCRIBE and wait for its RECEIPT (frames before it are kept).
    pub async fn subscribe(&mut self, id: &str, destination: &str, headers: &[(&str, &str)]) -> Vec<Frame> {
        let receipt = self.receipt_id();
        let mut f = Frame::new(Command::Subscribe)
            .with_header("id", id)
            .with_header("destination", destination)
            .with_header("receipt", receipt.as_str());
        for (k, v) in headers {
            f = f.with_header(*k, *v);
        }
        self.send_frame(&f).await;
        self.until_receipt(&receipt).await
    }

    /// Reads frames until RECEIPT `id`; returns the frames before it. Panics on ERROR.
    pub async fn until_receipt(&mut self, id: &str) -> Vec<Frame> {
        let mut before = Vec::new();
        loop {
            let f = self.next_frame().await;
            match f.command {
                Command::Receipt if f.header("receipt-id") == Some(id) => return before,
                Command::Error => panic!("ERROR while waiting for receipt {id}: {f:?}"),
                _ => before.push(f),
            }
        }
    }

    /// Reads until RECEIPT `receipt` and the `/user/queue/messages` MESSAGE whose `text` is
    /// `text` both arrived (in either order): the sender's own copy shows that the fanout
    /// has routed the message.
    pub async fn until_receipt_and_own_copy(&mut self, receipt: &str, text: &str) {
        let mut seen: Vec<Value> =
            self.until_receipt(receipt).await.iter().filter_map(|f| message_body(f, "/user/queue/messages")).collect();
        while !seen.iter().any(|m| m["text"] == text) {
            seen.extend(self.messages(1).await);
        }
    }

    /// Reads frames until an ERROR; returns it. Panics after [`WAIT`].
    pub async fn until_error(&mut self) -> Frame {
        loop {
            let f = self.next_frame().await;
            if f.command == Command::Error {
                return f;
            }
        }
    }

    /// SEND `/app/chat` with a receipt; returns the receipt id.
    pub async fn send_chat(&mut self, conv: ConversationId, user: UserId, message_id: &str, text: &str) -> String {
        let receipt = self.receipt_id();
        let body = serde_json::json!({
            "messageId": message_id, "conversationId": conv, "userId": user, "text": text,
        });
        self.send_json("/app/chat", &body, Some(&receipt)).await;
        receipt
    }

    /// SEND a JSON body to `destination`.
    pub async fn send_json(&mut self, destination: &str, body: &Value, receipt: Option<&str>) {
        let mut f = Frame::new(Command::Send)
            .with_header("destination", destination)
            .with_header("content-type", "application/json")
            .with_body(body.to_string());
        if let Some(r) = receipt {
            f = f.with_header("receipt", r);
        }
        self.send_frame(&f).await;
    }

    /// Collects MESSAGE bodies (JSON) from `/user/queue/messages` until `n` arrived.
    pub async fn messages(&mut self, n: usize) -> Vec<Value> {
        let mut out = Vec::new();
        while out.len() < n {
            let f = self.next_frame().await;
            if let Some(v) = message_body(&f, "/user/queue/messages") {
                out.push(v);
            }
        }
        out
    }

    /// Collects bodies of `eventType` events from `/user/queue/messages` until `n` arrived
    /// (other events, e.g. `USER_JOINED` of the test setup, are skipped).
    pub async fn events(&mut self, event_type: &str, n: usize) -> Vec<Value> {
        let mut out = Vec::new();
        while out.len() < n {
            let f = self.next_frame().await;
            if let Some(v) = message_body(&f, "/user/queue/messages")
                && v["eventType"] == event_type
            {
                out.push(v);
            }
        }
        out
    }

    /// `eventType` events arriving within `timeout`.
    pub async fn events_within(&mut self, event_type: &str, timeout: Duration) -> Vec<Value> {
        self.messages_within(timeout).await.into_iter().filter(|v| v["eventType"] == event_type).collect()
    }

    /// MESSAGE bodies from `/user/queue/messages` arriving within `timeout`.
    pub async fn messages_within(&mut self, timeout: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_frame_within(left).await {
                Some(f) => out.extend(message_body(&f, "/user/queue/messages")),
                None => return out,
            }
        }
    }

    /// Closes the socket.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// The JSON body of a MESSAGE frame to `destination`.
pub fn message_body(f: &Frame, destination: &str) -> Option<Value> {
    (f.command == Command::Message && f.header("destination") == Some(destination))
        .then(|| serde_json::from_slice(&f.body).expect("json body"))
}

/// The `MESSAGE` events (eventType MESSAGE) among `values`.
pub fn chat_messages(values: &[Value]) -> Vec<&Value> {
    values.iter().filter(|v| v["eventType"] == "MESSAGE").collect()
}
