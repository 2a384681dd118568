//! The resource owner password credentials grant (RFC 6749 §4.3): only for confidential clients
//! explicitly allowed to use it; argon2 verification on a bounded pool; per-user delays and
//! per-address lockout; the same answer whether the user exists or not.

use super::GrantContext;
use super::user_tokens::{self, Login, Origin};
use crate::oauth::client_auth::Authenticated;
use crate::oauth::error::OAuthError;
use crate::oauth::grants::grant_scopes;
use crate::oauth::params::Params;
use crate::oauth::users::{LoginError, Passwords};
use crate::settings::GrantType;
use serde_json::Value;
use std::net::IpAddr;

fn invalid_credentials() -> OAuthError {
    OAuthError::InvalidGrant("invalid username or password".into())
}

pub async fn grant(
    ctx: &GrantContext<'_>,
    passwords: &Passwords,
    auth: &Authenticated<'_>,
    form: &Params,
    address: Option<IpAddr>,
    now: i64,
) -> Result<Value, OAuthError> {
    let client = auth.client;
    if !auth.confidential || !client.grant_types.contains(&GrantType::Password) {
        return Err(OAuthError::UnauthorizedClient(
            "this client may not use the password grant".into(),
        ));
    }
    let username = form.require("username")?;
    let password = form.require("password")?;
    let scopes = grant_scopes(client, form.get("scope"))?;
    let user = match passwords
        .verify(&ctx.settings.users, username, password, address, now)
        .await
    {
        Ok(user) => user,
        Err(LoginError::Rejected) => {
            tracing::info!(client = %client.id, "password grant failed");
            return Err(invalid_credentials());
        }
        Err(LoginError::Server(e)) => return Err(e),
    };
    let mut tx = ctx.store.begin().await?;
    let issued = user_tokens::issue(
        ctx,
        &mut *tx,
        client,
        &user.sub,
        &scopes,
        Origin::NewSession(Login {
            amr: &["pwd".to_owned()],
            auth_time: now,
            sso_id: None,
            nonce: None,
        }),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(issued.body)
}
