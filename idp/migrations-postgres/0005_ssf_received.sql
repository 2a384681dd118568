-- Shared Signals receiver (the hub), as SQLite's 0011_ssf_received.sql: the SETs received from
-- each transmitter by `jti`, with a digest of the whole SET, until `expires_at`.
CREATE TABLE ssf_received_sets (
    transmitter  TEXT NOT NULL,
    jti          TEXT NOT NULL,
    digest       TEXT NOT NULL,
    expires_at   BIGINT NOT NULL,
    PRIMARY KEY (transmitter, jti)
);
CREATE INDEX ssf_received_sets_expires_at ON ssf_received_sets (expires_at);
