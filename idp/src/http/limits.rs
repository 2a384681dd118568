//! Request size limits (`[http]` in the configuration, [`HttpLimits`]), enforced before any
//! handler runs: more header fields than `max_headers`, or a request target and headers larger
//! than `max_header_bytes`, are refused with 431; a body larger than `max_body_bytes` with 413
//! (at once when `Content-Length` says so, else when the body grows past it); a body still
//! arriving after `body_read_timeout` with 408. Each refusal is in the shape of the endpoint
//! ([`refusal`]). The body is read here, bounded in size and time, so handlers get it whole.
//!
//! The HTTP server ([`crate::http::server`]) bounds the same things below this layer with a
//! margin: heads beyond twice these limits never reach the router.

use crate::http::refusal::refuse;
use crate::http::state::AppState;
use crate::settings::HttpLimits;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;

/// The size of the request target and the header names and values (what `max_header_bytes`
/// bounds).
pub fn head_bytes(uri: &Uri, headers: &HeaderMap) -> usize {
    let target = uri.path_and_query().map_or(0, |p| p.as_str().len());
    headers.iter().fold(target, |sum, (name, value)| {
        sum.saturating_add(name.as_str().len() + value.len())
    })
}

/// Whether the declared `Content-Length` is over `max` (an unreadable one is left to the
/// HTTP server, which refuses it before this layer).
fn declared_too_large(headers: &HeaderMap, max: usize) -> bool {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| n > u64::try_from(max).unwrap_or(u64::MAX))
}

/// Refuses what is over `limits`, else runs the request with its body read.
pub async fn check(limits: HttpLimits, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if req.headers().len() > limits.max_headers
        || head_bytes(req.uri(), req.headers()) > limits.max_header_bytes
    {
        return refuse(
            &path,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "the request headers are too large",
        );
    }
    if declared_too_large(req.headers(), limits.max_body_bytes) {
        return refuse(
            &path,
            StatusCode::PAYLOAD_TOO_LARGE,
            "the request body is too large",
        );
    }
    let (parts, body) = req.into_parts();
    let limited = http_body_util::Limited::new(body, limits.max_body_bytes);
    let read = tokio::time::timeout(
        limits.body_read_timeout,
        http_body_util::BodyExt::collect(limited),
    );
    let Ok(collected) = read.await else {
        return refuse(
            &path,
            StatusCode::REQUEST_TIMEOUT,
            "the request body took too long to arrive",
        );
    };
    match collected {
        Ok(collected) => {
            let body = Body::from(collected.to_bytes());
            next.run(Request::from_parts(parts, body)).await
        }
        Err(e) if e.is::<http_body_util::LengthLimitError>() => refuse(
            &path,
            StatusCode::PAYLOAD_TOO_LARGE,
            "the request body is too large",
        ),
        Err(e) => {
            tracing::info!(error = %e, "request body unreadable");
            refuse(
                &path,
                StatusCode::BAD_REQUEST,
                "the request body could not be read",
            )
        }
    }
}

/// [`check`] with the server's limits, for `axum::middleware::from_fn_with_state`.
pub async fn enforce(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    check(state.settings.http, req, next).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::Router;
    use axum::routing::post;
    use futures_util::StreamExt;
    use std::time::Duration;
    use tower::ServiceExt;

    fn router(limits: HttpLimits) -> Router {
        Router::new()
            .route("/oauth2/token", post(|body: String| async move { body }))
            .layer(axum::middleware::from_fn(move |req, next| {
                check(limits, req, next)
            }))
    }

    #[tokio::test]
    async fn a_body_that_keeps_the_server_waiting_is_refused_with_408() {
        // A client could hold a request (and its task) open for ever by sending its body
        // slowly: only the head had a deadline.
        let limits = HttpLimits {
            body_read_timeout: Duration::from_millis(100),
            ..HttpLimits::default()
        };
        // one chunk, then nothing, never ending
        let never = futures_util::stream::once(async {
            Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b"grant_type="))
        })
        .chain(futures_util::stream::pending());
        let req = Request::post("/oauth2/token")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from_stream(never))
            .unwrap();
        let res = router(limits).oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::REQUEST_TIMEOUT);
        assert!(
            res.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        // a body that arrives in time is passed on whole
        let req = Request::post("/oauth2/token")
            .body(Body::from("grant_type=x"))
            .unwrap();
        let res = router(limits).oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
}
