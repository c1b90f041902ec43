-- chat-sys schema, PostgreSQL dialect. Instants are BIGINT milliseconds since the Unix epoch,
-- ids are 36-char UUID strings, booleans are BIGINT 0/1.

CREATE TABLE workspaces (
    workspace_id VARCHAR(36) NOT NULL PRIMARY KEY,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE users (
    user_id VARCHAR(36) NOT NULL PRIMARY KEY,
    workspace_id VARCHAR(36) NOT NULL,
    username VARCHAR(64) NOT NULL,
    display_name TEXT NOT NULL,
    avatar_url TEXT NULL,
    password_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX ux_users_workspace_username ON users (workspace_id, username);

CREATE TABLE refresh_tokens (
    jti VARCHAR(128) NOT NULL PRIMARY KEY,
    user_id VARCHAR(36) NOT NULL,
    workspace_id VARCHAR(36) NOT NULL,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT NULL
);
CREATE INDEX ix_refresh_tokens_user ON refresh_tokens (user_id);

CREATE TABLE oauth_clients (
    client_id VARCHAR(128) NOT NULL PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE signing_keys (
    generation BIGINT NOT NULL PRIMARY KEY,
    kid VARCHAR(128) NOT NULL,
    private_pem TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX ux_signing_keys_kid ON signing_keys (kid);

CREATE TABLE conversations (
    conversation_id VARCHAR(36) NOT NULL PRIMARY KEY,
    workspace_id VARCHAR(36) NOT NULL,
    type VARCHAR(16) NOT NULL,
    name VARCHAR(255) NULL,
    topic TEXT NULL,
    is_private BIGINT NOT NULL,
    created_by VARCHAR(36) NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    dm_key VARCHAR(700) NULL
);
CREATE UNIQUE INDEX ux_conversations_dm_key ON conversations (dm_key);
CREATE INDEX ix_conversations_ws_private_name ON conversations (workspace_id, is_private, name);

CREATE TABLE conversation_settings (
    conversation_id VARCHAR(36) NOT NULL PRIMARY KEY REFERENCES conversations (conversation_id),
    allow_reactions BIGINT NOT NULL,
    allow_pins BIGINT NOT NULL,
    allow_thread BIGINT NOT NULL,
    slow_mode_seconds BIGINT NOT NULL
);

CREATE TABLE conversation_sequences (
    conversation_id VARCHAR(36) NOT NULL PRIMARY KEY REFERENCES conversations (conversation_id),
    last_seq BIGINT NOT NULL,
    last_event_at BIGINT NOT NULL
);

CREATE TABLE conversation_members (
    conversation_id VARCHAR(36) NOT NULL REFERENCES conversations (conversation_id),
    user_id VARCHAR(36) NOT NULL,
    role VARCHAR(16) NOT NULL,
    joined_at BIGINT NOT NULL,
    delivered_seq BIGINT NOT NULL,
    seen_seq BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX ix_conversation_members_user ON conversation_members (user_id);

CREATE TABLE messages (
    message_id VARCHAR(36) NOT NULL PRIMARY KEY,
    conversation_id VARCHAR(36) NOT NULL REFERENCES conversations (conversation_id),
    user_id VARCHAR(36) NOT NULL,
    client_msg_id VARCHAR(191) NULL,
    server_seq BIGINT NOT NULL,
    thread_root_id VARCHAR(36) NULL,
    text TEXT NOT NULL,
    type VARCHAR(64) NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    edited BIGINT NOT NULL,
    deleted BIGINT NOT NULL,
    version_count BIGINT NOT NULL,
    mentions_channel BIGINT NOT NULL
);
CREATE UNIQUE INDEX ux_messages_conversation_seq ON messages (conversation_id, server_seq);
CREATE UNIQUE INDEX ux_messages_client_msg_id ON messages (conversation_id, user_id, client_msg_id);
CREATE INDEX ix_messages_thread ON messages (thread_root_id, server_seq);
CREATE INDEX ix_messages_author_time ON messages (conversation_id, user_id, created_at);

CREATE TABLE message_mentions (
    message_id VARCHAR(36) NOT NULL,
    conversation_id VARCHAR(36) NOT NULL,
    user_id VARCHAR(36) NOT NULL,
    PRIMARY KEY (message_id, user_id)
);
CREATE INDEX ix_message_mentions_user ON message_mentions (conversation_id, user_id);

CREATE TABLE message_versions (
    message_id VARCHAR(36) NOT NULL,
    version BIGINT NOT NULL,
    old_text TEXT NOT NULL,
    edited_at BIGINT NOT NULL,
    edited_by VARCHAR(36) NOT NULL,
    PRIMARY KEY (message_id, version)
);

CREATE TABLE message_reactions (
    message_id VARCHAR(36) NOT NULL,
    emoji VARCHAR(64) NOT NULL,
    user_id VARCHAR(36) NOT NULL,
    reacted_at BIGINT NOT NULL,
    PRIMARY KEY (message_id, emoji, user_id)
);

CREATE TABLE message_attachments (
    attachment_id VARCHAR(36) NOT NULL PRIMARY KEY,
    message_id VARCHAR(36) NULL,
    type VARCHAR(64) NOT NULL,
    url TEXT NOT NULL,
    metadata TEXT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX ix_message_attachments_message ON message_attachments (message_id);

CREATE TABLE message_acks (
    message_id VARCHAR(36) NOT NULL,
    user_id VARCHAR(36) NOT NULL,
    delivered_at BIGINT NULL,
    seen_at BIGINT NULL,
    PRIMARY KEY (message_id, user_id)
);

CREATE TABLE message_pins (
    message_id VARCHAR(36) NOT NULL PRIMARY KEY,
    conversation_id VARCHAR(36) NOT NULL,
    pinned_by VARCHAR(36) NOT NULL,
    pinned_at BIGINT NOT NULL
);
CREATE INDEX ix_message_pins_conversation ON message_pins (conversation_id, pinned_at);

CREATE TABLE message_threads (
    thread_root_id VARCHAR(36) NOT NULL PRIMARY KEY,
    conversation_id VARCHAR(36) NOT NULL,
    reply_count BIGINT NOT NULL,
    last_reply_at BIGINT NOT NULL,
    last_replied_by VARCHAR(36) NOT NULL
);

CREATE TABLE conversation_events (
    conversation_id VARCHAR(36) NOT NULL,
    seq BIGINT NOT NULL,
    event_id VARCHAR(36) NOT NULL,
    type VARCHAR(32) NOT NULL,
    actor_id VARCHAR(36) NOT NULL,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);
CREATE UNIQUE INDEX ux_conversation_events_event_id ON conversation_events (event_id);

CREATE TABLE message_producer_outbox (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    conversation_id VARCHAR(36) NOT NULL,
    seq BIGINT NOT NULL,
    event_id VARCHAR(36) NOT NULL,
    topic VARCHAR(128) NOT NULL,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    processed_at BIGINT NULL,
    status VARCHAR(16) NOT NULL
);
CREATE INDEX ix_outbox_status_id ON message_producer_outbox (status, id);
