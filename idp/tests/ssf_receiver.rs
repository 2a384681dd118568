//! The hub's Shared Signals receiver against an independent test transmitter
//! (`tests/ssf_transmitter`, written from SSF 1.0 and RFCs 8417/8935/8936/9493): stream set-up
//! (configuration, 409, status, verification), `session-revoked` by poll (long and
//! return-immediately) and by push becoming cut-offs on the revocation feed the gateways read,
//! every bad SET refused once with its RFC 8935 code (push `400 {"err"}`, poll `setErrs`) and
//! nothing applied, unknown events acknowledged and ignored, a transmitter answering garbage, a
//! paused stream, the hub killed with SIGKILL while events arrive, and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;
#[path = "ssf_transmitter/mod.rs"]
mod ssf_transmitter;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{basic, send};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use ssf_transmitter::{BEARER, CLIENT, PollFault, SESSION_REVOKED, Transmitter, verification_set};
use std::sync::Arc;
use std::time::Duration;

const OP: &str = "https://op.example";
const AUD: &str = "https://hub.example/ssf";
const GATEWAY: (&str, &str) = ("gateway-a", "gateway-a-secret-0123456789abcdef0123");
const PUSH_AUTH: &str = "Bearer push-secret-0123456789abcdef";
const LIFETIME: i64 = 3600;

fn config(tx: &Transmitter, delivery: &str) -> String {
    let h = hex::encode(Sha256::digest(GATEWAY.1.as_bytes()));
    format!(
        r#"
[[federation.issuers]]
issuer = "{OP}"
jwks_uri = "{OP}/jwks"
max_token_lifetime_seconds = {LIFETIME}

[[federation.ssf_streams]]
name = "tx"
transmitter = "{iss}"
audience = "{AUD}"
issuers = ["{OP}"]
{delivery}

[[clients]]
id = "gateway-a"
secret_sha256 = "{h}"
gateway = true
"#,
        iss = tx.issuer(),
    )
}

fn bearer() -> String {
    format!("auth = {{ bearer = \"{BEARER}\" }}")
}

fn client_credentials(tx: &Transmitter) -> String {
    format!(
        "auth = {{ client_credentials = {{ token_endpoint = \"{}/token\", client_id = \"{}\", client_secret = \"{}\", scopes = [\"ssf.manage\", \"ssf.read\"] }} }}",
        tx.issuer(),
        CLIENT.0,
        CLIENT.1
    )
}

struct Hub {
    app: Router,
    state: Arc<idp::AppState>,
    _dir: Option<tempfile::TempDir>,
}

/// A hub on SQLite (or `url`), served on `listener`, its streams started.
async fn start_hub(
    tx: &Transmitter,
    delivery: &str,
    url: Option<&str>,
    listener: Option<tokio::net::TcpListener>,
) -> Hub {
    let config = config(tx, delivery);
    let (state, dir) = match url {
        Some(u) => (common::state_on_url(u, &config).await, None),
        None => {
            let dir = tempfile::tempdir().unwrap();
            (
                common::state_with(&dir.path().join("hub.sqlite"), &config).await,
                Some(dir),
            )
        }
    };
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
        _dir: dir,
    }
}

async fn feed(app: &Router) -> Value {
    let r = send(
        app,
        Request::get("/oauth2/revocations")
            .header(header::AUTHORIZATION, basic(GATEWAY))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    // the gateway's own reader takes the page
    filter::shared_state::feed_page::FeedPage::parse(r.json.to_string().as_bytes()).unwrap();
    r.json["revoked"].clone()
}

async fn metrics(app: &Router) -> String {
    let res = tower::ServiceExt::oneshot(
        app.clone(),
        Request::get("/metrics").body(Body::empty()).unwrap(),
    )
    .await
    .unwrap();
    let bytes = http_body_util::BodyExt::collect(res.into_body())
        .await
        .unwrap()
        .to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn session_subject(sid: &str, sub: &str) -> Value {
    json!({"format": "complex",
        "session": {"format": "opaque", "id": sid},
        "user": {"format": "iss_sub", "iss": OP, "sub": sub}})
}

fn session_revoked(tx: &Transmitter, sid: &str, at: i64) -> String {
    tx.es256(&tx.claims(
        session_subject(sid, "alice"),
        json!({SESSION_REVOKED: {"event_timestamp": at}}),
        json!({}),
    ))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn wait_for(what: &str, within: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if done().await {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn sets_up(tx: &Transmitter) {
    assert!(
        tx.until(Duration::from_secs(10), |t| !t
            .verification_states()
            .is_empty())
            .await,
        "the hub did not set its stream up"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_polled_session_revoked_becomes_a_sid_cutoff_on_the_feed() {
    let tx = Transmitter::start(AUD, None).await;
    let hub = start_hub(
        &tx,
        &format!("delivery = \"poll\"\n{}", bearer()),
        None,
        None,
    )
    .await;
    sets_up(&tx).await;
    let stream = tx.stream().unwrap();
    assert_eq!(stream["delivery"]["method"], "urn:ietf:rfc:8936");
    assert!(
        stream["events_requested"]
            .as_array()
            .unwrap()
            .contains(&json!(SESSION_REVOKED))
    );
    // the verification event comes back with the hub's state
    let state = tx.verification_states()[0].clone();
    let v = tx.queue(&verification_set(&tx, &state));
    let at = now() - 5;
    let jti = tx.queue(&session_revoked(&tx, "op-sid-1", at));
    assert!(
        tx.until(Duration::from_secs(10), |t| t.acks().contains(&jti))
            .await,
        "not acknowledged: {:?}",
        tx.set_errs()
    );
    assert!(tx.acks().contains(&v));
    // acknowledged only once stored: the cut-off is on the feed when the ack arrives
    assert_eq!(
        feed(&hub.app).await,
        json!([{"iss": OP, "sid": "op-sid-1", "cutoff": at, "exp": at + LIFETIME}])
    );
    let text = metrics(&hub.app).await;
    for line in [
        "idp_federation_requests_total{endpoint=\"ssf_stream\",outcome=\"verified\"} 1",
        "idp_federation_requests_total{endpoint=\"ssf_stream\",outcome=\"stream_enabled\"} 1",
        "idp_federation_requests_total{endpoint=\"ssf_poll\",outcome=\"stored\"} 2",
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
    // the member names of RFC 8936 §2.4, exactly
    let requests = tx.shared.recorded.lock().unwrap().poll_requests.clone();
    let first = requests[0].as_object().unwrap();
    assert!(first.contains_key("ack") && first.contains_key("maxEvents"));
    assert_eq!(first["returnImmediately"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn return_immediately_polls_with_a_client_credentials_token_are_paced() {
    let tx = Transmitter::start(AUD, None).await;
    let delivery = format!(
        "delivery = \"poll\"\npoll_mode = \"return_immediately\"\npoll_interval_seconds = 1\n{}",
        client_credentials(&tx)
    );
    let hub = start_hub(&tx, &delivery, None, None).await;
    sets_up(&tx).await;
    assert_eq!(tx.shared.recorded.lock().unwrap().tokens_issued, 1);
    let before = tx.polls();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let polls = tx.polls() - before;
    assert!((1..=4).contains(&polls), "{polls} polls in 2.5 s at 1 s");
    let user = tx.es256(&tx.claims(
        json!({"format": "iss_sub", "iss": OP, "sub": "bob"}),
        json!({SESSION_REVOKED: {}}),
        json!({}),
    ));
    let jti = tx.queue(&user);
    assert!(
        tx.until(Duration::from_secs(5), |t| t.acks().contains(&jti))
            .await
    );
    let revoked = feed(&hub.app).await;
    assert_eq!(revoked[0]["sub"], "bob", "{revoked}");
    assert_eq!(revoked[0]["iss"], OP);
    let requests = tx.shared.recorded.lock().unwrap().poll_requests.clone();
    assert!(requests.iter().all(|r| r["returnImmediately"] == true));
}

async fn push_hub(tx: &Transmitter, url: Option<&str>) -> Hub {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let delivery = format!(
        "delivery = \"push\"\npush_url = \"{base}/ssf/push/tx\"\npush_authorization = \"{PUSH_AUTH}\"\n{}",
        bearer()
    );
    let hub = start_hub(tx, &delivery, url, Some(listener)).await;
    assert!(
        tx.until(Duration::from_secs(10), |t| t.stream().is_some())
            .await,
        "no stream created"
    );
    hub
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_session_revoked_is_202_once_stored_and_a_redelivery_changes_nothing() {
    let tx = Transmitter::start(AUD, None).await;
    let hub = push_hub(&tx, None).await;
    let stream = tx.stream().unwrap();
    assert_eq!(stream["delivery"]["method"], "urn:ietf:rfc:8935");
    assert_eq!(stream["delivery"]["authorization_header"], PUSH_AUTH);
    let at = now() - 3;
    let set = session_revoked(&tx, "op-sid-push", at);
    assert_eq!(tx.push(&set).await, (202, Value::Null));
    let first = feed(&hub.app).await;
    assert_eq!(
        first,
        json!([{"iss": OP, "sid": "op-sid-push", "cutoff": at, "exp": at + LIFETIME}])
    );
    // the same SET again (a retry after a lost answer): accepted, nothing applied again
    assert_eq!(tx.push(&set).await, (202, Value::Null));
    assert_eq!(feed(&hub.app).await, first);
    // RS256 (2048-bit key) and a user subject: a subject cut-off
    let rs = tx.rs256(&tx.claims(
        json!({"format": "iss_sub", "iss": OP, "sub": "carol"}),
        json!({"https://schemas.openid.net/secevent/risc/event-type/account-disabled": {}}),
        json!({}),
    ));
    assert_eq!(tx.push(&rs).await.0, 202);
    assert_eq!(feed(&hub.app).await[1]["sub"], "carol");
    // token-claims-change naming a token: that jti is refused on the feed
    let claims_change = tx.es256(&tx.claims(
        json!({"format": "jwt_id", "iss": OP, "jti": "op-token-7"}),
        json!({"https://schemas.openid.net/secevent/caep/event-type/token-claims-change": {"claims": {"role": "x"}}}),
        json!({}),
    ));
    assert_eq!(tx.push(&claims_change).await.0, 202);
    assert_eq!(feed(&hub.app).await[2]["jti"], "op-token-7");
    drop(hub);
}

#[test]
fn the_example_ssf_hub_configuration_loads() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/hub-ssf.toml"
    ))
    .unwrap();
    let settings = idp::settings::RawSettings::from_toml(&text)
        .unwrap()
        .validate(&Default::default())
        .unwrap();
    let streams = &settings.federation.ssf_streams;
    assert_eq!(streams.len(), 2);
    assert_eq!(
        streams[0].configuration_url,
        "https://keycloak.example.com/.well-known/ssf-configuration/realms/acme"
    );
    assert!(matches!(
        streams[0].delivery,
        idp::settings::Delivery::Poll {
            mode: idp::settings::PollMode::ReturnImmediately,
            interval_seconds: 2,
            ..
        }
    ));
    assert!(matches!(
        streams[1].delivery,
        idp::settings::Delivery::Push { .. }
    ));
    assert_eq!(
        streams[1].action("https://schemas.openid.net/secevent/caep/event-type/credential-change"),
        Some(idp::settings::EventAction::Ignore)
    );
}

#[path = "ssf_receiver/faults.rs"]
mod faults;
#[path = "ssf_receiver/key_loading.rs"]
mod key_loading;
#[path = "ssf_receiver/killed.rs"]
mod killed;
#[path = "ssf_receiver/ours.rs"]
mod ours;
#[path = "ssf_receiver/postgres.rs"]
mod postgres;
