-- Authorization codes (RFC 6749 §4.1), stored as SHA-256 digests. Single use: `used_at` is set
-- by the first redemption, which also records the session (`sid`) its tokens belong to, so that
-- a replay can end that session (RFC 6749 §4.1.2). Rows are kept past `expires_at` so that a
-- late replay is still recognised.
CREATE TABLE authorization_codes (
    hash                   BLOB PRIMARY KEY NOT NULL,
    client_id              TEXT NOT NULL,
    redirect_uri           TEXT NOT NULL,
    sub                    TEXT NOT NULL,
    scope                  TEXT NOT NULL,
    code_challenge         TEXT,
    code_challenge_method  TEXT CHECK (code_challenge_method IN ('S256', 'plain')),
    nonce                  TEXT,
    auth_time              INTEGER NOT NULL,
    amr                    TEXT NOT NULL,          -- space-separated (RFC 8176 values)
    issued_at              INTEGER NOT NULL,
    expires_at             INTEGER NOT NULL,
    used_at                INTEGER,
    sid                    TEXT REFERENCES sessions (sid)
);
CREATE INDEX authorization_codes_issued_at ON authorization_codes (issued_at);
