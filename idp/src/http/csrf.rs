//! Single-use CSRF tokens for the IDP's forms: each rendered form gets its own token, bound to
//! the browser (the `idp_csrf` cookie) and to the form's purpose, stored as a digest and consumed
//! by the first POST. A forged POST (no cookie, or another browser's), a replayed form, and an
//! expired one are all refused; several forms open in several tabs all work.

use crate::oauth::tokens::random_id;
use crate::store::{FormToken, Store, StoreResult};
use sha2::{Digest, Sha256};

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
    store: &dyn Store,
    browser: &str,
    purpose: Purpose,
    now: i64,
) -> StoreResult<String> {
    let token = random_id();
    store
        .insert_form_token(&FormToken {
            hash: &digest(&token),
            browser: &digest(browser),
            purpose: purpose.as_str(),
            expires_at: now + TTL_SECONDS,
        })
        .await?;
    Ok(token)
}

/// Whether `token` was issued to this browser for this form and not used yet; uses it up.
pub async fn consume(
    store: &dyn Store,
    browser: &str,
    token: &str,
    purpose: Purpose,
    now: i64,
) -> StoreResult<bool> {
    store
        .consume_form_token(&digest(token), &digest(browser), purpose.as_str(), now)
        .await
}
