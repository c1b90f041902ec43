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
//!
//! Gateway loop sketch (one [`Decoder`] per connection):
//!
//! ```
//! use bytes::BytesMut;
//! use chat_stomp::{ClientFrame, Decoder, HeartBeatConfig, Item, encode, server};
//!
//! let mut decoder = Decoder::default();
//! let mut out = BytesMut::new();
//! let payload = b"CONNECT\naccept-version:1.2\nhost:chat\nheart-beat:0,5000\n\n\0";
//! let mut rest = &payload[..];
//! while let Some(item) = decoder.decode_next(&mut rest).expect("ERROR frame + close on Err") {
//!     let Item::Frame(frame) = item else { continue }; // Item::HeartBeat: just liveness
//!     match ClientFrame::from_frame(frame) {
//!         Ok(ClientFrame::Connect(connect)) => {
//!             let version = connect.negotiate_version().unwrap();
//!             decoder.set_version(version);
//!             let hb = HeartBeatConfig::default().negotiate(connect.heart_beat);
//!             let reply = server::connected(version, hb.reply, Some("chat-sys"), Some("s-1"));
//!             encode(&reply, &mut out).unwrap();
//!             assert_eq!(hb.send_interval, Some(std::time::Duration::from_secs(10)));
//!         }
//!         Ok(_other) => { /* route */ }
//!         Err(e) => encode(&server::error(&e.to_string(), None, ""), &mut out).unwrap(),
//!     }
//! }
//! assert!(out.starts_with(b"CONNECTED\nversion:1.2\n"));
//! ```

#![warn(missing_docs)]

pub mod client;
pub mod decoder;
pub mod encoder;
mod escape;
pub mod frame;
pub mod heartbeat;
pub mod message;
pub mod server;
pub mod version;

pub use client::{
    AckFrame, AckMode, ClientFrame, ClientFrameError, ConnectFrame, ParseOptions, SendFrame, SubscribeFrame,
};
pub use decoder::{DecodeError, Decoder, Item, Limits};
pub use encoder::{EncodeError, encode, encode_for_version, encode_heartbeat, encode_to_bytes};
pub use frame::{Command, Frame, Headers};
pub use heartbeat::{HeartBeat, HeartBeatConfig, HeartBeatError, NegotiatedHeartBeat};
pub use message::MessageEncoder;
pub use version::{NegotiationError, Version};
