//! The IDP as an SSF 1.0 transmitter: the configuration document, stream management with and
//! without the right scope, verification, poll (RFC 8936) and push (RFC 8935) delivery of CAEP
//! `session-revoked` and OAuth `token-revoked` SETs, checked against the IDP's JWKS; events
//! stored before anything is acknowledged survive a restart. On SQLite, and the main flow on
//! PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;
#[path = "pg_cluster/mod.rs"]
mod pg_cluster;
mod ssf_support;

use axum::Router;
use axum::http::StatusCode;
use common::send;
use serde_json::{Value, json};
use ssf_support::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn idp(config: &str) -> (tempfile::TempDir, Arc<idp::AppState>, Router) {
    let dir = tempfile::tempdir().unwrap();
    let state = common::state_with(&dir.path().join("idp.sqlite"), config).await;
    let app = idp::app(Arc::clone(&state));
    (dir, state, app)
}

#[tokio::test]
async fn the_configuration_document_names_the_endpoints_and_both_delivery_methods() {
    let (_d, _s, app) = idp(&config(None, "")).await;
    let r = send(
        &app,
        json_request("GET", "/.well-known/ssf-configuration", None, None),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let iss = common::ISSUER;
    assert_eq!(r.json["issuer"], iss);
    assert_eq!(r.json["jwks_uri"], format!("{iss}/.well-known/jwks.json"));
    assert_eq!(
        r.json["delivery_methods_supported"],
        json!(["urn:ietf:rfc:8935", "urn:ietf:rfc:8936"])
    );
    assert_eq!(
        r.json["configuration_endpoint"],
        format!("{iss}/ssf/stream")
    );
    assert_eq!(r.json["status_endpoint"], format!("{iss}/ssf/status"));
    assert_eq!(r.json["verification_endpoint"], format!("{iss}/ssf/verify"));
    assert_eq!(r.json["default_subjects"], "ALL");
    let oidc = send(
        &app,
        json_request("GET", "/.well-known/openid-configuration", None, None),
    )
    .await;
    assert_eq!(oidc.json["backchannel_logout_supported"], true);
    assert_eq!(oidc.json["backchannel_logout_session_supported"], true);
}

#[tokio::test]
async fn stream_management_needs_a_valid_token_with_the_right_scope() {
    let (_d, _s, app) = idp(&config(None, "")).await;
    let poll = json!({"method": "urn:ietf:rfc:8936"});
    // no token: 401 with a bare challenge
    let r = send(
        &app,
        json_request("POST", "/ssf/stream", None, Some(json!({"delivery": poll}))),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers["www-authenticate"], "Bearer realm=\"ssf\"");
    // a forged token: 401 invalid_token
    let r = send(
        &app,
        json_request("GET", "/ssf/stream", Some("not.a.jwt"), None),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        r.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_token\"")
    );
    // a client without the scopes: 403 insufficient_scope
    let plain = token(&app, OTHER, "read").await;
    let r = send(&app, json_request("GET", "/ssf/stream", Some(&plain), None)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let challenge = r.headers["www-authenticate"].to_str().unwrap().to_owned();
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    // ssf.read reads but does not create
    let reader = token(&app, READER, "ssf.read").await;
    let r = send(
        &app,
        json_request(
            "POST",
            "/ssf/stream",
            Some(&reader),
            Some(json!({"delivery": poll})),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        r.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("scope=\"ssf.manage\"")
    );
    let r = send(
        &app,
        json_request("GET", "/ssf/stream", Some(&reader), None),
    )
    .await;
    assert_eq!((r.status, r.json.clone()), (StatusCode::OK, json!([])));

    // create → 201, again → 409, read, update, replace, status, delete
    let manager = token(&app, RECEIVER, "ssf.manage").await;
    let id = create_stream(&app, &manager, poll.clone()).await;
    let again = send(
        &app,
        json_request(
            "POST",
            "/ssf/stream",
            Some(&manager),
            Some(json!({"delivery": poll})),
        ),
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let read = send(
        &app,
        json_request(
            "GET",
            &format!("/ssf/stream?stream_id={id}"),
            Some(&manager),
            None,
        ),
    )
    .await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.json["aud"], RECEIVER.0);
    assert_eq!(read.json["iss"], common::ISSUER);
    assert_eq!(
        read.json["delivery"]["endpoint_url"],
        format!("{}/ssf/poll", common::ISSUER)
    );
    assert_eq!(
        read.json["events_delivered"],
        json!([SESSION_REVOKED, TOKEN_REVOKED])
    );
    let patched = send(
        &app,
        json_request(
            "PATCH",
            "/ssf/stream",
            Some(&manager),
            Some(
                json!({"stream_id": id, "events_requested": [SESSION_REVOKED], "description": "d"}),
            ),
        ),
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.json);
    assert_eq!(patched.json["events_delivered"], json!([SESSION_REVOKED]));
    assert_eq!(patched.json["delivery"]["method"], "urn:ietf:rfc:8936");
    let replaced = send(
        &app,
        json_request(
            "PUT",
            "/ssf/stream",
            Some(&manager),
            Some(json!({"stream_id": id, "delivery": poll, "events_requested": [TOKEN_REVOKED]})),
        ),
    )
    .await;
    assert_eq!(replaced.json["events_delivered"], json!([TOKEN_REVOKED]));
    assert!(replaced.json.get("description").is_none());
    let wrong = send(
        &app,
        json_request("GET", "/ssf/stream?stream_id=nope", Some(&manager), None),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::NOT_FOUND);
    let st = send(
        &app,
        json_request(
            "GET",
            &format!("/ssf/status?stream_id={id}"),
            Some(&reader),
            None,
        ),
    )
    .await;
    // the reader has no stream of its own: another receiver's stream is not found
    assert_eq!(st.status, StatusCode::NOT_FOUND);
    let st = send(
        &app,
        json_request(
            "POST",
            "/ssf/status",
            Some(&manager),
            Some(json!({"stream_id": id, "status": "paused", "reason": "maintenance"})),
        ),
    )
    .await;
    assert_eq!(
        st.json,
        json!({"stream_id": id, "status": "paused", "reason": "maintenance"})
    );
    let del = send(
        &app,
        json_request(
            "DELETE",
            &format!("/ssf/stream?stream_id={id}"),
            Some(&manager),
            None,
        ),
    )
    .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    let gone = send(
        &app,
        json_request(
            "GET",
            &format!("/ssf/stream?stream_id={id}"),
            Some(&manager),
            None,
        ),
    )
    .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

/// Polls until a SET of `event` arrives (bounded); gives `(jti, claims)` of every SET seen.
async fn poll_for(app: &Router, bearer: &str, event: &str) -> Vec<(String, Value)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = poll(
            app,
            bearer,
            json!({"maxEvents": 10, "returnImmediately": false}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        let mut out = Vec::new();
        for (jti, set) in r.json["sets"].as_object().unwrap() {
            let claims = verified(app, set.as_str().unwrap(), "secevent+jwt", RECEIVER.0).await;
            out.push((jti.clone(), claims));
        }
        if out.iter().any(|(_, c)| c["events"].get(event).is_some()) {
            return out;
        }
        assert!(Instant::now() < deadline, "no {event} SET arrived");
    }
}

async fn poll_flow(state: &Arc<idp::AppState>, app: &Router) {
    idp::http::routes::ssf::spawn_event_delivery(state);
    let manager = token(app, RECEIVER, "ssf.manage").await;
    let id = create_stream(app, &manager, json!({"method": "urn:ietf:rfc:8936"})).await;

    // verification: a SET carrying the state
    let r = send(
        app,
        json_request(
            "POST",
            "/ssf/verify",
            Some(&manager),
            Some(json!({"stream_id": id, "state": "s-42"})),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.json);
    let sets = poll_for(app, &manager, VERIFICATION).await;
    let (vjti, v) = sets
        .iter()
        .find(|(_, c)| c["events"].get(VERIFICATION).is_some())
        .unwrap();
    assert_eq!(v["events"][VERIFICATION]["state"], "s-42");
    assert_eq!(v["sub_id"], json!({"format": "opaque", "id": id}));
    let acked = poll(
        app,
        &manager,
        json!({"ack": [vjti], "returnImmediately": true}),
    )
    .await;
    assert_eq!(acked.json["sets"], json!({}));

    // a logout (RFC 7009 revocation of the session's token): session-revoked and token-revoked
    let (at, sid) = user_session(app).await;
    let at_claims = payload(&at);
    let started = Instant::now();
    assert_eq!(revoke(app, &at).await.status, StatusCode::OK);
    let mut seen: Vec<(String, Value)> = Vec::new();
    while !(seen
        .iter()
        .any(|(_, c)| c["events"].get(SESSION_REVOKED).is_some())
        && seen
            .iter()
            .any(|(_, c)| c["events"].get(TOKEN_REVOKED).is_some()))
    {
        for s in poll_for(app, &manager, SESSION_REVOKED).await {
            if !seen.iter().any(|(j, _)| *j == s.0) {
                seen.push(s);
            }
        }
        assert!(started.elapsed() < Duration::from_secs(10));
    }
    println!("logout to both SETs polled: {:?}", started.elapsed());
    let (sjti, session) = seen
        .iter()
        .find(|(_, c)| c["events"].get(SESSION_REVOKED).is_some())
        .unwrap();
    assert!(session.get("sub").is_none() && session.get("exp").is_none());
    assert_eq!(session["aud"], RECEIVER.0);
    assert_eq!(session["jti"], sjti.as_str());
    assert_eq!(session["sub_id"]["format"], "complex");
    assert_eq!(
        session["sub_id"]["session"],
        json!({"format": "opaque", "id": sid})
    );
    assert_eq!(
        session["sub_id"]["user"],
        json!({"format": "iss_sub", "iss": common::ISSUER, "sub": at_claims["sub"]})
    );
    assert!(
        session["events"][SESSION_REVOKED]["event_timestamp"]
            .as_i64()
            .unwrap()
            >= at_claims["iat"].as_i64().unwrap()
    );
    let (tjti, tok) = seen
        .iter()
        .find(|(_, c)| c["events"].get(TOKEN_REVOKED).is_some())
        .unwrap();
    assert_eq!(
        tok["sub_id"],
        json!({"format": "jwt_id", "iss": common::ISSUER, "jti": at_claims["jti"]})
    );
    // acknowledged (one by ack, one by setErrs): not answered again
    let r = poll(
        app,
        &manager,
        json!({"ack": [sjti], "setErrs": {tjti.as_str(): {"err": "jwtAud", "description": "test"}}, "returnImmediately": true}),
    )
    .await;
    assert_eq!(r.json, json!({"sets": {}, "moreAvailable": false}));
    // a long poll with nothing to give waits, bounded by the configured maximum (3 s)
    let t = Instant::now();
    let r = poll(app, &manager, json!({})).await;
    assert_eq!(r.json["sets"], json!({}));
    assert!(
        t.elapsed() >= Duration::from_millis(2500) && t.elapsed() < Duration::from_secs(6),
        "{:?}",
        t.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_is_polled_as_session_revoked_then_acknowledged_on_sqlite() {
    let (_d, state, app) = idp(&config(None, "")).await;
    poll_flow(&state, &app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_is_polled_as_session_revoked_then_acknowledged_on_postgresql() {
    let Some(url) = pg_cluster::database("ssf") else {
        return;
    };
    let state = common::state_on_url(&url, &config(None, "")).await;
    let app = idp::app(Arc::clone(&state));
    poll_flow(&state, &app).await;
}

#[tokio::test]
async fn a_bad_poll_request_is_an_rfc_8935_error() {
    let (_d, _s, app) = idp(&config(None, "")).await;
    let manager = token(&app, RECEIVER, "ssf.manage").await;
    create_stream(&app, &manager, json!({"method": "urn:ietf:rfc:8936"})).await;
    let r = send(
        &app,
        json_request(
            "POST",
            "/ssf/poll",
            Some(&manager),
            Some(json!({"maxEvents": "ten"})),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json["err"], "invalid_request");
    let plain = token(&app, OTHER, "read").await;
    let r = poll(&app, &plain, json!({})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_delivery_retries_after_a_failure_with_the_receivers_authorization() {
    let (_d, state, app) = idp(&config(None, "")).await;
    idp::http::routes::ssf::spawn_event_delivery(&state);
    // the receiver fails its first request (503), then accepts with 202
    let mut rcv = receiver("/events", 1, StatusCode::ACCEPTED).await;
    let manager = token(&app, RECEIVER, "ssf.manage").await;
    create_stream(
        &app,
        &manager,
        json!({"method": "urn:ietf:rfc:8935", "endpoint_url": rcv.url, "authorization_header": "Bearer push-secret"}),
    )
    .await;
    let (at, sid) = user_session(&app).await;
    assert_eq!(revoke(&app, &at).await.status, StatusCode::OK);
    let mut events = Vec::new();
    while events.len() < 2 {
        let (headers, body) = tokio::time::timeout(Duration::from_secs(10), rcv.got.recv())
            .await
            .expect("no SET pushed")
            .unwrap();
        assert_eq!(headers["authorization"], "Bearer push-secret");
        assert_eq!(headers["content-type"], "application/secevent+jwt");
        events.push(verified(&app, &body, "secevent+jwt", RECEIVER.0).await);
    }
    let session = events
        .iter()
        .find(|c| c["events"].get(SESSION_REVOKED).is_some())
        .expect("a session-revoked SET");
    assert_eq!(session["sub_id"]["session"]["id"], sid.as_str());
    assert!(
        events
            .iter()
            .any(|c| c["events"].get(TOKEN_REVOKED).is_some())
    );
    // counted once the receiver's answer is back
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = metrics(&app).await;
        if text.contains("idp_event_deliveries_total{channel=\"ssf_push\",outcome=\"delivered\"} 2")
        {
            assert!(
                text.contains(
                    "idp_event_deliveries_total{channel=\"ssf_push\",outcome=\"retry\"} 1"
                ),
                "{text}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stored_before_delivery_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("idp.sqlite");
    let cfg = config(None, "");
    let sid = {
        // the first process stores the event, then stops before delivering anything
        let state = common::state_with(&db, &cfg).await;
        let app = idp::app(Arc::clone(&state));
        let manager = token(&app, RECEIVER, "ssf.manage").await;
        create_stream(&app, &manager, json!({"method": "urn:ietf:rfc:8936"})).await;
        let (at, sid) = user_session(&app).await;
        assert_eq!(revoke(&app, &at).await.status, StatusCode::OK);
        assert!(state.store.pending_events().await.unwrap() >= 1);
        sid
    };
    let state = common::state_with(&db, &cfg).await;
    let app = idp::app(Arc::clone(&state));
    idp::http::routes::ssf::spawn_event_delivery(&state);
    let manager = token(&app, RECEIVER, "ssf.manage").await;
    let sets = poll_for(&app, &manager, SESSION_REVOKED).await;
    let (_, session) = sets
        .iter()
        .find(|(_, c)| c["events"].get(SESSION_REVOKED).is_some())
        .unwrap();
    assert_eq!(session["sub_id"]["session"]["id"], sid.as_str());
}

/// The store's side of the contract, on a backend: ending a live session and revoking a token
/// each record one event in the same transaction (a repeat records nothing, a rolled-back
/// transaction nothing); the fan-out hands each event to the plan once, with the streams that
/// take events, and stores what the plan makes.
async fn events_are_recorded_once_with_the_change(store: &dyn idp::store::Store) {
    use idp::store::events::{EventKind, NewDelivery, StreamRecord, Target};
    use idp::store::{IssuedToken, NewSession};
    let now = 1_000;
    let mut tx = store.begin().await.unwrap();
    tx.create_session(&NewSession {
        sid: "sid-1",
        sub: "alice",
        client_id: "user-app",
        sso_id: None,
        now,
        expires_at: now + 3600,
    })
    .await
    .unwrap();
    tx.record_issued(&IssuedToken {
        jti: "jti-1",
        client_id: "user-app",
        sub: "alice",
        sid: Some("sid-1"),
        scope: "read",
        issued_at: now,
        exp: now + 300,
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
    // a rolled-back end leaves no event
    let mut tx = store.begin().await.unwrap();
    tx.end_session("sid-1", now + 300, now).await.unwrap();
    drop(tx);
    assert_eq!(store.pending_events().await.unwrap(), 0);
    for _ in 0..2 {
        let mut tx = store.begin().await.unwrap();
        tx.revoke_jti("jti-1", now + 300, now + 1).await.unwrap();
        tx.end_session("sid-1", now + 300, now + 1).await.unwrap();
        tx.commit().await.unwrap();
    }
    assert_eq!(store.pending_events().await.unwrap(), 2);
    let stream = StreamRecord {
        stream_id: "st-1".into(),
        client_id: "ssf-receiver".into(),
        delivery_method: "urn:ietf:rfc:8936".into(),
        config: json!({"method": "urn:ietf:rfc:8936", "events_requested": [SESSION_REVOKED]})
            .to_string(),
        status: "enabled".into(),
        reason: None,
        created_at: now,
        updated_at: now,
    };
    assert!(store.create_stream(&stream).await.unwrap());
    assert!(
        !store.create_stream(&stream).await.unwrap(),
        "one stream per receiver"
    );
    let seen = std::sync::Mutex::new(Vec::new());
    let plan = |e: &idp::store::events::SecurityEvent, streams: &[StreamRecord]| {
        seen.lock().unwrap().push((e.clone(), streams.len()));
        vec![NewDelivery {
            target: Target::Stream(streams[0].stream_id.clone()),
            jti: format!("set-{}", e.id),
            token: format!("token-{}", e.kind.as_str()),
        }]
    };
    assert_eq!(store.fan_out(10, now + 2, &plan).await.unwrap(), 2);
    assert_eq!(store.fan_out(10, now + 2, &plan).await.unwrap(), 0);
    let seen = seen.into_inner().unwrap();
    assert_eq!(seen.len(), 2);
    let token = seen
        .iter()
        .find(|(e, _)| e.kind == EventKind::TokenRevoked)
        .unwrap();
    assert_eq!(token.0.jti.as_deref(), Some("jti-1"));
    assert_eq!(
        (token.0.sub.as_str(), token.0.occurred_at),
        ("alice", now + 1)
    );
    let session = seen
        .iter()
        .find(|(e, _)| e.kind == EventKind::SessionRevoked)
        .unwrap();
    assert_eq!(session.0.sid.as_deref(), Some("sid-1"));
    assert_eq!(session.0.client_id, "user-app");
    assert!(seen.iter().all(|(_, n)| *n == 1));
    let sets = store.stream_sets("st-1", 10).await.unwrap();
    assert_eq!(sets.len(), 2);
    let jtis: Vec<String> = sets.iter().map(|(j, _)| j.clone()).collect();
    assert_eq!(store.ack("st-1", &jtis[..1]).await.unwrap(), 1);
    assert_eq!(store.ack("st-1", &jtis[..1]).await.unwrap(), 0);
    assert_eq!(store.stream_sets("st-1", 10).await.unwrap().len(), 1);
    // a poll stream's SETs are never pushed; a logout token is, once per claim
    assert!(store.due_deliveries(i64::MAX, 10).await.unwrap().is_empty());
    store
        .enqueue(
            &NewDelivery {
                target: Target::Client("user-app".into()),
                jti: "lt-1".into(),
                token: "logout".into(),
            },
            now,
        )
        .await
        .unwrap();
    let due = store.due_deliveries(0, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert!(store.claim_delivery(due[0].id, 0, 5_000).await.unwrap());
    assert!(
        !store.claim_delivery(due[0].id, 0, 5_000).await.unwrap(),
        "single winner"
    );
    assert!(store.due_deliveries(4_999, 10).await.unwrap().is_empty());
    assert_eq!(
        store.due_deliveries(5_000, 10).await.unwrap()[0].attempts,
        1
    );
    store.delete_delivery(due[0].id).await.unwrap();
    assert!(store.due_deliveries(i64::MAX, 10).await.unwrap().is_empty());
    // SETs expire by their age (the one left was stored at now + 2)
    assert_eq!(store.expire_stream_sets(now + 2).await.unwrap(), 0);
    assert_eq!(store.expire_stream_sets(now + 3).await.unwrap(), 1);
    assert!(store.stream_sets("st-1", 10).await.unwrap().is_empty());
    // deleting the stream drops its SETs
    assert!(store.delete_stream("st-1", "ssf-receiver").await.unwrap());
    assert!(store.stream_sets("st-1", 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_store_records_events_with_their_change_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("s.sqlite").display()
    );
    let store = idp::store::open(&url).await.unwrap();
    events_are_recorded_once_with_the_change(&*store).await;
}

#[tokio::test]
async fn the_store_records_events_with_their_change_on_postgresql() {
    let Some(url) = pg_cluster::database("ssf_store") else {
        return;
    };
    let store = idp::store::open(&url).await.unwrap();
    events_are_recorded_once_with_the_change(&*store).await;
}

#[test]
fn the_example_configuration_is_valid() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ssf-transmitter.toml"),
    )
    .unwrap();
    let settings = idp::settings::RawSettings::from_toml(&text)
        .unwrap()
        .validate(&idp::settings::Overrides::default())
        .unwrap();
    let webapp = settings.client("webapp").unwrap();
    assert_eq!(
        webapp.backchannel_logout_uri.as_deref(),
        Some("http://127.0.0.1:8080/backchannel-logout")
    );
    assert_eq!(settings.ssf.max_poll_wait, Duration::from_secs(30));
    assert_eq!(settings.backchannel_logout.token_ttl_seconds, 120);
}

/// Undelivered SETs are kept `ssf.max_set_age_seconds`, then dropped and counted: a receiver
/// that stopped polling does not grow the outbox for ever.
#[tokio::test]
async fn undelivered_sets_expire_after_the_configured_age() {
    let (_d, state, app) = idp(&config(None, "")).await;
    let manager = token(&app, RECEIVER, "ssf.manage").await;
    let id = create_stream(&app, &manager, json!({"method": "urn:ietf:rfc:8936"})).await;
    let r = send(
        &app,
        json_request(
            "POST",
            "/ssf/verify",
            Some(&manager),
            Some(json!({"stream_id": id})),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let worker = idp::http::routes::ssf::worker(&state);
    worker.expire_now().await;
    assert_eq!(
        state.store.stream_sets(&id, 10).await.unwrap().len(),
        1,
        "young: kept"
    );
    let cutoff = i64::MAX / 2;
    assert_eq!(state.store.expire_stream_sets(cutoff).await.unwrap(), 1);
    assert!(state.store.stream_sets(&id, 10).await.unwrap().is_empty());
}

/// Two replicas on one PostgreSQL database, both delivering: sessions ended on one are polled
/// on the other, each event exactly once (the fan-out takes each event on one replica only).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_fan_out_each_event_once_on_postgresql() {
    let Some(url) = pg_cluster::database("ssf_replicas") else {
        return;
    };
    let cfg = config(None, "");
    let (a, b) = tokio::join!(
        common::state_on_url(&url, &cfg),
        common::state_on_url(&url, &cfg)
    );
    idp::http::routes::ssf::spawn_event_delivery(&a);
    idp::http::routes::ssf::spawn_event_delivery(&b);
    let (a_app, b_app) = (idp::app(Arc::clone(&a)), idp::app(Arc::clone(&b)));
    let manager = token(&a_app, RECEIVER, "ssf.manage").await;
    create_stream(&a_app, &manager, json!({"method": "urn:ietf:rfc:8936"})).await;
    let mut sids = Vec::new();
    for _ in 0..5 {
        let (at, sid) = user_session(&a_app).await;
        assert_eq!(revoke(&a_app, &at).await.status, StatusCode::OK);
        sids.push(sid);
    }
    let mut session_sids = Vec::new();
    let mut jtis = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while session_sids.len() < 5 {
        let r = poll(&b_app, &manager, json!({"maxEvents": 3})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        let mut ack = Vec::new();
        for (jti, set) in r.json["sets"].as_object().unwrap() {
            let claims = payload(set.as_str().unwrap());
            assert!(jtis.insert(jti.clone()), "SET {jti} answered after its ack");
            if let Some(sid) = claims["sub_id"]["session"]["id"].as_str() {
                session_sids.push(sid.to_owned());
            }
            ack.push(jti.clone());
        }
        let r = poll(&b_app, &manager, json!({"ack": ack, "maxEvents": 0})).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(Instant::now() < deadline, "{session_sids:?}");
    }
    // nothing twice: 5 sessions, 5 tokens, and no more
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let rest = poll(&b_app, &manager, json!({"returnImmediately": true})).await;
    for (jti, _) in rest.json["sets"].as_object().unwrap() {
        assert!(jtis.insert(jti.clone()));
    }
    session_sids.sort();
    sids.sort();
    assert_eq!(session_sids, sids);
    assert_eq!(
        jtis.len(),
        10,
        "one session-revoked and one token-revoked per logout"
    );
    assert_eq!(a.store.pending_events().await.unwrap(), 0);
}

/// A paused stream answers no SET (it keeps them): a long poll waits its time and answers
/// nothing, `returnImmediately` answers nothing at once; enabled again, the kept SET comes.
#[tokio::test]
async fn a_paused_stream_keeps_its_sets_until_enabled() {
    let (_d, _s, app) = idp(&config(None, "")).await;
    let manager = token(&app, RECEIVER, "ssf.manage").await;
    let id = create_stream(&app, &manager, json!({"method": "urn:ietf:rfc:8936"})).await;
    let status = |s: &str| {
        json_request(
            "POST",
            "/ssf/status",
            Some(&manager),
            Some(json!({"stream_id": id, "status": s})),
        )
    };
    assert_eq!(send(&app, status("paused")).await.status, StatusCode::OK);
    let r = send(
        &app,
        json_request(
            "POST",
            "/ssf/verify",
            Some(&manager),
            Some(json!({"stream_id": id, "state": "kept"})),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = poll(&app, &manager, json!({"returnImmediately": true})).await;
    assert_eq!(r.json, json!({"sets": {}, "moreAvailable": false}));
    let t = Instant::now();
    let r = poll(&app, &manager, json!({})).await;
    assert_eq!(r.json["sets"], json!({}));
    assert!(
        t.elapsed() >= Duration::from_millis(2500),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(send(&app, status("enabled")).await.status, StatusCode::OK);
    let r = poll(&app, &manager, json!({"returnImmediately": true})).await;
    let sets: Vec<Value> = r.json["sets"]
        .as_object()
        .unwrap()
        .values()
        .map(|s| payload(s.as_str().unwrap()))
        .collect();
    // the paused status's stream-updated, the verification, then the enabled stream-updated
    assert!(
        sets.iter()
            .any(|c| c["events"][VERIFICATION]["state"] == "kept"),
        "{sets:?}"
    );
    let updated = "https://schemas.openid.net/secevent/ssf/event-type/stream-updated";
    assert!(
        sets.iter()
            .any(|c| c["events"][updated]["status"] == "paused")
    );
}
