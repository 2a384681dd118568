-- Shared Signals (SSF 1.0) transmitter and OpenID Connect Back-Channel Logout sender.
--
-- `security_events`: what happened (a token session ended, an access token revoked), written
-- in the transaction of the change itself (`end_session`, `revoke_jti`), so no event is lost
-- when the process dies after the commit. A background task turns each row into signed tokens
-- for the receivers (rows of `event_outbox`) and deletes it, in one transaction.
CREATE TABLE security_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT NOT NULL CHECK (kind IN ('session_revoked', 'token_revoked')),
    sid          TEXT,
    sub          TEXT NOT NULL,
    client_id    TEXT NOT NULL,
    jti          TEXT,
    occurred_at  INTEGER NOT NULL
);

-- SSF event streams, one per receiver (the OAuth client that created it).
CREATE TABLE ssf_streams (
    stream_id        TEXT PRIMARY KEY NOT NULL,
    client_id        TEXT NOT NULL UNIQUE,
    delivery_method  TEXT NOT NULL,
    config           TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('enabled', 'paused', 'disabled')),
    reason           TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);

-- Signed tokens waiting for delivery: a SET of a stream (`stream_id`: polled or pushed) or a
-- logout token for a client's back-channel logout URI (`client_id`). A row leaves when it is
-- acknowledged (poll `ack`/`setErrs`, push 202, logout 200) or its attempts are used up.
CREATE TABLE event_outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    stream_id        TEXT REFERENCES ssf_streams (stream_id) ON DELETE CASCADE,
    client_id        TEXT,
    jti              TEXT NOT NULL,
    token            TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL DEFAULT 0, -- milliseconds
    CHECK ((stream_id IS NULL) <> (client_id IS NULL))
);
CREATE INDEX event_outbox_stream ON event_outbox (stream_id, id);
CREATE INDEX event_outbox_due ON event_outbox (next_attempt_at);
