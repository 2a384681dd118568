//! `POST /oauth2/token`: authenticate the client, dispatch to the grant.

use crate::http::client_address::client_address;
use crate::http::form;
use crate::http::state::{AppState, unix_now};
use crate::oauth::client_auth::authenticate;
use crate::oauth::error::OAuthError;
use crate::oauth::grants::{authorization_code, client_credentials, password, refresh_token};
use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::ConnectInfo;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

pub async fn token(
    State(state): State<Arc<AppState>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let peer = peer.map(|Extension(ConnectInfo(addr))| addr.ip());
    let address = client_address(&state.settings.forwarded, peer, &headers);
    match handle(&state, &headers, &body, address).await {
        Ok((grant_type, body)) => {
            state.metrics.issued(grant_type);
            ok(body)
        }
        Err(e) => {
            state.metrics.error(e.code());
            e.into_response()
        }
    }
}

fn ok(body: serde_json::Value) -> Response {
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        Json(body),
    )
        .into_response()
}

async fn handle(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    address: Option<IpAddr>,
) -> Result<(&'static str, serde_json::Value), OAuthError> {
    let form = form::parse(headers, body)?;
    let grant_type = form.require("grant_type")?;
    let auth = authenticate(&state.settings, headers, &form)?;
    let now = unix_now();
    let keys = state.keys();
    let ctx = state.grant_context(&keys);
    match grant_type {
        "authorization_code" => Ok((
            "authorization_code",
            authorization_code::grant(&ctx, &auth, &form, now).await?,
        )),
        "client_credentials" => Ok((
            "client_credentials",
            client_credentials::grant(&ctx, &auth, &form, now).await?,
        )),
        "password" => Ok((
            "password",
            password::grant(&ctx, &state.passwords, &auth, &form, address, now).await?,
        )),
        "refresh_token" => Ok((
            "refresh_token",
            refresh_token::grant(&ctx, &auth, &form, now).await?,
        )),
        _ => Err(OAuthError::UnsupportedGrantType),
    }
}
