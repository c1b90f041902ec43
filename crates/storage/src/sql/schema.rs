//! Table and column identifiers for sea-query (the DDL itself is in `migrations/`).

use sea_query::Iden;

/// `workspaces`
#[derive(Iden, Clone, Copy)]
pub(crate) enum Workspaces {
    Table,
    WorkspaceId,
    Name,
    CreatedAt,
}

/// `users`
#[derive(Iden, Clone, Copy)]
pub(crate) enum Users {
    Table,
    UserId,
    WorkspaceId,
    Username,
    DisplayName,
    AvatarUrl,
    PasswordHash,
    CreatedAt,
}

/// `refresh_tokens`
#[derive(Iden, Clone, Copy)]
pub(crate) enum RefreshTokens {
    Table,
    Jti,
    UserId,
    WorkspaceId,
    IssuedAt,
    ExpiresAt,
    RevokedAt,
    FamilyId,
}

/// `oauth_clients`
#[derive(Iden, Clone, Copy)]
pub(crate) enum OauthClients {
    Table,
    ClientId,
    SecretHash,
    Scopes,
    CreatedAt,
}

/// `signing_keys`
#[derive(Iden, Clone, Copy)]
pub(crate) enum SigningKeys {
    Table,
    Generation,
    Kid,
    PrivatePem,
    CreatedAt,
}

/// `conversations`
#[derive(Iden, Clone, Copy)]
pub(crate) enum Conversations {
    Table,
    ConversationId,
    WorkspaceId,
    Type,
    Name,
    Topic,
    IsPrivate,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
    DmKey,
}

/// `conversation_settings`
#[derive(Iden, Clone, Copy)]
pub(crate) enum ConversationSettings {
    Table,
    ConversationId,
    AllowReactions,
    AllowPins,
    AllowThread,
    SlowModeSeconds,
}

/// `conversation_sequences`
#[derive(Iden, Clone, Copy)]
pub(crate) enum ConversationSequences {
    Table,
    ConversationId,
    LastSeq,
    LastEventAt,
}

/// `conversation_members`
#[derive(Iden, Clone, Copy)]
pub(crate) enum ConversationMembers {
    Table,
    ConversationId,
    UserId,
    Role,
    JoinedAt,
    DeliveredSeq,
    SeenSeq,
}

/// `messages`
#[derive(Iden, Clone, Copy)]
pub(crate) enum Messages {
    Table,
    MessageId,
    ConversationId,
    UserId,
    ClientMsgId,
    ServerSeq,
    ThreadRootId,
    Text,
    Type,
    CreatedAt,
    UpdatedAt,
    Edited,
    Deleted,
    VersionCount,
    MentionsChannel,
}

/// `message_mentions`
#[derive(Iden, Clone, Copy)]
pub(crate) enum MessageMentions {
    Table,
    MessageId,
    ConversationId,
    UserId,
}

/// `message_versions`
#[derive(Iden, Clone, Copy)]
pub(crate) enum MessageVersions {
    Table,
    MessageId,
    Version,
    OldText,
    EditedAt,
    EditedBy,
}

/// `message_reactions`
#[derive(Iden, Clone, Copy)]
pub(crate) enum MessageReactions {
    Table,
    MessageId,
    Emoji,
    UserId,
    ReactedAt,
}

/// `message_pins`
#[derive(Iden, Clone, Copy)]
pub(crate) enum MessagePins {
    Table,
    MessageId,
    ConversationId,
    PinnedBy,
    PinnedAt,
}

/// `message_threads`
#[derive(Iden, Clone, Copy)]
pub(crate) enum MessageThreads {
    Table,
    ThreadRootId,
    ConversationId,
    ReplyCount,
    LastReplyAt,
    LastRepliedBy,
}

/// `conversation_events`
#[derive(Iden, Clone, Copy)]
pub(crate) enum ConversationEvents {
    Table,
    ConversationId,
    Seq,
    EventId,
    Type,
    ActorId,
    Payload,
    CreatedAt,
}

/// `message_producer_outbox`
#[derive(Iden, Clone, Copy)]
pub(crate) enum MessageProducerOutbox {
    Table,
    Id,
    ConversationId,
    Seq,
    EventId,
    Topic,
    Payload,
    CreatedAt,
    ProcessedAt,
    Status,
}
