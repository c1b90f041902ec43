//! Durable storage of chat-sys.
//!
//! API boundary: one trait per aggregate ([`UserStore`], [`AuthStore`], [`ConversationStore`],
//! [`MessageStore`], [`EventStore`], [`OutboxStore`], [`AttachmentStore`]), all implemented by [`SqlStore`] over
//! SQLite (embedded default, WAL), MySQL/MariaDB (utf8mb4) and PostgreSQL. Queries are
//! written once with sea-query, rendered per [`Dialect`] and bound through sqlx's `Any`
//! driver. Storage takes and returns domain types; it never sees frames, HTTP or JSON
//! bodies, and it does not authorize (the core service does, before calling it).
//!
//! Architecture invariants:
//! - Every durable change to a conversation appends exactly one row to
//!   `conversation_events` and one row to `message_producer_outbox` in the same transaction,
//!   with the next per-conversation sequence number taken by an atomic
//!   `UPDATE conversation_sequences SET last_seq = last_seq + n` (the row lock is held to
//!   commit, so per conversation, commit order equals seq order; never read-then-write).
//! - A transaction that touches several conversations locks their sequence rows in ascending
//!   conversation id order, so concurrent group commits cannot deadlock.
//! - Sends are idempotent on (conversation, author, client_msg_id), enforced by a unique
//!   index; a concurrent duplicate resolves to the stored message and its seq.
//! - Instants are `BIGINT` milliseconds; ids are 36-char UUID strings; booleans are integers.

mod error;
pub mod records;
pub mod search;
mod sql;

pub use error::StoreError;
pub use records::*;
pub use search::SearchStore;
pub use sql::{ConnectOptions, Dialect, SqlStore};

use std::collections::HashMap;

use async_trait::async_trait;
use chat_domain::{Attachment, AttachmentId, AttachmentStatus, Conversation, MemberRole};
use chat_domain::{
    ConversationEvent, ConversationId, ConversationSummary, Member, Message, MessageId, MessageVersion, Millis, Pin,
    Reaction, SeqWindow, User, UserId, Workspace, WorkspaceId,
};

/// Result alias of this crate.
pub type StoreResult<T> = Result<T, StoreError>;

/// Most conversations per `IN (...)` list in [`ConversationStore::member_ids_of`] (one query
/// per chunk; well under SQLite's 32,766 and PostgreSQL's 65,535 bind parameters).
pub const MEMBER_IDS_CHUNK: usize = 500;

/// Workspaces and users (seed table `users`).
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Inserts the workspace unless one with its id exists (idempotent).
    async fn ensure_workspace(&self, ws: &Workspace) -> StoreResult<()>;
    /// Creates a user with its Argon2id PHC password hash.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the username is taken in the workspace.
    async fn create_user(&self, user: &User, password_hash: &str) -> StoreResult<()>;
    /// A user by id.
    async fn user(&self, id: UserId) -> StoreResult<Option<User>>;
    /// A user and its password hash by username within a workspace (for login).
    async fn user_credentials(&self, ws: WorkspaceId, username: &str) -> StoreResult<Option<(User, String)>>;
    /// Users by ids (missing ids are skipped), in no particular order.
    async fn users(&self, ids: &[UserId]) -> StoreResult<Vec<User>>;
    /// Users of a workspace whose username starts with `prefix`, by username, at most `limit`.
    async fn search_users(&self, ws: WorkspaceId, prefix: &str, limit: i64) -> StoreResult<Vec<User>>;
}

/// Signing keys, refresh tokens and OAuth2 clients.
#[async_trait]
pub trait AuthStore: Send + Sync {
    /// The current signing key, if any (the newest).
    async fn signing_key(&self) -> StoreResult<Option<SigningKeyRecord>>;
    /// Inserts a signing key unless one already exists; returns the key that is current
    /// afterwards (so concurrent first starts agree on one key).
    async fn insert_signing_key_if_absent(&self, key: &SigningKeyRecord) -> StoreResult<SigningKeyRecord>;
    /// Stores a new refresh token (by its `jti`; the token itself is never stored).
    async fn insert_refresh_token(&self, token: &RefreshTokenRecord) -> StoreResult<()>;
    /// A refresh token by `jti`.
    async fn refresh_token(&self, jti: &str) -> StoreResult<Option<RefreshTokenRecord>>;
    /// Atomically revokes `old_jti` (only if not yet revoked) and stores `new`: refresh token
    /// rotation. Returns `false`, storing nothing, when `old_jti` was already revoked or unknown.
    async fn rotate_refresh_token(&self, old_jti: &str, new: &RefreshTokenRecord, now: Millis) -> StoreResult<bool>;
    /// Revokes every unrevoked refresh token of the family `family_id` (its first token's
    /// `jti`, which belongs to the family too); returns how many were revoked. Used when a
    /// rotated token is presented again (RFC 9700 section 4.14.2).
    async fn revoke_refresh_family(&self, family_id: &str, now: Millis) -> StoreResult<u64>;
    /// Revokes a refresh token; `false` when unknown or already revoked.
    async fn revoke_refresh_token(&self, jti: &str, now: Millis) -> StoreResult<bool>;
    /// Registers an OAuth2 client (client_credentials grant) with its secret hash.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the client id exists.
    async fn create_oauth_client(&self, client: &OAuthClientRecord) -> StoreResult<()>;
    /// An OAuth2 client by id.
    async fn oauth_client(&self, client_id: &str) -> StoreResult<Option<OAuthClientRecord>>;
}

/// Conversations, members, settings and read positions.
#[async_trait]
pub trait ConversationStore: Send + Sync {
    /// Creates a conversation with its settings, sequence row and initial members, appending
    /// one `USER_JOINED` event per initial member (so the creator's join is seq 1).
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when `dm_key` is set and a DM with that key exists (the
    /// caller then loads it with [`ConversationStore::conversation_by_dm_key`]).
    async fn create_conversation(&self, new: &NewConversation) -> StoreResult<(Conversation, Vec<ConversationEvent>)>;
    /// A conversation by id (with settings and `last_seq`).
    async fn conversation(&self, id: ConversationId) -> StoreResult<Option<Conversation>>;
    /// The DM (or group DM) with this canonical member key, if one exists.
    async fn conversation_by_dm_key(&self, dm_key: &str) -> StoreResult<Option<Conversation>>;
    /// The caller's conversations with latest seq, unread and mention counts, most recently
    /// active first.
    async fn conversations_of(&self, user: UserId) -> StoreResult<Vec<ConversationSummary>>;
    /// Public channels of a workspace, by name.
    async fn public_channels(&self, ws: WorkspaceId, limit: i64) -> StoreResult<Vec<Conversation>>;
    /// One membership.
    async fn member(&self, conv: ConversationId, user: UserId) -> StoreResult<Option<Member>>;
    /// A conversation and `user`'s membership of it, read together (one query: the
    /// authorization read of every send and every member-only request).
    ///
    /// Shape: `None` when the conversation does not exist; `Some((conversation, None))` when
    /// `user` is not a member. Same values as [`ConversationStore::conversation`] followed by
    /// [`ConversationStore::member`], but from one snapshot.
    async fn conversation_with_member(
        &self,
        conv: ConversationId,
        user: UserId,
    ) -> StoreResult<Option<(Conversation, Option<Member>)>>;
    /// All members, by join time.
    async fn members(&self, conv: ConversationId) -> StoreResult<Vec<Member>>;
    /// Member user ids only, in no particular order.
    async fn member_ids(&self, conv: ConversationId) -> StoreResult<Vec<UserId>>;
    /// Member user ids of several conversations at once (the fanout path: one call per batch
    /// of events instead of one per conversation).
    ///
    /// Shape: every requested conversation is a key of the result (duplicates in `convs`
    /// collapse to one key); its value is its member ids in no particular order, empty when
    /// it has no members or does not exist. The ids are read in chunks of
    /// [`MEMBER_IDS_CHUNK`] conversations (one `IN (...)` query each), so no dialect's bind
    /// parameter limit is reached however many conversations are asked for. The chunks are
    /// separate reads: a membership change committed between two of them may be seen by one
    /// chunk and not another.
    async fn member_ids_of(&self, convs: &[ConversationId]) -> StoreResult<HashMap<ConversationId, Vec<UserId>>>;
    /// Users sharing at least one conversation with `user`, without `user`, at most `limit`
    /// (the presence audience: one query, whatever the history; no particular order, so a
    /// capped list is an arbitrary subset).
    async fn co_member_ids(&self, user: UserId, limit: usize) -> StoreResult<Vec<UserId>>;
    /// Applies a patch (name, topic, privacy, settings), appending `CONVERSATION_UPDATED`.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the conversation does not exist.
    async fn update_conversation(&self, update: &ConversationUpdate) -> StoreResult<(Conversation, ConversationEvent)>;
    /// Adds a member, appending `USER_JOINED`.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when already a member.
    async fn add_member(
        &self,
        conv: ConversationId,
        actor: UserId,
        user: UserId,
        role: MemberRole,
        at: Millis,
    ) -> StoreResult<ConversationEvent>;
    /// Removes a member, appending `USER_LEFT`.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when not a member.
    async fn remove_member(
        &self,
        conv: ConversationId,
        actor: UserId,
        user: UserId,
        at: Millis,
    ) -> StoreResult<ConversationEvent>;
    /// Raises the member's delivered and/or seen positions (never lowers them; `seen` also
    /// raises `delivered`), clamped to the conversation's `last_seq`. Returns the positions
    /// after the update. Appends no event (acks are not conversation changes).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when not a member.
    async fn set_read_position(
        &self,
        conv: ConversationId,
        user: UserId,
        delivered: Option<i64>,
        seen: Option<i64>,
        at: Millis,
    ) -> StoreResult<Member>;
    /// Instant of the user's latest message in the conversation (slow mode).
    async fn last_message_at(&self, conv: ConversationId, user: UserId) -> StoreResult<Option<Millis>>;
}

/// Messages and their edits, reactions and pins.
#[async_trait]
pub trait MessageStore: Send + Sync {
    /// Group commit: stores a batch of sends in ONE transaction (one fsync), each with the
    /// next seq of its conversation, its `MESSAGE` event, outbox row and (for replies) the
    /// root's thread summary. Results are in input order. A send whose
    /// (conversation, author, client_msg_id) already exists, in the database or earlier in
    /// the batch, yields [`SendOutcome::Duplicate`] with the original message and stores
    /// nothing. A failure of one item (e.g. its thread root is missing) fails only that item.
    ///
    /// # Errors
    /// The outer error means nothing of the batch was stored.
    async fn append_messages(&self, batch: &[NewMessage]) -> StoreResult<Vec<StoreResult<SendOutcome>>>;
    /// A message by id (with thread summary and version count).
    async fn message(&self, id: MessageId) -> StoreResult<Option<Message>>;
    /// The message an author stored under a client message id in a conversation, if any
    /// (a retry's original).
    async fn message_by_client_id(
        &self,
        conv: ConversationId,
        author: UserId,
        client_msg_id: &str,
    ) -> StoreResult<Option<Message>>;
    /// Top-level messages and replies of a conversation in a seq window, ascending.
    async fn messages(&self, conv: ConversationId, window: SeqWindow) -> StoreResult<Vec<Message>>;
    /// Replies of a thread root in a seq window, ascending.
    async fn thread_replies(&self, root: MessageId, window: SeqWindow) -> StoreResult<Vec<Message>>;
    /// Replaces the text, saving the old one in `message_versions`, appending
    /// `MESSAGE_EDITED`.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown message.
    async fn edit_message(&self, edit: &MessageEdit) -> StoreResult<(Message, ConversationEvent)>;
    /// Soft-deletes (tombstone, text cleared), appending `MESSAGE_DELETED`. Deleting a
    /// deleted message is a no-op returning `None`.
    async fn delete_message(
        &self,
        id: MessageId,
        actor: UserId,
        at: Millis,
    ) -> StoreResult<Option<(Message, ConversationEvent)>>;
    /// Edit history, oldest first.
    async fn versions(&self, id: MessageId) -> StoreResult<Vec<MessageVersion>>;
    /// Adds a reaction, appending `REACTION_ADDED`; `None` (nothing appended) when that user
    /// already reacted with that emoji.
    async fn add_reaction(
        &self,
        msg: &Message,
        user: UserId,
        emoji: &str,
        at: Millis,
    ) -> StoreResult<Option<ConversationEvent>>;
    /// Removes a reaction, appending `REACTION_REMOVED`; `None` when absent.
    async fn remove_reaction(
        &self,
        msg: &Message,
        user: UserId,
        emoji: &str,
        at: Millis,
    ) -> StoreResult<Option<ConversationEvent>>;
    /// Reactions of a message, oldest first.
    async fn reactions(&self, id: MessageId) -> StoreResult<Vec<Reaction>>;
    /// Pins a message, appending `MESSAGE_PINNED`; `None` when already pinned.
    async fn pin(&self, msg: &Message, by: UserId, at: Millis) -> StoreResult<Option<ConversationEvent>>;
    /// Unpins, appending `MESSAGE_UNPINNED`; `None` when not pinned.
    async fn unpin(&self, msg: &Message, by: UserId, at: Millis) -> StoreResult<Option<ConversationEvent>>;
    /// Pins of a conversation, newest first.
    async fn pins(&self, conv: ConversationId) -> StoreResult<Vec<Pin>>;
}

/// The per-conversation event log (read side).
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Events with `seq > after_seq`, ascending, at most `limit`. Message snapshots of
    /// messages deleted since are redacted (empty text, no mentions or attachments,
    /// `deleted = true`): a deleted message's content is not readable from the log.
    async fn events_after(
        &self,
        conv: ConversationId,
        after_seq: i64,
        limit: i64,
    ) -> StoreResult<Vec<ConversationEvent>>;
}

/// The transactional outbox (seed table `message_producer_outbox`), read by the relay.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Up to `limit` PENDING rows, ordered by (conversation, seq) within each conversation.
    /// Selecting by status (not "id greater than the last seen") means a row that committed
    /// after a later one is still found.
    async fn pending_outbox(&self, limit: i64) -> StoreResult<Vec<OutboxRow>>;
    /// Marks rows PROCESSED (after the event log acknowledged them).
    async fn mark_outbox_processed(&self, ids: &[i64], at: Millis) -> StoreResult<()>;
}

/// Uploaded files (seed table `message_attachments`). Attaching happens in the send's
/// transaction ([`MessageStore::append_messages`], `NewMessage::attachment_ids`) and hiding
/// in the delete's ([`MessageStore::delete_message`]); messages are read with their
/// attachments.
#[async_trait]
pub trait AttachmentStore: Send + Sync {
    /// Inserts an attachment row (normally `UPLOADING`, before its content is stored).
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the id exists.
    async fn insert_attachment(&self, a: &Attachment) -> StoreResult<()>;
    /// Completes an upload: `UPLOADING` → `PENDING` with the size, content type, hash and
    /// image dimensions of `a`. `false` when the row is not `UPLOADING` (or is gone).
    async fn complete_upload(&self, a: &Attachment) -> StoreResult<bool>;
    /// An attachment by id, whatever its status.
    async fn attachment(&self, id: AttachmentId) -> StoreResult<Option<Attachment>>;
    /// Compare-and-set of the status; `false` when the row is not in `from`.
    async fn set_attachment_status(
        &self,
        id: AttachmentId,
        from: AttachmentStatus,
        to: AttachmentStatus,
    ) -> StoreResult<bool>;
    /// Deletes the row if its status is `status`; `false` otherwise.
    async fn remove_attachment(&self, id: AttachmentId, status: AttachmentStatus) -> StoreResult<bool>;
    /// What the cleanup removes, oldest first, at most `limit`: `UPLOADING` and `PENDING`
    /// rows created before `unattached_before`, and every `DELETED` and `PURGING` row.
    async fn stale_attachments(&self, unattached_before: Millis, limit: i64) -> StoreResult<Vec<Attachment>>;
}

/// Everything storage offers; what the core service holds (`Arc<dyn Store>`).
pub trait Store:
    UserStore + AuthStore + ConversationStore + MessageStore + EventStore + OutboxStore + AttachmentStore
{
}
impl<T: UserStore + AuthStore + ConversationStore + MessageStore + EventStore + OutboxStore + AttachmentStore> Store
    for T
{
}
