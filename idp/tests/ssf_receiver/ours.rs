//! Our IDP's transmitter (another IDP instance, served on loopback) against our hub's
//! receiver, by poll and by push: a user's session ended at the IDP (RFC 7009 revocation of its
//! token) becomes, at the hub, a `sid` cut-off of that issuer and the token's `jti` refused — on
//! the feed every gateway reads; the hub's verification event comes back. And our IDP's
//! back-channel logout sender posting to the hub's `/oauth2/backchannel-logout` (the hub
//! federating our IDP): the same session ended becomes the same `sid` cut-off.

use super::*;

#[path = "../ssf_support/mod.rs"]
mod ssf_support;

/// IDP A, the transmitter, served on loopback with its issuer = its URL; its event delivery
/// (fan-out, push, back-channel logout to `bcl` for the user app) running.
async fn transmitter_idp(
    bcl: Option<&str>,
) -> (tempfile::TempDir, Arc<idp::AppState>, Router, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let config = format!("issuer = \"{issuer}\"\n{}", ssf_support::config(bcl, ""));
    let dir = tempfile::tempdir().unwrap();
    let state = common::state_with(&dir.path().join("idp-a.sqlite"), &config).await;
    let app = idp::app(Arc::clone(&state));
    let served = app.clone();
    tokio::spawn(async move { axum::serve(listener, served).await });
    idp::http::routes::ssf::spawn_event_delivery(&state);
    (dir, state, app, issuer)
}

/// The hub B's configuration for IDP A at `a`.
fn hub_config(a: &str, delivery: &str) -> String {
    let h = hex::encode(Sha256::digest(GATEWAY.1.as_bytes()));
    let (id, secret) = ssf_support::RECEIVER;
    format!(
        r#"
[[federation.issuers]]
issuer = "{a}"
jwks_uri = "{a}/.well-known/jwks.json"
max_token_lifetime_seconds = {LIFETIME}

[[federation.ssf_streams]]
name = "ours"
transmitter = "{a}"
audience = "{id}"
issuers = ["{a}"]
{delivery}
auth = {{ client_credentials = {{ token_endpoint = "{a}/oauth2/token", client_id = "{id}", client_secret = "{secret}", scopes = ["ssf.manage", "ssf.read"] }} }}

[[clients]]
id = "gateway-a"
secret_sha256 = "{h}"
gateway = true
"#
    )
}

async fn hub_b(config: &str, listener: Option<tokio::net::TcpListener>) -> Hub {
    let dir = tempfile::tempdir().unwrap();
    let state = common::state_with(&dir.path().join("hub-b.sqlite"), config).await;
    let app = idp::app(Arc::clone(&state));
    if let Some(l) = listener {
        let served = app.clone();
        tokio::spawn(async move { axum::serve(l, served).await });
    }
    let count: idp::federation::ssf::Count = {
        let state = Arc::clone(&state);
        Arc::new(move |e, o| state.metrics.federation(e, o))
    };
    state
        .hub
        .ssf
        .spawn(Arc::clone(&state.store), &state.settings.federation, count);
    Hub {
        app,
        state,
        _dir: Some(dir),
    }
}

/// A user's session at IDP A, ended by RFC 7009 revocation of its access token: that token's
/// claims and the session's `sid`.
async fn end_a_session(a_app: &Router) -> (Value, String) {
    let (at, sid) = ssf_support::user_session(a_app).await;
    let claims = ssf_support::payload(&at);
    assert_eq!(ssf_support::revoke(a_app, &at).await.status, StatusCode::OK);
    (claims, sid)
}

async fn a_logout_at_our_idp_reaches_the_hub(delivery: &str, push: bool) {
    let (_a_dir, _a_state, a_app, a) = transmitter_idp(None).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let delivery = delivery.replace("{base}", &base);
    let hub = hub_b(&hub_config(&a, &delivery), push.then_some(listener)).await;
    let app = hub.app.clone();
    wait_for(
        "the hub's stream verified",
        Duration::from_secs(20),
        async || {
            metrics(&app).await.contains(
                "idp_federation_requests_total{endpoint=\"ssf_stream\",outcome=\"verified\"} 1",
            )
        },
    )
    .await;
    let (claims, sid) = end_a_session(&a_app).await;
    let app = hub.app.clone();
    let mut revoked = Value::Null;
    wait_for(
        "the cut-off on the hub's feed",
        Duration::from_secs(20),
        async || {
            revoked = feed(&app).await;
            revoked.as_array().unwrap().len() >= 2
        },
    )
    .await;
    let entries = revoked.as_array().unwrap();
    let cutoff = entries
        .iter()
        .find(|e| e["sid"] == json!(sid))
        .unwrap_or_else(|| panic!("no sid cut-off: {revoked}"));
    assert_eq!(cutoff["iss"], a);
    assert!(cutoff["cutoff"].as_i64().unwrap() >= claims["iat"].as_i64().unwrap());
    assert!(
        entries.iter().any(|e| e["jti"] == claims["jti"]),
        "the revoked token's jti: {revoked}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_transmitter_by_poll_to_our_hub() {
    a_logout_at_our_idp_reaches_the_hub("delivery = \"poll\"", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_transmitter_by_push_to_our_hub() {
    a_logout_at_our_idp_reaches_the_hub(
        &format!(
            "delivery = \"push\"\npush_url = \"{{base}}/ssf/push/ours\"\npush_authorization = \"{PUSH_AUTH}\""
        ),
        true,
    )
    .await;
}

/// Our IDP A as an OpenID Provider whose user app registered the hub's back-channel logout
/// endpoint: a session ended at A is posted by A's sender as a logout token to hub B, which
/// checks it against A's keys (B federates A for that audience) and stores its `sid` cut-off on
/// the feed the gateways read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_backchannel_logout_to_our_hub() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hub_url = format!("http://{}", listener.local_addr().unwrap());
    let (_a_dir, _a_state, a_app, a) =
        transmitter_idp(Some(&format!("{hub_url}/oauth2/backchannel-logout"))).await;
    let h = hex::encode(Sha256::digest(GATEWAY.1.as_bytes()));
    let config = format!(
        r#"
[[federation.issuers]]
issuer = "{a}"
jwks_uri = "{a}/.well-known/jwks.json"
backchannel_audiences = ["{app}"]
max_token_lifetime_seconds = {LIFETIME}

[[clients]]
id = "gateway-a"
secret_sha256 = "{h}"
gateway = true
"#,
        app = ssf_support::USER_APP.0
    );
    let hub = hub_b(&config, Some(listener)).await;
    let (claims, sid) = end_a_session(&a_app).await;
    let app = hub.app.clone();
    let mut revoked = Value::Null;
    wait_for(
        "the logout token's cut-off on the hub's feed",
        Duration::from_secs(20),
        async || {
            revoked = feed(&app).await;
            revoked
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["sid"] == json!(sid))
        },
    )
    .await;
    let cutoff = revoked
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["sid"] == json!(sid))
        .unwrap();
    assert_eq!(cutoff["iss"], a);
    assert!(cutoff["cutoff"].as_i64().unwrap() >= claims["iat"].as_i64().unwrap());
    let counted = metrics(&hub.app).await;
    assert!(
        counted.contains(
            "idp_federation_requests_total{endpoint=\"backchannel_logout\",outcome=\"stored\"} 1"
        ),
        "the hub stored one logout token: {counted}"
    );
}
