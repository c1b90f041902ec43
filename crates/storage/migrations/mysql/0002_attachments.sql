-- Attachments: the seed's message_attachments table gains what upload, authorization and
-- cleanup need. `type` is the kind (`image` or `file`), `url` the API download path,
-- `metadata` JSON (`sha256`, `width`, `height`). Status: UPLOADING | PENDING | ATTACHED |
-- DELETED | PURGING (see chat_domain::attachment).

ALTER TABLE message_attachments
    ADD COLUMN conversation_id VARCHAR(36) NOT NULL DEFAULT '',
    ADD COLUMN uploader_id VARCHAR(36) NOT NULL DEFAULT '',
    ADD COLUMN name VARCHAR(255) NOT NULL DEFAULT '',
    ADD COLUMN content_type VARCHAR(255) NOT NULL DEFAULT 'application/octet-stream',
    ADD COLUMN size_bytes BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN object_key VARCHAR(512) NOT NULL DEFAULT '',
    ADD COLUMN status VARCHAR(16) NOT NULL DEFAULT 'ATTACHED',
    ADD COLUMN deleted_at BIGINT NULL;
CREATE INDEX ix_message_attachments_status ON message_attachments (status, created_at);
