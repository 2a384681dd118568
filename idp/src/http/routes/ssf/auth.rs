//! The SSF endpoints' authorization (SSF 1.0 §8.1, RFC 6750): a bearer access token of this
//! IDP, not revoked, with `ssf.manage` (or `ssf.read` where reading is enough). The receiver is
//! the token's client. Refusals: 401 `invalid_token` (or no error code for a request without
//! credentials), 403 `insufficient_scope` naming the scope, in `WWW-Authenticate`.

use crate::http::state::AppState;
use crate::oauth::tokens;
use crate::ssf::{MANAGE_SCOPE, READ_SCOPE};
use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// What an endpoint needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Manage,
    Read,
}

/// A refusal, already an HTTP answer.
pub struct Refused(pub Response);

fn challenge(status: StatusCode, error: Option<(&str, &str)>, scope: Option<&str>) -> Response {
    let mut value = "Bearer realm=\"ssf\"".to_owned();
    if let Some((code, description)) = error {
        value.push_str(&format!(
            ", error=\"{code}\", error_description=\"{description}\""
        ));
    }
    if let Some(s) = scope {
        value.push_str(&format!(", scope=\"{s}\""));
    }
    let body = match error {
        Some((code, description)) => json!({"error": code, "error_description": description}),
        None => {
            json!({"error": "invalid_request", "error_description": "a bearer access token is required"})
        }
    };
    let mut res = (status, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&value) {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    res
}

fn invalid(description: &str) -> Refused {
    Refused(challenge(
        StatusCode::UNAUTHORIZED,
        Some(("invalid_token", description)),
        None,
    ))
}

/// The receiver (client id) of a request allowed `need`.
pub async fn receiver(
    state: &AppState,
    headers: &HeaderMap,
    need: Need,
) -> Result<String, Refused> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(Refused(challenge(StatusCode::UNAUTHORIZED, None, None)));
    };
    if values.next().is_some() {
        return Err(Refused(challenge(
            StatusCode::BAD_REQUEST,
            Some(("invalid_request", "more than one Authorization header")),
            None,
        )));
    }
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| invalid("a Bearer access token is required"))?;
    let claims = tokens::verify_own(&state.keys(), &state.settings.issuer, token)
        .ok_or_else(|| invalid("the access token is not valid"))?;
    if claims.cnf.is_some() {
        // A DPoP-bound token needs its proof, which these endpoints do not take.
        return Err(invalid("a DPoP-bound token cannot be used here"));
    }
    match state
        .store
        .is_revoked(&claims.jti, claims.sid.as_deref())
        .await
    {
        Ok(false) => {}
        Ok(true) => return Err(invalid("the access token was revoked")),
        Err(e) => {
            tracing::warn!(error = %e, "checking a token's revocation failed");
            return Err(Refused(
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({"error": "temporarily_unavailable", "error_description": "storage is unavailable; retry"})),
                )
                    .into_response(),
            ));
        }
    }
    let scopes: Vec<&str> = claims.scope.split(' ').collect();
    let allowed =
        scopes.contains(&MANAGE_SCOPE) || (need == Need::Read && scopes.contains(&READ_SCOPE));
    if !allowed {
        let scope = match need {
            Need::Manage => MANAGE_SCOPE,
            Need::Read => "ssf.read ssf.manage",
        };
        return Err(Refused(challenge(
            StatusCode::FORBIDDEN,
            Some((
                "insufficient_scope",
                "the access token lacks the scope this needs",
            )),
            Some(scope),
        )));
    }
    Ok(claims.client_id)
}
