-- DPoP (RFC 9449), as SQLite's 0007_dpop.sql: the replay store of proof `jti`s shared by every
-- replica (`id`: hex SHA-256 of the proof key's thumbprint and its `jti`; kept until the proof
-- could no longer be accepted, then purged), and the key thumbprint a public client's refresh
-- token (§5) or an authorization request's `dpop_jkt` (§10) is bound to.
CREATE TABLE dpop_jtis (
    id          TEXT PRIMARY KEY NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX dpop_jtis_expires_at ON dpop_jtis (expires_at);

ALTER TABLE refresh_tokens ADD COLUMN dpop_jkt TEXT;
ALTER TABLE authorization_codes ADD COLUMN dpop_jkt TEXT;
