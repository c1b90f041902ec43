//! One STOMP session over one connection: the connection state machine.
//!
//! The session does not know its transport: it reads a [`Transport`]'s inbound stream (each
//! item one WebSocket-message equivalent of STOMP bytes: a WebSocket text or binary message,
//! or one string of a SockJS message array) and writes coalesced STOMP bytes to its outbound
//! sink (one WebSocket message, or one SockJS message). [`Transport::websocket`] adapts a
//! raw WebSocket; `crate::sockjs` adapts SockJS sessions.
//!
//! Two tasks per connection:
//! * the reader (this module, [`Session::serve`]): reads inbound messages, feeds them to the
//!   incremental decoder (so several frames per message and frames split across messages
//!   both work), and executes client commands one at a time, in order (one file per command:
//!   [`connect`], [`send`], [`subscribe`], [`ack`], [`transaction`], [`disconnect`]);
//! * the writer ([`writer::Writer`]): the only sender on the transport, fed through one
//!   bounded queue (see [`crate::delivery`]).
//!
//! Every protocol, limit or authorization failure is an ERROR frame (`message` names the
//! problem, `receipt-id` echoes the offending frame's receipt) followed by a close (STOMP
//! spec "ERROR").

mod ack;
mod connect;
mod disconnect;
mod send;
mod subscribe;
mod transaction;
pub(crate) mod writer;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use bytes::{Bytes, BytesMut};
use chat_domain::Millis;
use chat_stomp::{ClientFrame, Decoder, Frame, Item, ParseOptions, SendFrame, Version, encode_for_version, server};
use futures::stream::BoxStream;
use futures::{Sink, SinkExt, StreamExt};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::Shared;
use crate::core::Identity;
use crate::delivery::{ConnHandle, Outbound};
use crate::destinations::SubscribeDestination;

/// What the HTTP handshake learned about the client.
#[derive(Clone, Debug, Default)]
pub(crate) struct Peer {
    /// Remote address, when known.
    pub addr: Option<SocketAddr>,
    /// `User-Agent` header.
    pub user_agent: Option<String>,
    /// `?token=` from the handshake query (seed); never logged.
    pub query_token: Option<String>,
}

/// The outbound half of a transport: each item is one write of coalesced STOMP bytes; an
/// error means the client is gone.
pub(crate) type OutboundSink = std::pin::Pin<Box<dyn Sink<Bytes, Error = ()> + Send>>;

/// What carries one STOMP session.
pub(crate) struct Transport {
    /// Inbound messages, each one WebSocket-message equivalent of STOMP bytes; the end of
    /// the stream means the client is gone.
    pub inbound: BoxStream<'static, Bytes>,
    /// Outbound writes; closed when the session ends.
    pub outbound: OutboundSink,
}

impl Transport {
    /// A raw WebSocket: text and binary messages both carry STOMP bytes; writes are text
    /// messages when valid UTF-8 (the norm: UTF-8 headers and JSON bodies), else binary.
    pub fn websocket(socket: WebSocket) -> Transport {
        let (sink, stream) = socket.split();
        let inbound = futures::stream::unfold(stream, |mut stream| async move {
            loop {
                match stream.next().await {
                    Some(Ok(Message::Text(t))) => return Some((Bytes::from(t), stream)),
                    Some(Ok(Message::Binary(b))) => return Some((b, stream)),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return None,
                }
            }
        })
        .boxed();
        let outbound = sink
            .with(|bytes: Bytes| {
                let msg = match Utf8Bytes::try_from(bytes.clone()) {
                    Ok(text) => Message::Text(text),
                    Err(_) => Message::Binary(bytes),
                };
                futures::future::ready(Ok::<_, axum::Error>(msg))
            })
            .sink_map_err(|_| ());
        Transport { inbound, outbound: Box::pin(outbound) }
    }
}

/// An ERROR frame to send before closing.
#[derive(Debug)]
pub(crate) struct StompError {
    /// The `message` header.
    pub message: String,
    /// The offending frame's `receipt`, echoed as `receipt-id`.
    pub receipt: Option<String>,
    /// Extra headers (e.g. `version` for a failed negotiation).
    pub version_header: bool,
}

impl StompError {
    /// An error with a message.
    pub fn new(message: impl Into<String>) -> Self {
        StompError { message: message.into(), receipt: None, version_header: false }
    }

    /// Attaches the receipt of the offending frame.
    pub fn with_receipt(mut self, receipt: Option<&str>) -> Self {
        if self.receipt.is_none() {
            self.receipt = receipt.map(str::to_owned);
        }
        self
    }

    fn to_frame(&self) -> Frame {
        let frame = server::error(&self.message, self.receipt.as_deref(), Bytes::new());
        if self.version_header { frame.with_header("version", Version::SUPPORTED_HEADER) } else { frame }
    }
}

/// Result of one command.
pub(crate) type Handled = Result<Next, StompError>;

/// What the reader does after a command.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Keep reading.
    Continue,
    /// The session ended (DISCONNECT): the writer flushes and closes.
    Close,
}

/// The reader side of a session.
pub(crate) struct Session {
    shared: Arc<Shared>,
    /// Session id = registry connection id (UUID v7).
    id: Arc<str>,
    peer: Peer,
    handle: ConnHandle,
    decoder: Decoder,
    version: Version,
    /// Set by CONNECT.
    identity: Option<Identity>,
    /// Registered in the hub (and registry): must be removed on close.
    registered: bool,
    /// Close when nothing was received for this long (negotiated heart-beat × grace).
    receive_timeout: Option<Duration>,
    /// Subscription ids in use and their destinations (ids must be unique; count is limited).
    subscriptions: HashMap<String, SubscribeDestination>,
    /// Open transactions and their buffered SENDs.
    transactions: HashMap<String, Vec<SendFrame>>,
    /// Per-session SEND rate limit (governor's lock-free GCRA state; only this task uses it).
    limiter: DefaultDirectRateLimiter,
    last_touch: Instant,
    /// Device type reported to the registry (`device-type` CONNECT header or user agent).
    device_type: String,
}

impl Session {
    /// Serves one STOMP session over `transport` until it closes.
    pub async fn serve(shared: Arc<Shared>, transport: Transport, peer: Peer) {
        let Transport { inbound: stream, outbound: sink } = transport;
        let (tx, rx) = mpsc::channel(shared.cfg.outbound_queue_len.max(1));
        let id: Arc<str> = uuid::Uuid::now_v7().to_string().into();
        let handle = ConnHandle {
            session_id: id.clone(),
            tx,
            stop: CancellationToken::new(),
            slow: Arc::new(AtomicBool::new(false)),
        };
        let writer = writer::Writer::new(shared.clone(), handle.clone(), sink, rx);
        let mut writer = shared.tasks.spawn(writer.run());
        let rate = std::num::NonZeroU32::new(shared.cfg.send_rate_per_sec.max(1)).unwrap_or(std::num::NonZeroU32::MIN);
        let burst = std::num::NonZeroU32::new(shared.cfg.send_burst.max(1)).unwrap_or(std::num::NonZeroU32::MIN);
        let mut session = Session {
            decoder: Decoder::new(shared.cfg.stomp_limits()),
            shared,
            id,
            peer,
            handle,
            version: Version::V1_2,
            identity: None,
            registered: false,
            receive_timeout: None,
            subscriptions: HashMap::new(),
            transactions: HashMap::new(),
            limiter: RateLimiter::direct(Quota::per_second(rate).allow_burst(burst)),
            last_touch: Instant::now(),
            device_type: String::new(),
        };
        let graceful = session.read_loop(stream).await;
        session.unregister().await;
        if graceful {
            let grace = Duration::from_millis(session.shared.cfg.shutdown_grace_ms.max(100));
            if tokio::time::timeout(grace, &mut writer).await.is_err() {
                session.handle.stop.cancel();
                let _ = writer.await;
            }
        } else {
            session.handle.stop.cancel();
            let _ = writer.await;
        }
    }

    /// Reads until the session ends; `true` when a Close was queued for the writer (flush
    /// it), `false` when the connection was lost or stopped.
    async fn read_loop(&mut self, mut stream: BoxStream<'static, Bytes>) -> bool {
        let connect_deadline = Instant::now() + self.shared.cfg.connect_timeout();
        let touch_every = Duration::from_millis(self.shared.cfg.registry_touch_interval_ms.max(100));
        let mut touch = tokio::time::interval_at(Instant::now() + touch_every, touch_every);
        let stop = self.handle.stop.clone();
        let shutdown = self.shared.shutdown.clone();
        loop {
            let deadline = match (self.identity, self.receive_timeout) {
                (None, _) => Some(connect_deadline),
                (Some(_), Some(t)) => Some(Instant::now() + t),
                (Some(_), None) => None,
            };
            let msg = tokio::select! {
                biased;
                _ = stop.cancelled() => return false,
                // The writer drains and closes on shutdown; wait for it.
                _ = shutdown.cancelled() => return true,
                _ = touch.tick() => {
                    self.touch().await;
                    continue;
                }
                _ = sleep_until_opt(deadline) => {
                    let message = if self.identity.is_none() {
                        "CONNECT timeout: no CONNECT frame received in time"
                    } else {
                        "heart-beat timeout: nothing received within the negotiated interval"
                    };
                    return self.fail(StompError::new(message)).await;
                }
                msg = stream.next() => msg,
            };
            let Some(data) = msg else { return false };
            match self.feed(&data).await {
                Ok(Next::Continue) => {}
                Ok(Next::Close) => return true,
                Err(e) => return self.fail(e).await,
            }
        }
    }

    /// Decodes and executes every complete frame in `data`.
    async fn feed(&mut self, data: &[u8]) -> Handled {
        let mut rest = data;
        loop {
            let item = match self.decoder.decode_next(&mut rest) {
                Ok(Some(item)) => item,
                Ok(None) => return Ok(Next::Continue),
                Err(e) => return Err(StompError::new(e.to_string())),
            };
            let Item::Frame(frame) = item else { continue };
            let receipt = frame.header("receipt").map(str::to_owned);
            let options = ParseOptions { require_host: false, version: self.version };
            let next = match ClientFrame::from_frame_with(frame, &options) {
                Ok(cmd) => self.execute(cmd).await,
                Err(e) => Err(StompError::new(e.to_string())),
            };
            match next.map_err(|e| e.with_receipt(receipt.as_deref()))? {
                Next::Continue => {}
                Next::Close => return Ok(Next::Close),
            }
        }
    }

    /// Executes one client command.
    async fn execute(&mut self, cmd: ClientFrame) -> Handled {
        match cmd {
            ClientFrame::Connect(_) if self.identity.is_some() => {
                Err(StompError::new("already connected: a second CONNECT is not allowed"))
            }
            ClientFrame::Connect(connect) => self.on_connect(connect).await,
            _ if self.identity.is_none() => Err(StompError::new("expected a CONNECT or STOMP frame first")),
            ClientFrame::Send(f) => self.on_send(f).await,
            ClientFrame::Subscribe(f) => self.on_subscribe(f).await,
            ClientFrame::Unsubscribe { id, receipt } => self.on_unsubscribe(id, receipt).await,
            ClientFrame::Ack(f) | ClientFrame::Nack(f) => self.on_ack(f).await,
            ClientFrame::Begin { transaction, receipt } => self.on_begin(transaction, receipt).await,
            ClientFrame::Commit { transaction, receipt } => self.on_commit(transaction, receipt).await,
            ClientFrame::Abort { transaction, receipt } => self.on_abort(transaction, receipt).await,
            ClientFrame::Disconnect { receipt } => self.on_disconnect(receipt).await,
        }
    }

    /// Queues an ERROR frame and the close; returns `true` (the writer flushes it).
    async fn fail(&mut self, err: StompError) -> bool {
        tracing::debug!(session = %self.id, message = %err.message, "closing session with ERROR");
        let frame = self.encode(&err.to_frame());
        self.queue(Outbound::Close(frame)).await;
        true
    }

    /// Encodes a frame for this session's version.
    pub(crate) fn encode(&self, frame: &Frame) -> Option<Bytes> {
        let mut buf = BytesMut::new();
        match encode_for_version(frame, self.version, &mut buf) {
            Ok(()) => Some(buf.freeze()),
            Err(e) => {
                tracing::warn!(error = %e, "cannot encode frame");
                None
            }
        }
    }

    /// Queues work for the writer, waiting for room (back-pressure on this client only).
    pub(crate) async fn queue(&self, item: Outbound) {
        let _ = self.handle.tx.send(item).await;
    }

    /// Queues a RECEIPT when one was asked for.
    pub(crate) async fn receipt(&self, receipt: Option<&str>) {
        if let Some(r) = receipt
            && let Some(frame) = self.encode(&server::receipt(r))
        {
            self.queue(Outbound::Frame(frame)).await;
        }
    }

    /// The authenticated identity (commands after CONNECT only).
    pub(crate) fn identity(&self) -> Identity {
        self.identity.expect("commands other than CONNECT run after authentication")
    }

    /// Refreshes the registry's last ping (at most every `registry_touch_interval_ms`);
    /// re-registers when the registry forgot the connection.
    async fn touch(&mut self) {
        if !self.registered {
            return;
        }
        self.last_touch = Instant::now();
        match self.shared.registry.touch(&self.id, Millis::now()).await {
            Ok(true) => {}
            Ok(false) => self.register_connection().await,
            Err(e) => tracing::warn!(error = %e, "registry touch failed"),
        }
    }

    /// Removes the session from the hub and the registry.
    async fn unregister(&mut self) {
        if !self.registered {
            return;
        }
        self.registered = false;
        if let Some(identity) = self.identity {
            self.shared.hub.remove(identity.user_id, &self.id);
        }
        if let Err(e) = self.shared.registry.unregister(&self.id).await {
            tracing::warn!(error = %e, "registry unregister failed");
        }
        metrics::gauge!("gateway_sessions").decrement(1.0);
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
