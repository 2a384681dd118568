//! `POST /oauth2/token`: authenticate the client, check its DPoP proof (RFC 9449), dispatch to
//! the grant.

use super::TOKEN_PATH;
use crate::http::client_address::client_address;
use crate::http::form;
use crate::http::oauth_error::DPOP_NONCE;
use crate::http::state::{AppState, unix_now};
use crate::oauth::client_auth::authenticate;
use crate::oauth::dpop;
use crate::oauth::error::OAuthError;
use crate::oauth::grants::{
    GrantContext, authorization_code, client_credentials, password, refresh_token,
};
use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::ConnectInfo;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// A token response, and the DPoP nonce to send with it when the client's proofs need one.
struct Issued {
    grant_type: &'static str,
    body: serde_json::Value,
    dpop_nonce: Option<String>,
}

pub async fn token(
    State(state): State<Arc<AppState>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let peer = peer.map(|Extension(ConnectInfo(addr))| addr.ip());
    let address = client_address(&state.settings.forwarded, peer, &headers);
    match handle(&state, &headers, &body, address).await {
        Ok(issued) => {
            state.metrics.issued(issued.grant_type);
            ok(issued.body, issued.dpop_nonce)
        }
        Err(e) => {
            state.metrics.error(e.code());
            e.into_response()
        }
    }
}

fn ok(body: serde_json::Value, dpop_nonce: Option<String>) -> Response {
    let mut res = (
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        Json(body),
    )
        .into_response();
    if let Some(nonce) = dpop_nonce.and_then(|n| HeaderValue::from_str(&n).ok()) {
        res.headers_mut().insert(DPOP_NONCE, nonce);
    }
    res
}

async fn handle(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    address: Option<IpAddr>,
) -> Result<Issued, OAuthError> {
    let form = form::parse(headers, body)?;
    let grant_type = form.require("grant_type")?;
    let auth = authenticate(&state.settings, headers, &form)?;
    let now = unix_now();
    let checker = state.dpop();
    let proofs: Vec<&[u8]> = headers
        .get_all("dpop")
        .iter()
        .map(HeaderValue::as_bytes)
        .collect();
    let token_endpoint = format!("{}{TOKEN_PATH}", state.settings.issuer);
    let proof = dpop::token_request(&checker, auth.client, &proofs, &token_endpoint, now).await?;
    let dpop_nonce = checker
        .nonce_required(Some(auth.client))
        .then(|| checker.nonces.current(now));
    let keys = state.keys();
    let ctx = GrantContext {
        dpop_jkt: proof.as_ref().map(|p| p.jkt.as_str()),
        ..state.grant_context(&keys)
    };
    let (grant_type, body) = match grant_type {
        "authorization_code" => (
            "authorization_code",
            authorization_code::grant(&ctx, &auth, &form, now).await?,
        ),
        "client_credentials" => (
            "client_credentials",
            client_credentials::grant(&ctx, &auth, &form, now).await?,
        ),
        "password" => (
            "password",
            password::grant(&ctx, &state.passwords, &auth, &form, address, now).await?,
        ),
        "refresh_token" => (
            "refresh_token",
            refresh_token::grant(&ctx, &auth, &form, now).await?,
        ),
        _ => return Err(OAuthError::UnsupportedGrantType),
    };
    Ok(Issued {
        grant_type,
        body,
        dpop_nonce,
    })
}
