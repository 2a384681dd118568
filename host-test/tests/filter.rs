//! The gateway filter (filter.wasm) driven through the harness: configuration, JWKS refresh once
//! per Envoy, allow and deny decisions, claim headers, the clock.

mod support;

use host_test::{CallAnswer, HOSTCALLS, LogLevel, Outcome, Request, Response};
use serde_json::json;
use std::time::Duration;
use support::{AUDIENCE, ISSUER, Issuer, JWKS_PATH, claims, config, envoy_with, host, ready_envoy};

#[test]
fn the_filter_imports_only_hostcalls_the_harness_defines() {
    let host = host();
    let unknown: Vec<String> = host
        .imports()
        .into_iter()
        .filter(|i| i.starts_with("env."))
        .filter(|i| !HOSTCALLS.contains(&i.trim_start_matches("env.")))
        .collect();
    assert!(unknown.is_empty(), "unknown hostcalls: {unknown:?}");
    assert!(
        host.exports()
            .iter()
            .any(|e| e == "proxy_abi_version_0_2_1")
    );
}

#[test]
fn every_vm_is_configured_and_ticks() {
    let envoy = envoy_with(&config(), 2);
    assert!(envoy.configured(), "{:?}", envoy.start_reports());
    assert_eq!(envoy.vms().len(), 3);
    let period = envoy.vms()[0].tick_period();
    assert!(
        period.is_some_and(|p| p <= Duration::from_secs(1)),
        "{period:?}"
    );
    for vm in envoy.vms() {
        assert_eq!(vm.tick_period(), period, "{}", vm.name());
    }
    let configured = envoy.logs_containing(LogLevel::Info, "configured");
    assert_eq!(configured.len(), 3, "{configured:#?}");
}

#[test]
fn an_invalid_configuration_is_refused_with_the_reason_logged() {
    let bad = json!({"providers": [{"issuer": ISSUER, "audiences": [AUDIENCE],
                                     "algorithms": ["none"], "jwks": {"cluster": "idp", "path": JWKS_PATH}}]});
    let mut envoy = envoy_with(&bad, 1);
    assert!(!envoy.configured());
    assert!(
        envoy
            .start_reports()
            .iter()
            .all(|r| r.vm_started && !r.configured)
    );
    let logged = envoy.logs_containing(LogLevel::Error, "algorithms");
    assert!(!logged.is_empty(), "{:#?}", envoy.logs());

    // Unknown fields are refused too.
    let typo = json!({"providers": [], "realmm": "x"});
    assert!(!envoy_with(&typo, 1).configured());

    // A request reaching a refused plugin fails closed.
    let outcome = envoy.request(Request::get("/api/hello")).unwrap();
    assert_eq!(outcome.status(), Some(503), "{outcome:#?}");
}

#[test]
fn the_jwks_is_fetched_once_per_period_for_the_whole_envoy() {
    let issuer = Issuer::es256(7, "k1");
    let mut envoy = envoy_with(&config(), 3);
    assert!(envoy.pending_http_calls().is_empty());

    envoy.advance(Duration::from_secs(1)).unwrap();
    let calls = envoy.pending_http_calls();
    assert_eq!(calls.len(), 1, "{calls:#?}");
    let call = &calls[0];
    assert_eq!(call.cluster, "idp");
    assert_eq!(call.method(), Some("GET"));
    assert_eq!(call.path(), Some(JWKS_PATH));
    assert!(call.timeout.is_some());

    // While the fetch is in flight, nobody else starts one.
    envoy.advance(Duration::from_secs(3)).unwrap();
    assert_eq!(envoy.pending_http_calls().len(), 1);
    envoy
        .respond(call.id, Response::json(200, issuer.jwks().to_string()))
        .unwrap();

    // Nothing more until the refresh period (60 s after the answer) has passed…
    envoy.advance(Duration::from_secs(50)).unwrap();
    assert!(envoy.pending_http_calls().is_empty());
    // …then exactly one refresh (answered before its 5 s timeout).
    envoy.advance(Duration::from_secs(12)).unwrap();
    assert_eq!(envoy.pending_http_calls().len(), 1);
    assert_eq!(envoy.dispatched_http_calls().len(), 2);
    assert_eq!(envoy.metric("oauth2gw.jwks_fetch_ok"), Some(1));
}

#[test]
fn a_valid_token_is_forwarded_with_claim_headers_on_every_worker() {
    let issuer = Issuer::es256(7, "k1");
    let mut envoy = ready_envoy(&issuer, 2);
    let token = issuer.token(&claims(envoy.clock().unix_seconds()));
    for _ in 0..2 {
        let outcome = envoy
            .request(
                Request::get("/api/hello")
                    .bearer(&token)
                    .header("x-auth-sub", "mallory"),
            )
            .unwrap();
        let upstream = outcome.upstream().unwrap_or_else(|| panic!("{outcome:#?}"));
        assert_eq!(
            upstream.request_headers.get_all("x-auth-sub"),
            vec!["alice"]
        );
        assert_eq!(upstream.header("x-auth-client-id"), Some("demo-client"));
        assert_eq!(upstream.header("x-auth-scope"), Some("read write"));
        assert_eq!(upstream.header(":path"), Some("/api/hello"));
        assert_eq!(outcome.status(), Some(200));
    }
    assert_eq!(envoy.metric("oauth2gw.allowed"), Some(2));
}

#[test]
fn requests_without_a_usable_token_get_401_with_a_bearer_challenge() {
    let issuer = Issuer::es256(7, "k1");
    let other = Issuer::es256(9, "k1");
    let mut envoy = ready_envoy(&issuer, 1);
    let now = envoy.clock().unix_seconds();
    let mut wrong_aud = claims(now);
    wrong_aud["aud"] = json!("another-api");

    let cases = [
        ("no token", Request::get("/api/hello")),
        ("garbage", Request::get("/api/hello").bearer("not-a-jwt")),
        (
            "signed by another key",
            Request::get("/api/hello").bearer(&other.token(&claims(now))),
        ),
        (
            "wrong audience",
            Request::get("/api/hello").bearer(&issuer.token(&wrong_aud)),
        ),
    ];
    for (what, request) in cases {
        let outcome = envoy.request(request).unwrap();
        let local = outcome
            .local_reply()
            .unwrap_or_else(|| panic!("{what}: {outcome:#?}"));
        assert!(
            matches!(local.reply.status, 401 | 403),
            "{what}: {}",
            local.reply.status
        );
        let challenge = local.reply.header("www-authenticate").unwrap_or_default();
        assert!(challenge.starts_with("Bearer"), "{what}: {challenge}");
        if what != "no token" {
            assert!(challenge.contains("invalid_token"), "{what}: {challenge}");
        }
        assert!(
            !local.reply.body_text().contains("eyJ"),
            "{what}: no token material in the body"
        );
    }
    assert_eq!(envoy.metric("oauth2gw.allowed"), Some(0));
}

#[test]
fn a_token_expires_when_the_clock_moves_past_exp() {
    let issuer = Issuer::es256(7, "k1");
    let mut envoy = ready_envoy(&issuer, 1);
    let token = issuer.token(&claims(envoy.clock().unix_seconds()));
    assert!(
        envoy
            .request(Request::get("/").bearer(&token))
            .unwrap()
            .is_continued()
    );

    // exp is now + 300, leeway 30 by default.
    envoy.clock().advance(Duration::from_secs(400));
    let outcome = envoy.request(Request::get("/").bearer(&token)).unwrap();
    assert_eq!(outcome.status(), Some(401), "{outcome:#?}");
}

#[test]
fn before_any_jwks_arrives_requests_are_refused() {
    let issuer = Issuer::es256(7, "k1");
    let mut envoy = envoy_with(&config(), 1);
    let token = issuer.token(&claims(envoy.clock().unix_seconds()));
    let outcome = envoy.request(Request::get("/").bearer(&token)).unwrap();
    assert!(!outcome.is_continued(), "{outcome:#?}");
}

#[test]
fn a_failed_refresh_keeps_the_previous_keys() {
    let issuer = Issuer::es256(7, "k1");
    let mut envoy = ready_envoy(&issuer, 1);
    envoy.advance(Duration::from_secs(61)).unwrap();
    let refresh = envoy.pending_http_calls();
    assert_eq!(refresh.len(), 1);
    envoy
        .respond(refresh[0].id, Response::new(500).body("boom"))
        .unwrap();
    assert_eq!(envoy.metric("oauth2gw.jwks_fetch_failed"), Some(1));
    assert!(
        !envoy
            .logs_containing(LogLevel::Warn, "keeping previous keys")
            .is_empty()
    );

    let token = issuer.token(&claims(envoy.clock().unix_seconds()));
    assert!(
        envoy
            .request(Request::get("/").bearer(&token))
            .unwrap()
            .is_continued()
    );
}

#[test]
fn a_timed_out_fetch_is_answered_by_envoy_with_504() {
    let mut envoy = envoy_with(&config(), 1);
    envoy.advance(Duration::from_secs(1)).unwrap();
    assert_eq!(envoy.pending_http_calls().len(), 1);
    // The default timeout is 5 s: the harness answers 504 like Envoy's async client.
    envoy.advance(Duration::from_secs(6)).unwrap();
    assert!(
        envoy
            .dispatched_http_calls()
            .iter()
            .all(|c| c.cluster == "idp")
    );
    assert_eq!(envoy.metric("oauth2gw.jwks_fetch_failed"), Some(1));
}

#[test]
fn key_rotation_is_picked_up_by_an_early_refresh() {
    let old = Issuer::es256(7, "k1");
    let new = Issuer::es256(8, "k2");
    let mut envoy = ready_envoy(&old, 2);
    // Early refreshes are throttled to one per 10 s after a fetch by default.
    envoy.advance(Duration::from_secs(11)).unwrap();
    let token = new.token(&claims(envoy.clock().unix_seconds()));
    // Unknown kid: refused, and an early refresh is requested.
    let outcome = envoy.request(Request::get("/").bearer(&token)).unwrap();
    assert_eq!(outcome.status(), Some(401));
    envoy.advance(Duration::from_secs(1)).unwrap();
    let calls = envoy.pending_http_calls();
    assert_eq!(calls.len(), 1, "{calls:#?}");
    let both = support::jwks(&[&old, &new]).to_string();
    envoy
        .respond(calls[0].id, Response::json(200, both))
        .unwrap();
    // Every worker sees the new key (through shared data) without fetching itself.
    for _ in 0..2 {
        let outcome = envoy.request(Request::get("/").bearer(&token)).unwrap();
        assert!(outcome.is_continued(), "{outcome:#?}");
    }
}

/// `jwks.min_early_refresh_seconds` is the throttle: within that gap after a fetch a token with
/// an unknown `kid` fetches nothing (and is not remembered for later); after it, one does.
#[test]
fn the_configured_early_refresh_gap_is_honoured() {
    let old = Issuer::es256(7, "k1");
    let new = Issuer::es256(8, "k2");
    let both = support::jwks(&[&old, &new]).to_string();
    for gap in [2, 5] {
        let mut config = config();
        config["providers"][0]["jwks"]["min_early_refresh_seconds"] = json!(gap);
        let mut envoy = envoy_with(&config, 2);
        envoy.advance(Duration::from_secs(1)).unwrap();
        let answered = envoy
            .respond_all("idp", &Response::json(200, old.jwks().to_string()))
            .unwrap();
        assert_eq!(answered, 1);
        let token = new.token(&claims(envoy.clock().unix_seconds()));

        // Half a second before the gap ends: refused, no fetch, on either worker.
        envoy
            .advance(Duration::from_millis(gap * 1_000 - 500))
            .unwrap();
        for _ in 0..2 {
            let outcome = envoy.request(Request::get("/").bearer(&token)).unwrap();
            assert_eq!(outcome.status(), Some(401), "gap {gap}: {outcome:#?}");
        }
        envoy.advance(Duration::from_secs(1)).unwrap();
        assert_eq!(
            envoy.dispatched_http_calls().len(),
            1,
            "gap {gap}: no early fetch within the gap, nor after it for a throttled request"
        );

        // After the gap: the next unknown kid fetches at once (the next tick), once.
        let outcome = envoy.request(Request::get("/").bearer(&token)).unwrap();
        assert_eq!(outcome.status(), Some(401), "gap {gap}");
        envoy.advance(Duration::from_millis(200)).unwrap();
        let calls = envoy.pending_http_calls();
        assert_eq!(calls.len(), 1, "gap {gap}: {calls:#?}");
        envoy
            .respond(calls[0].id, Response::json(200, both.clone()))
            .unwrap();
        for _ in 0..2 {
            let outcome = envoy.request(Request::get("/").bearer(&token)).unwrap();
            assert!(outcome.is_continued(), "gap {gap}: {outcome:#?}");
        }
        assert_eq!(envoy.dispatched_http_calls().len(), 2, "gap {gap}");
        assert_eq!(envoy.metric("oauth2gw.denied.unknown_key"), Some(3));
    }
}

#[test]
fn a_reset_http_call_is_survivable() {
    let mut envoy = envoy_with(&config(), 1);
    envoy.advance(Duration::from_secs(1)).unwrap();
    let call = envoy.pending_http_calls()[0].clone();
    let result = envoy.answer(call.id, CallAnswer::Reset);
    // Envoy gives no response headers on a reset: reading `:status` then is BadArgument, which
    // the SDK turns into a panic. The filter must not read it (it did, until this test).
    assert!(result.is_ok(), "{result:?}");
    // ... and it counts the failure and tries again later.
    assert_eq!(envoy.metric("oauth2gw.jwks_fetch_failed"), Some(1));
}

#[test]
fn the_harness_counts_fuel_per_request() {
    let issuer = Issuer::es256(7, "k1");
    let mut envoy = ready_envoy(&issuer, 1);
    let token = issuer.token(&claims(envoy.clock().unix_seconds()));
    let id = envoy
        .worker(0)
        .send(Request::get("/").bearer(&token))
        .unwrap();
    let fuel = envoy.worker(0).stream_fuel(id).unwrap();
    assert!(
        fuel > 10_000,
        "an ES256 verification costs real work: {fuel}"
    );
    match envoy.worker(0).outcome(id) {
        Outcome::Continued(_) => {}
        other => panic!("{other:#?}"),
    }
}

/// The same decisions with Envoy's `verify_signature` and without it (RustCrypto in Wasm).
#[test]
fn signatures_are_checked_natively_when_the_host_can_and_in_wasm_otherwise() {
    let issuer = Issuer::es256(7, "k1");
    let rogue = Issuer::es256(8, "k1");
    for native in [true, false] {
        let mut options = host_test::EnvoyOptions::new()
            .workers(1)
            .plugin_name("oauth2-gateway")
            .clusters(["idp", "resource-server"])
            .plugin_config(config().to_string());
        if !native {
            options = options.without_foreign_function("verify_signature");
        }
        let mut envoy = support::host().envoy(options).unwrap();
        envoy.advance(Duration::from_secs(1)).unwrap();
        envoy
            .respond_all("idp", &Response::json(200, issuer.jwks().to_string()))
            .unwrap();
        let now = envoy.clock().unix_seconds();
        let good = envoy
            .request(Request::get("/").bearer(&issuer.token(&claims(now))))
            .unwrap();
        assert!(good.is_continued(), "native={native}: {good:#?}");
        let forged = envoy
            .request(Request::get("/").bearer(&rogue.token(&claims(now))))
            .unwrap();
        assert_eq!(forged.status(), Some(401), "native={native}");
        let counted = envoy.metric("oauth2gw.verify_native").unwrap_or(0);
        assert_eq!(
            counted > 0,
            native,
            "native={native}: verify_native={counted}"
        );
    }
}

/// What the logout sequence sends: the token to the IDP's RFC 7009 endpoint with the gateway's
/// client credentials, the session to the resource server with its shared secret.
#[test]
fn logout_calls_carry_the_credentials_and_the_session() {
    let issuer = Issuer::es256(7, "k1");
    let mut config = config();
    config["idp_client"] =
        json!({"client_id": "gateway", "client_secret": "gateway-secret-0123456789"});
    config["logout"] = json!({
        "revoke": {"cluster": "idp", "path": "/oauth2/revoke"},
        "resource_server": {"cluster": "resource-server", "path": "/internal/sessions/revoke",
                            "secret_header": "x-gateway-secret", "secret": "s3cret-s3cret-s3cret"}
    });
    let mut envoy = envoy_with(&config, 1);
    envoy.advance(Duration::from_secs(1)).unwrap();
    envoy
        .respond_all("idp", &Response::json(200, issuer.jwks().to_string()))
        .unwrap();
    let token = issuer.token(&claims(envoy.clock().unix_seconds()));
    let outcome = envoy
        .request(Request::post("/oauth2/logout").bearer(&token))
        .unwrap();
    let Outcome::Paused(stream) = outcome else {
        panic!("logout waits for its calls: {outcome:#?}");
    };
    let calls = envoy.pending_http_calls();
    assert_eq!(calls.len(), 2, "{calls:#?}");
    let idp = calls.iter().find(|c| c.cluster == "idp").unwrap();
    assert_eq!(idp.method(), Some("POST"));
    assert_eq!(idp.path(), Some("/oauth2/revoke"));
    assert!(
        idp.headers
            .get("authorization")
            .unwrap_or("")
            .starts_with("Basic ")
    );
    let form = String::from_utf8_lossy(&idp.body).into_owned();
    assert!(form.contains(&format!("token={token}")), "{form}");
    let rs = calls
        .iter()
        .find(|c| c.cluster == "resource-server")
        .unwrap();
    assert_eq!(
        rs.headers.get("x-gateway-secret"),
        Some("s3cret-s3cret-s3cret")
    );
    let session: serde_json::Value = serde_json::from_slice(&rs.body).unwrap();
    assert_eq!(session, json!({"sid": "sid-1", "sub": "alice"}));

    // Answer in the "wrong" order: the resource server first.
    envoy.respond(rs.id, Response::new(204)).unwrap();
    assert!(matches!(
        envoy.worker(0).outcome(stream),
        Outcome::Paused(_)
    ));
    envoy.respond(idp.id, Response::new(200)).unwrap();
    let done = envoy.worker(0).outcome(stream);
    assert_eq!(done.status(), Some(200), "{done:#?}");
    assert!(
        done.reply()
            .unwrap()
            .body_text()
            .contains("logout successful")
    );
    assert_eq!(envoy.metric("oauth2gw.logout_ok"), Some(1));
}
