-- Federation (revocation hub), as SQLite's 0009_cutoffs.sql: cut-offs join the revocation feed
-- (numbered from `revocation_feed_head` like every entry), and a replay store of back-channel
-- logout token `jti`s.
--
-- A cut-off: tokens of issuer `iss` with session `value` (kind `sid_cutoff`) or subject `value`
-- (kind `sub_cutoff`) issued at or before `cutoff` are refused; kept until `exp`. `iss` is ''
-- for the IDP's own `jti`/`sid` entries.
ALTER TABLE revocations DROP CONSTRAINT revocations_kind_check;
ALTER TABLE revocations ADD CONSTRAINT revocations_kind_check
    CHECK (kind IN ('jti', 'sid', 'sid_cutoff', 'sub_cutoff'));
ALTER TABLE revocations ADD COLUMN iss TEXT NOT NULL DEFAULT '';
ALTER TABLE revocations ADD COLUMN cutoff BIGINT;
ALTER TABLE revocations DROP CONSTRAINT revocations_kind_value_key;
ALTER TABLE revocations ADD CONSTRAINT revocations_kind_iss_value_key UNIQUE (kind, iss, value);

-- Back-channel logout tokens seen (OIDC BCL 1.0 §2.6 step 7), per issuer, until `expires_at`.
CREATE TABLE logout_jtis (
    iss         TEXT NOT NULL,
    jti         TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (iss, jti)
);
CREATE INDEX logout_jtis_expires_at ON logout_jtis (expires_at);
