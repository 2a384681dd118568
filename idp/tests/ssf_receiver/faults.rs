//! Bad SETs and bad transmitters: every bad SET refused once with its RFC 8935 code (push `400
//! {"err"}`, poll `setErrs`) and nothing applied, unknown events acknowledged and ignored,
//! garbage, HTTP 500 and too-slow answers survived with nothing lost, a transmitter whose
//! configuration names another issuer, a paused stream, `stream-updated`.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_pushed_set_is_refused_with_its_code_and_nothing_is_applied() {
    let tx = Transmitter::start(AUD, None).await;
    let hub = push_hub(&tx, None).await;
    let subject = session_subject("s-bad", "alice");
    let events = json!({SESSION_REVOKED: {}});
    let c = |change: Value| tx.claims(subject.clone(), events.clone(), change);
    let es_header = json!({"alg": "ES256", "typ": "secevent+jwt", "kid": "tx-es"});
    let used = tx.es256(&c(json!({"jti": "used-once"})));
    assert_eq!(tx.push(&used).await.0, 202);
    let before = feed(&hub.app).await;
    let none = format!(
        "{}.{}.",
        test_support::b64(br#"{"alg":"none","typ":"secevent+jwt"}"#),
        test_support::b64(c(json!({})).to_string().as_bytes())
    );
    let cases: Vec<(&str, &str, String)> = vec![
        (
            "invalid_request",
            "the SET's typ is not secevent+jwt",
            tx.es.sign(
                &json!({"alg": "ES256", "typ": "JWT", "kid": "tx-es"}),
                &c(json!({})),
            ),
        ),
        (
            "invalid_key",
            "the SET's signature is invalid",
            tx.rogue.sign(&es_header, &c(json!({}))),
        ),
        (
            "invalid_key",
            "the SET's algorithm is not accepted (RS256 or ES256)",
            none,
        ),
        (
            "invalid_issuer",
            "the SET's issuer is not the transmitter",
            tx.es256(&c(json!({"iss": "http://127.0.0.1:1"}))),
        ),
        (
            "invalid_audience",
            "the SET's audience is not this receiver",
            tx.es256(&c(json!({"aud": "https://elsewhere"}))),
        ),
        (
            "invalid_request",
            "the SET's jti was used by another SET",
            tx.es256(&c(json!({"jti": "used-once", "txn": "another"}))),
        ),
        (
            "invalid_request",
            "the SET carries a sub claim (SSF uses sub_id)",
            tx.es256(&c(json!({"sub": "alice"}))),
        ),
        (
            "invalid_request",
            "the SET carries an exp claim",
            tx.es256(&c(json!({"exp": now() + 60}))),
        ),
        (
            "invalid_request",
            "the SET's sub_id or subject is malformed",
            tx.es256(&c(json!({"sub_id": {"format": "iss_sub", "iss": OP}}))),
        ),
        (
            "invalid_request",
            "the SET was issued too long ago",
            tx.es256(&c(json!({"iat": now() - 200_000}))),
        ),
        (
            "invalid_request",
            "the SET is larger than 32 KiB",
            "a".repeat(40_000),
        ),
        (
            "invalid_key",
            "the SET names no key of the transmitter",
            tx.es.sign(
                &json!({"alg": "ES256", "typ": "secevent+jwt", "kid": "nope"}),
                &c(json!({})),
            ),
        ),
    ];
    for (err, description, set) in cases {
        let (status, body) = tx.push(&set).await;
        assert_eq!(status, 400, "{description}: {body}");
        assert_eq!(body, json!({"err": err, "description": description}));
    }
    for (what, content_type, auth) in [
        ("wrong content type", "application/json", None),
        (
            "wrong authorization",
            "application/secevent+jwt",
            Some("Bearer guessed-0123456789abcdefgh"),
        ),
    ] {
        let set = tx.es256(&c(json!({})));
        let (status, body) = tx.push_raw(set.into_bytes(), content_type, auth).await;
        assert_eq!(status, 400, "{what}: {body}");
        let want = if auth.is_some() {
            "authentication_failed"
        } else {
            "invalid_request"
        };
        assert_eq!(body["err"], want, "{what}");
    }
    // an unknown event: acknowledged (202), counted, nothing applied
    let unknown = tx.es256(&tx.claims(
        json!({"format": "iss_sub", "iss": OP, "sub": "alice"}),
        json!({"https://example.com/event-type/something-new": {}}),
        json!({}),
    ));
    assert_eq!(tx.push(&unknown).await.0, 202);
    assert_eq!(feed(&hub.app).await, before, "nothing applied");
    let text = metrics(&hub.app).await;
    for line in [
        "idp_federation_requests_total{endpoint=\"ssf_event\",outcome=\"unknown_event\"} 1",
        "idp_federation_requests_total{endpoint=\"ssf_push\",outcome=\"bad_signature\"} 1",
        "idp_federation_requests_total{endpoint=\"ssf_push\",outcome=\"jti_reused\"} 1",
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_polled_sets_are_reported_in_set_errs_and_the_good_ones_acked() {
    let tx = Transmitter::start(AUD, None).await;
    let hub = start_hub(
        &tx,
        &format!("delivery = \"poll\"\n{}", bearer()),
        None,
        None,
    )
    .await;
    sets_up(&tx).await;
    let subject = session_subject("s-poll", "alice");
    let c = |change: Value| tx.claims(subject.clone(), json!({SESSION_REVOKED: {}}), change);
    let bad_typ = tx.queue(&tx.es.sign(
        &json!({"alg": "ES256", "typ": "JWT", "kid": "tx-es"}),
        &c(json!({})),
    ));
    let bad_aud = tx.queue(&tx.es256(&c(json!({"aud": "https://elsewhere"}))));
    let with_sub = tx.queue(&tx.es256(&c(json!({"sub": "alice"}))));
    tx.queue_as("not-its-jti", &tx.es256(&c(json!({}))));
    let unknown = tx.queue(&tx.es256(&tx.claims(
        subject.clone(),
        json!({"https://example.com/new": {}}),
        json!({}),
    )));
    tx.queue_as("oversized", &"a".repeat(40_000));
    let long_jti = "j".repeat(300);
    tx.queue_as(&long_jti, &tx.es256(&c(json!({"jti": long_jti.clone()}))));
    let good = tx.queue(&tx.es256(&c(json!({}))));
    assert!(
        tx.until(Duration::from_secs(10), |t| t.pending() == 0)
            .await,
        "still pending"
    );
    let errs = tx.set_errs();
    assert_eq!(errs[&bad_typ]["err"], "invalid_request");
    assert_eq!(errs[&bad_aud]["err"], "invalid_audience");
    assert_eq!(errs[&with_sub]["err"], "invalid_request");
    assert_eq!(errs["not-its-jti"]["err"], "invalid_request");
    assert_eq!(
        errs["oversized"],
        json!({"err": "invalid_request", "description": "the SET is larger than 32 KiB"})
    );
    assert_eq!(errs[&long_jti]["err"], "invalid_request");
    assert_eq!(errs.len(), 6, "{errs:?}");
    let acks = tx.acks();
    assert!(acks.contains(&unknown) && acks.contains(&good), "{acks:?}");
    let revoked = feed(&hub.app).await;
    assert_eq!(
        revoked.as_array().unwrap().len(),
        1,
        "only the good SET: {revoked}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_from_the_transmitter_is_survived_and_nothing_is_lost() {
    let tx = Transmitter::start(AUD, None).await;
    let hub = start_hub(
        &tx,
        &format!("delivery = \"poll\"\n{}", bearer()),
        None,
        None,
    )
    .await;
    sets_up(&tx).await;
    tx.set_fault(PollFault::Garbage);
    // the long poll in flight ends (5 s at most); the next answers are garbage
    let app = hub.app.clone();
    wait_for("a garbage answer", Duration::from_secs(10), async || {
        metrics(&app).await.contains("outcome=\"garbage_answer\"")
    })
    .await;
    let jti = tx.queue(&session_revoked(&tx, "after-garbage", now()));
    tx.set_fault(PollFault::ServerError);
    wait_for("an HTTP 500", Duration::from_secs(10), async || {
        metrics(&app)
            .await
            .contains("outcome=\"transmitter_error\"")
    })
    .await;
    assert!(feed(&hub.app).await.as_array().unwrap().is_empty());
    assert!(!tx.acks().contains(&jti));
    tx.set_fault(PollFault::None);
    assert!(
        tx.until(Duration::from_secs(20), |t| t.acks().contains(&jti))
            .await
    );
    assert_eq!(feed(&hub.app).await[0]["sid"], "after-garbage");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transmitter_answering_too_slowly_is_given_up_on_and_nothing_is_lost() {
    let tx = Transmitter::start(AUD, None).await;
    let delivery = format!(
        "delivery = \"poll\"\npoll_mode = \"return_immediately\"\npoll_interval_seconds = 1\nrequest_timeout_seconds = 1\n{}",
        bearer()
    );
    let hub = start_hub(&tx, &delivery, None, None).await;
    sets_up(&tx).await;
    tx.set_fault(PollFault::Slow(2_500));
    let jti = tx.queue(&session_revoked(&tx, "after-slow", now()));
    let app = hub.app.clone();
    wait_for("a timed-out poll", Duration::from_secs(10), async || {
        metrics(&app)
            .await
            .contains("outcome=\"transmitter_unreachable\"")
    })
    .await;
    assert!(feed(&hub.app).await.as_array().unwrap().is_empty());
    assert!(!tx.acks().contains(&jti));
    tx.set_fault(PollFault::None);
    assert!(
        tx.until(Duration::from_secs(20), |t| t.acks().contains(&jti))
            .await
    );
    assert_eq!(feed(&hub.app).await[0]["sid"], "after-slow");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_issuer_or_a_paused_stream_is_a_clear_error_and_nothing_is_polled() {
    let tx = Transmitter::start(AUD, Some("https://impostor.example")).await;
    let hub = start_hub(
        &tx,
        &format!("delivery = \"poll\"\n{}", bearer()),
        None,
        None,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        tx.stream().is_none(),
        "no stream with a transmitter of another issuer"
    );
    assert!(metrics(&hub.app).await.contains("outcome=\"setup_failed\""));

    let tx = Transmitter::start(AUD, None).await;
    tx.set_status("paused");
    let hub = start_hub(
        &tx,
        &format!("delivery = \"poll\"\n{}", bearer()),
        None,
        None,
    )
    .await;
    sets_up(&tx).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(tx.polls(), 0, "a paused stream is not polled");
    assert!(metrics(&hub.app).await.contains(
        "idp_federation_requests_total{endpoint=\"ssf_stream\",outcome=\"stream_paused\"} 1"
    ));
    assert_eq!(hub.state.hub.ssf.stream("tx").unwrap().status(), "paused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_updated_event_is_logged_counted_and_acknowledged() {
    let tx = Transmitter::start(AUD, None).await;
    let hub = start_hub(
        &tx,
        &format!("delivery = \"poll\"\n{}", bearer()),
        None,
        None,
    )
    .await;
    sets_up(&tx).await;
    let stream_id = tx.stream().unwrap()["stream_id"].clone();
    // the transmitter pauses the stream and says so
    tx.set_status("paused");
    let paused = tx.queue(&tx.es256(&tx.claims(
        json!({"format": "opaque", "id": stream_id}),
        json!({ssf_transmitter::STREAM_UPDATED: {"status": "paused", "reason": "maintenance"}}),
        json!({}),
    )));
    assert!(
        tx.until(Duration::from_secs(10), |t| t.acks().contains(&paused))
            .await
    );
    let state = Arc::clone(&hub.state);
    wait_for("status paused", Duration::from_secs(5), async || {
        state.hub.ssf.stream("tx").unwrap().status() == "paused"
    })
    .await;
    assert!(
        metrics(&hub.app)
            .await
            .contains("outcome=\"stream_paused\"}")
    );
    // set up again: the transmitter's status endpoint says paused too, so it stays paused
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(state.hub.ssf.stream("tx").unwrap().status(), "paused");
}
