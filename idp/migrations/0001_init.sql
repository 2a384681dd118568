-- Signing keys: generated on first start, published in JWKS; rotation keeps old keys published
-- until the tokens they signed have expired.
CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY NOT NULL,
    alg          TEXT NOT NULL,
    private_der  BLOB NOT NULL,           -- PKCS#8
    public_jwk   TEXT NOT NULL,           -- JSON
    state        TEXT NOT NULL CHECK (state IN ('active', 'published', 'retired')),
    created_at   INTEGER NOT NULL
);

-- Access tokens issued (for introspection and revocation by jti).
CREATE TABLE issued_tokens (
    jti        TEXT PRIMARY KEY NOT NULL,
    client_id  TEXT NOT NULL,
    sub        TEXT NOT NULL,
    sid        TEXT,
    scope      TEXT NOT NULL,
    issued_at  INTEGER NOT NULL,
    exp        INTEGER NOT NULL
);
CREATE INDEX issued_tokens_exp ON issued_tokens (exp);

-- The revocation feed: every revoked token (jti) or ended session (sid), in order. Gateways ask
-- for entries after a sequence number; entries are kept until `exp` (no token they name is
-- valid after it).
CREATE TABLE revocations (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL CHECK (kind IN ('jti', 'sid')),
    value       TEXT NOT NULL,
    exp         INTEGER NOT NULL,
    revoked_at  INTEGER NOT NULL,
    UNIQUE (kind, value)
);
CREATE INDEX revocations_exp ON revocations (exp);
