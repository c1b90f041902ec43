//! The core service: every domain operation of chat-sys, authorized and validated.
//!
//! API boundary (see `docs/service-api.md`): [`ChatService`] methods take the acting user id
//! first and return [`ServiceResult`]. Authorization ([`chat_domain::authz`]) and input
//! validation happen inside each method, before any write; interfaces (REST, STOMP, gRPC)
//! only authenticate and convert. Storage errors map to [`DomainError`] through
//! `From<StoreError>`.
//!
//! Sends go through group commit ([`batcher`]): many concurrent sends share one store
//! transaction (one fsync). After every commit that appended conversation events the
//! [`ChatService::commit_notify`] handle is notified, so the outbox relay wakes.
//!
//! Design choices documented here:
//! - DMs and group DMs are always private. Their creator is `OWNER`, every other member is
//!   `MEMBER` (so only the creator may rename a group DM or change its settings; nobody can
//!   add or remove members of a DM, see [`chat_domain::authz::require_can_add_member`]).
//! - A user acts only within its workspace: other workspaces' users and conversations are
//!   reported as `NotFound`.
//! - Slow mode applies to members, not owners. A retry (same `client_msg_id`) inside the
//!   slow-mode window is refused with `RateLimited` like any send (the service cannot tell a
//!   retry from a new send without storing); after `retry_after_ms` it returns the original.

mod attachments;
pub mod batcher;
mod conversations;
pub mod mentions;
mod messages;
pub mod presence;
pub mod realtime;
mod search;
mod validate;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chat_domain::{
    AttachmentId, Conversation, ConversationId, ConversationSettings, DomainError, Limits, Member, MessageId, Millis,
    User, UserId,
};
use chat_storage::Store;
use tokio::sync::Notify;

pub use attachments::{
    AttachmentPolicy, BodyError, CleanupReport, DEFAULT_ALLOWED_CONTENT_TYPES, Download, INLINE_CONTENT_TYPES, Upload,
    UploadError, sanitize_name,
};
pub use batcher::{BatchStats, CommitThread};
pub use chat_storage::SendOutcome;
pub use conversations::dm_key;
pub use presence::PresenceRegistry;
pub use realtime::{Realtime, RealtimeConfig, ReceiptScope};
pub use search::{FoundMessage, SNIPPET_CHARS, SearchMessages, SearchResult};

/// Result of every service method.
pub type ServiceResult<T> = Result<T, DomainError>;

/// Configuration of the service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceConfig {
    /// Input limits (text, names, page sizes, ...).
    pub limits: Limits,
    /// Maximum sends stored in one group-commit transaction (default 512; at least 1).
    pub max_batch: usize,
    /// Number of group-commit writer tasks (default 1; SQLite must use 1, a server database
    /// may use more). At least 1.
    pub writers: usize,
    /// Where the writer tasks run (default [`CommitThread::Runtime`]).
    pub commit_thread: CommitThread,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig { limits: Limits::default(), max_batch: 512, writers: 1, commit_thread: CommitThread::Runtime }
    }
}

/// Input of [`ChatService::create_channel`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CreateChannel {
    /// Channel name: 1..=`limits.max_name_bytes` bytes, not blank; stored trimmed.
    pub name: String,
    /// Optional topic, at most `limits.max_topic_bytes` bytes.
    pub topic: Option<String>,
    /// Private channels are invisible to non-members and cannot be joined.
    pub is_private: bool,
    /// Settings; `None` means [`ConversationSettings::default`].
    pub settings: Option<ConversationSettings>,
    /// Further initial members (as `MEMBER`; the creator is the `OWNER`). Duplicates and the
    /// creator are ignored; unknown users (or users of another workspace) are `NotFound("user")`.
    pub member_ids: Vec<UserId>,
}

/// Input of [`ChatService::update_conversation`]; `None` fields stay unchanged.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConversationPatch {
    /// New channel name (channels and group DMs only), validated like [`CreateChannel::name`].
    pub name: Option<String>,
    /// New topic (empty clears it in effect), at most `limits.max_topic_bytes` bytes.
    pub topic: Option<String>,
    /// New privacy (channels only; DMs are always private).
    pub is_private: Option<bool>,
    /// New settings (whole); `slow_mode_seconds` in 0..=86,400.
    pub settings: Option<ConversationSettings>,
}

/// Input of [`ChatService::send`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SendMessage {
    /// Target conversation (the actor must be a member).
    pub conversation_id: ConversationId,
    /// Idempotency key, 1..=`limits.max_client_msg_id_bytes` bytes; a retry with the same key
    /// (same author and conversation) returns the original message and seq.
    pub client_msg_id: Option<String>,
    /// Text: not blank, at most `limits.max_message_bytes` bytes.
    pub text: String,
    /// Client-defined type, 1..=64 bytes; `None` means `"default"`.
    pub kind: Option<String>,
    /// Thread root (a top-level message of the same conversation) to reply to; needs
    /// `allow_thread`.
    pub thread_root_id: Option<MessageId>,
    /// Uploads to attach (at most `limits.max_attachments_per_message`): each a `PENDING`
    /// upload of the actor in this conversation, attached in the send's transaction.
    pub attachment_ids: Vec<AttachmentId>,
}

/// The domain service. Cheap to clone (all state is shared behind `Arc`s).
#[derive(Clone)]
pub struct ChatService {
    store: Arc<dyn Store>,
    cfg: Arc<ServiceConfig>,
    /// Notified after every commit that appended events (relay wake-up).
    notify: Arc<Notify>,
    /// Group-commit submission handle (bounded queue to the writer tasks).
    batcher: batcher::Batcher,
    /// Slow-mode reservations: the instant of the last accepted send per (conversation,
    /// member), taken under this lock at validation time. Concurrency choice: a plain
    /// `std::sync::Mutex` (held only for a map lookup/insert, never across an `.await`) so
    /// that two concurrent sends of one member cannot both pass the check while the first is
    /// still queued for group commit (the store's `last_message_at` alone would race). The
    /// store value is still consulted, so the rule holds across restarts; across several core
    /// nodes it is best effort.
    slow_mode: Arc<Mutex<HashMap<(ConversationId, UserId), Millis>>>,
    /// Blob store and upload policy ([`ChatService::with_attachments`]); `None`: disabled.
    attachments: Option<Arc<attachments::Attachments>>,
    /// Per-user send rate (`limits.sends_per_user_per_sec`, burst `send_burst_per_user`),
    /// shared by every interface; `None` when disabled. governor's keyed GCRA state is a
    /// concurrent map, so no lock of ours; idle keys are pruned by `retain_recent` from
    /// time to time.
    send_limiter: Option<Arc<governor::DefaultKeyedRateLimiter<UserId>>>,
    /// Full-text search engine ([`ChatService::with_search`]); `None`: search unavailable.
    search: Option<Arc<dyn chat_search::SearchEngine>>,
    /// Ephemeral signals (`SEEN`) and presence ([`ChatService::with_realtime`]); `None`:
    /// no signals, presence reads are `Unavailable`.
    realtime: Option<Arc<Realtime>>,
}

impl std::fmt::Debug for ChatService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatService").field("cfg", &self.cfg).finish_non_exhaustive()
    }
}

impl ChatService {
    /// Creates the service and spawns its `cfg.writers` group-commit writer task(s).
    ///
    /// # Panics
    /// Outside a tokio runtime (the writers are spawned with `tokio::spawn`).
    pub fn new(store: Arc<dyn Store>, cfg: ServiceConfig) -> Self {
        let cfg = ServiceConfig { max_batch: cfg.max_batch.max(1), writers: cfg.writers.max(1), ..cfg };
        let notify = Arc::new(Notify::new());
        let batcher =
            batcher::Batcher::spawn(store.clone(), notify.clone(), cfg.max_batch, cfg.writers, cfg.commit_thread);
        ChatService {
            send_limiter: send_limiter(&cfg.limits),
            store,
            cfg: Arc::new(cfg),
            notify,
            batcher,
            slow_mode: Arc::new(Mutex::new(HashMap::new())),
            attachments: None,
            search: None,
            realtime: None,
        }
    }

    /// Enables real-time signals: "seen by" receipts on [`ChatService::ack`] and presence
    /// reads ([`ChatService::presence`]) through `realtime` (see [`realtime`]).
    pub fn with_realtime(mut self, realtime: Arc<Realtime>) -> Self {
        self.realtime = Some(realtime);
        self
    }

    /// The real-time signal pusher, when enabled.
    pub fn realtime(&self) -> Option<&Arc<Realtime>> {
        self.realtime.as_ref()
    }

    /// Takes one send from the actor's rate budget.
    ///
    /// # Errors
    /// `RateLimited` with the time until the next send is allowed.
    fn take_send_budget(&self, actor: UserId) -> ServiceResult<()> {
        let Some(limiter) = &self.send_limiter else { return Ok(()) };
        if limiter.len() > 100_000 {
            limiter.retain_recent();
        }
        limiter.check_key(&actor).map_err(|not_until| {
            use governor::clock::Clock;
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            DomainError::RateLimited {
                reason: format!("at most {} messages per second per user", self.cfg.limits.sends_per_user_per_sec),
                retry_after_ms: (wait.as_millis() as u64).max(1),
            }
        })
    }

    /// The store behind the service (for readiness probes and the outbox relay).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The configured input limits.
    pub fn limits(&self) -> &Limits {
        &self.cfg.limits
    }

    /// The service configuration (with `max_batch` and `writers` clamped to at least 1).
    pub fn config(&self) -> &ServiceConfig {
        &self.cfg
    }

    /// Notified (`notify_waiters` + `notify_one`) after every commit that appended
    /// conversation events; the outbox relay waits on it.
    pub fn commit_notify(&self) -> Arc<Notify> {
        self.notify.clone()
    }

    /// Group-commit counters: batches committed, sends in them, largest batch.
    pub fn batch_stats(&self) -> BatchStats {
        self.batcher.stats()
    }

    // ----- users -----

    /// The acting user.
    ///
    /// # Errors
    /// `Unauthenticated` when the actor does not exist (e.g. a deleted account's token).
    pub async fn me(&self, actor: UserId) -> ServiceResult<User> {
        self.actor_user(actor).await
    }

    /// A user of the actor's workspace.
    ///
    /// # Errors
    /// `NotFound("user")` when unknown or in another workspace.
    pub async fn user(&self, actor: UserId, id: UserId) -> ServiceResult<User> {
        let me = self.actor_user(actor).await?;
        match self.store.user(id).await? {
            Some(u) if u.workspace_id == me.workspace_id => Ok(u),
            _ => Err(DomainError::NotFound("user")),
        }
    }

    /// Users of the actor's workspace whose username starts with `prefix` (at most 32 bytes),
    /// by username, at most `limit` (1..=`limits.max_page`).
    ///
    /// # Errors
    /// `Invalid` for a bad prefix or limit.
    pub async fn find_users(&self, actor: UserId, prefix: &str, limit: i64) -> ServiceResult<Vec<User>> {
        validate::limit(limit, self.limits().max_page, "limit")?;
        validate::single_line(prefix, "prefix")?;
        if prefix.len() > 32 {
            return Err(DomainError::invalid("prefix", "at most 32 bytes"));
        }
        let me = self.actor_user(actor).await?;
        Ok(self.store.search_users(me.workspace_id, prefix, limit).await?)
    }

    // ----- shared helpers -----

    /// Loads the acting user; `Unauthenticated` when it does not exist.
    pub(crate) async fn actor_user(&self, actor: UserId) -> ServiceResult<User> {
        self.store.user(actor).await?.ok_or_else(|| DomainError::Unauthenticated("unknown user".into()))
    }

    /// Loads a conversation and the actor's membership; `NotFound("conversation")` when the
    /// conversation does not exist.
    pub(crate) async fn conv_and_member(
        &self,
        actor: UserId,
        id: ConversationId,
    ) -> ServiceResult<(Conversation, Option<Member>)> {
        self.store.conversation_with_member(id, actor).await?.ok_or(DomainError::NotFound("conversation"))
    }

    /// Loads a conversation and requires the actor's membership
    /// ([`chat_domain::authz::require_member`]).
    pub(crate) async fn conv_as_member(
        &self,
        actor: UserId,
        id: ConversationId,
    ) -> ServiceResult<(Conversation, Member)> {
        let (conv, member) = self.conv_and_member(actor, id).await?;
        let member = chat_domain::authz::require_member(&conv, member.as_ref())?.clone();
        Ok((conv, member))
    }

    /// Wakes the outbox relay after a commit that appended events: `notify_waiters` wakes
    /// every current waiter, `notify_one` leaves a permit for a relay not yet waiting.
    pub(crate) fn committed(&self) {
        notify_commit(&self.notify);
    }
}

/// See [`ChatService::committed`].
pub(crate) fn notify_commit(n: &Notify) {
    n.notify_waiters();
    n.notify_one();
}

/// The per-user send limiter of `limits` (`None` when `sends_per_user_per_sec` is 0).
fn send_limiter(limits: &Limits) -> Option<Arc<governor::DefaultKeyedRateLimiter<UserId>>> {
    let rate = std::num::NonZeroU32::new(limits.sends_per_user_per_sec)?;
    let burst = std::num::NonZeroU32::new(limits.send_burst_per_user.max(1)).unwrap_or(rate);
    Some(Arc::new(governor::RateLimiter::keyed(governor::Quota::per_second(rate).allow_burst(burst))))
}
