-- Shared Signals receiver (the hub): the Security Event Tokens received from each transmitter,
-- by `jti`, with a digest of the whole SET, kept until it could no longer be accepted anyway
-- (`expires_at`: its `iat` plus the stream's maximum age and leeway). Written in the transaction
-- that applies the SET's cut-offs, before it is acknowledged: a redelivery of the same SET
-- (same digest) is acknowledged again without being applied twice; another SET with that `jti`
-- is refused.
CREATE TABLE ssf_received_sets (
    transmitter  TEXT NOT NULL,
    jti          TEXT NOT NULL,
    digest       TEXT NOT NULL,
    expires_at   INTEGER NOT NULL,
    PRIMARY KEY (transmitter, jti)
);
CREATE INDEX ssf_received_sets_expires_at ON ssf_received_sets (expires_at);
