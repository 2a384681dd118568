//! JWKS and the discovery documents (OpenID Connect Discovery, RFC 8414).

use super::{INTROSPECT_PATH, JWKS_PATH, REVOCATIONS_PATH, REVOKE_PATH, TOKEN_PATH};
use crate::state::AppState;
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

pub async fn metadata(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let iss = &state.settings.issuer;
    Json(json!({
        "issuer": iss,
        "jwks_uri": format!("{iss}{JWKS_PATH}"),
        "token_endpoint": format!("{iss}{TOKEN_PATH}"),
        "revocation_endpoint": format!("{iss}{REVOKE_PATH}"),
        "introspection_endpoint": format!("{iss}{INTROSPECT_PATH}"),
        "revocation_feed_endpoint": format!("{iss}{REVOCATIONS_PATH}"),
        "grant_types_supported": ["client_credentials", "password", "refresh_token"],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "subject_types_supported": ["public"],
    }))
}
