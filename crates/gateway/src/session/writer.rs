//! The writer task of a connection: the only owner of the socket's sending half.
//!
//! All of a connection's outbound work runs here, in queue order, so replies and deliveries
//! never overtake each other. Per wakeup it drains everything queued (up to
//! [`crate::GatewayConfig::max_coalesce_bytes`]) and writes it as ONE transport message
//! (several STOMP frames per message: one WebSocket message, one SockJS message), sends heart-beats when nothing else was written within
//! the negotiated interval, and keeps each `/user/queue/messages` subscription gap-free and
//! duplicate-free:
//!
//! * per subscription, lazily, the last delivered seq of each conversation;
//! * a live event with `seq <= last` is a duplicate and dropped;
//! * a live event with `seq > last + 1` first fetches the missing range from the store;
//! * `resume` positions set `last` and replay from the store before any live event; a
//!   position beyond the conversation's latest seq is clamped (see `Writer::resume`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use chat_domain::{ConversationId, EventPayload, UserId};
use chat_stomp::{MessageEncoder, Version, encode_for_version, encode_heartbeat, server};
use futures::SinkExt;
use tokio::time::Instant;

use crate::Shared;
use crate::delivery::{ConnHandle, MemberIdsField, Outbound, RenderedEvent, SubscribeCmd};
use crate::destinations::SubscribeDestination;
use crate::json::{self, MemberIdsJson};
use crate::queue::OutboundRx;
use crate::session::OutboundSink;

mod replay;

use replay::Pages;

/// One subscription as the writer tracks it.
struct Sub {
    id: String,
    destination: SubscribeDestination,
    ack_header: bool,
    /// Its MESSAGE frames' fixed headers, escaped on the first delivery (an idle
    /// subscription holds no encoder).
    encoder: Encoder,
    /// Whether message events carry `conversationMemberIds`.
    member_ids: MemberIdsField,
    /// Last delivered seq per conversation (messages subscriptions only).
    last_seq: HashMap<ConversationId, i64>,
}

/// A subscription's [`MessageEncoder`], built lazily.
enum Encoder {
    /// Nothing delivered yet.
    Unbuilt,
    Ready(MessageEncoder),
    /// The headers cannot be encoded in the session's STOMP version: its messages are
    /// dropped (warned once).
    Unencodable,
}

/// Why the writer stopped.
enum End {
    /// Closed as asked (Close item, shutdown): the socket got a close frame.
    Graceful,
    /// Stopped from outside (reader gone, slow consumer) or the socket failed.
    Aborted,
}

/// State of the writer task.
pub(crate) struct Writer {
    shared: Arc<Shared>,
    handle: ConnHandle,
    sink: OutboundSink,
    rx: OutboundRx,
    version: Version,
    user: Option<UserId>,
    subs: Vec<Sub>,
    buf: BytesMut,
    /// Counter for `message-id` values (unique per session).
    next_message: u64,
    send_interval: Option<Duration>,
    last_write: Instant,
}

impl Writer {
    /// A writer for one connection.
    pub fn new(shared: Arc<Shared>, handle: ConnHandle, sink: OutboundSink, rx: OutboundRx) -> Self {
        Writer {
            shared,
            handle,
            sink,
            rx,
            version: Version::V1_2,
            user: None,
            subs: Vec::new(),
            buf: BytesMut::new(),
            next_message: 0,
            send_interval: None,
            last_write: Instant::now(),
        }
    }

    /// Runs until the connection ends; always cancels the connection's stop token on exit so
    /// the reader ends too.
    ///
    /// Not an `async fn` taking `self`: the returned future holds the writer once (an
    /// `async fn` would also keep its argument for its whole life).
    pub fn run(self) -> impl Future<Output = ()> + Send + 'static {
        let mut this = self;
        async move { this.run_to_end().await }
    }

    async fn run_to_end(&mut self) {
        let end = self.run_loop().await;
        if matches!(end, End::Aborted) && self.handle.close.slow.load(Ordering::Acquire) {
            // Best effort: the socket is probably full, so give it a moment only.
            self.buf.clear();
            let err = server::error("slow consumer: outbound queue limit exceeded", None, Bytes::new());
            if encode_for_version(&err, self.version, &mut self.buf).is_ok() {
                let _ = tokio::time::timeout(Duration::from_millis(200), self.flush()).await;
            }
        }
        let _ = tokio::time::timeout(Duration::from_millis(200), self.sink.close()).await;
        self.handle.stop.cancel();
    }

    async fn run_loop(&mut self) -> End {
        let stop = self.handle.stop.clone();
        let shutdown = self.shared.shutdown.clone();
        loop {
            let heartbeat_at = self.send_interval.map(|i| self.last_write + i);
            let item = tokio::select! {
                biased;
                _ = stop.cancelled() => return End::Aborted,
                _ = shutdown.cancelled() => {
                    self.rx.close();
                    while let Some(item) = self.rx.try_recv() {
                        if self.handle_item(item).await {
                            break;
                        }
                    }
                    return if self.flush_guarded().await { End::Graceful } else { End::Aborted };
                }
                item = self.rx.recv() => item,
                _ = sleep_until_opt(heartbeat_at) => {
                    encode_heartbeat(&mut self.buf);
                    if !self.flush_guarded().await {
                        return End::Aborted;
                    }
                    continue;
                }
            };
            let Some(item) = item else { return End::Aborted };
            let mut closing = self.handle_item(item).await;
            while !closing && self.buf.len() < self.shared.cfg.max_coalesce_bytes {
                match self.rx.try_recv() {
                    Some(item) => closing = self.handle_item(item).await,
                    None => break,
                }
            }
            if !self.flush_guarded().await {
                return End::Aborted;
            }
            if closing {
                return End::Graceful;
            }
        }
    }

    /// Writes the buffer unless the connection is stopped meanwhile; `false` when the write
    /// failed or was stopped.
    async fn flush_guarded(&mut self) -> bool {
        let stop = self.handle.stop.clone();
        tokio::select! {
            biased;
            _ = stop.cancelled() => false,
            r = self.flush() => r,
        }
    }

    /// Writes the buffered frames as one transport message.
    async fn flush(&mut self) -> bool {
        if self.buf.is_empty() {
            return true;
        }
        let bytes = self.buf.split().freeze();
        if self.buf.capacity() > 64 * 1024 {
            self.buf = BytesMut::new();
        }
        self.last_write = Instant::now();
        self.sink.send(bytes).await.is_ok()
    }

    /// Flushes when the buffer grew past the coalescing limit (long replays).
    async fn maybe_flush(&mut self) {
        if self.buf.len() >= self.shared.cfg.max_coalesce_bytes && !self.flush_guarded().await {
            self.handle.stop.cancel();
        }
    }

    /// Handles one queued item; `true` when the connection must close after flushing.
    async fn handle_item(&mut self, item: Outbound) -> bool {
        match item {
            Outbound::Connected(c) => {
                self.version = c.version;
                self.user = Some(c.identity.user_id);
                self.send_interval = c.send_interval;
                self.buf.extend_from_slice(&c.frame);
            }
            Outbound::Frame(frame) => self.buf.extend_from_slice(&frame),
            Outbound::Close(frame) => {
                if let Some(frame) = frame {
                    self.buf.extend_from_slice(&frame);
                }
                return true;
            }
            // Store reads (gap repair, resume, resync) are boxed where they start: their
            // futures are large and exist only while they run, so an idle writer's task
            // does not carry their space.
            Outbound::Event(ev) => self.deliver_event(&ev).await,
            Outbound::Ephemeral(body) => self.write_to_all(SubscribeDestination::Messages, &body),
            Outbound::Notification(body) => self.write_to_all(SubscribeDestination::Notifications, &body),
            Outbound::Subscribe(cmd) => Box::pin(self.subscribe(*cmd)).await,
            Outbound::Unsubscribe(u) => {
                let (id, receipt) = *u;
                self.subs.retain(|s| s.id != id);
                if let Some(r) = receipt {
                    self.buf.extend_from_slice(&r);
                }
            }
            Outbound::Resync(convs) => Box::pin(self.resync(&convs)).await,
            Outbound::Probe => {
                if self.flush_guarded().await {
                    // A failed write shows at the next one; the session's deadline ends it.
                    let _ = self.sink.send(Bytes::new()).await;
                }
            }
        }
        false
    }

    /// Appends a MESSAGE frame for subscription `i` (`message-id` `{session id}-{n}`, unique
    /// per session).
    fn write_message(&mut self, i: usize, body: &Bytes) {
        let sub = &mut self.subs[i];
        if matches!(sub.encoder, Encoder::Unbuilt) {
            sub.encoder = match MessageEncoder::new(
                self.version,
                sub.destination.as_str(),
                &self.handle.session_id,
                &sub.id,
                Some("application/json"),
                sub.ack_header,
            ) {
                Ok(e) => Encoder::Ready(e),
                Err(e) => {
                    tracing::warn!(error = %e, subscription = %sub.id, "cannot encode MESSAGE frames");
                    Encoder::Unencodable
                }
            };
        }
        if let Encoder::Ready(encoder) = &sub.encoder {
            self.next_message += 1;
            encoder.encode(self.next_message, body, &mut self.buf);
        }
    }

    fn write_to_all(&mut self, destination: SubscribeDestination, body: &Bytes) {
        for i in 0..self.subs.len() {
            if self.subs[i].destination == destination {
                self.write_message(i, body);
            }
        }
    }

    async fn deliver_event(&mut self, ev: &RenderedEvent) {
        for i in 0..self.subs.len() {
            if self.subs[i].destination != SubscribeDestination::Messages {
                continue;
            }
            match self.subs[i].last_seq.get(&ev.conversation_id).copied() {
                Some(last) if ev.seq <= last => continue,
                Some(last) if ev.seq > last + 1 => {
                    Box::pin(self.replay(i, ev.conversation_id, last, Some(ev.seq - 1))).await;
                    if self.subs.get(i).and_then(|s| s.last_seq.get(&ev.conversation_id)).is_some_and(|l| *l >= ev.seq)
                    {
                        continue;
                    }
                }
                _ => {}
            }
            self.write_message(i, ev.body_for(self.subs[i].member_ids));
            self.subs[i].last_seq.insert(ev.conversation_id, ev.seq);
        }
    }

    /// Writes to subscription `i` every stored event of `conv` after `after` (up to `upto`),
    /// page by page, advancing its last seq. Errors (e.g. the user left) end the replay.
    async fn replay(&mut self, i: usize, conv: ConversationId, after: i64, upto: Option<i64>) {
        let Some(user) = self.user else { return };
        let mut pages = Pages::start(&self.shared, user, conv, after, upto);
        self.write_pages(i, conv, after, &mut pages).await;
    }

    /// Starts subscription `i` at a `resume` position: replays every stored event of `conv`
    /// after `last`. A position beyond the conversation's latest seq (no stored event at
    /// `last` or after) is clamped to it: the conversation is left untracked, so its next
    /// live event is delivered and starts the tracking (a forged or stale position such as
    /// `i64::MAX` cannot mute the conversation). The first store read starts at `last - 1`,
    /// so it checks the position and starts the replay at once.
    async fn resume(&mut self, i: usize, conv: ConversationId, last: i64) {
        let Some(user) = self.user else { return };
        if last == 0 {
            self.subs[i].last_seq.insert(conv, 0);
            self.replay(i, conv, 0, None).await;
            return;
        }
        let mut pages = Pages::start(&self.shared, user, conv, last - 1, None);
        match pages.peek().await {
            Err(e) => {
                tracing::debug!(error = %e, conversation = %conv, "replay refused");
                self.subs[i].last_seq.insert(conv, last);
                return;
            }
            Ok(true) => {
                tracing::debug!(conversation = %conv, last, "resume position beyond the latest seq: clamped");
                return;
            }
            Ok(false) => {}
        }
        self.subs[i].last_seq.insert(conv, last);
        self.write_pages(i, conv, last, &mut pages).await;
    }

    /// Writes the pages `pages` reads to subscription `i`, skipping events up to `after`,
    /// advancing its last seq event by event. While one page is rendered and written the
    /// next one is read.
    async fn write_pages(&mut self, i: usize, conv: ConversationId, mut after: i64, pages: &mut Pages) {
        let Some(user) = self.user else { return };
        loop {
            let events = match pages.next().await {
                None => return,
                Some(Ok(events)) => events,
                Some(Err(e)) => {
                    tracing::debug!(error = %e, conversation = %conv, "replay refused");
                    return;
                }
            };
            // The member list is looked up and serialized once per page (again after a
            // membership event, which invalidates it, as live rendering does).
            let mut members: Option<Option<MemberIdsJson>> = None;
            for event in events {
                if event.seq <= after {
                    continue;
                }
                let body = match &event.payload {
                    EventPayload::UserJoined { .. } | EventPayload::UserLeft { .. } => {
                        self.shared.members.invalidate(conv);
                        members = None;
                        json::event_body_with(&event, None)
                    }
                    p if json::carries_member_ids(p) && self.subs[i].member_ids == MemberIdsField::Include => {
                        if members.is_none() {
                            let ids = self.shared.members.get(self.shared.core.as_ref(), user, conv).await;
                            members = Some(ids.ok().map(|ids| MemberIdsJson::new(&ids)));
                        }
                        json::event_body_with(&event, members.as_ref().and_then(Option::as_ref))
                    }
                    _ => json::event_body_with(&event, None),
                };
                self.write_message(i, &body);
                after = event.seq;
                self.subs[i].last_seq.insert(conv, after);
            }
            if !pages.pending() {
                return;
            }
            self.maybe_flush().await;
        }
    }

    async fn subscribe(&mut self, cmd: SubscribeCmd) {
        // Exactly one more slot: a growing Vec would keep room for four subscriptions.
        self.subs.reserve_exact(1);
        self.subs.push(Sub {
            id: cmd.id,
            destination: cmd.destination,
            ack_header: cmd.ack_header,
            encoder: Encoder::Unbuilt,
            member_ids: cmd.member_ids,
            last_seq: HashMap::new(),
        });
        let i = self.subs.len() - 1;
        for (conv, last) in cmd.resume {
            self.resume(i, conv, last).await;
            self.maybe_flush().await;
        }
        if let Some(r) = cmd.receipt {
            self.buf.extend_from_slice(&r);
        }
    }

    /// Repairs conversations after lost deliveries, then tells the client which
    /// conversations were affected (`{"eventType":"RESYNC","conversationIds":[...]}`, empty
    /// = all) so it can refresh what this gateway does not track.
    async fn resync(&mut self, convs: &[ConversationId]) {
        for i in 0..self.subs.len() {
            if self.subs[i].destination != SubscribeDestination::Messages {
                continue;
            }
            let known: Vec<(ConversationId, i64)> = self.subs[i]
                .last_seq
                .iter()
                .filter(|(c, _)| convs.is_empty() || convs.contains(c))
                .map(|(c, l)| (*c, *l))
                .collect();
            for (conv, last) in known {
                self.replay(i, conv, last, None).await;
            }
        }
        let body = serde_json::json!({ "eventType": "RESYNC", "conversationIds": convs });
        self.write_to_all(SubscribeDestination::Messages, &Bytes::from(body.to_string()));
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
