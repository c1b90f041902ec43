//! STOMP 1.2 frame codec and protocol layer, with no I/O.
//!
//! Follows <https://stomp.github.io/stomp-specification-1.2.html>. The crate is
//! meant to sit behind a WebSocket gateway: the gateway feeds every WebSocket
//! message payload to a [`Decoder`], converts each decoded client [`Frame`] into a
//! typed [`ClientFrame`], and writes frames produced by the [`server`] builders
//! with [`encode`] (several frames may be appended to one `BytesMut`).
//!
//! Modules:
//! * [`frame`]: [`Frame`], [`Command`], [`Headers`] (spec "STOMP Frames").
//! * [`decoder`]: incremental, bounded [`Decoder`] yielding [`Item`]s, with [`Limits`]
//!   and typed [`DecodeError`]s.
//! * [`encoder`]: [`encode`], [`encode_for_version`], [`encode_heartbeat`].
//! * [`heartbeat`]: `heart-beat` header parsing and negotiation (spec "Heart-beating").
//! * [`client`]: validated [`ClientFrame`]s (spec "Client Frames").
//! * [`server`]: CONNECTED / MESSAGE / RECEIPT / ERROR builders (spec "Server Frames").
//! * [`version`]: protocol [`Version`] and `accept-version` negotiation (spec
//!   "Protocol Negotiation").

pub mod client;
pub mod decoder;
pub mod encoder;
mod escape;
pub mod frame;
pub mod heartbeat;
pub mod server;
pub mod version;

pub use client::{
    AckFrame, AckMode, ClientFrame, ClientFrameError, ConnectFrame, ParseOptions, SendFrame, SubscribeFrame,
};
pub use decoder::{DecodeError, Decoder, Item, Limits};
pub use encoder::{EncodeError, encode, encode_for_version, encode_heartbeat};
pub use frame::{Command, Frame, Headers};
pub use heartbeat::{HeartBeat, HeartBeatConfig, HeartBeatError, NegotiatedHeartBeat};
pub use version::{NegotiationError, Version};
