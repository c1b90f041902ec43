//! SockJS sessions: the bridge between HTTP requests and one STOMP [`Session`].
//!
//! A SockJS session is created by its first receiving request (xhr, xhr_streaming,
//! eventsource, htmlfile, jsonp) and starts a STOMP session whose [`Transport`] is two bounded
//! channels:
//! * inbound: xhr_send/jsonp_send push each message of their JSON array (one STOMP chunk, the
//!   equivalent of one WebSocket message) in order; a full channel makes the send request
//!   wait (back-pressure on that client only);
//! * outbound: the STOMP writer's coalesced writes. At most one receiving request at a time
//!   holds the outbound receiver ([`Attachment`]) and turns writes into `a[...]` frames. While
//!   none is attached, writes wait in the channel, then in the STOMP session's outbound queue,
//!   whose limit (`outbound_queue_len`) closes a slow consumer: memory stays bounded.
//!
//! Lifecycle (sockjs-node's, except for an aborted request, see below):
//! * the first receiving request gets `o`; a second concurrent one gets
//!   `c[2010,"Another connection still open"]` and ends, the first keeps the session;
//! * when the STOMP session ends (DISCONNECT, ERROR, limits, shutdown) the outbound channel
//!   closes: the attached request (or the next one) gets the pending messages, then
//!   `c[3000,"Go away!"]`;
//! * a receiving request that the client aborts ends the STOMP session at once, and the next
//!   request gets `c[1002,"Connection interrupted"]` (sockjs-node forgets the session instead
//!   and would open a new one; the SockJS protocol tests accept both);
//! * a session without a receiving request for `session_timeout_ms` is closed and forgotten
//!   (its STOMP session ends); until then, requests on a closed session get its close frame.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::frames::{self, Framing};
use crate::Shared;
use crate::session::{Peer, Session, Transport};

/// Gauge of the SockJS sessions (HTTP transports) of this node.
const SESSIONS_METRIC: &str = "gateway_sockjs_sessions";
/// Capacity of a session's inbound channel (messages).
const INBOUND_CAPACITY: usize = 64;
/// Capacity of a session's outbound channel (coalesced STOMP writes).
pub(crate) const OUTBOUND_CAPACITY: usize = 8;
/// At most this many bytes of messages go into one `a[...]` frame.
const MAX_FRAME_BYTES: usize = 64 * 1024;

/// The SockJS sessions of this node, by session id.
#[derive(Default)]
pub(crate) struct Sessions {
    map: Mutex<HashMap<Arc<str>, Arc<SjSession>>>,
}

/// Why a new session could not be created.
#[derive(Debug)]
pub(crate) enum CreateError {
    /// `max_sessions` reached.
    TooMany,
    /// The gateway is shutting down.
    ShuttingDown,
}

impl Sessions {
    /// The session `id`, if it exists.
    pub(crate) fn get(&self, id: &str) -> Option<Arc<SjSession>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).get(id).cloned()
    }

    /// Number of sessions.
    pub(crate) fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn remove(&self, id: &str, session: &Arc<SjSession>) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.get(id).is_some_and(|s| Arc::ptr_eq(s, session)) {
            map.remove(id);
        }
    }

    /// The session `id`, created (with its STOMP session and timeout supervisor) when it
    /// does not exist.
    pub(crate) fn get_or_create(
        self: &Arc<Self>,
        shared: &Arc<Shared>,
        id: &str,
        peer: Peer,
    ) -> Result<Arc<SjSession>, CreateError> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = map.get(id) {
            return Ok(s.clone());
        }
        if shared.shutdown.is_cancelled() {
            return Err(CreateError::ShuttingDown);
        }
        if map.len() >= shared.cfg.sockjs.max_sessions {
            return Err(CreateError::TooMany);
        }
        let (session, transport) = SjSession::new(id.into(), true);
        map.insert(session.id.clone(), session.clone());
        drop(map);
        metrics::gauge!(SESSIONS_METRIC).increment(1.0);
        let tasks = shared.tasks.clone();
        let stomp_done = CancellationToken::new();
        let done = stomp_done.clone();
        let serve = Session::serve(shared.clone(), transport, peer);
        tasks.spawn(async move {
            serve.await;
            done.cancel();
        });
        let sessions = self.clone();
        let timeout = Duration::from_millis(shared.cfg.sockjs.session_timeout_ms.max(1));
        let supervised = session.clone();
        let shutdown = shared.shutdown.clone();
        tasks.spawn(async move {
            supervised.expire_after(timeout, shutdown, stomp_done).await;
            sessions.remove(&supervised.id, &supervised);
            metrics::gauge!(SESSIONS_METRIC).decrement(1.0);
        });
        Ok(session)
    }
}

/// One SockJS session.
pub(crate) struct SjSession {
    /// Session id (from the URL).
    pub(crate) id: Arc<str>,
    /// Inbound messages to the STOMP reader.
    inbound: mpsc::Sender<Bytes>,
    /// Serializes senders, so that the messages of one send request stay together and in order.
    send_lock: tokio::sync::Mutex<()>,
    /// Cancelled when the SockJS session ends (timeout, abort): ends the STOMP session.
    closed: CancellationToken,
    state: Mutex<State>,
    /// Since when no receiving request is attached (`None` while one is).
    detached: watch::Sender<Option<Instant>>,
}

struct State {
    /// The outbound receiver, `None` while a receiving request holds it.
    outbound: Option<mpsc::Receiver<Bytes>>,
    /// `o` was sent.
    opened: bool,
    /// The close frame once the session is closed (`None` while open).
    close: Option<(u16, &'static str)>,
}

/// What a receiving request gets.
pub(crate) enum Attach {
    /// The request is the session's receiver.
    Attached(Attachment),
    /// Another receiving request is attached: send `c[2010,...]` and end.
    Busy,
}

impl SjSession {
    /// A session and the STOMP transport bound to it.
    pub(crate) fn new(id: Arc<str>, detached_timer: bool) -> (Arc<SjSession>, Transport) {
        let (in_tx, mut in_rx) = mpsc::channel::<Bytes>(INBOUND_CAPACITY);
        let (out_tx, out_rx) = mpsc::channel::<Bytes>(OUTBOUND_CAPACITY);
        let closed = CancellationToken::new();
        let initial = if detached_timer { Some(Instant::now()) } else { None };
        let session = Arc::new(SjSession {
            id,
            inbound: in_tx,
            send_lock: tokio::sync::Mutex::new(()),
            closed: closed.clone(),
            state: Mutex::new(State { outbound: Some(out_rx), opened: false, close: None }),
            detached: watch::Sender::new(initial),
        });
        let inbound =
            futures::stream::poll_fn(move |cx| in_rx.poll_recv(cx)).take_until(closed.cancelled_owned()).boxed();
        let outbound = futures::sink::unfold(out_tx, |tx, bytes: Bytes| async move {
            tx.send(bytes).await.map(|()| tx).map_err(|_| ())
        });
        (session, Transport { inbound, outbound: Box::pin(outbound), answers_pings: false })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Attaches a receiving request; the attachment yields `o` first on a new session.
    pub(crate) fn attach(self: &Arc<Self>) -> Attach {
        let mut state = self.state();
        let Some(rx) = state.outbound.take() else { return Attach::Busy };
        let open = !std::mem::replace(&mut state.opened, true);
        let close = state.close;
        drop(state);
        self.detached.send_replace(None);
        Attach::Attached(Attachment { session: self.clone(), rx: Some(rx), open, close, completed: false })
    }

    /// Pushes the messages of one send request to the STOMP session, in order. `false` when
    /// the session is closed (the messages are dropped, as sockjs-node does).
    pub(crate) async fn deliver(&self, messages: Vec<Bytes>) -> bool {
        let _order = self.send_lock.lock().await;
        for m in messages {
            tokio::select! {
                biased;
                _ = self.closed.cancelled() => return false,
                r = self.inbound.send(m) => if r.is_err() { return false },
            }
        }
        true
    }

    /// Ends the STOMP session now (its inbound stream ends).
    pub(crate) fn end_stomp(&self) {
        self.closed.cancel();
    }

    /// Waits until the session has had no receiving request for `timeout`, then ends it. On
    /// shutdown, waits for the STOMP session (which flushes and closes by itself) and for the
    /// attached request to deliver the close frame (at most 1 s), then ends it.
    async fn expire_after(&self, timeout: Duration, shutdown: CancellationToken, stomp_done: CancellationToken) {
        let mut watch = self.detached.subscribe();
        let mut shutting_down = false;
        loop {
            let since = *watch.borrow_and_update();
            let expiry = async {
                match since {
                    Some(t) => tokio::time::sleep_until(t + timeout).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = expiry => break,
                changed = watch.changed() => if changed.is_err() { break },
                _ = shutdown.cancelled() => {
                    shutting_down = true;
                    break;
                }
            }
        }
        if shutting_down {
            stomp_done.cancelled().await;
            let _ = tokio::time::timeout(Duration::from_secs(1), watch.wait_for(Option::is_some)).await;
        }
        let mut state = self.state();
        state.close.get_or_insert(frames::GO_AWAY);
        drop(state);
        self.closed.cancel();
    }
}

/// A receiving request's hold on its session's outbound messages. Dropping it detaches: when
/// the request completed, the session's timeout starts; when it was aborted (the client went
/// away mid-response), the session is closed with `c[1002,"Connection interrupted"]`.
pub(crate) struct Attachment {
    session: Arc<SjSession>,
    rx: Option<mpsc::Receiver<Bytes>>,
    open: bool,
    close: Option<(u16, &'static str)>,
    completed: bool,
}

impl Drop for Attachment {
    fn drop(&mut self) {
        let mut state = self.session.state();
        state.outbound = self.rx.take();
        if !self.completed && state.close.is_none() {
            state.close = Some(frames::INTERRUPTED);
            drop(state);
            self.session.end_stomp();
        } else {
            drop(state);
        }
        self.session.detached.send_replace(Some(Instant::now()));
    }
}

/// How one receiving response behaves.
#[derive(Clone, Debug)]
pub(crate) struct ReceiveOptions {
    /// The transport's framing.
    pub framing: Framing,
    /// The response ends after this many bytes of frames (polling: 1, i.e. one frame).
    pub limit: usize,
    /// Heartbeat interval.
    pub heartbeat: Duration,
}

/// The body of a receiving response: `prelude`, then frames until the limit or the close.
pub(crate) fn receive_stream(
    attachment: Attachment,
    prelude: Option<String>,
    options: ReceiveOptions,
) -> impl futures::Stream<Item = Result<Bytes, std::convert::Infallible>> + Send + 'static {
    let mut queued = VecDeque::new();
    if let Some(p) = prelude {
        queued.push_back(Bytes::from(p));
    }
    let receiver = Receiver { attachment, options, queued, sent: 0, done: false };
    futures::stream::unfold(receiver, |mut r| async move {
        let chunk = r.next_chunk().await?;
        Some((Ok(chunk), r))
    })
}

/// A one-frame response (the 2010 answer) with an optional prelude.
pub(crate) fn single_frame(prelude: Option<String>, framing: &Framing, frame: &str) -> String {
    let mut out = prelude.unwrap_or_default();
    out.push_str(&framing.wrap(frame));
    out
}

struct Receiver {
    attachment: Attachment,
    options: ReceiveOptions,
    queued: VecDeque<Bytes>,
    sent: usize,
    done: bool,
}

impl Receiver {
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if let Some(chunk) = self.queued.pop_front() {
            return Some(chunk);
        }
        if self.done {
            return None;
        }
        if std::mem::take(&mut self.attachment.open) {
            return Some(self.emit(frames::OPEN.to_owned()));
        }
        if let Some(close) = self.attachment.close {
            // Closed by an abort or a timeout: the pending messages are gone with it.
            return Some(self.finish(close));
        }
        let heartbeat = self.options.heartbeat;
        let rx = self.attachment.rx.as_mut()?;
        let first = tokio::select! {
            m = rx.recv() => m,
            _ = tokio::time::sleep(heartbeat) => return Some(self.emit(frames::HEARTBEAT.to_owned())),
        };
        let Some(first) = first else {
            return Some(self.finish(frames::GO_AWAY));
        };
        let mut batch = vec![first];
        let mut size = batch[0].len();
        let mut closed = false;
        while size < MAX_FRAME_BYTES {
            match rx.try_recv() {
                Ok(m) => {
                    size += m.len();
                    batch.push(m);
                }
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        let chunk = self.emit(frames::messages_frame(&batch));
        if closed && !self.done {
            let close = self.finish(frames::GO_AWAY);
            self.queued.push_back(close);
        } else if closed {
            self.mark_closed(frames::GO_AWAY);
        }
        Some(chunk)
    }

    /// The frame wrapped for the transport, counted against the response limit.
    fn emit(&mut self, frame: String) -> Bytes {
        let wrapped = self.options.framing.wrap(&frame);
        self.sent += wrapped.len();
        if self.sent >= self.options.limit {
            self.done = true;
            self.attachment.completed = true;
        }
        Bytes::from(wrapped)
    }

    fn mark_closed(&mut self, close: (u16, &'static str)) {
        let mut state = self.attachment.session.state();
        state.close.get_or_insert(close);
    }

    /// Sends the close frame and ends the response.
    fn finish(&mut self, close: (u16, &'static str)) -> Bytes {
        self.mark_closed(close);
        let close = self.attachment.close.unwrap_or(close);
        self.attachment.close = Some(close);
        let chunk = self.emit(frames::close_frame(close));
        self.done = true;
        self.attachment.completed = true;
        chunk
    }
}

/// Runs the SockJS `websocket` transport on an upgraded socket: `o`, then `a[...]` frames of
/// the STOMP session's writes and `h` when idle; the client sends JSON arrays of strings (or
/// one JSON string). The STOMP session ends with the socket, and its end sends
/// `c[3000,"Go away!"]` and closes the socket.
/// The session's liveness probes (empty writes) become WebSocket Pings, and the client's
/// Pings and Pongs reach the session as empty reads (see [`Transport::answers_pings`]).
pub(crate) async fn serve_websocket(shared: Arc<Shared>, socket: axum::extract::ws::WebSocket, peer: Peer) {
    use axum::extract::ws::{CloseFrame, Message};

    let (mut sink, mut stream) = socket.split();
    let (in_tx, mut in_rx) = mpsc::channel::<Bytes>(INBOUND_CAPACITY);
    let (out_tx, mut out_rx) = mpsc::channel::<Bytes>(OUTBOUND_CAPACITY);
    let inbound = futures::stream::poll_fn(move |cx| in_rx.poll_recv(cx)).boxed();
    let outbound =
        futures::sink::unfold(
            out_tx,
            |tx, bytes: Bytes| async move { tx.send(bytes).await.map(|()| tx).map_err(|_| ()) },
        );
    let transport = Transport { inbound, outbound: Box::pin(outbound), answers_pings: true };
    let stomp = shared.tasks.spawn(Session::serve(shared.clone(), transport, peer));

    // Reader: JSON payloads to STOMP messages; broken framing or the socket's end stops it.
    let reader = async move {
        while let Some(Ok(msg)) = stream.next().await {
            let payload = match msg {
                Message::Text(t) => Bytes::from(t),
                Message::Binary(b) => b,
                // The client is alive: an empty read tells the session so.
                Message::Ping(_) | Message::Pong(_) => Bytes::new(),
                Message::Close(_) => break,
            };
            if payload.is_empty() {
                if in_tx.send(payload).await.is_err() {
                    return;
                }
                continue;
            }
            let Ok(messages) = frames::parse_messages(&payload, true) else { break };
            for m in messages {
                if in_tx.send(m).await.is_err() {
                    return;
                }
            }
        }
    };
    let heartbeat = Duration::from_millis(shared.cfg.sockjs.heartbeat_ms.max(1));
    let writer = async move {
        if sink.send(Message::Text(frames::OPEN.into())).await.is_err() {
            return;
        }
        loop {
            // A probe (empty write) taken while batching: a Ping follows the frame.
            let mut ping = false;
            let frame = tokio::select! {
                m = out_rx.recv() => match m {
                    Some(first) if first.is_empty() => {
                        if sink.send(Message::Ping(Bytes::new())).await.is_err() {
                            return;
                        }
                        continue;
                    }
                    Some(first) => {
                        let mut batch = vec![first];
                        let mut size = batch[0].len();
                        while size < MAX_FRAME_BYTES && let Ok(m) = out_rx.try_recv() {
                            if m.is_empty() {
                                ping = true;
                                continue;
                            }
                            size += m.len();
                            batch.push(m);
                        }
                        frames::messages_frame(&batch)
                    }
                    None => {
                        let (code, reason) = frames::GO_AWAY;
                        let _ = sink.send(Message::Text(frames::close_frame(frames::GO_AWAY).into())).await;
                        let close = CloseFrame { code, reason: reason.into() };
                        let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(Message::Close(Some(close)))).await;
                        return;
                    }
                },
                _ = tokio::time::sleep(heartbeat) => frames::HEARTBEAT.to_owned(),
            };
            if sink.send(Message::Text(frame.into())).await.is_err() {
                return;
            }
            if ping && sink.send(Message::Ping(Bytes::new())).await.is_err() {
                return;
            }
        }
    };
    // The reader ends the STOMP session (inbound end) when the client goes; the writer ends
    // when the STOMP session has ended (outbound closed) or the socket failed.
    tokio::pin!(writer);
    tokio::select! {
        _ = reader => {
            // Client gone or broken framing: the STOMP session sees its inbound end.
            let _ = tokio::time::timeout(Duration::from_secs(2), &mut writer).await;
        }
        _ = &mut writer => {}
    }
    let _ = stomp.await;
}
