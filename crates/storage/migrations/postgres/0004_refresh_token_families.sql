-- Refresh token families (OAuth 2.0 Security BCP, RFC 9700 section 4.14.2): every refresh
-- token records the login it descends from (`family_id`: the jti of the family's first token).
-- Presenting a token that was already rotated revokes the whole family. Tokens issued before
-- this migration have no family recorded: each is its own family (`family_id` NULL = `jti`).
ALTER TABLE refresh_tokens ADD COLUMN family_id VARCHAR(128) NULL;
CREATE INDEX ix_refresh_tokens_family ON refresh_tokens (family_id);
