//! The refresh_token grant (RFC 6749 §6) with rotation: every use returns a new refresh token and
//! retires the old one; presenting a retired one again is taken as theft and ends the whole
//! session (every token of the family, and the `sid` goes to the revocation feed). Scopes can
//! only narrow.

use super::GrantContext;
use super::user_tokens::{self, Origin, refresh_hash};
use crate::oauth::client_auth::Authenticated;
use crate::oauth::error::OAuthError;
use crate::oauth::params::Params;
use crate::settings::GrantType;
use serde_json::Value;

pub async fn grant(
    ctx: &GrantContext<'_>,
    auth: &Authenticated<'_>,
    form: &Params,
    now: i64,
) -> Result<Value, OAuthError> {
    let client = auth.client;
    if !client.grant_types.contains(&GrantType::RefreshToken) {
        return Err(OAuthError::UnauthorizedClient(
            "this client may not use refresh tokens".into(),
        ));
    }
    let presented = form.require("refresh_token")?;
    let hash = refresh_hash(presented);
    let mut tx = ctx.store.begin().await?;
    let Some(stored) = tx.find_refresh_token(&hash).await? else {
        return Err(OAuthError::InvalidGrant("unknown refresh token".into()));
    };
    if stored.client_id != client.id {
        return Err(OAuthError::InvalidGrant(
            "the refresh token was issued to another client".into(),
        ));
    }
    // A bound token (RFC 9449 §5) is worth nothing without its key: one presented without a
    // proof by that key is refused before anything else, so it neither rotates nor, if it was
    // used before, ends the session on behalf of someone who cannot use it anyway.
    if let Some(bound) = stored.dpop_jkt.as_deref() {
        match ctx.dpop_jkt {
            Some(jkt) if jkt == bound => {}
            Some(_) => {
                return Err(OAuthError::InvalidDpopProof(
                    "the refresh token is bound to another DPoP key".into(),
                ));
            }
            None => {
                return Err(OAuthError::InvalidDpopProof(
                    "the refresh token is DPoP-bound: send a DPoP proof by its key".into(),
                ));
            }
        }
    }
    if stored.used && !stored.revoked && !stored.session_ended {
        // Reuse of a rotated token: someone else has a copy. End the session.
        let feed_exp = now + ctx.settings.max_access_token_ttl_seconds();
        tx.end_session(&stored.sid, feed_exp, now).await?;
        tx.commit().await?;
        tracing::warn!(client = %client.id, "refresh token reuse: session ended");
        return Err(OAuthError::InvalidGrant(
            "the refresh token was already used; the session is ended".into(),
        ));
    }
    if stored.used || stored.revoked || stored.session_ended || stored.expires_at <= now {
        return Err(OAuthError::InvalidGrant(
            "the refresh token is no longer valid".into(),
        ));
    }
    let original: Vec<String> = stored
        .scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let scopes = match form.get("scope") {
        None => original,
        Some(requested) => {
            let mut narrowed = Vec::new();
            for s in requested.split(' ').filter(|s| !s.is_empty()) {
                if !original.iter().any(|o| o == s) {
                    return Err(OAuthError::InvalidScope(format!(
                        "scope {s:?} was not granted originally"
                    )));
                }
                if !narrowed.iter().any(|n: &String| n == s) {
                    narrowed.push(s.to_owned());
                }
            }
            narrowed
        }
    };
    if !tx.mark_refresh_used(&hash, now).await? {
        // A concurrent request used it first.
        return Err(OAuthError::InvalidGrant(
            "the refresh token is no longer valid".into(),
        ));
    }
    let origin = Origin::Rotation {
        sid: &stored.sid,
        family: &stored.family,
        session_expires_at: stored.session_expires_at,
        dpop_jkt: stored.dpop_jkt.as_deref(),
    };
    let issued =
        user_tokens::issue(ctx, &mut *tx, client, &stored.sub, &scopes, origin, now).await?;
    tx.commit().await?;
    Ok(issued.body)
}
