-- Password-login budgets (the domain's oauth::lockout), kept in the database so that every
-- replica shares them; a record is dropped by the purge once `forget_at` has passed.
-- (0008, not 0007: 0007 is taken by the DPoP change.)
CREATE TABLE login_address_failures (
    address       TEXT PRIMARY KEY NOT NULL,
    failures      INTEGER NOT NULL,
    window_start  INTEGER NOT NULL,
    locked_until  INTEGER NOT NULL,
    forget_at     INTEGER NOT NULL
);
CREATE INDEX login_address_failures_forget_at ON login_address_failures (forget_at);

CREATE TABLE login_user_failures (
    username      TEXT PRIMARY KEY NOT NULL,
    failures      INTEGER NOT NULL,
    last_failure  INTEGER NOT NULL,
    forget_at     INTEGER NOT NULL
);
CREATE INDEX login_user_failures_forget_at ON login_user_failures (forget_at);
