//! Answering an approved authorization request: a new code (stored) or, in the implicit flow,
//! an access token in the fragment; and the URLs that carry the answer.

use super::{ResponseType, ValidRequest};
use crate::oauth::error::OAuthError;
use crate::oauth::grants::GrantContext;
use crate::oauth::grants::user_tokens::{self, Login, Origin};
use crate::oauth::sso::SsoSession;
use crate::oauth::tokens::random_id;
use crate::store::NewCode;
use sha2::{Digest, Sha256};

/// `uri` with `params` added to its query (existing parameters kept, RFC 6749 §3.1.2).
pub(super) fn append_query(uri: &str, params: &[(&str, &str)]) -> Option<String> {
    let mut url = url::Url::parse(uri).ok()?;
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
    }
    Some(url.into())
}

/// `uri` with `params` as its fragment (the implicit flow, RFC 6749 §4.2.2).
pub(super) fn with_fragment(uri: &str, params: &[(&str, &str)]) -> Option<String> {
    let mut url = url::Url::parse(uri).ok()?;
    let fragment = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    url.set_fragment(Some(&fragment));
    Some(url.into())
}

pub fn code_hash(code: &str) -> Vec<u8> {
    Sha256::digest(code.as_bytes()).to_vec()
}

/// The signed-in user of `session` approved `request`: the URL to send the user agent to, with
/// a new code (stored durably before it is returned) or, in the implicit flow, an access token.
pub async fn respond(
    ctx: &GrantContext<'_>,
    request: &ValidRequest,
    session: &SsoSession,
    now: i64,
) -> Result<String, OAuthError> {
    match request.response_type {
        ResponseType::Code => issue_code(ctx, request, session, now).await,
        ResponseType::Token => issue_implicit(ctx, request, session, now).await,
    }
}

async fn issue_code(
    ctx: &GrantContext<'_>,
    request: &ValidRequest,
    session: &SsoSession,
    now: i64,
) -> Result<String, OAuthError> {
    let code = format!("{}{}", random_id(), random_id());
    let hash = code_hash(&code);
    let ttl = i64::try_from(ctx.settings.authorization_code_ttl_seconds).unwrap_or(60);
    let scope = request.scopes.join(" ");
    let amr = session.amr.join(" ");
    ctx.store
        .insert_code(&NewCode {
            hash: &hash,
            client_id: &request.client_id,
            redirect_uri: &request.redirect_uri,
            sub: &session.sub,
            scope: &scope,
            code_challenge: request.code_challenge.as_ref().map(|(_, c)| c.as_str()),
            code_challenge_method: request.code_challenge.as_ref().map(|(m, _)| m.as_str()),
            nonce: request.nonce.as_deref(),
            auth_time: session.auth_time,
            amr: &amr,
            sso_id: Some(&session.id),
            now,
            expires_at: now + ttl,
            dpop_jkt: request.dpop_jkt.as_deref(),
        })
        .await?;
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = &request.state {
        params.push(("state", s));
    }
    params.push(("iss", &ctx.settings.issuer));
    append_query(&request.redirect_uri, &params)
        .ok_or_else(|| OAuthError::Server("redirect_uri no longer parses".into()))
}

/// The implicit flow (RFC 6749 §4.2.2): an access token only (no refresh token, at most five
/// minutes), in the fragment so that it never reaches a server in a request line.
async fn issue_implicit(
    ctx: &GrantContext<'_>,
    request: &ValidRequest,
    session: &SsoSession,
    now: i64,
) -> Result<String, OAuthError> {
    let client = ctx
        .settings
        .client(&request.client_id)
        .ok_or_else(|| OAuthError::Server("client vanished".into()))?;
    let mut tx = ctx.store.begin().await?;
    let issued = user_tokens::issue(
        ctx,
        &mut *tx,
        client,
        &session.sub,
        &request.scopes,
        Origin::Implicit(Login {
            amr: &session.amr,
            auth_time: session.auth_time,
            sso_id: Some(&session.id),
            nonce: request.nonce.as_deref(),
        }),
        now,
    )
    .await?;
    tx.commit().await?;
    let text = |name: &str| {
        issued.body[name]
            .as_str()
            .map(str::to_owned)
            .or_else(|| issued.body[name].as_i64().map(|n| n.to_string()))
            .unwrap_or_default()
    };
    let (token, expires_in, scope) = (text("access_token"), text("expires_in"), text("scope"));
    let mut params = vec![
        ("access_token", token.as_str()),
        ("token_type", "Bearer"),
        ("expires_in", expires_in.as_str()),
        ("scope", scope.as_str()),
    ];
    if let Some(s) = &request.state {
        params.push(("state", s));
    }
    params.push(("iss", &ctx.settings.issuer));
    with_fragment(&request.redirect_uri, &params)
        .ok_or_else(|| OAuthError::Server("redirect_uri no longer parses".into()))
}
