//! The Shared Signals transmitter's endpoints (SSF 1.0): the configuration document
//! (`/.well-known/ssf-configuration`), stream management, status and verification
//! ([`streams`]), RFC 8936 poll ([`poll`]); all but the document need a bearer access token of
//! this IDP with `ssf.manage` / `ssf.read` ([`auth`]). Also where the background delivery is
//! started for a running server ([`spawn_event_delivery`]).

mod auth;
pub mod poll;
pub mod streams;

use super::JWKS_PATH;
use crate::delivery::Worker;
use crate::http::state::AppState;
use crate::ssf::{POLL_METHOD, PUSH_METHOD};
use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use serde_json::json;
use std::sync::Arc;

pub const SSF_CONFIGURATION_PATH: &str = "/.well-known/ssf-configuration";
pub const SSF_STREAMS_PATH: &str = "/ssf/stream";
pub const SSF_STATUS_PATH: &str = "/ssf/status";
pub const SSF_VERIFY_PATH: &str = "/ssf/verify";
pub use crate::ssf::stream::POLL_PATH as SSF_POLL_PATH;

/// The transmitter configuration metadata (SSF 1.0 §7.1).
pub async fn configuration(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let iss = &state.settings.issuer;
    Json(json!({
        "spec_version": "1_0",
        "issuer": iss,
        "jwks_uri": format!("{iss}{JWKS_PATH}"),
        "delivery_methods_supported": [PUSH_METHOD, POLL_METHOD],
        "configuration_endpoint": format!("{iss}{SSF_STREAMS_PATH}"),
        "status_endpoint": format!("{iss}{SSF_STATUS_PATH}"),
        "verification_endpoint": format!("{iss}{SSF_VERIFY_PATH}"),
        "authorization_schemes": [{"spec_urn": "urn:ietf:rfc:6749"}],
        "default_subjects": "ALL",
    }))
}

/// Starts the background delivery of security events (fan-out and push) for `state`.
pub fn spawn_event_delivery(state: &Arc<AppState>) {
    worker(state).spawn();
}

/// The delivery worker of `state` (tests run its steps directly).
pub fn worker(state: &Arc<AppState>) -> Worker {
    let keys_of = Arc::clone(state);
    Worker {
        store: Arc::clone(&state.store),
        settings: Arc::new(state.settings.clone()),
        keys: Arc::new(move || keys_of.keys()),
        counters: state.metrics.deliveries.clone(),
        outbox: state.outbox.clone(),
    }
}
