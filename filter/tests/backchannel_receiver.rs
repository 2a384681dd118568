//! The gateway's back-channel logout receiver, natively: the request checks, a valid token
//! becoming a cut-off that refuses that session's tokens issued before it (and not a later login),
//! replays, the signature-check budget, and "nothing changes" on every refusal.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use common::{AUDIENCE, Issuer, KeySetOf, NOW};
use filter::config::FilterConfig;
use filter::jose::jwk::KeySet;
use filter::logout::backchannel::EVENT;
use filter::logout::backchannel_receiver::{
    Received, ReceiverAnswer, ReceiverContext, VerificationBudget, check_request, hub_verdict,
    is_backchannel_path, receive,
};
use filter::shared_state::MemoryShared;
use filter::shared_state::denylist::{Denylist, TokenIds};
use filter::shared_state::denylist_store::record;
use serde_json::{Value, json};

const OP: &str = "https://op.example";

fn op() -> Issuer {
    Issuer::es256(5, "op-key")
}

fn config(extra: Value) -> FilterConfig {
    let mut base = json!({
        "providers": [{
            "issuer": OP, "audiences": [AUDIENCE], "algorithms": ["ES256", "RS256"],
            "inline_jwks": op().jwks(), "backchannel_logout_audiences": ["webapp"],
            "max_token_lifetime_seconds": 600
        }],
        "backchannel_logout": {"max_verifications_per_second": 3}
    });
    test_support::merge(&mut base, extra);
    FilterConfig::from_json(base.to_string().as_bytes()).unwrap()
}

fn logout_token(change: Value) -> String {
    let mut claims = json!({
        "iss": OP, "aud": "webapp", "iat": NOW - 2, "exp": NOW + 118, "jti": "lt-1",
        "sid": "sid-9", "events": {EVENT: {}}
    });
    test_support::merge(&mut claims, change);
    // A null in `change` removes the claim.
    claims.as_object_mut().unwrap().retain(|_, v| !v.is_null());
    let op = op();
    op.sign(
        &json!({"alg": "ES256", "typ": "logout+jwt", "kid": op.kid()}),
        &claims,
    )
}

fn form(token: &str) -> Vec<u8> {
    format!("logout_token={token}").into_bytes()
}

fn answered(answer: &ReceiverAnswer) -> (u32, Value) {
    let body = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
    (answer.status, body)
}

struct Gateway {
    config: FilterConfig,
    keys: KeySet,
    denylist: MemoryShared,
    replay: MemoryShared,
    budget: VerificationBudget,
}

impl Gateway {
    fn new(config: FilterConfig) -> Gateway {
        Gateway {
            config,
            keys: op().key_set(),
            denylist: MemoryShared::default(),
            replay: MemoryShared::default(),
            budget: VerificationBudget::default(),
        }
    }

    fn post(&mut self, body: &[u8], now: u64) -> (u32, Value) {
        match self.receive(body, now) {
            Received::Answer(answer) => answered(&answer),
            Received::Forward(request) => panic!("forwarded: {request:?}"),
        }
    }

    fn receive(&mut self, body: &[u8], now: u64) -> Received {
        let sets = [&self.keys];
        let cx = ReceiverContext {
            keys: &sets,
            now,
            native: None,
            replay: &self.replay,
        };
        let denylist = &self.denylist;
        receive(&self.config, cx, body, &mut self.budget, |cutoff| {
            record(denylist, &[*cutoff], now).is_ok()
        })
    }

    fn refuses(&self, sid: &str, iat: u64) -> bool {
        let mut list = Denylist::default();
        list.sync(&self.denylist);
        list.refuses(&TokenIds::of(
            OP,
            Some("at-1"),
            Some(sid),
            Some("alice"),
            Some(iat),
        ))
    }
}

#[test]
fn a_valid_logout_token_cuts_off_its_session_and_a_new_login_passes() {
    let mut gw = Gateway::new(config(json!({})));
    assert!(!gw.refuses("sid-9", NOW - 60));
    assert_eq!(gw.post(&form(&logout_token(json!({}))), NOW).0, 200);
    assert!(gw.refuses("sid-9", NOW - 60), "a token of that session");
    assert!(
        gw.refuses("sid-9", NOW - 2),
        "issued at the logout token's iat"
    );
    assert!(
        !gw.refuses("sid-9", NOW + 5),
        "a later login reusing the sid"
    );
    assert!(!gw.refuses("sid-other", NOW - 60));
}

#[test]
fn a_token_naming_only_the_subject_cuts_off_every_session_of_that_user() {
    let mut gw = Gateway::new(config(json!({})));
    let token = logout_token(json!({"sid": null, "sub": "alice", "jti": "lt-sub"}));
    assert_eq!(gw.post(&form(&token), NOW).0, 200);
    assert!(gw.refuses("any-session", NOW - 60));
}

#[test]
fn a_replayed_token_is_refused_and_changes_nothing() {
    let mut gw = Gateway::new(config(json!({})));
    let token = logout_token(json!({}));
    assert_eq!(gw.post(&form(&token), NOW).0, 200);
    let (status, body) = gw.post(&form(&token), NOW + 1);
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_request");
}

#[test]
fn every_refusal_is_a_400_with_the_standard_error_and_nothing_is_stored() {
    let other = Issuer::es256(6, "op-key");
    let forged = other.sign(
        &json!({"alg": "ES256", "typ": "logout+jwt", "kid": "op-key"}),
        &json!({"iss": OP, "aud": "webapp", "iat": NOW, "jti": "f", "sid": "sid-9",
                "events": {EVENT: {}}}),
    );
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "wrong aud",
            form(&logout_token(json!({"aud": "someone-else"}))),
        ),
        (
            "wrong iss",
            form(&logout_token(json!({"iss": "https://evil"}))),
        ),
        ("another key", form(&forged)),
        ("nonce", form(&logout_token(json!({"nonce": "n"})))),
        ("no events", form(&logout_token(json!({"events": null})))),
        ("no sid nor sub", form(&logout_token(json!({"sid": null})))),
        ("expired", form(&logout_token(json!({"exp": NOW - 100})))),
        (
            "stale",
            form(&logout_token(json!({"iat": NOW - 5_000, "exp": null}))),
        ),
        ("no form", b"token=abc".to_vec()),
        ("empty", Vec::new()),
        ("oversized", vec![b'a'; 9_000]),
    ];
    for (why, body) in cases {
        let mut gw = Gateway::new(config(json!({})));
        let (status, answer) = gw.post(&body, NOW);
        assert_eq!(status, 400, "{why}");
        assert_eq!(answer["error"], "invalid_request", "{why}");
        assert!(answer["error_description"].is_string(), "{why}");
        assert!(!gw.refuses("sid-9", NOW - 60), "{why}: nothing stored");
    }
}

#[test]
fn alg_none_is_refused_before_any_signature_check() {
    let mut gw = Gateway::new(config(json!({})));
    let header = test_support::b64(br#"{"alg":"none","typ":"logout+jwt"}"#);
    let payload = test_support::b64(
        json!({"iss": OP, "aud": "webapp", "iat": NOW, "jti": "n", "sid": "sid-9",
               "events": {EVENT: {}}})
        .to_string()
        .as_bytes(),
    );
    let (status, _) = gw.post(&form(&format!("{header}.{payload}.")), NOW);
    assert_eq!(status, 400);
    assert!(!gw.refuses("sid-9", NOW - 60));
}

#[test]
fn a_flood_spends_at_most_the_budget_of_signature_checks_per_second() {
    let mut gw = Gateway::new(config(json!({})));
    let mut statuses = Vec::new();
    for i in 0..6 {
        let token = logout_token(json!({"jti": format!("flood-{i}"), "aud": "nobody"}));
        statuses.push(gw.post(&form(&token), NOW).0);
    }
    assert_eq!(statuses, [400, 400, 400, 429, 429, 429]);
    // A bogus issuer costs no signature check: refused at once, not throttled.
    assert_eq!(
        gw.post(&form(&logout_token(json!({"iss": "https://evil"}))), NOW)
            .0,
        400
    );
    // The next second has a budget again, and a valid token goes through.
    assert_eq!(gw.post(&form(&logout_token(json!({}))), NOW + 1).0, 200);
}

#[test]
fn a_cut_off_that_cannot_be_stored_is_a_503_and_the_token_may_come_again() {
    let mut gw = Gateway::new(config(json!({})));
    let token = logout_token(json!({}));
    let sets = [&gw.keys];
    let cx = ReceiverContext {
        keys: &sets,
        now: NOW,
        native: None,
        replay: &gw.replay,
    };
    let Received::Answer(answer) =
        receive(&gw.config, cx, &form(&token), &mut gw.budget, |_| false)
    else {
        panic!("not answered");
    };
    assert_eq!(answer.status, 503);
    assert!(answer.headers.iter().any(|(k, _)| *k == "retry-after"));
    assert_eq!(gw.post(&form(&token), NOW).0, 200, "not remembered as seen");
    assert!(gw.refuses("sid-9", NOW - 60));
}

#[test]
fn the_path_and_request_checks() {
    let config = config(json!({}));
    assert!(is_backchannel_path(&config, "/oauth2/backchannel-logout"));
    assert!(is_backchannel_path(
        &config,
        "//oauth2/backchannel-logout?x=1"
    ));
    assert!(!is_backchannel_path(
        &config,
        "/oauth2/backchannel-logout/x"
    ));
    let settings = config.backchannel_logout.as_ref().unwrap();
    let form_type = [(
        "content-type",
        "application/x-www-form-urlencoded; charset=utf-8",
    )];
    assert!(check_request(settings, "POST", &form_type).is_ok());
    assert_eq!(
        check_request(settings, "GET", &form_type)
            .unwrap_err()
            .status,
        405
    );
    let json_type = [("content-type", "application/json")];
    assert_eq!(
        check_request(settings, "POST", &json_type)
            .unwrap_err()
            .status,
        400
    );
    let huge = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("content-length", "100000"),
    ];
    assert_eq!(
        check_request(settings, "POST", &huge).unwrap_err().status,
        400
    );
}

#[test]
fn the_configuration_needs_a_provider_that_accepts_logout_tokens() {
    let raw = json!({
        "providers": [{"issuer": OP, "audiences": ["a"], "algorithms": ["ES256"],
                       "inline_jwks": op().jwks()}],
        "backchannel_logout": {}
    });
    let e = FilterConfig::from_json(raw.to_string().as_bytes()).unwrap_err();
    assert_eq!(e.field, "backchannel_logout");
}

#[test]
fn a_federated_provider_s_token_is_stored_here_then_forwarded_to_the_hub_whose_verdict_counts() {
    let mut gw = Gateway::new(config(json!({
        "idp_client": {"client_id": "gw-a", "client_secret": "gateway-secret-0123456789"},
        "hub": {"cluster": "hub", "issuers": [OP]}
    })));
    let token = logout_token(json!({}));
    for _ in 0..2 {
        // The hub remembers the jti: a second post is forwarded again, not refused here.
        let Received::Forward(request) = gw.receive(&form(&token), NOW) else {
            panic!("not forwarded");
        };
        assert_eq!(request.cluster, "hub");
        assert!(
            request
                .headers
                .contains(&(":path".into(), "/oauth2/backchannel-logout".into()))
        );
        assert_eq!(request.body, form(&token), "forwarded as it came");
    }
    assert!(
        gw.refuses("sid-9", NOW - 60),
        "stored here before the hub answers"
    );
    assert_eq!(hub_verdict(Some(200), b"").status, 200);
    let refused = hub_verdict(
        Some(400),
        br#"{"error":"invalid_request","error_description":"replayed"}"#,
    );
    assert_eq!(answered(&refused).1["error_description"], "replayed");
    assert_eq!(hub_verdict(Some(400), b"<html>").status, 400);
    for silent in [None, Some(500), Some(503), Some(401)] {
        let answer = hub_verdict(silent, b"");
        assert_eq!(answer.status, 503, "{silent:?}");
        assert!(answer.headers.iter().any(|(k, _)| *k == "retry-after"));
    }
}
