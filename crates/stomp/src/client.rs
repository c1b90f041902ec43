//! Typed, validated client frames (spec "Client Frames" and the "Frames and
//! Headers" table of required/optional headers).

use bytes::Bytes;

use crate::frame::{Command, Frame, Headers};
use crate::heartbeat::{HeartBeat, HeartBeatError};
use crate::version::{NegotiationError, Version};

/// Why a decoded [`Frame`] is not a valid client frame. Display text is
/// suitable for an ERROR frame's `message` header. When the offending frame
/// carried a `receipt` header, the ERROR frame should carry it as `receipt-id`
/// (read it from the raw frame: `frame.header("receipt")`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientFrameError {
    /// A server command (CONNECTED, MESSAGE, RECEIPT, ERROR) sent by a client.
    #[error("{0} is not a client frame")]
    NotAClientCommand(Command),
    /// A header the spec marks REQUIRED for this command is absent.
    #[error("{command} frame is missing required header '{header}'")]
    MissingHeader {
        /// Frame command.
        command: Command,
        /// Missing header name.
        header: &'static str,
    },
    /// A required header (destination, id, transaction) is present but empty.
    #[error("{command} frame has an empty '{header}' header")]
    EmptyHeader {
        /// Frame command.
        command: Command,
        /// Empty header name.
        header: &'static str,
    },
    /// SUBSCRIBE `ack` is not `auto`, `client` or `client-individual`.
    #[error("invalid ack mode '{0}' (expected auto, client or client-individual)")]
    InvalidAckMode(String),
    /// CONNECT/STOMP `heart-beat` is malformed.
    #[error(transparent)]
    InvalidHeartBeat(#[from] HeartBeatError),
    /// A body on a frame other than SEND (spec "Body": other client frames
    /// "MUST NOT have a body").
    #[error("{0} frame must not have a body")]
    UnexpectedBody(Command),
}

/// Options for [`ClientFrame::from_frame_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseOptions {
    /// Require `host` on CONNECT/STOMP from 1.1+ clients (those sending
    /// `accept-version`), as the spec's table does. Default `true`. Some
    /// browser clients (e.g. stomp.js) omit it; set `false` to accept them.
    pub require_host: bool,
    /// The session's negotiated version. Default 1.2. Before 1.2, ACK/NACK
    /// identify the message by `message-id` (spec 1.1 "ACK") instead of `id`;
    /// with an older version the `id` field is taken from `message-id` when `id`
    /// is absent, and the missing header reported is `message-id`.
    pub version: Version,
}

impl Default for ParseOptions {
    fn default() -> Self {
        Self { require_host: true, version: Version::V1_2 }
    }
}

/// SUBSCRIBE `ack` mode (spec "SUBSCRIBE ack Header").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AckMode {
    /// `auto` (default): messages are acknowledged when sent.
    #[default]
    Auto,
    /// `client`: an ACK acknowledges the message and all earlier ones (cumulative).
    Client,
    /// `client-individual`: an ACK acknowledges only that message.
    ClientIndividual,
}

impl AckMode {
    /// Parses the header value; `None` for an unknown mode.
    pub fn parse(value: &str) -> Option<AckMode> {
        match value {
            "auto" => Some(AckMode::Auto),
            "client" => Some(AckMode::Client),
            "client-individual" => Some(AckMode::ClientIndividual),
            _ => None,
        }
    }

    /// Wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AckMode::Auto => "auto",
            AckMode::Client => "client",
            AckMode::ClientIndividual => "client-individual",
        }
    }
}

/// CONNECT or STOMP frame (spec "CONNECT or STOMP Frame").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectFrame {
    /// True when the client used the STOMP command rather than CONNECT.
    pub stomp_command: bool,
    /// `accept-version` (REQUIRED in 1.2; absent means a 1.0 client).
    pub accept_version: Option<String>,
    /// `host` (virtual host; REQUIRED for 1.1+ unless [`ParseOptions::require_host`] is off).
    pub host: Option<String>,
    /// `login`.
    pub login: Option<String>,
    /// `passcode`.
    pub passcode: Option<String>,
    /// `authorization` (non-standard; e.g. a bearer token).
    pub authorization: Option<String>,
    /// `heart-beat` (`0,0` when absent).
    pub heart_beat: HeartBeat,
    /// Every header as received (CONNECT headers are not unescaped).
    pub headers: Headers,
}

impl ConnectFrame {
    /// The version for the session (see [`Version::negotiate`]).
    ///
    /// # Errors
    /// [`NegotiationError`] when no offered version is supported.
    pub fn negotiate_version(&self) -> Result<Version, NegotiationError> {
        Version::negotiate(self.accept_version.as_deref())
    }
}

/// SEND frame (spec "SEND").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendFrame {
    /// `destination` (REQUIRED, non-empty).
    pub destination: String,
    /// `transaction`, when the send is part of one.
    pub transaction: Option<String>,
    /// `receipt` requested by the client.
    pub receipt: Option<String>,
    /// `content-type` (MIME type; text/* bodies are UTF-8 unless a charset is given).
    pub content_type: Option<String>,
    /// Body octets.
    pub body: Bytes,
    /// Every header as received (including the ones above and `content-length`).
    pub headers: Headers,
}

/// Headers of a SEND that describe the SEND itself rather than the message.
const SEND_CONTROL_HEADERS: [&str; 5] = ["destination", "transaction", "receipt", "content-type", "content-length"];

impl SendFrame {
    /// The user-defined headers (spec: "SEND frames SHOULD ... pass on ... any
    /// additional headers"), i.e. all headers except destination, transaction,
    /// receipt, content-type and content-length, in order.
    pub fn user_headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().filter(|(n, _)| !SEND_CONTROL_HEADERS.contains(n))
    }
}

/// SUBSCRIBE frame (spec "SUBSCRIBE").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeFrame {
    /// `id` (REQUIRED, non-empty): unique per connection.
    pub id: String,
    /// `destination` (REQUIRED, non-empty).
    pub destination: String,
    /// `ack` mode (default `auto`).
    pub ack: AckMode,
    /// `receipt` requested by the client.
    pub receipt: Option<String>,
    /// Every header as received (e.g. a custom `resume` header).
    pub headers: Headers,
}

/// ACK or NACK frame (spec "ACK", "NACK").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckFrame {
    /// `id` (REQUIRED): the `ack` header of the MESSAGE being acknowledged
    /// (`message-id` for 1.0/1.1 sessions, see [`ParseOptions::version`]).
    pub id: String,
    /// `transaction`, when part of one.
    pub transaction: Option<String>,
    /// `receipt` requested by the client.
    pub receipt: Option<String>,
}

/// A validated client frame, one variant per client command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFrame {
    /// CONNECT or STOMP.
    Connect(ConnectFrame),
    /// SEND.
    Send(SendFrame),
    /// SUBSCRIBE.
    Subscribe(SubscribeFrame),
    /// UNSUBSCRIBE (`id` REQUIRED).
    Unsubscribe {
        /// Subscription id.
        id: String,
        /// `receipt` requested by the client.
        receipt: Option<String>,
    },
    /// ACK.
    Ack(AckFrame),
    /// NACK.
    Nack(AckFrame),
    /// BEGIN (`transaction` REQUIRED).
    Begin {
        /// Transaction id.
        transaction: String,
        /// `receipt` requested by the client.
        receipt: Option<String>,
    },
    /// COMMIT (`transaction` REQUIRED).
    Commit {
        /// Transaction id.
        transaction: String,
        /// `receipt` requested by the client.
        receipt: Option<String>,
    },
    /// ABORT (`transaction` REQUIRED).
    Abort {
        /// Transaction id.
        transaction: String,
        /// `receipt` requested by the client.
        receipt: Option<String>,
    },
    /// DISCONNECT (spec "DISCONNECT": the server sends a RECEIPT for `receipt`).
    Disconnect {
        /// `receipt` requested by the client.
        receipt: Option<String>,
    },
}

impl ClientFrame {
    /// Validates `frame` with default [`ParseOptions`] (strict spec table).
    ///
    /// # Errors
    /// See [`ClientFrame::from_frame_with`].
    pub fn from_frame(frame: Frame) -> Result<ClientFrame, ClientFrameError> {
        Self::from_frame_with(frame, &ParseOptions::default())
    }

    /// Validates `frame` against the spec's "Frames and Headers" table.
    ///
    /// Required headers: CONNECT/STOMP `accept-version` (absent = 1.0 client) and
    /// `host` (1.1+); SEND `destination`; SUBSCRIBE `destination`, `id`;
    /// UNSUBSCRIBE `id`; ACK/NACK `id`; BEGIN/COMMIT/ABORT `transaction`.
    /// Repeated headers: the first occurrence is used.
    ///
    /// # Errors
    /// [`ClientFrameError`]: server command, missing/empty required header,
    /// invalid `ack` or `heart-beat`, or a body on a frame other than SEND.
    pub fn from_frame_with(frame: Frame, options: &ParseOptions) -> Result<ClientFrame, ClientFrameError> {
        let command = frame.command;
        if command.is_server() {
            return Err(ClientFrameError::NotAClientCommand(command));
        }
        if !frame.body.is_empty() && command != Command::Send {
            return Err(ClientFrameError::UnexpectedBody(command));
        }
        let h = &frame.headers;
        let opt = |name: &str| h.get(name).map(str::to_owned);
        let required = |header: &'static str| match h.get(header) {
            None => Err(ClientFrameError::MissingHeader { command, header }),
            Some("") => Err(ClientFrameError::EmptyHeader { command, header }),
            Some(v) => Ok(v.to_owned()),
        };
        let receipt = opt("receipt");
        Ok(match command {
            Command::Connect | Command::Stomp => {
                let accept_version = opt("accept-version");
                let host = opt("host");
                if options.require_host && accept_version.is_some() && host.is_none() {
                    return Err(ClientFrameError::MissingHeader { command, header: "host" });
                }
                let heart_beat = h.get("heart-beat").map(HeartBeat::parse).transpose()?.unwrap_or_default();
                ClientFrame::Connect(ConnectFrame {
                    stomp_command: command == Command::Stomp,
                    accept_version,
                    host,
                    login: opt("login"),
                    passcode: opt("passcode"),
                    authorization: opt("authorization"),
                    heart_beat,
                    headers: frame.headers,
                })
            }
            Command::Send => ClientFrame::Send(SendFrame {
                destination: required("destination")?,
                transaction: opt("transaction"),
                receipt,
                content_type: opt("content-type"),
                body: frame.body,
                headers: frame.headers,
            }),
            Command::Subscribe => {
                let destination = required("destination")?;
                let id = required("id")?;
                let ack = match h.get("ack") {
                    None => AckMode::Auto,
                    Some(v) => AckMode::parse(v)
                        .ok_or_else(|| ClientFrameError::InvalidAckMode(crate::version::truncate(v, 32)))?,
                };
                ClientFrame::Subscribe(SubscribeFrame { id, destination, ack, receipt, headers: frame.headers })
            }
            Command::Unsubscribe => ClientFrame::Unsubscribe { id: required("id")?, receipt },
            Command::Ack | Command::Nack => {
                let id = if options.version < Version::V1_2 && !h.contains("id") {
                    required("message-id")?
                } else {
                    required("id")?
                };
                let ack = AckFrame { id, transaction: opt("transaction"), receipt };
                if command == Command::Ack { ClientFrame::Ack(ack) } else { ClientFrame::Nack(ack) }
            }
            Command::Begin => ClientFrame::Begin { transaction: required("transaction")?, receipt },
            Command::Commit => ClientFrame::Commit { transaction: required("transaction")?, receipt },
            Command::Abort => ClientFrame::Abort { transaction: required("transaction")?, receipt },
            Command::Disconnect => ClientFrame::Disconnect { receipt },
            Command::Connected | Command::Message | Command::Receipt | Command::Error => {
                unreachable!("server commands rejected above")
            }
        })
    }

    /// The command this frame was decoded from (CONNECT for both CONNECT and STOMP
    /// unless `stomp_command` is set).
    pub fn command(&self) -> Command {
        match self {
            ClientFrame::Connect(c) if c.stomp_command => Command::Stomp,
            ClientFrame::Connect(_) => Command::Connect,
            ClientFrame::Send(_) => Command::Send,
            ClientFrame::Subscribe(_) => Command::Subscribe,
            ClientFrame::Unsubscribe { .. } => Command::Unsubscribe,
            ClientFrame::Ack(_) => Command::Ack,
            ClientFrame::Nack(_) => Command::Nack,
            ClientFrame::Begin { .. } => Command::Begin,
            ClientFrame::Commit { .. } => Command::Commit,
            ClientFrame::Abort { .. } => Command::Abort,
            ClientFrame::Disconnect { .. } => Command::Disconnect,
        }
    }

    /// The `receipt` header requested by the client, if any (never for CONNECT,
    /// whose receipt is the CONNECTED frame).
    pub fn receipt(&self) -> Option<&str> {
        match self {
            ClientFrame::Connect(_) => None,
            ClientFrame::Send(s) => s.receipt.as_deref(),
            ClientFrame::Subscribe(s) => s.receipt.as_deref(),
            ClientFrame::Ack(a) | ClientFrame::Nack(a) => a.receipt.as_deref(),
            ClientFrame::Unsubscribe { receipt, .. }
            | ClientFrame::Begin { receipt, .. }
            | ClientFrame::Commit { receipt, .. }
            | ClientFrame::Abort { receipt, .. }
            | ClientFrame::Disconnect { receipt } => receipt.as_deref(),
        }
    }
}

impl TryFrom<Frame> for ClientFrame {
    type Error = ClientFrameError;

    /// Same as [`ClientFrame::from_frame`].
    fn try_from(frame: Frame) -> Result<Self, Self::Error> {
        ClientFrame::from_frame(frame)
    }
}
