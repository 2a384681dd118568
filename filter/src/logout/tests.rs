//! The logout state machine, step by step.

use super::*;
use crate::config::services::{Callout, IdpClient, Revocation, Secret};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

fn config() -> (Logout, Revocation) {
    let callout = |cluster: &str, path: &str| Callout {
        cluster: cluster.into(),
        path: path.into(),
        authority: cluster.into(),
        timeout_ms: 1000,
    };
    (
        Logout {
            path: "/oauth2/logout".into(),
            resource_server: callout("rs", "/internal/sessions/revoke"),
            resource_server_secret_header: "x-gateway-secret".into(),
            resource_server_secret: Secret("s3cret-s3cret-s3cret".into()),
        },
        Revocation {
            endpoint: Some(callout("idp", "/oauth2/revoke")),
            client: IdpClient {
                client_id: "gateway".into(),
                client_secret: Secret("pa ss:w+rd/0123456789".into()),
            },
        },
    )
}

fn start() -> (LogoutMachine, Vec<(Step, CalloutRequest)>) {
    let (logout, revocation) = config();
    let endpoint = revocation.endpoint.as_ref().unwrap();
    LogoutMachine::start(
        &logout,
        RevokeAt {
            endpoint,
            client: &revocation.client,
        },
        LogoutSubject {
            token: "a.b.c",
            sid: Some("sid-1"),
            sub: Some("alice"),
            already_revoked: false,
        },
    )
}

#[test]
fn builds_both_requests() {
    let (_, calls) = start();
    let [(s1, idp), (s2, rs)] = <[_; 2]>::try_from(calls).unwrap();
    assert_eq!((s1, s2), (Step::IdpRevocation, Step::SessionRevocation));
    assert_eq!(idp.cluster, "idp");
    assert_eq!(idp.body, b"token=a.b.c&token_type_hint=access_token");
    let auth = idp
        .headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .unwrap()
        .1
        .clone();
    let decoded = STANDARD
        .decode(auth.strip_prefix("Basic ").unwrap())
        .unwrap();
    assert_eq!(decoded, b"gateway:pa+ss%3Aw%2Brd%2F0123456789");
    assert_eq!(rs.cluster, "rs");
    assert!(
        rs.headers
            .contains(&("x-gateway-secret".into(), "s3cret-s3cret-s3cret".into()))
    );
    let body: serde_json::Value = serde_json::from_slice(&rs.body).unwrap();
    assert_eq!(body, json!({"sid": "sid-1", "sub": "alice"}));
}

#[test]
fn success_only_when_both_succeed_in_either_order() {
    for order in [
        [Step::IdpRevocation, Step::SessionRevocation],
        [Step::SessionRevocation, Step::IdpRevocation],
    ] {
        let (mut m, _) = start();
        assert_eq!(m.complete(order[0], CallResult::Status(200)), None);
        let r = m.complete(order[1], CallResult::Status(204)).unwrap();
        assert_eq!(r.status, 200);
        assert!(r.body.contains("logout successful"));
    }
}

#[test]
fn a_failed_step_is_named_never_a_false_success() {
    let cases = [
        (
            CallResult::Status(500),
            CallResult::Status(200),
            502,
            vec!["idp_revocation"],
        ),
        (
            CallResult::Status(200),
            CallResult::Unreachable,
            502,
            vec!["resource_server_session_revocation"],
        ),
        (
            CallResult::TimedOut,
            CallResult::Status(200),
            504,
            vec!["idp_revocation"],
        ),
        (
            CallResult::TimedOut,
            CallResult::TimedOut,
            504,
            vec!["idp_revocation", "resource_server_session_revocation"],
        ),
        (
            CallResult::TimedOut,
            CallResult::Status(401),
            502,
            vec!["idp_revocation", "resource_server_session_revocation"],
        ),
    ];
    for (idp, rs, status, steps) in cases {
        for idp_first in [true, false] {
            let (mut m, _) = start();
            let r = if idp_first {
                assert!(m.complete(Step::IdpRevocation, idp).is_none());
                m.complete(Step::SessionRevocation, rs).unwrap()
            } else {
                assert!(m.complete(Step::SessionRevocation, rs).is_none());
                m.complete(Step::IdpRevocation, idp).unwrap()
            };
            assert_eq!(r.status, status, "{idp:?} {rs:?}");
            let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            let named: Vec<_> = body["failed_steps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["step"].as_str().unwrap().to_owned())
                .collect();
            assert_eq!(named, steps);
        }
    }
}

#[test]
fn a_provider_that_cannot_revoke_the_token_type_leaves_the_cut_off_as_the_revocation() {
    let unsupported = || Some(br#"{"error":"unsupported_token_type"}"#.to_vec());
    let refused =
        |step, body: Option<Vec<u8>>| CallResult::of_answer(step, Some(400), false, || body);
    assert_eq!(
        refused(Step::IdpRevocation, unsupported()),
        CallResult::NotRevocable
    );
    assert_eq!(
        refused(
            Step::IdpRevocation,
            Some(br#"{"error":"invalid_client"}"#.to_vec())
        ),
        CallResult::Status(400)
    );
    assert_eq!(refused(Step::IdpRevocation, None), CallResult::Status(400));
    assert_eq!(
        refused(Step::SessionRevocation, unsupported()),
        CallResult::Status(400),
        "only the provider's answer means this"
    );
    let (mut m, _) = start();
    assert_eq!(
        m.complete(Step::IdpRevocation, CallResult::NotRevocable),
        None
    );
    assert!(m.idp_confirmed(), "the gateway records its cut-off");
    let r = m
        .complete(Step::SessionRevocation, CallResult::Status(200))
        .unwrap();
    assert_eq!(r.status, 200);
    let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(body["revocation"], "gateway_cutoff");
    let (mut m, _) = start();
    m.complete(Step::IdpRevocation, CallResult::NotRevocable);
    let r = m
        .complete(Step::SessionRevocation, CallResult::Unreachable)
        .unwrap();
    assert_eq!(
        r.status, 502,
        "the resource server's failure still fails it"
    );
}

#[test]
fn timeouts_and_silence_read_the_same_in_both_glues() {
    let read =
        |status, timed_out| CallResult::of_answer(Step::IdpRevocation, status, timed_out, || None);
    assert_eq!(read(Some(504), true), CallResult::TimedOut);
    assert_eq!(read(Some(504), false), CallResult::Status(504));
    assert_eq!(read(None, true), CallResult::TimedOut);
    assert_eq!(read(None, false), CallResult::Unreachable);
    assert_eq!(read(Some(200), false), CallResult::Status(200));
}

#[test]
fn duplicate_completions_change_nothing() {
    let (mut m, _) = start();
    assert_eq!(
        m.complete(Step::IdpRevocation, CallResult::Status(200)),
        None
    );
    assert!(m.idp_confirmed());
    // a duplicate (e.g. a late timeout after the answer) is ignored
    assert_eq!(m.complete(Step::IdpRevocation, CallResult::TimedOut), None);
    assert!(m.idp_confirmed());
    let r = m
        .complete(Step::SessionRevocation, CallResult::Status(200))
        .unwrap();
    assert_eq!(r.status, 200);
    // after the answer, nothing more is produced
    assert_eq!(
        m.complete(Step::SessionRevocation, CallResult::Status(200)),
        None
    );
    assert_eq!(
        m.complete(Step::IdpRevocation, CallResult::Status(500)),
        None
    );
}

fn federated_config() -> FilterConfig {
    let json = serde_json::json!({
        "providers": [{"issuer": "https://op", "audiences": ["api"], "algorithms": ["ES256"],
                       "jwks": {"cluster": "op", "path": "/jwks"},
                       "max_token_lifetime_seconds": 600,
                       "revoke": {"cluster": "op", "path": "/token/revocation",
                                  "client_id": "gateway", "client_secret": "op-secret-0123456789"}}],
        "idp_client": {"client_id": "gw", "client_secret": "gateway-secret-0123456789"},
        "hub": {"cluster": "hub", "issuers": ["https://op"]},
        "logout": {
            "resource_server": {"cluster": "rs", "path": "/internal/sessions/revoke",
                                "secret_header": "x-gateway-secret", "secret": "s3cret-s3cret-s3cret"}
        }
    });
    FilterConfig::from_json(json.to_string().as_bytes()).unwrap()
}

fn op_token(sid: Option<&str>) -> VerifiedToken {
    VerifiedToken {
        provider: 0,
        lifetime: crate::validation::claims::Lifetime {
            exp: 2_000,
            nbf: None,
            iat: Some(900),
        },
        jti: Some("at-1".into()),
        sid: sid.map(str::to_owned),
        sub: Some("alice".into()),
        scopes: Vec::new(),
        jkt: None,
        ath: None,
        claims: serde_json::Map::new(),
        ids: Default::default(),
        recheck_after: None,
        claim_headers: Vec::new(),
    }
}

#[test]
fn a_federated_provider_reports_the_same_cut_off_to_the_hub_and_needs_it_to_succeed() {
    let config = federated_config();
    let token = op_token(Some("sid-1"));
    let (mut machine, calls) =
        begin_logout(&config, "a.b.c", &token, false, &Default::default(), 1_000).unwrap();
    let steps: Vec<Step> = calls.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        steps,
        [
            Step::IdpRevocation,
            Step::SessionRevocation,
            Step::HubReport
        ]
    );
    let report = &calls[2].1;
    assert_eq!(report.cluster, "hub");
    assert!(
        report
            .headers
            .contains(&(":path".into(), "/oauth2/cutoffs".into()))
    );
    let body: serde_json::Value = serde_json::from_slice(&report.body).unwrap();
    assert_eq!(
        body,
        json!({"iss": "https://op", "sid": "sid-1", "cutoff": 1_000})
    );
    let local = local_revocations(&config, &token, 1_000);
    assert_eq!(
        local[1],
        DenylistEntry::cutoff(CutoffKind::Session, "https://op", "sid-1", 1_000, 1_600),
        "the cut-off recorded here is the one reported"
    );
    assert_eq!(
        machine.complete(Step::IdpRevocation, CallResult::NotRevocable),
        None
    );
    assert_eq!(
        machine.complete(Step::SessionRevocation, CallResult::Status(200)),
        None
    );
    let answer = machine
        .complete(Step::HubReport, CallResult::Unreachable)
        .unwrap();
    assert_eq!(answer.status, 502);
    assert!(answer.body.contains("hub_cutoff_report"), "{}", answer.body);
    // Without a sid, only the token itself (its jti): nothing for the hub.
    let (_, calls) = begin_logout(
        &config,
        "a.b.c",
        &op_token(None),
        false,
        &Default::default(),
        1_000,
    )
    .unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(local_revocations(&config, &op_token(None), 1_000).len(), 1);
    // Neither sid nor jti: the subject is cut off, the only way to refuse the token.
    let mut bare = op_token(None);
    bare.jti = None;
    let (_, calls) =
        begin_logout(&config, "a.b.c", &bare, false, &Default::default(), 1_000).unwrap();
    let body: serde_json::Value = serde_json::from_slice(&calls[2].1.body).unwrap();
    assert_eq!(
        body,
        json!({"iss": "https://op", "sub": "alice", "cutoff": 1_000})
    );
}

#[test]
fn the_logout_path_is_recognised_as_rules_see_paths() {
    let json = serde_json::json!({
        "providers": [{"issuer": "https://idp", "audiences": ["api"], "algorithms": ["ES256"],
                       "jwks": {"cluster": "idp", "path": "/jwks"}}],
        "idp_client": {"client_id": "gw", "client_secret": "gateway-secret-0123456789"},
        "logout": {
            "revoke": {"cluster": "idp", "path": "/oauth2/revoke"},
            "resource_server": {"cluster": "rs", "path": "/internal/sessions/revoke",
                                "secret_header": "x-gateway-secret", "secret": "s3cret-s3cret-s3cret"}
        }
    });
    let config = FilterConfig::from_json(json.to_string().as_bytes()).unwrap();
    for path in [
        "/oauth2/logout",
        "/oauth2/logout?x=1",
        "//oauth2/logout",
        "/a/../oauth2/logout",
    ] {
        assert!(is_logout_path(&config, path), "{path}");
    }
    for path in [
        "/oauth2/logout/x",
        "/oauth2%2Flogout",
        "/api",
        "oauth2/logout",
    ] {
        assert!(!is_logout_path(&config, path), "{path}");
    }
    let mut without = config.clone();
    without.logout = None;
    assert!(!is_logout_path(&without, "/oauth2/logout"));
}
