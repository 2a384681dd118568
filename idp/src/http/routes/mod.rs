//! The router and its thin handlers. Paths are constants shared with the discovery document.

mod authorise;
mod backchannel;
mod browser;
mod cutoffs;
mod discovery;
mod introspect;
mod logout;
mod revocations;
mod revoke;
pub mod ssf;
mod ssf_push;
mod token;
mod userinfo;

use crate::http::limits;
use crate::http::metrics::RouteLabels;
use crate::http::refusal::refuse;
use crate::http::state::AppState;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use std::sync::Arc;
use std::time::Instant;

pub const AUTHORISE_PATH: &str = "/oauth2/authorise";
/// An alias of [`AUTHORISE_PATH`] in American spelling.
pub const AUTHORIZE_PATH: &str = "/oauth2/authorize";
pub const TOKEN_PATH: &str = "/oauth2/token";
pub const USERINFO_PATH: &str = "/oauth2/userinfo";
pub const LOGOUT_PATH: &str = "/oauth2/logout";
pub const REVOKE_PATH: &str = "/oauth2/revoke";
pub const INTROSPECT_PATH: &str = "/oauth2/introspect";
pub const REVOCATIONS_PATH: &str = "/oauth2/revocations";
/// Federation: where federated providers post back-channel logout tokens (register it as their
/// clients' `backchannel_logout_uri`), or gateways forward them.
pub const BACKCHANNEL_LOGOUT_PATH: &str = "/oauth2/backchannel-logout";
/// Federation: where gateways report cut-offs after their own logouts.
pub const CUTOFFS_PATH: &str = "/oauth2/cutoffs";
/// Federation: where Shared Signals transmitters push SETs (RFC 8935), one path per stream.
pub const SSF_PUSH_PATH: &str = "/ssf/push/{stream}";
/// Entries per page of the revocation feed (a full page says `"more": true`).
pub use revocations::PAGE as REVOCATIONS_PAGE;
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
pub const OPENID_CONFIGURATION_PATH: &str = "/.well-known/openid-configuration";
pub const AS_METADATA_PATH: &str = "/.well-known/oauth-authorization-server";

pub const METRICS_PATH: &str = "/metrics";

/// Prometheus text exposition (unauthenticated, like every exporter: counts and latencies only).
async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    match state.metrics.render() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Records every request's latency by matched route (unmatched paths share one label).
async fn timed(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = crate::http::metrics::method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let res = next.run(req).await;
    state.metrics.observe(
        RouteLabels {
            method,
            route,
            status: res.status().as_u16(),
        },
        start.elapsed().as_secs_f64(),
    );
    res
}

/// A method the path does not serve: 405 (axum adds `Allow`) in the endpoint's shape.
async fn method_not_allowed(uri: Uri) -> Response {
    refuse(
        uri.path(),
        StatusCode::METHOD_NOT_ALLOWED,
        "the endpoint does not serve this method",
    )
}

pub const HEALTH_PATH: &str = "/healthz";

/// Every path the IDP serves and its handlers: the router is built from this table, and
/// `idp/tests/hostile_http.rs` checks `idp/openapi.yaml` against it.
pub fn routes() -> Vec<(&'static str, MethodRouter<Arc<AppState>>)> {
    vec![
        (AUTHORISE_PATH, get(authorise::get).post(authorise::post)),
        (AUTHORIZE_PATH, get(authorise::get).post(authorise::post)),
        (TOKEN_PATH, post(token::token)),
        (
            USERINFO_PATH,
            get(userinfo::userinfo).post(userinfo::userinfo),
        ),
        (LOGOUT_PATH, get(logout::get).post(logout::post)),
        (REVOKE_PATH, post(revoke::revoke)),
        (INTROSPECT_PATH, post(introspect::introspect)),
        (REVOCATIONS_PATH, get(revocations::feed)),
        (BACKCHANNEL_LOGOUT_PATH, post(backchannel::receive_logout)),
        (CUTOFFS_PATH, post(cutoffs::report)),
        (SSF_PUSH_PATH, post(ssf_push::push)),
        (JWKS_PATH, get(discovery::jwks)),
        (OPENID_CONFIGURATION_PATH, get(discovery::metadata)),
        (AS_METADATA_PATH, get(discovery::metadata)),
        (HEALTH_PATH, get(|| async { "ok\n" })),
        (METRICS_PATH, get(metrics)),
        (ssf::SSF_CONFIGURATION_PATH, get(ssf::configuration)),
        (
            ssf::SSF_STREAMS_PATH,
            get(ssf::streams::read)
                .post(ssf::streams::create)
                .patch(ssf::streams::update)
                .put(ssf::streams::replace)
                .delete(ssf::streams::delete),
        ),
        (
            ssf::SSF_STATUS_PATH,
            get(ssf::streams::status).post(ssf::streams::set_status),
        ),
        (ssf::SSF_VERIFY_PATH, post(ssf::streams::verify)),
        (ssf::SSF_POLL_PATH, post(ssf::poll::poll)),
    ]
}

pub fn app(state: Arc<AppState>) -> Router {
    routes()
        .into_iter()
        .fold(Router::new(), |router, (path, methods)| {
            router.route(path, methods)
        })
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            limits::enforce,
        ))
        .layer(middleware::from_fn_with_state(Arc::clone(&state), timed))
        .with_state(state)
}
