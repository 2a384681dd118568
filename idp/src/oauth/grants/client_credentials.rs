//! The client_credentials grant (RFC 6749 §4.4): a confidential client gets a token for itself.
//! Its `sub` is the client id with a `client:` prefix, so it can never equal a user's subject.

use super::GrantContext;
use crate::oauth::client_auth::Authenticated;
use crate::oauth::error::OAuthError;
use crate::oauth::grants;
use crate::oauth::params::Params;
use crate::oauth::tokens::{AccessClaims, sign};
use crate::settings::GrantType;
use serde_json::{Value, json};

pub async fn grant(
    ctx: &GrantContext<'_>,
    auth: &Authenticated<'_>,
    form: &Params,
    now: i64,
) -> Result<Value, OAuthError> {
    let client = auth.client;
    if !auth.confidential {
        return Err(OAuthError::UnauthorizedClient(
            "client_credentials needs a confidential client".into(),
        ));
    }
    if !client.grant_types.contains(&GrantType::ClientCredentials) {
        return Err(OAuthError::UnauthorizedClient(
            "this client may not use client_credentials".into(),
        ));
    }
    let scopes = grants::grant_scopes(client, form.get("scope"))?;
    let sub = format!("client:{}", client.id);
    let claims = AccessClaims::issue(&ctx.settings.issuer, client, &sub, &scopes, now)
        .bound_to(ctx.dpop_jkt);
    // Nothing to store: the token is self-contained, and revoking it (by `jti`) or introspecting
    // it needs only the token itself. Keeping client tokens out of the database is what lets the
    // token endpoint issue them at the rate of signing (BENCHMARKS.md).
    let token = sign(ctx.keys, &claims)?;
    Ok(json!({
        "access_token": token,
        "token_type": claims.token_type(),
        "expires_in": claims.exp - claims.iat,
        "scope": claims.scope,
    }))
}
