//! Issuing a user's tokens: an access token carrying the session (`sid`) and, for clients allowed
//! the refresh_token grant, a fresh refresh token of the session's family, written in one
//! transaction before anything is returned.

use crate::error::OAuthError;
use crate::settings::{Client, GrantType};
use crate::state::AppState;
use crate::store::{self, NewRefreshToken};
use crate::tokens::{AccessClaims, random_id, sign};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Where the tokens come from: a new session (a password login, a redeemed authorization code)
/// or a rotation in an existing one.
pub enum Origin<'a> {
    /// A new login, authenticated by these methods (RFC 8176 `amr`).
    NewSession { amr: &'a [String] },
    Rotation {
        sid: &'a str,
        family: &'a str,
        session_expires_at: i64,
    },
}

/// The token response, and the session the tokens belong to.
pub struct Issued {
    pub body: Value,
    pub sid: String,
}

pub fn refresh_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Writes the tokens in `tx`; the caller commits (so a rotation and its new tokens are one
/// transaction).
pub async fn issue(
    state: &AppState,
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    client: &Client,
    sub: &str,
    scopes: &[String],
    origin: Origin<'_>,
    now: i64,
) -> Result<Issued, OAuthError> {
    let refresh_ttl = i64::try_from(state.settings.refresh_token_ttl_seconds).unwrap_or(3600);
    let amr = match origin {
        Origin::NewSession { amr } => Some(amr.to_vec()),
        Origin::Rotation { .. } => None,
    };
    let (sid, family, session_expires_at) = match origin {
        Origin::NewSession { .. } => {
            let sid = random_id();
            let expires = now + refresh_ttl;
            store::create_session(tx, &sid, sub, &client.id, now, expires).await?;
            (sid, random_id(), expires)
        }
        Origin::Rotation {
            sid,
            family,
            session_expires_at,
        } => (sid.to_owned(), family.to_owned(), session_expires_at),
    };
    let claims = AccessClaims {
        sid: Some(sid.clone()),
        amr,
        ..AccessClaims::issue(&state.settings.issuer, client, sub, scopes, now)
    };
    let access_token = sign(&state.keys(), &claims).map_err(OAuthError::Server)?;
    let mut body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": claims.exp - claims.iat,
        "scope": claims.scope,
    });
    if client.allows(GrantType::RefreshToken) {
        let refresh_token = format!("{}{}", random_id(), random_id());
        let hash = refresh_hash(&refresh_token);
        store::insert_refresh_token(
            tx,
            &NewRefreshToken {
                hash: &hash,
                family: &family,
                sid: &sid,
                client_id: &client.id,
                sub,
                scope: &claims.scope,
                now,
                // a refresh token never outlives its session
                expires_at: (now + refresh_ttl).min(session_expires_at),
            },
        )
        .await?;
        body["refresh_token"] = refresh_token.into();
    }
    store::record_issued(&mut **tx, &claims).await?;
    Ok(Issued { body, sid })
}
