//! `GET|POST /oauth2/userinfo` (OIDC Core §5.3): the signed-in user's claims, for an access token
//! with the `openid` scope. Errors are RFC 6750's (and RFC 9449 §7.1's for DPoP), in
//! `WWW-Authenticate`.
//!
//! A DPoP-bound token (`cnf.jkt`) is accepted only as `Authorization: DPoP <token>` with a
//! `DPoP` proof by its key for this request (`htm`, `htu`, `ath`; RFC 9449 §7); as `Bearer` it is
//! refused (a downgrade). An unbound token may come either way; with the `DPoP` scheme its proof
//! is checked all the same.

use super::USERINFO_PATH;
use crate::http::oauth_error::DPOP_NONCE;
use crate::http::state::{AppState, unix_now};
use crate::oauth::dpop::{self, DpopError, ProofAlg, Target};
use crate::oauth::tokens::{self, AccessClaims};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Bearer,
    Dpop,
}

/// A refusal: status, scheme of the challenge, and the error code with its description.
struct Refusal {
    status: StatusCode,
    scheme: Scheme,
    error: Option<(&'static str, &'static str)>,
    dpop_nonce: Option<String>,
}

impl Refusal {
    fn new(status: StatusCode, scheme: Scheme, error: (&'static str, &'static str)) -> Self {
        Refusal {
            status,
            scheme,
            error: Some(error),
            dpop_nonce: None,
        }
    }

    fn invalid_token(scheme: Scheme) -> Self {
        Refusal::new(
            StatusCode::UNAUTHORIZED,
            scheme,
            ("invalid_token", "the access token is not valid"),
        )
    }

    fn invalid_proof(description: &'static str) -> Self {
        Refusal::new(
            StatusCode::UNAUTHORIZED,
            Scheme::Dpop,
            ("invalid_dpop_proof", description),
        )
    }
}

fn challenge_value(scheme: Scheme, error: Option<(&str, &str)>) -> String {
    let mut value = match scheme {
        Scheme::Bearer => "Bearer realm=\"userinfo\"".to_owned(),
        Scheme::Dpop => format!("DPoP algs=\"{}\"", ProofAlg::ALL_NAMES.join(" ")),
    };
    if let Some((code, description)) = error {
        value.push_str(&format!(
            ", error=\"{code}\", error_description=\"{description}\""
        ));
    }
    value
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut res = self.status.into_response();
        let h = res.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&challenge_value(self.scheme, self.error)) {
            h.insert(header::WWW_AUTHENTICATE, v);
        }
        if self.error.is_none() {
            // No credentials at all: both schemes are welcome (RFC 9449 §7.1).
            if let Ok(v) = HeaderValue::from_str(&challenge_value(Scheme::Dpop, None)) {
                h.append(header::WWW_AUTHENTICATE, v);
            }
        }
        if let Some(nonce) = self.dpop_nonce.and_then(|n| HeaderValue::from_str(&n).ok()) {
            h.insert(DPOP_NONCE, nonce);
        }
        res
    }
}

/// The token of the `Authorization` header and its scheme (RFC 6750 §2.1, RFC 9449 §7.1).
fn credentials(headers: &HeaderMap) -> Result<Option<(Scheme, &str)>, ()> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(());
    }
    let text = value.to_str().map_err(|_| ())?;
    let (scheme, token) = text.split_once(' ').ok_or(())?;
    let token = token.trim();
    if token.is_empty() {
        return Err(());
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        Ok(Some((Scheme::Bearer, token)))
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Ok(Some((Scheme::Dpop, token)))
    } else {
        Err(())
    }
}

pub async fn userinfo(
    State(state): State<Arc<AppState>>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    match handle(&state, &method, &headers).await {
        Ok(res) => res,
        Err(refusal) => refusal.into_response(),
    }
}

async fn handle(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Response, Refusal> {
    let (scheme, token) = match credentials(headers) {
        Ok(Some(c)) => c,
        Ok(None) => {
            return Err(Refusal {
                status: StatusCode::UNAUTHORIZED,
                scheme: Scheme::Bearer,
                error: None,
                dpop_nonce: None,
            });
        }
        Err(()) => {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                Scheme::Bearer,
                ("invalid_request", "malformed Authorization header"),
            ));
        }
    };
    let Some(claims) = tokens::verify_own(&state.keys(), &state.settings.issuer, token) else {
        return Err(Refusal::invalid_token(scheme));
    };
    match state
        .store
        .is_revoked(&claims.jti, claims.sid.as_deref())
        .await
    {
        Ok(false) => {}
        Ok(true) => return Err(Refusal::invalid_token(scheme)),
        Err(e) => {
            tracing::error!(error = %e, "userinfo: reading revocations failed");
            return Ok(StatusCode::INTERNAL_SERVER_ERROR.into_response());
        }
    }
    let dpop_nonce = check_proof(state, method, headers, scheme, token, &claims).await?;
    let scopes: Vec<&str> = claims.scope.split(' ').collect();
    if !scopes.contains(&"openid") {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            scheme,
            ("insufficient_scope", "the openid scope is required"),
        ));
    }
    let Some(user) = state.settings.user_by_sub(&claims.sub) else {
        // A client's own token (client_credentials) has no user.
        return Err(Refusal::invalid_token(scheme));
    };
    let mut body = json!({ "sub": user.sub });
    if scopes.contains(&"profile") {
        body["preferred_username"] = user.username.clone().into();
        if let Some(name) = &user.name {
            body["name"] = name.clone().into();
        }
    }
    if let Some(email) = user.email.as_ref().filter(|_| scopes.contains(&"email")) {
        body["email"] = email.clone().into();
    }
    let mut res = ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response();
    if let Some(nonce) = dpop_nonce.and_then(|n| HeaderValue::from_str(&n).ok()) {
        res.headers_mut().insert(DPOP_NONCE, nonce);
    }
    Ok(res)
}

/// The DPoP side of a userinfo request (RFC 9449 §7): the proof for a bound token or a `DPoP`
/// scheme; gives the nonce to send back when the client's proofs need one.
async fn check_proof(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
    scheme: Scheme,
    token: &str,
    claims: &AccessClaims,
) -> Result<Option<String>, Refusal> {
    if scheme == Scheme::Bearer {
        if claims.cnf.is_some() {
            return Err(Refusal::new(
                StatusCode::UNAUTHORIZED,
                Scheme::Dpop,
                (
                    "invalid_token",
                    "the access token is DPoP-bound: send it with the DPoP scheme and a proof",
                ),
            ));
        }
        return Ok(None);
    }
    let checker = state.dpop();
    let client = state.settings.client(&claims.client_id);
    let require_nonce = checker.nonce_required(client);
    let now = unix_now();
    let values: Vec<&[u8]> = headers
        .get_all("dpop")
        .iter()
        .map(HeaderValue::as_bytes)
        .collect();
    let htu = format!("{}{USERINFO_PATH}", state.settings.issuer);
    let target = Target {
        htm: method.as_str(),
        htu: &htu,
        access_token: Some(token),
    };
    let proof = match dpop::check(&checker, &values, &target, require_nonce, now).await {
        Ok(Some(proof)) => proof,
        Ok(None) => return Err(Refusal::invalid_proof("a DPoP proof is required")),
        Err(DpopError::Invalid(d)) => {
            tracing::info!(reason = %d, "userinfo: DPoP proof refused");
            return Err(Refusal::invalid_proof("the DPoP proof is not valid"));
        }
        Err(DpopError::UseNonce) => {
            return Err(Refusal {
                dpop_nonce: Some(checker.nonces.current(now)),
                ..Refusal::new(
                    StatusCode::UNAUTHORIZED,
                    Scheme::Dpop,
                    (
                        "use_dpop_nonce",
                        "the resource server requires a nonce in the DPoP proof",
                    ),
                )
            });
        }
        Err(DpopError::Store(e)) => {
            tracing::error!(error = %e, "userinfo: the DPoP replay store failed");
            return Err(Refusal::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                Scheme::Dpop,
                ("server_error", "the server could not check the proof"),
            ));
        }
    };
    if claims.cnf.as_ref().is_some_and(|cnf| cnf.jkt != proof.jkt) {
        return Err(Refusal::invalid_proof(
            "the DPoP proof is not by the key the token is bound to",
        ));
    }
    Ok(require_nonce.then(|| checker.nonces.current(now)))
}
