-- Full-text search over message text (chat_storage::SearchStore, the `database` search
-- engine): an FTS5 index with external content (the `messages` table, by rowid), kept in
-- step by triggers, so an edit is searchable by its new text and a delete (text cleared)
-- by nothing, in the same transaction. unicode61 folds case and removes diacritics.
-- `messages` has no INTEGER PRIMARY KEY, so a VACUUM may renumber rowids: run
-- `chat-sys reindex` (the FTS5 'rebuild' command) after one.
-- ix_messages_updated serves the tantivy catch-up and reindex scans (by updated_at).

CREATE VIRTUAL TABLE messages_fts USING fts5(text, content='messages', content_rowid='rowid', tokenize='unicode61');
INSERT INTO messages_fts(messages_fts) VALUES ('rebuild');

CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts(rowid, text) VALUES (new.rowid, new.text);
END;
CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
END;
CREATE TRIGGER messages_fts_au AFTER UPDATE OF text ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
    INSERT INTO messages_fts(rowid, text) VALUES (new.rowid, new.text);
END;

CREATE INDEX ix_messages_updated ON messages (updated_at, message_id);
