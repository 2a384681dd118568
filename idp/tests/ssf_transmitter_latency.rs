//! Delivery latency, side by side (issue 27): a session ended at our IDP (A, the SSF
//! transmitter) until it is an entry on a revocation feed that gateways read —
//! - `feed`: A's own feed (`{"sid", "exp"}`), what a gateway on A reads today;
//! - `push`: hub B1's feed (`{"iss", "sid", "cutoff", "exp"}`), A pushing each SET to B1
//!   (RFC 8935) over loopback HTTP;
//! - `poll`: hub B2's feed, B2 long-polling A (RFC 8936) over loopback HTTP.
//!
//! One session at a time; each feed is watched by its own long poll (`wait=`), as a gateway
//! reads it; the clock starts when the RFC 7009 revocation that ends the session is sent. A
//! measurement, not a check: ignored, run explicitly:
//!
//! ```text
//! cargo test -p idp --test ssf_transmitter_latency -- --ignored --nocapture
//! SSF_LATENCY_EVENTS=200 cargo test -p idp --test ssf_transmitter_latency -- --ignored --nocapture
//! ```
//!
//! (The test profile: dependencies optimised, our code not. `--release` does not build here:
//! the release profile's `panic = "abort"` makes cargo build the filter's cdylib twice under
//! one file name.)
//!
//! It prints the load average before and after: figures from a loaded machine are not the
//! product's.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;
mod ssf_support;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{GATEWAY, basic, send};
use ssf_support::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECOND_RECEIVER: (&str, &str) = ("ssf-receiver-2", "ssf-receiver-2-secret-0123456789abcdef");

/// When each session id first appeared on a feed.
type Seen = Arc<Mutex<HashMap<String, Instant>>>;

/// Follows `app`'s feed with long polls, as a gateway does, recording each `sid` it names.
fn watch(app: Router) -> Seen {
    let seen: Seen = Arc::default();
    let out = Arc::clone(&seen);
    tokio::spawn(async move {
        let mut cursor: Option<String> = None;
        loop {
            let uri = match &cursor {
                None => "/oauth2/revocations".to_owned(),
                Some(c) => format!("/oauth2/revocations?since={c}&wait=5"),
            };
            let r = send(
                &app,
                Request::get(uri)
                    .header(header::AUTHORIZATION, basic(GATEWAY))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
            let now = Instant::now();
            assert_eq!(r.status, StatusCode::OK, "{}", r.json);
            let mut map = out.lock().unwrap();
            for e in r.json["revoked"].as_array().unwrap() {
                if let Some(sid) = e["sid"].as_str() {
                    map.entry(sid.to_owned()).or_insert(now);
                }
            }
            cursor = Some(match &r.json["cursor"] {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            });
        }
    });
    seen
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run explicitly with --ignored --nocapture"]
async fn session_end_to_feed_entry_by_feed_push_and_poll() {
    let events: usize = std::env::var("SSF_LATENCY_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30)
        .max(1);
    println!(
        "load average before: {}",
        std::fs::read_to_string("/proc/loadavg").unwrap().trim()
    );
    let dir = tempfile::tempdir().unwrap();
    let a_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a_issuer = format!("http://{}", a_listener.local_addr().unwrap());
    let extra = format!(
        "{}{}",
        receiver_client(SECOND_RECEIVER),
        gateway_client(None)
    );
    let a = open(dir.path(), "a.sqlite", &a_issuer, &config(None, &extra)).await;
    idp::http::routes::ssf::spawn_event_delivery(&a);
    serve(&a, a_listener);
    let b_push = hub(
        dir.path(),
        "push.sqlite",
        &a_issuer,
        RECEIVER,
        HubDelivery::Push,
    )
    .await;
    let poll = HubDelivery::Poll {
        long_poll_seconds: 5,
    };
    let b_poll = hub(dir.path(), "poll.sqlite", &a_issuer, SECOND_RECEIVER, poll).await;
    let a_app = idp::app(Arc::clone(&a));

    // both hubs have set their streams up at A
    let deadline = Instant::now() + Duration::from_secs(20);
    for client in [RECEIVER.0, SECOND_RECEIVER.0] {
        while a.store.stream_of_client(client).await.unwrap().is_none() {
            assert!(Instant::now() < deadline, "no stream of {client} at A");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let paths = [
        ("feed (A's own)", watch(idp::app(Arc::clone(&a)))),
        ("push (hub B1)", watch(idp::app(Arc::clone(&b_push)))),
        ("poll (hub B2)", watch(idp::app(Arc::clone(&b_poll)))),
    ];
    // a first session, not timed: streams verified, keys fetched, connections open
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); paths.len()];
    for i in 0..=events {
        let (at, sid) = user_session(&a_app).await;
        let t0 = Instant::now();
        assert_eq!(revoke(&a_app, &at).await.status, StatusCode::OK);
        let deadline = t0 + Duration::from_secs(20);
        let arrived = loop {
            let got: Vec<Option<Instant>> = paths
                .iter()
                .map(|(_, seen)| seen.lock().unwrap().get(&sid).copied())
                .collect();
            if got.iter().all(Option::is_some) {
                break got;
            }
            assert!(
                Instant::now() < deadline,
                "session {i} not on every feed: {got:?}"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        if i > 0 {
            for (out, t) in times.iter_mut().zip(arrived.into_iter().flatten()) {
                out.push(t.duration_since(t0));
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("\nsession end at A (RFC 7009 revocation sent) → entry on a feed, {events} sessions:");
    for ((name, _), t) in paths.iter().zip(times.iter_mut()) {
        t.sort();
        println!(
            "  {name:<16} p50 {:>8.2?}  p99 {:>8.2?}  max {:>8.2?}",
            percentile(t, 0.50),
            percentile(t, 0.99),
            t[t.len() - 1]
        );
    }
    println!(
        "load average after: {}",
        std::fs::read_to_string("/proc/loadavg").unwrap().trim()
    );
}
