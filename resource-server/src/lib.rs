//! The demo resource server the gateway protects. It trusts the identity headers the gateway sets
//! (`x-auth-*`), so it must only be reachable through the gateway: it listens on loopback. It keeps
//! per-session state, which the gateway's logout ends through `POST /internal/sessions/revoke`
//! (authenticated with a shared secret header; Envoy's route table does not expose `/internal/`).

pub mod sessions;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use sessions::Sessions;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The identity headers the gateway's filter sets from a verified token.
pub const SUB_HEADER: &str = "x-auth-sub";
pub const CLIENT_ID_HEADER: &str = "x-auth-client-id";
pub const SCOPE_HEADER: &str = "x-auth-scope";
pub const SID_HEADER: &str = "x-auth-sid";
pub const ISSUER_HEADER: &str = "x-auth-issuer";
/// The header carrying the gateway's shared secret on the session-revoke call.
pub const SECRET_HEADER: &str = "x-gateway-secret";
pub const REVOKE_PATH: &str = "/internal/sessions/revoke";

pub struct AppState {
    pub sessions: Sessions,
    revoke_secret: String,
}

impl AppState {
    pub fn new(revoke_secret: String) -> Arc<Self> {
        Arc::new(AppState {
            sessions: Sessions::default(),
            revoke_secret,
        })
    }
}

pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/api/hello", get(hello))
        .route("/api/session", get(session))
        .route("/api/{*rest}", axum::routing::any(echo))
        .route(REVOKE_PATH, post(revoke_session))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(state)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn session_ended() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"error": "session_ended"})),
    )
        .into_response()
}

async fn hello(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let sub = header(&headers, SUB_HEADER);
    let sid = header(&headers, SID_HEADER);
    if let Some(sid) = sid
        && !state.sessions.touch(sid, sub)
    {
        return session_ended();
    }
    Json(json!({
        "message": format!("hello, {}", sub.unwrap_or("anonymous")),
        "sub": sub,
        "client_id": header(&headers, CLIENT_ID_HEADER),
        "scope": header(&headers, SCOPE_HEADER),
        "sid": sid,
        "issuer": header(&headers, ISSUER_HEADER),
    }))
    .into_response()
}

/// Any other API path: says who called what (so gateway rules can be exercised end to end).
async fn echo(
    State(state): State<Arc<AppState>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let sub = header(&headers, SUB_HEADER);
    if let Some(sid) = header(&headers, SID_HEADER)
        && !state.sessions.touch(sid, sub)
    {
        return session_ended();
    }
    Json(json!({
        "method": method.as_str(),
        "path": uri.path(),
        "sub": sub,
        "scope": header(&headers, SCOPE_HEADER),
    }))
    .into_response()
}

/// The caller's session state (404 when the caller has no session).
async fn session(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let Some(sid) = header(&headers, SID_HEADER) else {
        return (StatusCode::NOT_FOUND, Json(json!({"error": "no_session"}))).into_response();
    };
    let sub = header(&headers, SUB_HEADER);
    if !state.sessions.touch(sid, sub) {
        return session_ended();
    }
    match state.sessions.get(sid) {
        Some(s) => Json(json!({"sid": sid, "sub": s.sub, "requests": s.requests})).into_response(),
        None => (StatusCode::NOT_FOUND, Json(json!({"error": "no_session"}))).into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeRequest {
    sid: Option<String>,
    #[allow(dead_code)] // accepted for logging/auditing; sessions are keyed by sid
    sub: Option<String>,
}

async fn revoke_session(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let presented = header(&headers, SECRET_HEADER).unwrap_or("");
    let expected = state.revoke_secret.as_bytes();
    if presented.len() != expected.len() || !bool::from(presented.as_bytes().ct_eq(expected)) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "unauthorized"})),
        )
            .into_response();
    }
    let request: RevokeRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "invalid_request", "detail": e.to_string()})),
            )
                .into_response();
        }
    };
    let Some(sid) = request.sid.filter(|s| !s.is_empty()) else {
        // A token without a session (client_credentials): nothing to end here.
        return Json(json!({"revoked": false, "reason": "no sid"})).into_response();
    };
    let existed = state.sessions.end(&sid);
    tracing::info!(sid = %sid, existed, "session ended by the gateway");
    Json(json!({"revoked": true, "had_state": existed})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use serde_json::Value;
    use tower::ServiceExt;

    const SECRET: &str = "rs-secret-0123456789abcdef";

    async fn send(app: &Router, req: Request<Body>) -> (StatusCode, Value) {
        let res = app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    fn hello_req(sid: &str) -> Request<Body> {
        Request::get("/api/hello")
            .header(SUB_HEADER, "alice")
            .header(SID_HEADER, sid)
            .header(SCOPE_HEADER, "read write")
            .body(Body::empty())
            .unwrap()
    }

    fn revoke_req(secret: &str, body: &str) -> Request<Body> {
        Request::post(REVOKE_PATH)
            .header(SECRET_HEADER, secret)
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap()
    }

    #[tokio::test]
    async fn hello_reports_the_caller_from_gateway_headers() {
        let app = app(AppState::new(SECRET.into()));
        let (status, v) = send(&app, hello_req("s1")).await;
        assert_eq!(status, 200);
        assert_eq!(v["message"], "hello, alice");
        assert_eq!(v["scope"], "read write");
        assert_eq!(v["client_id"], Value::Null);
    }

    #[tokio::test]
    async fn revoking_a_session_drops_its_state_and_refuses_it_later() {
        let state = AppState::new(SECRET.into());
        let app = app(state.clone());
        send(&app, hello_req("s1")).await;
        send(&app, hello_req("s1")).await;
        assert_eq!(state.sessions.get("s1").unwrap().requests, 2);
        let (status, v) = send(&app, revoke_req(SECRET, r#"{"sid":"s1","sub":"alice"}"#)).await;
        assert_eq!(
            (status, v["had_state"].clone()),
            (StatusCode::OK, Value::Bool(true))
        );
        assert_eq!(state.sessions.get("s1"), None);
        assert_eq!(
            send(&app, hello_req("s1")).await.0,
            StatusCode::UNAUTHORIZED
        );
        // other sessions are untouched
        assert_eq!(send(&app, hello_req("s2")).await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn revoke_needs_the_secret_and_valid_json() {
        let state = AppState::new(SECRET.into());
        let app = app(state.clone());
        send(&app, hello_req("s1")).await;
        assert_eq!(
            send(&app, revoke_req("wrong", r#"{"sid":"s1"}"#)).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            send(&app, revoke_req("", r#"{"sid":"s1"}"#)).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            send(&app, revoke_req(SECRET, "{not json")).await.0,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            send(&app, revoke_req(SECRET, r#"{"sid":"s1","x":1}"#))
                .await
                .0,
            StatusCode::BAD_REQUEST
        );
        assert!(
            state.sessions.get("s1").is_some(),
            "nothing was revoked by bad requests"
        );
    }
}
