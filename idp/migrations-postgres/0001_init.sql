-- The PostgreSQL schema: the same tables as the SQLite migrations (idp/migrations/0001..0006 and
-- the login failures), in one step, for several IDP replicas on one database. Later changes are
-- new files here (0002_..., one per change), beside their SQLite counterpart in idp/migrations/.

-- Signing keys: generated once for the cluster (at most one active key: the partial unique index
-- below, and the transaction-scoped advisory lock every key transaction takes), published in
-- JWKS; rotation publishes a key before it signs (`activate_at`) and keeps the key it replaces
-- published until `retire_at`.
CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    alg          TEXT NOT NULL,
    private_der  BYTEA NOT NULL,          -- sealed PKCS#8
    public_jwk   TEXT NOT NULL,           -- JSON
    state        TEXT NOT NULL CHECK (state IN ('active', 'published', 'retired')),
    created_at   BIGINT NOT NULL,
    activate_at  BIGINT,
    retire_at    BIGINT,
    position     BIGINT GENERATED ALWAYS AS IDENTITY   -- insertion order (SQLite's rowid)
);
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (state) WHERE state = 'active';

-- Access tokens issued (for introspection and revocation by jti).
CREATE TABLE issued_tokens (
    jti        TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL,
    sub        TEXT NOT NULL,
    sid        TEXT,
    scope      TEXT NOT NULL,
    issued_at  BIGINT NOT NULL,
    exp        BIGINT NOT NULL
);
CREATE INDEX issued_tokens_exp ON issued_tokens (exp);

-- The revocation feed. `seq` is NOT a sequence: a sequence hands out numbers in start order, so
-- number 11 can commit before number 10 and a gateway that read 11 would never read 10. Every
-- revoking transaction takes the next number from the one-row `revocation_feed_head` instead
-- (an UPDATE: the row stays locked until that transaction ends), so numbers are taken and made
-- visible in commit order, and the committed head is the highest number any reader can see
-- (see the store's `revocations_since`).
CREATE TABLE revocation_feed_head (
    singleton  BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    seq        BIGINT NOT NULL
);
INSERT INTO revocation_feed_head (singleton, seq) VALUES (TRUE, 0);

CREATE TABLE revocations (
    seq         BIGINT PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('jti', 'sid')),
    value       TEXT NOT NULL,
    exp         BIGINT NOT NULL,
    revoked_at  BIGINT NOT NULL,
    UNIQUE (kind, value)
);
CREATE INDEX revocations_exp ON revocations (exp);

-- Browser single sign-on sessions (the cookie's SHA-256 digest).
CREATE TABLE sso_sessions (
    id          TEXT PRIMARY KEY,
    sub         TEXT NOT NULL,
    auth_time   BIGINT NOT NULL,
    amr         TEXT NOT NULL,               -- space-separated (RFC 8176 values)
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    ended_at    BIGINT
);

-- Token sessions (sid) and refresh tokens (SHA-256 digests, rotated on every use).
CREATE TABLE sessions (
    sid         TEXT PRIMARY KEY,
    sub         TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    ended_at    BIGINT,
    sso_id      TEXT REFERENCES sso_sessions (id)
);
CREATE INDEX sessions_sso_id ON sessions (sso_id);

CREATE TABLE refresh_tokens (
    hash        BYTEA PRIMARY KEY,
    family      TEXT NOT NULL,
    sid         TEXT NOT NULL REFERENCES sessions (sid),
    client_id   TEXT NOT NULL,
    sub         TEXT NOT NULL,
    scope       TEXT NOT NULL,
    issued_at   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT,
    revoked_at  BIGINT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);
CREATE INDEX refresh_tokens_sid ON refresh_tokens (sid);

-- Authorization codes (SHA-256 digests), single use; kept past expiry to recognise a replay.
CREATE TABLE authorization_codes (
    hash                   BYTEA PRIMARY KEY,
    client_id              TEXT NOT NULL,
    redirect_uri           TEXT NOT NULL,
    sub                    TEXT NOT NULL,
    scope                  TEXT NOT NULL,
    code_challenge         TEXT,
    code_challenge_method  TEXT CHECK (code_challenge_method IN ('S256', 'plain')),
    nonce                  TEXT,
    auth_time              BIGINT NOT NULL,
    amr                    TEXT NOT NULL,
    issued_at              BIGINT NOT NULL,
    expires_at             BIGINT NOT NULL,
    used_at                BIGINT,
    sid                    TEXT REFERENCES sessions (sid),
    sso_id                 TEXT REFERENCES sso_sessions (id)
);
CREATE INDEX authorization_codes_issued_at ON authorization_codes (issued_at);

CREATE TABLE consents (
    sub         TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    scope       TEXT NOT NULL,
    granted_at  BIGINT NOT NULL,
    PRIMARY KEY (sub, client_id)
);

CREATE TABLE form_tokens (
    hash        TEXT PRIMARY KEY,
    browser     TEXT NOT NULL,
    purpose     TEXT NOT NULL CHECK (purpose IN ('login', 'consent', 'logout')),
    expires_at  BIGINT NOT NULL
);
CREATE INDEX form_tokens_expires_at ON form_tokens (expires_at);

-- Password-login budgets (the domain's oauth::lockout), shared by every replica; a record is
-- dropped by the purge once `forget_at` has passed.
CREATE TABLE login_address_failures (
    address       TEXT PRIMARY KEY,
    failures      BIGINT NOT NULL,
    window_start  BIGINT NOT NULL,
    locked_until  BIGINT NOT NULL,
    forget_at     BIGINT NOT NULL
);
CREATE INDEX login_address_failures_forget_at ON login_address_failures (forget_at);

CREATE TABLE login_user_failures (
    username      TEXT PRIMARY KEY,
    failures      BIGINT NOT NULL,
    last_failure  BIGINT NOT NULL,
    forget_at     BIGINT NOT NULL
);
CREATE INDEX login_user_failures_forget_at ON login_user_failures (forget_at);
