-- Browser single sign-on: the IDP's session cookie (stored as its SHA-256 digest, `id`), the
-- token sessions (`sessions.sid`) and codes it started, so that logging out of the browser
-- session ends every token of it; and consent, remembered per user and client.
CREATE TABLE sso_sessions (
    id          TEXT PRIMARY KEY NOT NULL,   -- hex SHA-256 of the cookie value
    sub         TEXT NOT NULL,
    auth_time   INTEGER NOT NULL,
    amr         TEXT NOT NULL,               -- space-separated (RFC 8176 values)
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    ended_at    INTEGER
);

ALTER TABLE sessions ADD COLUMN sso_id TEXT REFERENCES sso_sessions (id);
CREATE INDEX sessions_sso_id ON sessions (sso_id);
ALTER TABLE authorization_codes ADD COLUMN sso_id TEXT REFERENCES sso_sessions (id);

CREATE TABLE consents (
    sub         TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    scope       TEXT NOT NULL,               -- space-separated, every scope granted so far
    granted_at  INTEGER NOT NULL,
    PRIMARY KEY (sub, client_id)
);
