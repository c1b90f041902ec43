-- Full-text search over message text (chat_storage::SearchStore, the `database` search
-- engine): a GIN expression index on to_tsvector('simple', text) (lower-cased words, no
-- stemming or stopwords, like the tantivy index). Queries use the same expression, so an
-- edit is searchable by its new text at commit and a delete (text cleared) by nothing.
-- ix_messages_updated serves the tantivy catch-up and reindex scans (by updated_at).

CREATE INDEX ix_messages_search ON messages USING GIN (to_tsvector('simple', text));
CREATE INDEX ix_messages_updated ON messages (updated_at, message_id);
