//! Single-use CSRF tokens for the IDP's forms: each rendered form gets its own token, bound to
//! the browser (the `idp_csrf` cookie) and to the form's purpose, stored as a digest and consumed
//! by the first POST. A forged POST (no cookie, or another browser's), a replayed form, and an
//! expired one are all refused; several forms open in several tabs all work.

use crate::tokens::random_id;
use sha2::{Digest, Sha256};
use sqlx::SqlitePool;

/// How long a form can wait before it is posted.
pub const TTL_SECONDS: i64 = 30 * 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Login,
    Consent,
    Logout,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Login => "login",
            Purpose::Consent => "consent",
            Purpose::Logout => "logout",
        }
    }
}

fn digest(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// A new token for a form shown to the browser whose cookie is `browser`.
pub async fn issue(
    pool: &SqlitePool,
    browser: &str,
    purpose: Purpose,
    now: i64,
) -> Result<String, sqlx::Error> {
    let token = random_id();
    sqlx::query("DELETE FROM form_tokens WHERE expires_at <= ?")
        .bind(now)
        .execute(pool)
        .await?;
    sqlx::query("INSERT INTO form_tokens (hash, browser, purpose, expires_at) VALUES (?, ?, ?, ?)")
        .bind(digest(&token))
        .bind(digest(browser))
        .bind(purpose.as_str())
        .bind(now + TTL_SECONDS)
        .execute(pool)
        .await?;
    Ok(token)
}

/// Whether `token` was issued to this browser for this form and not used yet; uses it up.
pub async fn consume(
    pool: &SqlitePool,
    browser: &str,
    token: &str,
    purpose: Purpose,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM form_tokens WHERE hash = ? AND browser = ? AND purpose = ? AND expires_at > ?",
    )
    .bind(digest(token))
    .bind(digest(browser))
    .bind(purpose.as_str())
    .bind(now)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}
