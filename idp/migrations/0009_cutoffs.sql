-- Federation (revocation hub): cut-offs join the revocation feed, and a replay store of
-- back-channel logout token `jti`s.
--
-- A cut-off: tokens of issuer `iss` with session `value` (kind `sid_cutoff`) or subject `value`
-- (kind `sub_cutoff`) issued at or before `cutoff` are refused; kept until `exp` (the cut-off
-- plus that issuer's longest token lifetime). `iss` is '' for the IDP's own `jti`/`sid` entries.
-- SQLite cannot change a CHECK constraint in place, so the table is rebuilt; the AUTOINCREMENT
-- high-water mark (the cursor handed out when no live entry follows) is carried over, so no
-- gateway's cursor ever goes back.
CREATE TABLE revocations_v9 (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL CHECK (kind IN ('jti', 'sid', 'sid_cutoff', 'sub_cutoff')),
    iss         TEXT NOT NULL DEFAULT '',
    value       TEXT NOT NULL,
    cutoff      INTEGER,
    exp         INTEGER NOT NULL,
    revoked_at  INTEGER NOT NULL,
    UNIQUE (kind, iss, value)
);
INSERT INTO revocations_v9 (seq, kind, iss, value, cutoff, exp, revoked_at)
    SELECT seq, kind, '', value, NULL, exp, revoked_at FROM revocations;
DELETE FROM sqlite_sequence WHERE name = 'revocations_v9';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'revocations_v9', seq FROM sqlite_sequence WHERE name = 'revocations';
DROP TABLE revocations;
ALTER TABLE revocations_v9 RENAME TO revocations;
CREATE INDEX revocations_exp ON revocations (exp);

-- Back-channel logout tokens seen (OIDC BCL 1.0 §2.6 step 7), per issuer, until they could no
-- longer be accepted anyway (`expires_at`, then purged).
CREATE TABLE logout_jtis (
    iss         TEXT NOT NULL,
    jti         TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (iss, jti)
);
CREATE INDEX logout_jtis_expires_at ON logout_jtis (expires_at);
