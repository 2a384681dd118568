-- Shared Signals (SSF 1.0) transmitter and OpenID Connect Back-Channel Logout sender, as
-- SQLite's 0010_security_events.sql: events written in the transaction of the change that
-- causes them, streams (one per receiver), and the outbox of signed tokens to deliver.
-- `next_attempt_at` is in milliseconds (retries are paced below a second).
CREATE TABLE security_events (
    id           BIGSERIAL PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('session_revoked', 'token_revoked')),
    sid          TEXT,
    sub          TEXT NOT NULL,
    client_id    TEXT NOT NULL,
    jti          TEXT,
    occurred_at  BIGINT NOT NULL
);

CREATE TABLE ssf_streams (
    stream_id        TEXT PRIMARY KEY,
    client_id        TEXT NOT NULL UNIQUE,
    delivery_method  TEXT NOT NULL,
    config           TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('enabled', 'paused', 'disabled')),
    reason           TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);

CREATE TABLE event_outbox (
    id               BIGSERIAL PRIMARY KEY,
    stream_id        TEXT REFERENCES ssf_streams (stream_id) ON DELETE CASCADE,
    client_id        TEXT,
    jti              TEXT NOT NULL,
    token            TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL DEFAULT 0,
    CHECK ((stream_id IS NULL) <> (client_id IS NULL))
);
CREATE INDEX event_outbox_stream ON event_outbox (stream_id, id);
CREATE INDEX event_outbox_due ON event_outbox (next_attempt_at);
