//! Our transmitter and our receiver against each other, over real HTTP on loopback: IDP A (a
//! user, a receiver client with `ssf.manage`) serves SSF; IDP B, in its hub role, is configured
//! with A as a federated issuer and as an SSF transmitter (poll or push, client_credentials at
//! A's token endpoint). A session ending at A becomes, through the stream, a cut-off of A's session on B's
//! revocation feed (the feed every gateway reads).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;
mod ssf_support;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{GATEWAY, basic, send};
use ssf_support::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_at_our_transmitter_becomes_a_cutoff_on_our_hubs_feed_by_poll() {
    logout_becomes_a_cutoff(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_at_our_transmitter_becomes_a_cutoff_on_our_hubs_feed_by_push() {
    logout_becomes_a_cutoff(true).await;
}

async fn logout_becomes_a_cutoff(push: bool) {
    let dir = tempfile::tempdir().unwrap();
    // A: the transmitter
    let a_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a_issuer = format!("http://{}", a_listener.local_addr().unwrap());
    let a = open(dir.path(), "a.sqlite", &a_issuer, &config(None, "")).await;
    idp::http::routes::ssf::spawn_event_delivery(&a);
    serve(&a, a_listener);
    // B: the hub
    let delivery = if push {
        HubDelivery::Push
    } else {
        HubDelivery::Poll {
            long_poll_seconds: 2,
        }
    };
    let b = hub(dir.path(), "b.sqlite", &a_issuer, RECEIVER, delivery).await;
    let b_app = idp::app(Arc::clone(&b));

    // the hub sets its stream up at A (create, or read after a 409)
    let a_app = idp::app(Arc::clone(&a));
    let deadline = Instant::now() + Duration::from_secs(15);
    while a
        .store
        .stream_of_client(RECEIVER.0)
        .await
        .unwrap()
        .is_none()
    {
        assert!(Instant::now() < deadline, "the hub created no stream at A");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // a user's session at A ends
    let (at, sid) = user_session(&a_app).await;
    let t = Instant::now();
    assert_eq!(revoke(&a_app, &at).await.status, StatusCode::OK);
    // ... and B's feed carries A's session cut-off
    loop {
        let r = send(
            &b_app,
            Request::get("/oauth2/revocations")
                .header(header::AUTHORIZATION, basic(GATEWAY))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        let entries = r.json["revoked"].as_array().unwrap();
        if entries
            .iter()
            .any(|e| e["iss"] == a_issuer.as_str() && e["sid"] == sid.as_str())
        {
            println!(
                "logout at A to a cut-off on B's feed ({}): {:?}",
                if push { "push" } else { "poll" },
                t.elapsed()
            );
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "no cut-off of A's session on B's feed: {}",
            r.json
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
