//! A small STOMP 1.2 over WebSocket client (tokio-tungstenite + the chat-stomp codec), as
//! the gateway's own tests use.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use chat_domain::{ConversationId, UserId};
use chat_stomp::{Command, Decoder, Frame, Item, Limits as StompLimits, encode};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::WAIT;

/// A STOMP-over-WebSocket client.
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    decoder: Decoder,
    frames: VecDeque<Frame>,
    /// The server closed the connection.
    pub closed: bool,
    next_receipt: u64,
}

impl Client {
    /// Opens a WebSocket to `path` on `addr`.
    pub async fn open(addr: SocketAddr, path: &str) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}{path}")).await.expect("ws open");
        let decoder =
            Decoder::new(StompLimits { max_frame_bytes: 1 << 24, max_body_bytes: 1 << 24, ..Default::default() });
        Client { ws, decoder, frames: VecDeque::new(), closed: false, next_receipt: 0 }
    }

    /// Sends a frame.
    pub async fn send_frame(&mut self, frame: &Frame) {
        let mut buf = BytesMut::new();
        encode(frame, &mut buf).expect("encode");
        let text = String::from_utf8(buf.to_vec()).expect("utf8");
        let _ = self.ws.send(Message::text(text)).await;
    }

    /// The next frame within `timeout` (`None`: none came, or the socket closed).
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
                if let Item::Frame(f) = item {
                    self.frames.push_back(f);
                }
            }
        }
    }

    /// The next frame (panics after [`WAIT`]).
    pub async fn next_frame(&mut self) -> Frame {
        self.next_frame_within(WAIT).await.expect("a frame within the wait")
    }

    /// CONNECT with `headers`; the reply.
    pub async fn connect_raw(&mut self, headers: &[(&str, &str)]) -> Frame {
        let mut f = Frame::new(Command::Connect).with_header("accept-version", "1.2").with_header("host", "chat");
        for (k, v) in headers {
            f = f.with_header(*k, *v);
        }
        self.send_frame(&f).await;
        self.next_frame().await
    }

    /// CONNECT, expecting CONNECTED.
    pub async fn connect(&mut self, headers: &[(&str, &str)]) -> Frame {
        let f = self.connect_raw(headers).await;
        assert_eq!(f.command, Command::Connected, "expected CONNECTED, got {f:?}");
        f
    }

    /// A fresh receipt id.
    pub fn receipt_id(&mut self) -> String {
        self.next_receipt += 1;
        format!("r-{}", self.next_receipt)
    }

    /// SUBSCRIBE and wait for its RECEIPT; returns the frames before it.
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

    /// Frames until RECEIPT `id` (returned: the frames before it). Panics on ERROR.
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

    /// Frames until an ERROR; returns it.
    pub async fn until_error(&mut self) -> Frame {
        loop {
            let f = self.next_frame().await;
            if f.command == Command::Error {
                return f;
            }
        }
    }

    /// SEND `/app/chat` (JSON body) with a receipt; returns the receipt id.
    pub async fn send_chat(&mut self, conv: ConversationId, user: UserId, message_id: &str, text: &str) -> String {
        let receipt = self.receipt_id();
        let body = serde_json::json!({
            "messageId": message_id, "conversationId": conv, "userId": user, "text": text,
        });
        let f = Frame::new(Command::Send)
            .with_header("destination", "/app/chat")
            .with_header("content-type", "application/json")
            .with_header("receipt", receipt.as_str())
            .with_body(body.to_string());
        self.send_frame(&f).await;
        receipt
    }

    /// Bodies of `eventType` MESSAGE frames on `/user/queue/messages` until `n` arrived
    /// (frames already read are looked at first).
    pub async fn events(&mut self, event_type: &str, n: usize) -> Vec<Value> {
        let mut out = Vec::new();
        while out.len() < n {
            let f = self.next_frame().await;
            if let Some(v) = body(&f, "/user/queue/messages")
                && v["eventType"] == event_type
            {
                out.push(v);
            }
        }
        out
    }

    /// Puts frames back in front (e.g. deliveries read while waiting for a receipt).
    pub fn unread(&mut self, frames: Vec<Frame>) {
        for f in frames.into_iter().rev() {
            self.frames.push_front(f);
        }
    }
}

/// The JSON body of a MESSAGE frame to `destination`.
pub fn body(f: &Frame, destination: &str) -> Option<Value> {
    (f.command == Command::Message && f.header("destination") == Some(destination))
        .then(|| serde_json::from_slice(&f.body).expect("json body"))
}
