//! The frames each protocol needs, and what the client makes of what it receives.
//!
//! * [`Protocol::ChatSys`]: STOMP 1.2 (`crates/gateway/README.md`): CONNECT with
//!   `Authorization: Bearer`, SUBSCRIBE `/user/queue/messages` (optionally with `resume`),
//!   SEND `/app/chat` with a JSON body `{messageId, conversationId, text}` and a `receipt`.
//! * [`Protocol::RabbitStomp`]: STOMP 1.2 to RabbitMQ Web-STOMP: CONNECT with
//!   `login`/`passcode`, SUBSCRIBE and SEND to `/topic/<channel>` with receipts.
//! * [`Protocol::Centrifugo`]: Centrifugo's JSON client protocol (v2): newline-separated
//!   commands `{"id":..,"connect":{..}}`, `subscribe`, `publish`; pushes `{"push":{..}}`;
//!   a server ping `{}` is answered with `{}`.
//! * [`Protocol::Broadcast`]: the in-crate broadcast server ([`crate::limits`]): raw bodies,
//!   forwarded to every connection of the group (the sender's copy is its acknowledgement).

use bytes::BytesMut;
use chat_stomp::{Command, Decoder, Frame, Item};

use crate::marker::{Marker, json_int_field};

/// The wire protocol of a target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Protocol {
    /// chat-sys's STOMP gateway.
    ChatSys,
    /// RabbitMQ's Web-STOMP plugin.
    RabbitStomp,
    /// Centrifugo v6.
    Centrifugo,
    /// The minimal broadcast server of this crate.
    Broadcast,
}

impl Protocol {
    /// The WebSocket subprotocol to offer.
    pub fn subprotocol(self) -> Option<&'static str> {
        match self {
            Protocol::ChatSys | Protocol::RabbitStomp => Some("v12.stomp"),
            Protocol::Centrifugo | Protocol::Broadcast => None,
        }
    }

    /// Whether messages travel as WebSocket text (else binary).
    pub fn text(self) -> bool {
        !matches!(self, Protocol::Broadcast)
    }
}

/// How a connection authenticates.
#[derive(Clone, Debug)]
pub enum Credential {
    /// A JWT access token (chat-sys: `Authorization: Bearer`; Centrifugo: connect `token`).
    Bearer(String),
    /// STOMP `login`/`passcode` (RabbitMQ).
    Login(String, String),
    /// Nothing (the broadcast server; Centrifugo in insecure mode).
    Anonymous,
}

/// Receipt id of the subscription (STOMP) / command id of the first subscribe (Centrifugo).
pub const SUBSCRIBE_ID: u64 = 2;
/// Centrifugo publish ids are `PUBLISH_ID_BASE + n`.
pub const PUBLISH_ID_BASE: u64 = 16;

/// The first frame: CONNECT / connect command. `None` for the broadcast protocol.
pub fn connect(protocol: Protocol, credential: &Credential) -> Option<Vec<u8>> {
    match protocol {
        Protocol::ChatSys | Protocol::RabbitStomp => {
            let mut f = Frame::new(Command::Connect)
                .with_header("accept-version", "1.2")
                .with_header("host", if protocol == Protocol::RabbitStomp { "/" } else { "chat" })
                .with_header("heart-beat", "0,0");
            match credential {
                Credential::Bearer(t) => f = f.with_header("Authorization", format!("Bearer {t}")),
                Credential::Login(l, p) => f = f.with_header("login", l.clone()).with_header("passcode", p.clone()),
                Credential::Anonymous => {}
            }
            Some(encode(&f))
        }
        Protocol::Centrifugo => {
            let body = match credential {
                Credential::Bearer(t) => serde_json::json!({"id": 1, "connect": {"token": t, "name": "chat-bench"}}),
                _ => serde_json::json!({"id": 1, "connect": {"name": "chat-bench"}}),
            };
            Some(serde_json::to_vec(&body).unwrap_or_default())
        }
        Protocol::Broadcast => None,
    }
}

/// Whether chat-sys message events carry `conversationMemberIds` (its SUBSCRIBE header
/// `conversation-member-ids`). The peers never carry a member list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberIds {
    /// The seed's shape: every message event lists the conversation's members.
    #[default]
    Include,
    /// `conversation-member-ids:omit`: the same events without the list.
    Omit,
}

impl MemberIds {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberIds::Include => "include",
            MemberIds::Omit => "omit",
        }
    }
}

/// Subscriptions to `destinations` (chat-sys ignores them: one SUBSCRIBE to
/// `/user/queue/messages`, with `resume` when given and `member_ids`). The last one asks for
/// the receipt / has id [`SUBSCRIBE_ID`]. Empty for the broadcast protocol (the group is in
/// the URL).
pub fn subscribe(
    protocol: Protocol,
    destinations: &[String],
    resume: Option<&str>,
    member_ids: MemberIds,
) -> Vec<Vec<u8>> {
    match protocol {
        Protocol::ChatSys => {
            let mut f = Frame::new(Command::Subscribe)
                .with_header("id", "0")
                .with_header("destination", "/user/queue/messages")
                .with_header("conversation-member-ids", member_ids.as_str())
                .with_header("receipt", SUBSCRIBE_ID.to_string());
            if let Some(r) = resume {
                f = f.with_header("resume", r);
            }
            vec![encode(&f)]
        }
        Protocol::RabbitStomp => destinations
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let mut f =
                    Frame::new(Command::Subscribe).with_header("id", i.to_string()).with_header("destination", d);
                if i + 1 == destinations.len() {
                    f = f.with_header("receipt", SUBSCRIBE_ID.to_string());
                }
                encode(&f)
            })
            .collect(),
        Protocol::Centrifugo => destinations
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let id = if i + 1 == destinations.len() { SUBSCRIBE_ID } else { 3 + (i as u64 % 13) };
                serde_json::to_vec(&serde_json::json!({"id": id, "subscribe": {"channel": d}})).unwrap_or_default()
            })
            .collect(),
        Protocol::Broadcast => Vec::new(),
    }
}

/// Appends one message send of `body` (a marker) to `destination` with number `n` of stream
/// `stream` to `out`. `run` makes chat-sys's client message id (`messageId`, the idempotency
/// key) unique across runs that reuse the same users.
pub fn send(protocol: Protocol, destination: &str, run: u64, stream: u32, n: u64, body: &[u8], out: &mut Vec<u8>) {
    let body_str = std::str::from_utf8(body).unwrap_or("");
    match protocol {
        Protocol::ChatSys => {
            let json = format!(
                "{{\"messageId\":\"b{run}-{stream}-{n}\",\"conversationId\":\"{destination}\",\"text\":\"{body_str}\"}}"
            );
            stomp_send(out, "/app/chat", Some("application/json"), n, json.as_bytes());
        }
        Protocol::RabbitStomp => stomp_send(out, destination, None, n, body),
        Protocol::Centrifugo => {
            let cmd = format!(
                "{{\"id\":{},\"publish\":{{\"channel\":\"{destination}\",\"data\":{{\"m\":\"{body_str}\"}}}}}}",
                PUBLISH_ID_BASE + n
            );
            out.extend_from_slice(cmd.as_bytes());
        }
        Protocol::Broadcast => out.extend_from_slice(body),
    }
}

fn stomp_send(out: &mut Vec<u8>, destination: &str, content_type: Option<&str>, n: u64, body: &[u8]) {
    out.extend_from_slice(b"SEND\ndestination:");
    out.extend_from_slice(destination.as_bytes());
    if let Some(ct) = content_type {
        out.extend_from_slice(b"\ncontent-type:");
        out.extend_from_slice(ct.as_bytes());
    }
    out.extend_from_slice(format!("\nreceipt:{}\ncontent-length:{}\n\n", PUBLISH_ID_BASE + n, body.len()).as_bytes());
    out.extend_from_slice(body);
    out.push(0);
}

fn encode(f: &Frame) -> Vec<u8> {
    let mut b = BytesMut::new();
    // Frames built here have valid commands and headers: encoding cannot fail.
    let _ = chat_stomp::encode(f, &mut b);
    b.to_vec()
}

/// Something a client learned from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// CONNECTED / connect reply.
    Connected,
    /// The subscription is in place (its RECEIPT / reply).
    Subscribed,
    /// Message number `n` of this connection's stream was acknowledged.
    Acked(u64),
    /// A message delivery, with its chat-sys `seq` when present.
    Delivery(Marker, Option<i64>),
    /// A conversation event that is not a benchmark message (e.g. `USER_JOINED`), with its seq.
    OtherEvent(Option<i64>),
    /// The server asks for this reply (Centrifugo ping → pong).
    Reply(Vec<u8>),
    /// An ERROR frame / error reply.
    Error(String),
}

/// Per-connection decoder of incoming WebSocket messages.
#[derive(Debug)]
pub struct Inbound {
    protocol: Protocol,
    stomp: Decoder,
    items: Vec<Item>,
}

impl Inbound {
    /// A decoder for `protocol`.
    pub fn new(protocol: Protocol) -> Self {
        let limits = chat_stomp::Limits {
            max_frame_bytes: 16 << 20,
            max_headers: 256,
            max_header_line_bytes: 64 << 10,
            max_body_bytes: 16 << 20,
        };
        Inbound { protocol, stomp: Decoder::new(limits), items: Vec::new() }
    }

    /// Decodes one WebSocket message, appending what it says to `out`.
    pub fn on_message(&mut self, data: &[u8], out: &mut Vec<Event>) {
        match self.protocol {
            Protocol::ChatSys | Protocol::RabbitStomp => self.on_stomp(data, out),
            Protocol::Centrifugo => on_centrifugo(data, out),
            // The broadcast server coalesces bodies into one message, separated by `\n`.
            Protocol::Broadcast => {
                for body in data.split(|b| *b == b'\n') {
                    match Marker::find(body) {
                        Some(m) => out.push(Event::Delivery(m, None)),
                        None => out.push(Event::Error(format!("broadcast: no marker in {} bytes", body.len()))),
                    }
                }
            }
        }
    }

    fn on_stomp(&mut self, data: &[u8], out: &mut Vec<Event>) {
        self.items.clear();
        if let Err(e) = self.stomp.decode_all(data, &mut self.items) {
            out.push(Event::Error(format!("STOMP decode: {e}")));
            return;
        }
        for item in self.items.drain(..) {
            let Item::Frame(f) = item else { continue };
            match f.command {
                Command::Connected => out.push(Event::Connected),
                Command::Receipt => match f.header("receipt-id").and_then(|r| r.parse::<u64>().ok()) {
                    Some(SUBSCRIBE_ID) => out.push(Event::Subscribed),
                    Some(id) if id >= PUBLISH_ID_BASE => out.push(Event::Acked(id - PUBLISH_ID_BASE)),
                    _ => out.push(Event::Error(format!("unexpected RECEIPT {:?}", f.header("receipt-id")))),
                },
                Command::Message => {
                    let seq = if self.protocol == Protocol::ChatSys { json_int_field(&f.body, "seq") } else { None };
                    match Marker::find(&f.body) {
                        Some(m) => out.push(Event::Delivery(m, seq)),
                        None => out.push(Event::OtherEvent(seq)),
                    }
                }
                Command::Error => out.push(Event::Error(format!(
                    "ERROR {}: {}",
                    f.header("message").unwrap_or(""),
                    String::from_utf8_lossy(&f.body[..f.body.len().min(300)])
                ))),
                other => out.push(Event::Error(format!("unexpected {other:?} frame"))),
            }
        }
    }
}

fn on_centrifugo(data: &[u8], out: &mut Vec<Event>) {
    for line in data.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        if line == b"{}" {
            out.push(Event::Reply(b"{}".to_vec()));
        } else if memchr::memmem::find(line, b"\"push\"").is_some() {
            match Marker::find(line) {
                Some(m) => out.push(Event::Delivery(m, None)),
                None => out.push(Event::OtherEvent(None)),
            }
        } else if memchr::memmem::find(line, b"\"error\"").is_some() {
            out.push(Event::Error(format!("centrifugo: {}", String::from_utf8_lossy(&line[..line.len().min(300)]))));
        } else {
            match json_int_field(line, "id") {
                Some(1) => out.push(Event::Connected),
                Some(id) if id as u64 == SUBSCRIBE_ID => out.push(Event::Subscribed),
                Some(id) if id as u64 >= PUBLISH_ID_BASE => out.push(Event::Acked(id as u64 - PUBLISH_ID_BASE)),
                Some(_) => {} // an earlier subscribe of several (ids 3..16)
                None => out.push(Event::OtherEvent(None)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stomp_send_receipt_and_delivery_round_trip() {
        let mut out = Vec::new();
        let m = Marker { conversation: 1, stream: 2, n: 3, scheduled_ns: 4 };
        let mut body = Vec::new();
        m.write(50, &mut body);
        send(Protocol::ChatSys, "conv-uuid", 1, 2, 3, &body, &mut out);
        assert!(out.starts_with(b"SEND\ndestination:/app/chat\n"));
        let mut inbound = Inbound::new(Protocol::ChatSys);
        let mut events = Vec::new();
        let msg = format!(
            "MESSAGE\ndestination:/user/queue/messages\nsubscription:0\nmessage-id:1\n\n{{\"seq\":9,\"text\":\"{}\"}}\0RECEIPT\nreceipt-id:19\n\n\0",
            String::from_utf8(body).unwrap()
        );
        inbound.on_message(msg.as_bytes(), &mut events);
        assert_eq!(events, vec![Event::Delivery(m, Some(9)), Event::Acked(3)]);
    }

    #[test]
    fn centrifugo_replies_pushes_and_pings() {
        let mut events = Vec::new();
        let m = Marker { conversation: 0, stream: 1, n: 5, scheduled_ns: 6 };
        let mut body = Vec::new();
        m.write(10, &mut body);
        let push = format!(
            "{{\"push\":{{\"channel\":\"c0\",\"pub\":{{\"data\":{{\"m\":\"{}\"}}}}}}}}",
            String::from_utf8(body).unwrap()
        );
        let frame = format!(
            "{{\"id\":1,\"connect\":{{}}}}\n{{\"id\":2,\"subscribe\":{{}}}}\n{{\"id\":21,\"publish\":{{}}}}\n{{}}\n{push}"
        );
        on_centrifugo(frame.as_bytes(), &mut events);
        assert_eq!(
            events,
            vec![
                Event::Connected,
                Event::Subscribed,
                Event::Acked(5),
                Event::Reply(b"{}".to_vec()),
                Event::Delivery(m, None)
            ]
        );
    }

    #[test]
    fn stomp_error_frame_is_an_error_event() {
        let mut events = Vec::new();
        Inbound::new(Protocol::RabbitStomp).on_message(b"ERROR\nmessage:nope\n\n\0", &mut events);
        assert!(matches!(&events[0], Event::Error(e) if e.contains("nope")));
    }
}
