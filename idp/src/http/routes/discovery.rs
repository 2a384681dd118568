//! JWKS and the discovery documents (OpenID Connect Discovery, RFC 8414).

use super::{
    AUTHORISE_PATH, INTROSPECT_PATH, JWKS_PATH, LOGOUT_PATH, REVOCATIONS_PATH, REVOKE_PATH,
    TOKEN_PATH, USERINFO_PATH,
};
use crate::http::state::AppState;
use crate::oauth::dpop::ProofAlg;
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::json;
use std::sync::Arc;

pub async fn jwks(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(state.keys().jwks.clone()),
    )
}

/// The published keys' algorithms, and RS256, which any client may ask for (OIDC Discovery §3
/// and Core §15.1 require it).
fn id_token_algorithms(keys: &crate::oauth::keys::KeyRing) -> Vec<&'static str> {
    let mut algs = keys.algorithms();
    algs.push(crate::oauth::keys::SigningAlg::Rs256.as_str());
    algs.sort_unstable();
    algs.dedup();
    algs
}

pub async fn metadata(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let iss = &state.settings.issuer;
    let code_challenge_methods = if state.settings.clients.iter().any(|c| c.allow_pkce_plain) {
        vec!["S256", "plain"]
    } else {
        vec!["S256"]
    };
    let mut scopes: Vec<&str> = state
        .settings
        .clients
        .iter()
        .flat_map(|c| c.scopes.iter().map(String::as_str))
        .collect();
    scopes.sort_unstable();
    scopes.dedup();
    Json(json!({
        "issuer": iss,
        "jwks_uri": format!("{iss}{JWKS_PATH}"),
        "authorization_endpoint": format!("{iss}{AUTHORISE_PATH}"),
        "token_endpoint": format!("{iss}{TOKEN_PATH}"),
        "revocation_endpoint": format!("{iss}{REVOKE_PATH}"),
        "introspection_endpoint": format!("{iss}{INTROSPECT_PATH}"),
        "revocation_feed_endpoint": format!("{iss}{REVOCATIONS_PATH}"),
        "userinfo_endpoint": format!("{iss}{USERINFO_PATH}"),
        "end_session_endpoint": format!("{iss}{LOGOUT_PATH}"),
        "grant_types_supported": ["authorization_code", "implicit", "client_credentials", "password", "refresh_token"],
        "response_types_supported": ["code", "token"],
        "response_modes_supported": ["query", "fragment"],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "sid", "amr", "azp", "preferred_username", "name", "email"],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "code_challenge_methods_supported": code_challenge_methods,
        "authorization_response_iss_parameter_supported": true,
        "scopes_supported": scopes,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "id_token_signing_alg_values_supported": id_token_algorithms(&state.keys()),
        "subject_types_supported": ["public"],
        // RFC 9449 §5.1: the proof algorithms the token endpoint (and userinfo) accept.
        "dpop_signing_alg_values_supported": ProofAlg::ALL_NAMES,
        // OIDC Back-Channel Logout 1.0 §2.1: logout tokens carry `sid` (and `sub`).
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
    }))
}
