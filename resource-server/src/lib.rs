//! The demo resource server the gateway protects. It trusts the identity headers the gateway sets
//! (`x-auth-*`), so it must only be reachable through the gateway: it listens on loopback.

use axum::Json;
use axum::Router;
use axum::http::HeaderMap;
use axum::routing::get;
use serde_json::{Value, json};

/// The identity headers the gateway's filter sets from a verified token.
pub const SUB_HEADER: &str = "x-auth-sub";
pub const CLIENT_ID_HEADER: &str = "x-auth-client-id";
pub const SCOPE_HEADER: &str = "x-auth-scope";
pub const SID_HEADER: &str = "x-auth-sid";
pub const ISSUER_HEADER: &str = "x-auth-issuer";

pub fn app() -> Router {
    Router::new()
        .route("/api/hello", get(hello))
        .route("/healthz", get(|| async { "ok\n" }))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn hello(headers: HeaderMap) -> Json<Value> {
    let sub = header(&headers, SUB_HEADER);
    Json(json!({
        "message": format!("hello, {}", sub.unwrap_or("anonymous")),
        "sub": sub,
        "client_id": header(&headers, CLIENT_ID_HEADER),
        "scope": header(&headers, SCOPE_HEADER),
        "sid": header(&headers, SID_HEADER),
        "issuer": header(&headers, ISSUER_HEADER),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    #[tokio::test]
    async fn hello_reports_the_caller_from_gateway_headers() {
        let req = Request::get("/api/hello")
            .header(SUB_HEADER, "demo-client")
            .header(SCOPE_HEADER, "read write")
            .body(Body::empty())
            .unwrap();
        let res = app().oneshot(req).await.unwrap();
        assert_eq!(res.status(), 200);
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["message"], "hello, demo-client");
        assert_eq!(v["scope"], "read write");
        assert_eq!(v["client_id"], Value::Null);
    }
}
