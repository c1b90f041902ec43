//! Real-time signals of the core service: ephemeral events (no seq, never stored) pushed to
//! the live connections of users through the connection registry and the per-gateway
//! delivery streams ([`chat_pipeline::deliver_ephemeral`]).
//!
//! Two signals start here (typing starts in the gateway, which sees the frames):
//! * `SEEN` (read receipts, "seen by"): when a member's seen position rises
//!   ([`ChatService::ack`](super::ChatService::ack), over REST, STOMP `/app/ack` and gRPC),
//!   `{eventType:"SEEN", conversationId, userId, seenSeq, deliveredSeq, at}` goes to every
//!   member's devices in DMs and group DMs, and in channels only when
//!   [`RealtimeConfig::seen_by`] is [`ReceiptScope::AllConversations`] (default
//!   [`ReceiptScope::DirectMessages`]: in channels only the reader's own devices get it, to
//!   clear their unread badges). Design choice: ephemeral, not a seq'd event. The durable
//!   state is each member's `seenSeq` (REST `GET /conversations/{id}/members`), which a
//!   client reads after a reconnect; receipts are too frequent to spend log entries on (they
//!   would flood `resume` replays), and they change no conversation content. Signals of one
//!   user may arrive out of order: clients keep the highest `seenSeq`.
//! * `PRESENCE`: see [`super::presence`].

use std::sync::Arc;
use std::time::Duration;

use chat_domain::{Conversation, ConversationKind, Member, Millis, UserId};
use chat_pipeline::{ConnectionRegistry, DeliveryStreams, EphemeralSignal};
use chat_storage::Store;

use super::presence::PresenceRegistry;

/// Who receives `SEEN` signals besides the reader's own devices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReceiptScope {
    /// Members of DMs and group DMs; in channels only the reader (default).
    #[default]
    DirectMessages,
    /// Members of every conversation, channels included.
    AllConversations,
}

/// Settings of [`Realtime`].
#[derive(Clone, Debug)]
pub struct RealtimeConfig {
    /// Where "seen by" signals go; default [`ReceiptScope::DirectMessages`].
    pub seen_by: ReceiptScope,
    /// How often the presence tracker looks for users whose connections all expired (no
    /// heart-beat within the registry TTL); default 5 s.
    pub presence_sweep_interval: Duration,
    /// How long a user whose last connection closed stays `ONLINE` before `OFFLINE` is
    /// announced; a connection within it announces nothing (see [`super::presence`]). Zero
    /// announces at once. Default 10 s.
    pub presence_offline_grace: Duration,
    /// Most users a presence change is pushed to (the users sharing a conversation with the
    /// user, first found first); default 10,000.
    pub max_presence_recipients: usize,
}

impl Default for RealtimeConfig {
    fn default() -> Self {
        RealtimeConfig {
            seen_by: ReceiptScope::DirectMessages,
            presence_sweep_interval: Duration::from_secs(5),
            presence_offline_grace: Duration::from_secs(10),
            max_presence_recipients: 10_000,
        }
    }
}

/// The signal pusher and presence tracker a [`super::ChatService`] uses
/// ([`super::ChatService::with_realtime`]).
pub struct Realtime {
    presence: Arc<PresenceRegistry>,
    streams: Arc<dyn DeliveryStreams>,
    cfg: RealtimeConfig,
}

impl std::fmt::Debug for Realtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Realtime").field("cfg", &self.cfg).finish_non_exhaustive()
    }
}

impl Realtime {
    /// Wraps `registry` in a presence tracker (give [`Realtime::registry`] to the gateways
    /// and gRPC so connection changes pass through it) and starts its background tasks (they
    /// end when the last handle is dropped).
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn start(
        registry: Arc<dyn ConnectionRegistry>,
        streams: Arc<dyn DeliveryStreams>,
        store: Arc<dyn Store>,
        cfg: RealtimeConfig,
    ) -> Arc<Realtime> {
        let presence = PresenceRegistry::start(registry, streams.clone(), store, &cfg);
        Arc::new(Realtime { presence, streams, cfg })
    }

    /// The presence-tracking registry: the same connections as the wrapped one.
    pub fn registry(&self) -> Arc<dyn ConnectionRegistry> {
        self.presence.clone()
    }

    /// The presence tracker.
    pub fn presence(&self) -> &Arc<PresenceRegistry> {
        &self.presence
    }

    /// The settings.
    pub fn config(&self) -> &RealtimeConfig {
        &self.cfg
    }

    /// Pushes `SEEN` for `member` (after its seen position rose) to the recipients of
    /// [`RealtimeConfig::seen_by`]; `members` are the conversation's member ids. Best effort,
    /// in a background task (the ack does not wait for it).
    pub(crate) fn seen(&self, conv: &Conversation, member: &Member, members: Vec<UserId>) {
        let to_all = conv.kind != ConversationKind::Channel || self.cfg.seen_by == ReceiptScope::AllConversations;
        let recipients = if to_all { members } else { vec![member.user_id] };
        let signal = EphemeralSignal {
            conversation_id: Some(conv.id),
            kind: "SEEN".into(),
            actor_id: member.user_id,
            payload: serde_json::json!({
                "seenSeq": member.seen_seq,
                "deliveredSeq": member.delivered_seq,
                "at": Millis::now().to_rfc3339(),
            }),
            exclude_connection: None,
            created_at: Millis::now(),
        };
        self.push(signal, recipients);
    }

    /// Sends a signal to the live connections of `recipients` in a background task; failures
    /// are logged and counted (`core_ephemeral_failed_total`).
    pub(crate) fn push(&self, signal: EphemeralSignal, recipients: Vec<UserId>) {
        let registry = self.presence.inner().clone();
        let streams = self.streams.clone();
        tokio::spawn(async move {
            let kind = signal.kind.clone();
            if let Err(e) =
                chat_pipeline::deliver_ephemeral(registry.as_ref(), streams.as_ref(), signal, &recipients).await
            {
                metrics::counter!("core_ephemeral_failed_total", "kind" => kind).increment(1);
                tracing::debug!(error = %e, "ephemeral signal not delivered");
            }
        });
    }
}
