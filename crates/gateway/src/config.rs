//! [`GatewayConfig`]: every limit and knob of the gateway, with documented defaults.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Configuration of a gateway node. Every field has a default (see [`GatewayConfig::default`]);
/// in TOML/serde form missing fields take their default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// This node's id: the key of its delivery stream and of its connections in the
    /// registry. Default: `gw-<random uuid>` (generated once per process when empty).
    pub node_id: String,
    /// Allowed `Origin` header values for the WebSocket handshake (exact match, e.g.
    /// `https://chat.example.com`). Empty (default) allows every origin. A request without an
    /// `Origin` header (non-browser clients) is always allowed; a disallowed origin gets
    /// HTTP 403 at the handshake.
    pub allowed_origins: Vec<String>,
    /// Maximum size of one STOMP frame in bytes (headers and body). Default 96 KiB.
    pub max_frame_bytes: usize,
    /// Maximum body size of one STOMP frame in bytes. Default 64 KiB.
    pub max_body_bytes: usize,
    /// Maximum number of headers of one frame. Default 64.
    pub max_headers: usize,
    /// Maximum length of one header line in bytes. Default 8 KiB (this also bounds one
    /// `resume` header; repeat the header for more conversations).
    pub max_header_line_bytes: usize,
    /// Maximum size of one incoming WebSocket message. Default 0 = twice
    /// `max_frame_bytes`, so that a frame slightly over the limit still reaches the STOMP
    /// decoder and gets an ERROR frame naming the limit (larger messages are refused by the
    /// WebSocket layer).
    pub max_ws_message_bytes: usize,
    /// WebSocket read buffer per connection in bytes (minimum 256): allocated for the
    /// connection's whole life, and the most one socket read takes in (a larger message is
    /// read in pieces of this size). Default 512: an idle connection's largest single cost
    /// (measured: 4096 → 512 saves ~2.5 KB of RSS per connection; tungstenite's own default
    /// is 128 KiB). Typical STOMP frames of a chat client fit in one read.
    pub ws_read_buffer_bytes: usize,
    /// Subscriptions per session. Default 32.
    pub max_subscriptions_per_session: usize,
    /// Concurrent sessions (devices) per user on this node. Default 16.
    pub max_sessions_per_user: usize,
    /// Sustained rate of client frames per session, frames per second. Every frame after
    /// CONNECT counts (SEND, SUBSCRIBE, UNSUBSCRIBE, ACK/NACK, BEGIN/COMMIT/ABORT,
    /// DISCONNECT; heart-beat EOLs do not). Default 50.
    pub send_rate_per_sec: u32,
    /// Burst of client frames per session (see [`GatewayConfig::send_rate_per_sec`]).
    /// Default 100.
    pub send_burst: u32,
    /// Maximum length of a client frame's `receipt` header in bytes (it is echoed in
    /// RECEIPT and ERROR frames). Default 256.
    pub max_receipt_bytes: usize,
    /// Outbound queue length per connection (frames and deliveries not yet written). A
    /// connection whose queue is full is closed as a slow consumer. Default 1024.
    pub outbound_queue_len: usize,
    /// Maximum bytes written in one WebSocket message when coalescing queued frames.
    /// Default 64 KiB.
    pub max_coalesce_bytes: usize,
    /// Time allowed between the WebSocket handshake and the STOMP CONNECT frame, in ms.
    /// Default 10,000.
    pub connect_timeout_ms: u64,
    /// Server heart-beat send interval `sx` in ms (0 = never). Default 10,000.
    pub heartbeat_send_ms: u32,
    /// Server heart-beat receive interval `sy` in ms (0 = never). Default 10,000.
    pub heartbeat_receive_ms: u32,
    /// Floor of a negotiated heart-beat interval in ms (clients cannot force a tight loop).
    /// Default 1,000.
    pub heartbeat_min_ms: u32,
    /// A connection is closed when nothing was received for the negotiated client interval
    /// times this factor. Default 2.
    pub heartbeat_grace_factor: u32,
    /// A raw WebSocket session whose client sends no STOMP heart-beats (`heart-beat:0,...`)
    /// gets a WebSocket Ping after this long without receiving anything, and is closed when
    /// nothing (not even the Pong) arrives within as long again, so a vanished client cannot
    /// stay registered (online, counted against `max_sessions_per_user`) forever. In ms;
    /// 0 = never. Default 30,000.
    pub liveness_probe_ms: u64,
    /// Minimum interval between two registry `last ping` updates of one connection, in ms.
    /// Default 10,000.
    pub registry_touch_interval_ms: u64,
    /// Open transactions per session. Default 4.
    pub max_transactions_per_session: usize,
    /// SEND frames buffered per transaction. Default 128.
    pub max_frames_per_transaction: usize,
    /// Bytes of SEND bodies buffered by all open transactions of one session together.
    /// Default 262,144 (256 KiB).
    pub max_transaction_bytes: usize,
    /// Page size of store reads for resume and gap repair (events per read; capped by the
    /// core's largest page, `Limits::max_page`). Default 500.
    pub replay_page_size: i64,
    /// Store reads of one replay in flight while earlier pages are written (minimum 1). A
    /// replay holds at most `replay_read_ahead + 1` pages in memory. Default 2.
    pub replay_read_ahead: usize,
    /// Conversations in the `resume` headers of one SUBSCRIBE. Default 1,024.
    pub max_resume_conversations: usize,
    /// How long the member list of a conversation is cached (typing recipients and
    /// `conversationMemberIds`), in ms; membership events passing through this gateway
    /// invalidate it at once, and forwarded typing is authorized against the core, not the
    /// cache. The bound on how stale a list can be when no membership event reached this
    /// gateway (every member's device offline at the change). Default 5,000.
    pub member_cache_ttl_ms: u64,
    /// On shutdown, how long sessions get to flush pending frames, in ms. Default 5,000.
    pub shutdown_grace_ms: u64,
    /// After a raw WebSocket session sent its last frame (ERROR, DISCONNECT's RECEIPT) and its
    /// WebSocket Close, incoming data is still read and discarded for at most this long, or
    /// until the client's Close, so the ERROR and the close status reach a client that is
    /// still sending (closing a socket with unread data resets it). In ms. Default 1,000.
    pub close_linger_ms: u64,
    /// SockJS under `/ws` (see [`SockJsConfig`]).
    pub sockjs: SockJsConfig,
    /// The built-in web client at `/` (see [`WebConfig`]).
    pub web: WebConfig,
}

/// The built-in web client (module `crate::web`): `GET /` (the page), `/assets/...` (its
/// scripts, styles and the vendored @stomp/stompjs and sockjs-client bundles, compiled into
/// the binary) and `/config.json` (what the page needs to know: the REST API's base URL and
/// the STOMP endpoints).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// Serve the web client. Default true.
    pub enabled: bool,
    /// Base URL of the REST API the page calls (scheme, host and port, optionally a path
    /// prefix; e.g. `https://api.chat.example.com`). Empty (default): the page's own scheme
    /// and host name with port [`WebConfig::rest_port`]. The REST API answers such
    /// cross-origin calls through its CORS policy (`chat_core::rest::cors`).
    pub rest_url: String,
    /// Port of the REST API when [`WebConfig::rest_url`] is empty. Default: unset, which a
    /// process running both listeners (`chat-sys serve`) fills with its REST port; else 8081
    /// (the REST listener's default port, see [`WebConfig::effective_rest_port`]).
    pub rest_port: Option<u16>,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig { enabled: true, rest_url: String::new(), rest_port: None }
    }
}

impl WebConfig {
    /// The REST port the page is told: [`WebConfig::rest_port`], else 8081.
    pub fn effective_rest_port(&self) -> u16 {
        self.rest_port.unwrap_or(8081)
    }
}

/// SockJS (protocol 0.3.3, as sockjs-node serves it) under `/ws`: the same STOMP sessions
/// as raw WebSocket, for clients that use sockjs-client (`http://host:8082/ws`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SockJsConfig {
    /// Serve SockJS: the welcome page on a plain `GET /ws`, `/ws/info`, `/ws/iframe.html` and
    /// the per-session transports `/ws/{server}/{session}/{transport}`. Default true. (A
    /// WebSocket upgrade on `/ws` and `/ws/websocket` is raw STOMP either way.)
    pub enabled: bool,
    /// Offer the SockJS `websocket` transport (`/ws/{server}/{session}/websocket`, and
    /// `websocket` in `/ws/info`). Default true.
    pub websocket: bool,
    /// A heartbeat frame `h` is sent on a receiving connection when nothing else was sent
    /// for this long, in ms. Default 25,000 (sockjs-node's `heartbeat_delay`).
    pub heartbeat_ms: u64,
    /// Bytes one streaming response (xhr_streaming, eventsource, htmlfile) carries before the
    /// server ends it and the client opens the next one. Default 131,072 (128 KiB,
    /// sockjs-node's `response_limit`).
    pub streaming_limit_bytes: usize,
    /// A session without a receiving connection for this long is closed and forgotten (its
    /// STOMP session ends), in ms. Default 5,000 (sockjs-node's `disconnect_delay`).
    pub session_timeout_ms: u64,
    /// URL of the sockjs-client script that `/ws/iframe.html` loads (iframe-based transports;
    /// it must be the version the page uses). Default `/assets/vendor/sockjs.min.js`: the
    /// copy of sockjs-client 1.6.1 the gateway serves with its web client
    /// ([`WebConfig::enabled`]); with the web client off, point it at a copy elsewhere.
    pub client_url: String,
    /// `cookie_needed` in `/ws/info`; when true every transport response sets
    /// `JSESSIONID` (the request's value, else `dummy`) for sticky load balancers. Default false.
    pub cookie_needed: bool,
    /// SockJS sessions (HTTP transports) open at once on this node; beyond it a new session
    /// gets HTTP 503. Default 10,000.
    pub max_sessions: usize,
}

impl Default for SockJsConfig {
    fn default() -> Self {
        SockJsConfig {
            enabled: true,
            websocket: true,
            heartbeat_ms: 25_000,
            streaming_limit_bytes: 128 * 1024,
            session_timeout_ms: 5_000,
            client_url: crate::web::SOCKJS_CLIENT_PATH.into(),
            cookie_needed: false,
            max_sessions: 10_000,
        }
    }
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            node_id: String::new(),
            allowed_origins: Vec::new(),
            max_frame_bytes: 96 * 1024,
            max_body_bytes: 64 * 1024,
            max_headers: 64,
            max_header_line_bytes: 8 * 1024,
            max_ws_message_bytes: 0,
            ws_read_buffer_bytes: 512,
            max_subscriptions_per_session: 32,
            max_sessions_per_user: 16,
            send_rate_per_sec: 50,
            send_burst: 100,
            max_receipt_bytes: 256,
            outbound_queue_len: 1024,
            max_coalesce_bytes: 64 * 1024,
            connect_timeout_ms: 10_000,
            heartbeat_send_ms: 10_000,
            heartbeat_receive_ms: 10_000,
            heartbeat_min_ms: 1_000,
            heartbeat_grace_factor: 2,
            liveness_probe_ms: 30_000,
            registry_touch_interval_ms: 10_000,
            max_transactions_per_session: 4,
            max_frames_per_transaction: 128,
            max_transaction_bytes: 256 * 1024,
            replay_page_size: 500,
            replay_read_ahead: 2,
            max_resume_conversations: 1024,
            member_cache_ttl_ms: 5_000,
            shutdown_grace_ms: 5_000,
            close_linger_ms: 1_000,
            sockjs: SockJsConfig::default(),
            web: WebConfig::default(),
        }
    }
}

impl GatewayConfig {
    /// The decoder limits derived from this configuration.
    pub fn stomp_limits(&self) -> chat_stomp::Limits {
        chat_stomp::Limits {
            max_frame_bytes: self.max_frame_bytes,
            max_headers: self.max_headers,
            max_header_line_bytes: self.max_header_line_bytes,
            max_body_bytes: self.max_body_bytes.min(self.max_frame_bytes),
        }
    }

    /// The heart-beat policy derived from this configuration.
    pub fn heartbeat(&self) -> chat_stomp::HeartBeatConfig {
        chat_stomp::HeartBeatConfig {
            send_ms: self.heartbeat_send_ms,
            receive_ms: self.heartbeat_receive_ms,
            min_send_ms: self.heartbeat_min_ms,
            min_receive_ms: self.heartbeat_min_ms,
            timeout_factor: self.heartbeat_grace_factor.max(1),
        }
    }

    /// Effective maximum WebSocket message size (see [`GatewayConfig::max_ws_message_bytes`]).
    pub fn ws_message_limit(&self) -> usize {
        if self.max_ws_message_bytes == 0 { self.max_frame_bytes.saturating_mul(2) } else { self.max_ws_message_bytes }
    }

    /// [`GatewayConfig::connect_timeout_ms`] as a duration.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms.max(1))
    }
}
