//! A SET pushed while the hub is still fetching the transmitter's keys (a replica just started,
//! its set-up reading the JWKS): it must not be refused with `invalid_key` because it was
//! checked against the key set as it was before that fetch finished. It is answered 503
//! (delivered again) or accepted once the keys are in.

use super::*;
use axum::routing::get;
use idp::federation::ssf::client::{Body as ClientBody, HttpClient};
use std::sync::atomic::{AtomicUsize, Ordering};

/// How long the transmitter's JWKS takes to answer.
const SLOW_JWKS: Duration = Duration::from_millis(1500);

/// A front for `tx` on loopback: its configuration document with `jwks_uri` pointing at a JWKS
/// that answers (the transmitter's own keys) after [`SLOW_JWKS`]. Returns the configuration
/// URL and the count of JWKS requests begun.
async fn slow_jwks_front(tx: &Transmitter) -> (String, Arc<AtomicUsize>) {
    let http = HttpClient::default();
    let get_json = async |url: String| {
        http.json(hyper::Method::GET, &url, None, ClientBody::None)
            .await
            .unwrap()
    };
    let mut config = get_json(format!("{}/.well-known/ssf-configuration", tx.issuer())).await;
    let jwks = get_json(format!("{}/jwks", tx.issuer())).await;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2, "{jwks}");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let front = format!("http://{}", listener.local_addr().unwrap());
    config["jwks_uri"] = json!(format!("{front}/jwks"));
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&asked);
    let app = Router::new()
        .route(
            "/.well-known/ssf-configuration",
            get(move || {
                let c = config.clone();
                async move { axum::Json(c) }
            }),
        )
        .route(
            "/jwks",
            get(move || {
                let j = jwks.clone();
                counter.fetch_add(1, Ordering::SeqCst);
                async move {
                    tokio::time::sleep(SLOW_JWKS).await;
                    axum::Json(j)
                }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("{front}/.well-known/ssf-configuration"), asked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_pushed_while_the_keys_are_being_fetched_is_not_refused() {
    let tx = Transmitter::start(AUD, None).await;
    let (configuration_url, jwks_asked) = slow_jwks_front(&tx).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let push_url = format!("http://{}/ssf/push/tx", listener.local_addr().unwrap());
    let delivery = format!(
        "configuration_url = \"{configuration_url}\"\ndelivery = \"push\"\npush_url = \"{push_url}\"\npush_authorization = \"{PUSH_AUTH}\"\n{}",
        bearer()
    );
    let hub = start_hub(&tx, &delivery, None, Some(listener)).await;
    // the set-up has the configuration and is fetching the keys
    wait_for("the JWKS fetch", Duration::from_secs(10), async || {
        jwks_asked.load(Ordering::SeqCst) > 0
    })
    .await;
    assert!(hub.state.hub.ssf.stream("tx").unwrap().keys().is_empty());
    let at = now() - 1;
    let set = session_revoked(&tx, "during-key-fetch", at);
    let started = tokio::time::Instant::now();
    let (status, body) = postgres::push_to(&push_url, &set).await;
    assert_eq!((status, &body), (202, &Value::Null), "{body}");
    // answered once the fetch in flight ended, not after the least re-fetch interval
    assert!(started.elapsed() < Duration::from_secs(8));
    assert_eq!(
        jwks_asked.load(Ordering::SeqCst),
        1,
        "one fetch served both"
    );
    assert_eq!(
        feed(&hub.app).await,
        json!([{"iss": OP, "sid": "during-key-fetch", "cutoff": at, "exp": at + LIFETIME}])
    );
}
