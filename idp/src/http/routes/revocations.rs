//! `GET /oauth2/revocations?since=CURSOR[&wait=SECONDS]`: the feed gateways poll. Gateway
//! clients only (client_secret_basic).
//!
//! With `wait`, a long poll: the answer comes at once when there are entries after the cursor,
//! else when one is committed (by this replica or, on PostgreSQL, any replica: the store's
//! revocation signal), else after `wait` seconds with no entries and the cursor. `wait` is capped
//! at [`MAX_WAIT_SECONDS`]; a server shutting down answers its long polls at once. Without
//! `wait` (or `wait=0`), the plain poll: the answer comes at once.
//!
//! The answer: `{"cursor": C, "revoked": [{"jti"|"sid": .., "exp": ..}], "more": B}`; a
//! federated issuer's cut-off (see `backchannel` and `cutoffs`) is an entry
//! `{"iss": I, "sid"|"sub": .., "cutoff": T, "exp": E}`: I's tokens of that session or subject
//! issued at or before T are refused, and the entry may be forgotten after E. `more` is
//! `true` when the page is full ([`PAGE`] entries): more may follow the cursor, and a gateway
//! asks again at once; `false` says the gateway is up to date (a fresh gateway waits for that
//! before it accepts tokens).

use crate::http::state::{AppState, unix_now};
use crate::oauth::client_auth::authenticate_gateway;
use crate::oauth::error::OAuthError;
use crate::oauth::params::Params;
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// Entries per page; a gateway behind by more catches up over several polls.
pub const PAGE: i64 = 1_000;

/// The longest a long poll is held (a larger `wait` is served as this): under the usual 60 s
/// idle timeouts of proxies and load balancers between a gateway and the IDP.
pub const MAX_WAIT_SECONDS: u64 = 30;

pub async fn feed(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    match handle(&state, &headers, query.as_deref()).await {
        Ok(body) => ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn handle(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<serde_json::Value, OAuthError> {
    // Only Basic authentication here (a GET has no form body).
    let empty = Params::default();
    let client = authenticate_gateway(&state.settings, headers, &empty)?;
    if !client.gateway {
        return Err(OAuthError::UnauthorizedClient(
            "only gateway clients may read the revocation feed".into(),
        ));
    }
    let params: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or(""))
        .map_err(|_| OAuthError::InvalidRequest("bad query string".into()))?;
    let mut since = None;
    let mut wait = None;
    for (k, v) in params {
        match k.as_str() {
            "wait" if wait.is_none() => {
                wait = Some(v.parse::<u64>().map_err(|_| {
                    OAuthError::InvalidRequest("wait must be a non-negative integer".into())
                })?);
            }
            "wait" => return Err(OAuthError::InvalidRequest("wait is repeated".into())),
            "since" if since.is_none() => {
                since = Some(v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                    OAuthError::InvalidRequest("since must be a non-negative integer".into())
                })?);
            }
            "since" => return Err(OAuthError::InvalidRequest("since is repeated".into())),
            other => {
                return Err(OAuthError::InvalidRequest(format!(
                    "unknown parameter {other:?}"
                )));
            }
        }
    }
    let wait = Duration::from_secs(wait.unwrap_or(0).min(MAX_WAIT_SECONDS));
    let deadline = tokio::time::Instant::now() + wait;
    // Subscribed before the first read: a revocation committed after it wakes the loop.
    let mut woken = state.store.revocation_signal().subscribe();
    let mut shutdown = state.shutdown_signal();
    let (entries, cursor) = loop {
        let (entries, cursor) = state
            .store
            .revocations_since(since, unix_now(), PAGE)
            .await?;
        if !entries.is_empty() || wait.is_zero() || *shutdown.borrow() {
            break (entries, cursor);
        }
        tokio::select! {
            changed = woken.changed() => {
                if changed.is_err() {
                    break (entries, cursor);
                }
            }
            _ = shutdown.changed() => break (entries, cursor),
            () = tokio::time::sleep_until(deadline) => break (entries, cursor),
        }
    };
    let revoked: Vec<_> = entries
        .iter()
        .map(|e| match (e.kind.as_str(), &e.iss, e.cutoff) {
            ("sid_cutoff", Some(iss), Some(t)) => {
                json!({"iss": iss, "sid": e.value, "cutoff": t, "exp": e.exp})
            }
            ("sub_cutoff", Some(iss), Some(t)) => {
                json!({"iss": iss, "sub": e.value, "cutoff": t, "exp": e.exp})
            }
            ("sid", _, _) => json!({"sid": e.value, "exp": e.exp}),
            _ => json!({"jti": e.value, "exp": e.exp}),
        })
        .collect();
    let more = i64::try_from(entries.len()).is_ok_and(|n| n >= PAGE);
    Ok(json!({"cursor": cursor, "revoked": revoked, "more": more}))
}
