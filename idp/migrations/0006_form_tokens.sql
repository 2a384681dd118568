-- Single-use CSRF tokens of the IDP's forms (login, consent, logout confirmation), bound to the
-- browser (the digest of its `idp_csrf` cookie) and to the form. Every open form has its own, so
-- several tabs work, and a posted form cannot be posted again.
CREATE TABLE form_tokens (
    hash        TEXT PRIMARY KEY NOT NULL,   -- hex SHA-256 of the token
    browser     TEXT NOT NULL,               -- hex SHA-256 of the idp_csrf cookie
    purpose     TEXT NOT NULL CHECK (purpose IN ('login', 'consent', 'logout')),
    expires_at  INTEGER NOT NULL
);
CREATE INDEX form_tokens_expires_at ON form_tokens (expires_at);
