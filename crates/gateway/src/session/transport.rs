//! The transports a session runs over: [`Transport`] (inbound STOMP bytes, outbound sink)
//! and its raw WebSocket adapter ([`Transport::websocket`]).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use bytes::Bytes;
use futures::stream::{BoxStream, SplitSink, SplitStream};
use futures::{Sink, StreamExt};

use crate::delivery::CloseStatus;

/// The outbound half of a transport: each item is one write of coalesced STOMP bytes; an
/// error means the client is gone. An empty item is a liveness probe: a WebSocket Ping on
/// transports that [`Transport::answers_pings`] (nothing is ever written empty otherwise).
pub(crate) type OutboundSink = std::pin::Pin<Box<dyn Sink<Bytes, Error = ()> + Send>>;

/// What carries one STOMP session.
pub(crate) struct Transport {
    /// Inbound messages, each one WebSocket-message equivalent of STOMP bytes; the end of
    /// the stream means the client is gone.
    pub inbound: BoxStream<'static, Bytes>,
    /// Outbound writes; closed when the session ends.
    pub outbound: OutboundSink,
    /// Whether an empty outbound item sends a WebSocket Ping whose Pong arrives as an empty
    /// inbound item (raw WebSocket; RFC 6455 section 5.5.2: clients answer pings without the
    /// application), so a client without STOMP heart-beats can still be checked for life.
    pub answers_pings: bool,
}

impl Transport {
    /// A raw WebSocket: text and binary messages both carry STOMP bytes; writes are text
    /// messages when valid UTF-8 (the norm: UTF-8 headers and JSON bodies), else binary.
    /// Closing the outbound sink sends a WebSocket Close with the returned status. A message
    /// over the size limit ends the inbound stream with [`CloseStatus::too_big`] set.
    pub fn websocket(socket: WebSocket) -> (Transport, Arc<CloseStatus>) {
        let status = Arc::new(CloseStatus::default());
        let (sink, stream) = socket.split();
        let inbound = WsInbound { inner: stream, status: status.clone(), done: false }.boxed();
        let outbound = WsSink { inner: sink, status: status.clone(), close_sent: false };
        (Transport { inbound, outbound: Box::pin(outbound), answers_pings: true }, status)
    }
}

/// The receiving half of a raw WebSocket: the STOMP bytes of text and binary messages. It
/// ends at the client's Close or a read error, but keeps the socket half until dropped (the
/// session holds it while lingering: dropping the socket with unread data would reset it
/// and discard the ERROR and Close still queued for the client).
struct WsInbound {
    inner: SplitStream<WebSocket>,
    status: Arc<CloseStatus>,
    done: bool,
}

impl futures::Stream for WsInbound {
    type Item = Bytes;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        while !self.done {
            match ready!(self.inner.poll_next_unpin(cx)) {
                Some(Ok(Message::Text(t))) => return Poll::Ready(Some(Bytes::from(t))),
                Some(Ok(Message::Binary(b))) => return Poll::Ready(Some(b)),
                // The client is alive: an empty item (no STOMP bytes) tells the session so.
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => return Poll::Ready(Some(Bytes::new())),
                Some(Err(e)) => {
                    // tungstenite's capacity error ("Space limit exceeded: Message too long");
                    // axum does not expose its type.
                    let text = e.to_string();
                    if text.contains("Message too long") || text.contains("Space limit exceeded") {
                        self.status.too_big.store(true, Ordering::Release);
                    }
                    self.done = true;
                }
                None | Some(Ok(Message::Close(_))) => self.done = true,
            }
        }
        Poll::Ready(None)
    }
}

/// The sending half of a raw WebSocket: STOMP bytes as text (or binary) messages; closing
/// sends a Close frame with the connection's [`CloseStatus`].
struct WsSink {
    inner: SplitSink<WebSocket, Message>,
    status: Arc<CloseStatus>,
    close_sent: bool,
}

impl Sink<Bytes> for WsSink {
    type Error = ();

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
        Pin::new(&mut self.inner).poll_ready(cx).map_err(|_| ())
    }

    fn start_send(mut self: Pin<&mut Self>, bytes: Bytes) -> Result<(), ()> {
        if bytes.is_empty() {
            return Pin::new(&mut self.inner).start_send(Message::Ping(Bytes::new())).map_err(|_| ());
        }
        let msg = match Utf8Bytes::try_from(bytes.clone()) {
            Ok(text) => Message::Text(text),
            Err(_) => Message::Binary(bytes),
        };
        Pin::new(&mut self.inner).start_send(msg).map_err(|_| ())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
        Pin::new(&mut self.inner).poll_flush(cx).map_err(|_| ())
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
        if !self.close_sent {
            ready!(Pin::new(&mut self.inner).poll_ready(cx)).map_err(|_| ())?;
            let (code, reason) = self.status.get();
            let close = Message::Close(Some(CloseFrame { code, reason: reason.into() }));
            Pin::new(&mut self.inner).start_send(close).map_err(|_| ())?;
            self.close_sent = true;
        }
        Pin::new(&mut self.inner).poll_close(cx).map_err(|_| ())
    }
}
