-- Full-text search over message text (chat_storage::SearchStore, the `database` search
-- engine). The table's binary collation would make InnoDB FULLTEXT case-sensitive, so the
-- index is on a stored generated column holding the lower-cased text (queries lower-case
-- their words). InnoDB ignores words shorter than innodb_ft_min_token_size (3) and its
-- stopword list. An edit updates the column in its transaction; a delete clears it.
-- ix_messages_updated serves the tantivy catch-up and reindex scans (by updated_at).

ALTER TABLE messages ADD COLUMN search_text TEXT GENERATED ALWAYS AS (LOWER(text)) STORED;
CREATE FULLTEXT INDEX ft_messages_search_text ON messages (search_text);
CREATE INDEX ix_messages_updated ON messages (updated_at, message_id);
