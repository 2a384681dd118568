//! Issuing a user's tokens: an access token carrying the session (`sid`), for clients allowed
//! the refresh_token grant a fresh refresh token of the session's family, and for a login with
//! the `openid` scope an ID token — written in one transaction before anything is returned.

use super::GrantContext;
use crate::oauth::error::OAuthError;
use crate::oauth::id_token::{self, IdClaims};
use crate::oauth::tokens::{AccessClaims, random_id, sign};
use crate::settings::{Client, GrantType};
use crate::store::{IssuedToken, NewRefreshToken, NewSession, Transaction};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Implicit-flow access tokens live at most this long (they travel in a URL fragment).
pub const IMPLICIT_MAX_TTL: i64 = 300;

/// How the user signed in.
#[derive(Debug, Clone, Copy)]
pub struct Login<'a> {
    /// Authentication methods (RFC 8176), e.g. `["pwd"]`.
    pub amr: &'a [String],
    pub auth_time: i64,
    /// The browser's single-sign-on session, if the login happened in one.
    pub sso_id: Option<&'a str>,
    /// The OpenID Connect `nonce` of the authorization request.
    pub nonce: Option<&'a str>,
}

/// Where the tokens come from.
pub enum Origin<'a> {
    /// A new login (a password grant, a redeemed authorization code): a new session.
    NewSession(Login<'a>),
    /// The implicit flow: a new session, an access token only, short-lived.
    Implicit(Login<'a>),
    /// A refresh-token rotation in an existing session (no ID token: OIDC Core §12.2 allows it).
    Rotation {
        sid: &'a str,
        family: &'a str,
        session_expires_at: i64,
        /// The DPoP key the presented refresh token is bound to: the new one is bound to it too.
        dpop_jkt: Option<&'a str>,
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
    ctx: &GrantContext<'_>,
    tx: &mut dyn Transaction,
    client: &Client,
    sub: &str,
    scopes: &[String],
    origin: Origin<'_>,
    now: i64,
) -> Result<Issued, OAuthError> {
    // One snapshot of the key ring for the whole issuance (the context's): a rotation landing
    // meanwhile must not sign the access token and the ID token with different keys.
    let keys = ctx.keys;
    let refresh_ttl = i64::try_from(ctx.settings.refresh_token_ttl_seconds).unwrap_or(3600);
    let (login, implicit) = match origin {
        Origin::NewSession(login) => (Some(login), false),
        Origin::Implicit(login) => (Some(login), true),
        Origin::Rotation { .. } => (None, false),
    };
    let (sid, family, session_expires_at) = match (&origin, login) {
        (
            Origin::Rotation {
                sid,
                family,
                session_expires_at,
                ..
            },
            _,
        ) => ((*sid).to_owned(), (*family).to_owned(), *session_expires_at),
        (_, login) => {
            let sid = random_id();
            let expires = now + refresh_ttl;
            let sso_id = login.and_then(|l| l.sso_id);
            tx.create_session(&NewSession {
                sid: &sid,
                sub,
                client_id: &client.id,
                sso_id,
                now,
                expires_at: expires,
            })
            .await?;
            (sid, random_id(), expires)
        }
    };
    let mut claims = AccessClaims {
        sid: Some(sid.clone()),
        amr: login.map(|l| l.amr.to_vec()),
        ..AccessClaims::issue(&ctx.settings.issuer, client, sub, scopes, now).bound_to(ctx.dpop_jkt)
    };
    if implicit {
        claims.exp = claims.exp.min(now + IMPLICIT_MAX_TTL);
    }
    let access_token = sign(keys, &claims)?;
    let mut body = json!({
        "access_token": access_token,
        "token_type": claims.token_type(),
        "expires_in": claims.exp - claims.iat,
        "scope": claims.scope,
    });
    if !implicit && client.allows(GrantType::RefreshToken) {
        // RFC 9449 §5: a public client's refresh token is bound to its DPoP key (for the whole
        // family, as it started); a confidential client's is not, since the client
        // authenticates anyway and may change keys.
        let refresh_jkt = match origin {
            _ if !client.is_public() => None,
            Origin::Rotation { dpop_jkt, .. } => dpop_jkt,
            _ => ctx.dpop_jkt,
        };
        let refresh_token = format!("{}{}", random_id(), random_id());
        let hash = refresh_hash(&refresh_token);
        tx.insert_refresh_token(&NewRefreshToken {
            hash: &hash,
            family: &family,
            sid: &sid,
            client_id: &client.id,
            sub,
            scope: &claims.scope,
            now,
            // a refresh token never outlives its session
            expires_at: (now + refresh_ttl).min(session_expires_at),
            dpop_jkt: refresh_jkt,
        })
        .await?;
        body["refresh_token"] = refresh_token.into();
    }
    if let Some(login) = login.filter(|_| !implicit && scopes.iter().any(|s| s == "openid")) {
        // `at_hash` uses the hash of the ID token's own algorithm (OIDC Core §3.1.3.6).
        let id_alg = client.id_token_alg.unwrap_or(keys.active_alg);
        let id = IdClaims {
            iss: ctx.settings.issuer.clone(),
            sub: sub.to_owned(),
            aud: client.id.clone(),
            azp: client.id.clone(),
            exp: claims.exp,
            iat: now,
            auth_time: login.auth_time,
            nonce: login.nonce.map(str::to_owned),
            at_hash: Some(id_token::at_hash(&access_token, id_alg)),
            sid: sid.clone(),
            amr: login.amr.to_vec(),
        };
        body["id_token"] = id_token::sign(keys, id_alg, &id)?.into();
    }
    tx.record_issued(&IssuedToken {
        jti: &claims.jti,
        client_id: &claims.client_id,
        sub: &claims.sub,
        sid: claims.sid.as_deref(),
        scope: &claims.scope,
        issued_at: claims.iat,
        exp: claims.exp,
    })
    .await?;
    Ok(Issued { body, sid })
}
