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
//! spec "ERROR"). An ERROR sent before CONNECTED has no `:`, `\`, CR or LF in its `message`
//! (clients decode header escapes only after a STOMP 1.2 CONNECTED).
//!
//! The reader never waits on the outbound queue: a full queue closes the connection as a slow
//! consumer (as for deliveries), so a client that sends receipt-bearing frames and never reads
//! cannot stall the reader (and its heart-beat deadline). Every client frame after CONNECT
//! counts against the session's rate limit.
//!
//! On a raw WebSocket the session ends with a WebSocket Close carrying a status code (1000
//! DISCONNECT, 1001 shutdown, 1008 ERROR or slow consumer, 1009 a size limit), then keeps
//! reading and discarding incoming data for at most `close_linger_ms` (or until the client's
//! Close), so the ERROR reaches a client that is still sending.

mod ack;
mod connect;
mod disconnect;
mod send;
mod subscribe;
mod transaction;
mod transport;
pub(crate) mod typing;
pub(crate) mod writer;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use chat_domain::{ConversationId, Millis};
use chat_stomp::{ClientFrame, DecodeError, Decoder, Frame, Item, ParseOptions, Version, encode_for_version, server};
use futures::StreamExt;
use futures::stream::BoxStream;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::Shared;
use crate::core::Identity;
use crate::delivery::{CloseStatus, ConnHandle, Outbound, close_code};
use crate::destinations::SubscribeDestination;

pub(crate) use self::transport::{OutboundSink, Transport};

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

/// An ERROR frame to send before closing.
#[derive(Debug)]
pub(crate) struct StompError {
    /// The `message` header.
    pub message: String,
    /// The offending frame's `receipt`, echoed as `receipt-id`.
    pub receipt: Option<String>,
    /// Extra headers (e.g. `version` for a failed negotiation).
    pub version_header: bool,
    /// WebSocket close status (1008, or 1009 for a size limit).
    pub close_code: u16,
}

impl StompError {
    /// An error with a message.
    pub fn new(message: impl Into<String>) -> Self {
        StompError { message: message.into(), receipt: None, version_header: false, close_code: close_code::POLICY }
    }

    /// An error for a size limit (WebSocket close status 1009).
    pub fn too_big(message: impl Into<String>) -> Self {
        StompError { close_code: close_code::TOO_BIG, ..StompError::new(message) }
    }

    /// A decoder error (size limits close with 1009).
    fn decode(e: &DecodeError) -> Self {
        match e {
            DecodeError::HeaderLineTooLong { .. }
            | DecodeError::TooManyHeaders { .. }
            | DecodeError::BodyTooLarge { .. }
            | DecodeError::FrameTooLarge { .. } => StompError::too_big(e.to_string()),
            _ => StompError::new(e.to_string()),
        }
    }

    /// Attaches the receipt of the offending frame.
    pub fn with_receipt(mut self, receipt: Option<&str>) -> Self {
        if self.receipt.is_none() {
            self.receipt = receipt.map(str::to_owned);
        }
        self
    }

    /// The ERROR frame; `connected` is false before CONNECTED, when clients do not decode
    /// header escapes yet: the message then has no character that would be escaped.
    fn to_frame(&self, connected: bool) -> Frame {
        let message = if connected { self.message.clone() } else { unescaped_message(&self.message) };
        let frame = server::error(&message, self.receipt.as_deref(), Bytes::new());
        if self.version_header { frame.with_header("version", Version::SUPPORTED_HEADER) } else { frame }
    }
}

/// `message` without the characters STOMP 1.2 escapes in headers: `: ` becomes ` - `, other
/// `:` and `\\` become spaces and `/`, CR and LF spaces.
fn unescaped_message(message: &str) -> String {
    message.replace(": ", " - ").replace(':', " ").replace('\\', "/").replace(['\r', '\n'], " ")
}

/// How the reader ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// A Close was queued for the writer (ERROR, DISCONNECT, shutdown): let it flush.
    Graceful,
    /// Stopped from outside (slow consumer, the writer failed).
    Stopped,
    /// The client went away (inbound stream ended).
    Lost,
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
    /// Without client heart-beats: probe (WebSocket Ping) after this long without receiving
    /// anything, and close when the probe gets no answer within as long again
    /// ([`crate::GatewayConfig::liveness_probe_ms`]; `None` when the transport cannot).
    probe_after: Option<Duration>,
    /// Subscription ids in use and their destinations (ids must be unique; count is limited).
    subscriptions: HashMap<String, SubscribeDestination>,
    /// Open transactions and their buffered (already validated) SENDs.
    transactions: HashMap<String, Vec<send::Prepared>>,
    /// Body bytes buffered by all open transactions (`max_transaction_bytes`).
    transaction_bytes: usize,
    /// Per-session client frame rate limit (governor's lock-free GCRA state; only this task
    /// uses it).
    limiter: DefaultDirectRateLimiter,
    /// The inbound stream ended (the client is gone or sent its Close).
    inbound_ended: bool,
    /// Device type reported to the registry (`device-type` CONNECT header or user agent).
    device_type: std::borrow::Cow<'static, str>,
    /// Conversations this session forwarded a typing start in, and when (a stop is sent for
    /// them when the session ends; see [`typing`]).
    typing_in: HashMap<ConversationId, std::time::Instant>,
}

impl Session {
    /// Serves one STOMP session over `transport` until it closes (SockJS: no close status,
    /// no lingering).
    pub fn serve(shared: Arc<Shared>, transport: Transport, peer: Peer) -> impl Future<Output = ()> + Send + 'static {
        Session::serve_with(shared, transport, peer, Arc::new(CloseStatus::default()), None)
    }

    /// Serves one STOMP session over a raw WebSocket ([`Transport::websocket`]).
    pub fn serve_websocket(
        shared: Arc<Shared>,
        transport: Transport,
        peer: Peer,
        close: Arc<CloseStatus>,
    ) -> impl Future<Output = ()> + Send + 'static {
        let linger = Duration::from_millis(shared.cfg.close_linger_ms);
        Session::serve_with(shared, transport, peer, close, Some(linger))
    }

    /// Serves one session; `linger`: after the writer closed, read and discard incoming data
    /// for at most this long (until the client's Close), so the ERROR and the close status
    /// reach a client that is still sending.
    ///
    /// Not an `async fn`: the session is built here and the returned future holds it once
    /// (an `async fn` would also keep its arguments for its whole life).
    fn serve_with(
        shared: Arc<Shared>,
        transport: Transport,
        peer: Peer,
        close: Arc<CloseStatus>,
        linger: Option<Duration>,
    ) -> impl Future<Output = ()> + Send + 'static {
        let Transport { inbound, outbound, answers_pings } = transport;
        let probe_after = (answers_pings && shared.cfg.liveness_probe_ms > 0)
            .then(|| Duration::from_millis(shared.cfg.liveness_probe_ms));
        let (tx, rx) = crate::queue::channel(shared.cfg.outbound_queue_len);
        let id: Arc<str> = uuid::Uuid::now_v7().to_string().into();
        let handle = ConnHandle { session_id: id.clone(), tx, stop: CancellationToken::new(), close };
        let rate = std::num::NonZeroU32::new(shared.cfg.send_rate_per_sec.max(1)).unwrap_or(std::num::NonZeroU32::MIN);
        let burst = std::num::NonZeroU32::new(shared.cfg.send_burst.max(1)).unwrap_or(std::num::NonZeroU32::MIN);
        let session = Session {
            decoder: Decoder::new(shared.cfg.stomp_limits()),
            shared,
            id,
            peer,
            handle,
            version: Version::V1_2,
            identity: None,
            registered: false,
            receive_timeout: None,
            probe_after,
            subscriptions: HashMap::new(),
            transactions: HashMap::new(),
            transaction_bytes: 0,
            limiter: RateLimiter::direct(Quota::per_second(rate).allow_burst(burst)),
            inbound_ended: false,
            device_type: std::borrow::Cow::Borrowed(""),
            typing_in: HashMap::new(),
        };
        let mut session = session;
        let writer = writer::Writer::new(session.shared.clone(), session.handle.clone(), outbound, rx);
        let writer = session.shared.tasks.spawn(writer.run());
        // The block owns the session (one copy); `run` borrows it.
        async move { session.run(inbound, writer, linger).await }
    }

    /// Reads until the session ends, then closes it and waits for `writer` (see
    /// [`Session::serve_with`]).
    async fn run(
        &mut self,
        mut stream: BoxStream<'static, Bytes>,
        mut writer: tokio::task::JoinHandle<()>,
        linger: Option<Duration>,
    ) {
        let session = self;
        let end = session.read_loop(&mut stream).await;
        Box::pin(session.stop_typing_on_close()).await;
        session.unregister().await;
        session.transactions.clear();
        let drain = linger.is_some();
        if end == End::Graceful {
            // Let the writer flush (at most the grace), reading meanwhile.
            let until = Instant::now() + Duration::from_millis(session.shared.cfg.shutdown_grace_ms.max(100));
            let done = session.drain_until(&mut stream, Some(&mut writer), until, drain).await;
            if !done {
                session.handle.stop.cancel();
                let _ = (&mut writer).await;
            }
        } else {
            session.handle.stop.cancel();
            let _ = (&mut writer).await;
        }
        if let Some(linger) = linger {
            let until = Instant::now() + linger;
            if !session.inbound_ended {
                session.drain_until(&mut stream, None, until, true).await;
            } else if session.handle.close.too_big.load(Ordering::Acquire) {
                // The stream failed mid-message: it cannot be read on, but the socket is held
                // a moment so the ERROR and the Close are read before the reset.
                tokio::time::sleep_until(until).await;
            }
        }
    }

    /// Reads and discards inbound data (when `read`) until `until`, the end of the inbound
    /// stream, or (when given) the end of `writer`; `true` when the writer ended.
    async fn drain_until(
        &mut self,
        stream: &mut BoxStream<'static, Bytes>,
        writer: Option<&mut tokio::task::JoinHandle<()>>,
        until: Instant,
        read: bool,
    ) -> bool {
        let waiting = writer.is_some();
        let writer_done = async move {
            match writer {
                Some(w) => {
                    let _ = w.await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::pin!(writer_done);
        loop {
            let reading = read && !self.inbound_ended;
            if !waiting && !reading {
                return false;
            }
            tokio::select! {
                _ = &mut writer_done => return true,
                _ = tokio::time::sleep_until(until) => return false,
                msg = stream.next(), if reading => {
                    if msg.is_none() {
                        self.inbound_ended = true;
                    }
                }
            }
        }
    }

    /// Reads until the session ends.
    async fn read_loop(&mut self, stream: &mut BoxStream<'static, Bytes>) -> End {
        let connect_deadline = Instant::now() + self.shared.cfg.connect_timeout();
        let touch_every = Duration::from_millis(self.shared.cfg.registry_touch_interval_ms.max(100));
        let mut next_touch = Instant::now() + touch_every;
        let mut last_received = Instant::now();
        let stop = self.handle.stop.clone();
        let shutdown = self.shared.shutdown.clone();
        // The token's expiry as an instant, computed once after CONNECT (not per frame).
        let mut expiry: Option<Option<Instant>> = None;
        // When a liveness probe went out with nothing received since.
        let mut probed: Option<Instant> = None;
        loop {
            let deadline = match (self.identity, self.receive_timeout, self.probe_after) {
                (None, _, _) => Some(connect_deadline),
                (Some(_), Some(t), _) => Some(last_received + t),
                (Some(_), None, Some(p)) => Some(probed.unwrap_or(last_received) + p),
                (Some(_), None, None) => None,
            };
            if expiry.is_none()
                && let Some(identity) = self.identity
            {
                expiry = Some(identity.expires_at.map(|exp| {
                    let left = exp.0.saturating_sub(Millis::now().0).max(0);
                    Instant::now() + Duration::from_millis(u64::try_from(left).unwrap_or(0))
                }));
            }
            let expiry = expiry.flatten();
            // One timer for the registry touch, the receive deadline and the token's expiry
            // (an idle connection holds one timer, not three).
            let wake = [deadline, expiry].into_iter().flatten().fold(next_touch, Instant::min);
            let msg = tokio::select! {
                biased;
                _ = stop.cancelled() => return End::Stopped,
                // The writer drains and closes on shutdown; wait for it.
                _ = shutdown.cancelled() => {
                    self.handle.close.set(close_code::GOING_AWAY, "server shutting down");
                    return End::Graceful;
                }
                _ = tokio::time::sleep_until(wake) => {
                    let now = Instant::now();
                    if expiry.is_some_and(|e| now >= e) {
                        return self.fail(StompError::new(
                            "access token expired: reconnect with a fresh token",
                        ));
                    }
                    if deadline.is_some_and(|d| now >= d) {
                        let message = if self.identity.is_none() {
                            "CONNECT timeout: no CONNECT frame received in time"
                        } else if self.receive_timeout.is_some() {
                            "heart-beat timeout: nothing received within the negotiated interval"
                        } else if probed.is_none() {
                            // No heart-beats negotiated: ask the client's WebSocket for a Pong.
                            self.handle.offer(Outbound::Probe);
                            probed = Some(now);
                            continue;
                        } else {
                            "liveness timeout: no heart-beats and no answer to a WebSocket ping"
                        };
                        return self.fail(StompError::new(message));
                    }
                    if now >= next_touch {
                        self.touch().await;
                        next_touch = Instant::now() + touch_every;
                    }
                    continue;
                }
                msg = stream.next() => msg,
            };
            last_received = Instant::now();
            probed = None;
            let Some(data) = msg else {
                self.inbound_ended = true;
                if self.handle.close.too_big.load(Ordering::Acquire) {
                    let limit = self.shared.cfg.ws_message_limit();
                    return self.fail(StompError::too_big(format!(
                        "WebSocket message too large (max_ws_message_bytes = {limit})"
                    )));
                }
                return End::Lost;
            };
            match self.feed(&data).await {
                Ok(Next::Continue) => {}
                Ok(Next::Close) => return End::Graceful,
                Err(e) => return self.fail(e),
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
                Err(e) => return Err(StompError::decode(&e)),
            };
            if self.handle.stop.is_cancelled() {
                // Closed as a slow consumer meanwhile: the read loop ends.
                return Ok(Next::Continue);
            }
            let Item::Frame(frame) = item else { continue };
            let max_receipt = self.shared.cfg.max_receipt_bytes;
            if frame.header("receipt").is_some_and(|r| r.len() > max_receipt) {
                return Err(StompError::new(format!("receipt header too long (max_receipt_bytes = {max_receipt})")));
            }
            let receipt = frame.header("receipt").map(str::to_owned);
            let options = ParseOptions { require_host: false, version: self.version };
            let next = match ClientFrame::from_frame_with(frame, &options) {
                // Boxed: the commands' futures are large and exist only while one runs, so
                // an idle connection's task does not carry their space.
                Ok(cmd) => Box::pin(self.execute(cmd)).await,
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
            _ if self.limiter.check().is_err() => Err(StompError::new(format!(
                "client frame rate limit exceeded (send_rate_per_sec = {}, send_burst = {})",
                self.shared.cfg.send_rate_per_sec, self.shared.cfg.send_burst
            ))),
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

    /// Queues an ERROR frame and the close (the writer flushes it).
    fn fail(&mut self, err: StompError) -> End {
        tracing::debug!(session = %self.id, message = %err.message, "closing session with ERROR");
        let connected = self.identity.is_some();
        self.handle.close.set(err.close_code, if connected { &err.message } else { "STOMP ERROR" });
        let frame = self.encode(&err.to_frame(connected));
        if self.queue(Outbound::Close(frame)) { End::Graceful } else { End::Stopped }
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

    /// Queues work for the writer without waiting: a full queue closes the connection as a
    /// slow consumer (the reader then ends). `false` when not queued.
    pub(crate) fn queue(&self, item: Outbound) -> bool {
        self.handle.offer(item)
    }

    /// Queues a RECEIPT when one was asked for.
    pub(crate) fn receipt(&self, receipt: Option<&str>) {
        if let Some(r) = receipt
            && let Some(frame) = self.encode(&server::receipt(r))
        {
            self.queue(Outbound::Frame(frame));
        }
    }

    /// The authenticated identity (commands after CONNECT only).
    pub(crate) fn identity(&self) -> Identity {
        self.identity.expect("commands other than CONNECT run after authentication")
    }

    /// Refreshes the registry's last ping (at most every `registry_touch_interval_ms`);
    /// re-registers when the registry forgot the connection (Redis flushed, the entry
    /// expired), then resyncs every conversation of the session: events routed while the
    /// registration was missing never reached this gateway. The writer replays what it
    /// tracks from the store and sends RESYNC with an empty list (= all), as for a lost
    /// delivery ([`crate::delivery`]).
    async fn touch(&mut self) {
        if !self.registered {
            return;
        }
        match self.shared.registry.touch(&self.id, Millis::now()).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(session = %self.id, "registry forgot the connection: re-registering and resyncing");
                self.register_connection().await;
                self.queue(Outbound::Resync(Arc::new(Vec::new())));
            }
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

impl Drop for Session {
    /// Stops the writer too when the session's future is dropped before it ended (the
    /// writer is spawned with the session; after a normal end this changes nothing).
    fn drop(&mut self) {
        self.handle.stop.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future `f` returns (without calling it).
    fn future_size<A, B, C, D, R>(_: impl FnOnce(A, B, C, D) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    fn future_size1<A, R>(_: impl FnOnce(A) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    /// An idle connection's two tasks hold these futures for its whole life (commands and
    /// store reads are boxed while they run): they must stay small (see issue #8: memory per
    /// idle connection). Bounds have headroom over the sizes measured with rustc 1.95
    /// (1,352 and 672 bytes, debug and release alike).
    #[test]
    fn idle_connection_futures_stay_small() {
        assert!(future_size(Session::serve_websocket) <= 1_600, "reader {}", future_size(Session::serve_websocket));
        assert!(future_size1(writer::Writer::run) <= 800, "writer {}", future_size1(writer::Writer::run));
        assert!(std::mem::size_of::<Outbound>() <= 40, "Outbound {}", std::mem::size_of::<Outbound>());
    }
}
