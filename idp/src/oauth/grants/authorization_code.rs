//! The authorization_code grant (RFC 6749 §4.1.3) with PKCE (RFC 7636) and the checks of RFC 9700:
//! a code is single-use, bound to its client and `redirect_uri`, short-lived; a `code_verifier`
//! for a code issued without a challenge is refused (PKCE downgrade, RFC 9700 §4.8.2); a replayed
//! code ends the session its tokens went to, so every token issued from it dies (RFC 6749 §4.1.2).
//!
//! A redemption that fails a check (wrong client, redirect URI or verifier, expired) is rolled
//! back: bad input changes nothing, and an attacker holding a stolen code cannot burn it for the
//! legitimate client by presenting it wrongly.

use super::GrantContext;
use super::user_tokens::{self, Login, Origin};
use crate::oauth::authorization::code_hash;
use crate::oauth::client_auth::Authenticated;
use crate::oauth::error::OAuthError;
use crate::oauth::params::Params;
use crate::oauth::pkce::{self, Method};
use crate::settings::GrantType;
use crate::store::CodeUse;
use serde_json::Value;

fn invalid(description: &str) -> OAuthError {
    OAuthError::InvalidGrant(description.to_owned())
}

pub async fn grant(
    ctx: &GrantContext<'_>,
    auth: &Authenticated<'_>,
    form: &Params,
    now: i64,
) -> Result<Value, OAuthError> {
    let client = auth.client;
    if !client.allows(GrantType::AuthorizationCode) {
        return Err(OAuthError::UnauthorizedClient(
            "this client may not use the authorization code grant".into(),
        ));
    }
    let code = form.require("code")?;
    let redirect_uri = form.require("redirect_uri")?;
    let verifier = form.get("code_verifier");
    let hash = code_hash(code);
    let mut tx = ctx.store.begin().await?;
    let stored = match tx.use_code(&hash, now).await? {
        CodeUse::Unknown => return Err(invalid("unknown authorization code")),
        CodeUse::Replayed { sid } => {
            if let Some(sid) = sid {
                let feed_exp = now + ctx.settings.max_access_token_ttl_seconds();
                tx.end_session(&sid, feed_exp, now).await?;
                tx.commit().await?;
                tracing::warn!(client = %client.id, "authorization code replayed: its session is ended");
            }
            return Err(invalid("the authorization code was already used"));
        }
        CodeUse::First(stored) => stored,
    };
    // From here on, every refusal drops `tx`: the code stays unused.
    if stored.client_id != client.id {
        return Err(invalid("the code was issued to another client"));
    }
    if stored.expires_at <= now {
        return Err(invalid("the authorization code has expired"));
    }
    if stored.redirect_uri != redirect_uri {
        return Err(invalid(
            "redirect_uri does not match the authorization request",
        ));
    }
    // RFC 9449 §10: the code was asked for with `dpop_jkt`; only that key may redeem it.
    if let Some(bound) = stored.dpop_jkt.as_deref() {
        match ctx.dpop_jkt {
            Some(jkt) if jkt == bound => {}
            Some(_) => {
                return Err(OAuthError::InvalidDpopProof(
                    "the DPoP proof's key does not match the dpop_jkt of the authorization request"
                        .into(),
                ));
            }
            None => {
                return Err(OAuthError::InvalidDpopProof(
                    "the code was issued for a DPoP key (dpop_jkt): send a DPoP proof by it".into(),
                ));
            }
        }
    }
    match (
        &stored.code_challenge,
        &stored.code_challenge_method,
        verifier,
    ) {
        (Some(challenge), Some(method), Some(verifier)) => {
            let method = Method::parse(method)
                .ok_or_else(|| OAuthError::Server(format!("stored PKCE method {method:?}")))?;
            if !pkce::verify(method, challenge, verifier) {
                return Err(invalid("code_verifier does not match the code_challenge"));
            }
        }
        (Some(_), _, None) => return Err(invalid("code_verifier is missing")),
        (None, _, Some(_)) => {
            return Err(invalid(
                "code_verifier sent for a code issued without a code_challenge",
            ));
        }
        (None, _, None) if client.require_pkce => {
            return Err(invalid("this client must use PKCE"));
        }
        (None, _, None) => {}
        (Some(_), None, Some(_)) => {
            return Err(OAuthError::Server("stored code without PKCE method".into()));
        }
    }
    let scopes: Vec<String> = stored
        .scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let amr: Vec<String> = stored
        .amr
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let issued = user_tokens::issue(
        ctx,
        &mut *tx,
        client,
        &stored.sub,
        &scopes,
        Origin::NewSession(Login {
            amr: &amr,
            auth_time: stored.auth_time,
            sso_id: stored.sso_id.as_deref(),
            nonce: stored.nonce.as_deref(),
        }),
        now,
    )
    .await?;
    tx.set_code_session(&hash, &issued.sid).await?;
    tx.commit().await?;
    Ok(issued.body)
}
