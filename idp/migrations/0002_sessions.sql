-- User sessions (sid) and refresh tokens (stored as SHA-256 digests, rotated on every use; a
-- family is every token descended from one grant).
CREATE TABLE sessions (
    sid         TEXT PRIMARY KEY NOT NULL,
    sub         TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    ended_at    INTEGER
);

CREATE TABLE refresh_tokens (
    hash        BLOB PRIMARY KEY NOT NULL,
    family      TEXT NOT NULL,
    sid         TEXT NOT NULL REFERENCES sessions (sid),
    client_id   TEXT NOT NULL,
    sub         TEXT NOT NULL,
    scope       TEXT NOT NULL,
    issued_at   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER,
    revoked_at  INTEGER
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);
CREATE INDEX refresh_tokens_sid ON refresh_tokens (sid);
