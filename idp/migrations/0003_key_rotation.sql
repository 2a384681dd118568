-- Key rotation: a new key is published first and starts signing at `activate_at`; the key it
-- replaces stays published (for verification) until `retire_at`.
ALTER TABLE signing_keys ADD COLUMN activate_at INTEGER;
ALTER TABLE signing_keys ADD COLUMN retire_at INTEGER;
