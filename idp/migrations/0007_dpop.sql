-- DPoP (RFC 9449). The replay store of proof `jti`s, shared by every replica through the
-- database: `id` is the hex SHA-256 of the proof key's thumbprint and its `jti` (a client cannot
-- burn another key's `jti`s), kept until the proof could no longer be accepted anyway
-- (`expires_at`, then purged). The key thumbprint (RFC 7638) a refresh token of a public client
-- is bound to (RFC 9449 §5), and the `dpop_jkt` of an authorization request (§10), which its
-- code's redemption must prove.
CREATE TABLE dpop_jtis (
    id          TEXT PRIMARY KEY NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX dpop_jtis_expires_at ON dpop_jtis (expires_at);

ALTER TABLE refresh_tokens ADD COLUMN dpop_jkt TEXT;
ALTER TABLE authorization_codes ADD COLUMN dpop_jkt TEXT;
