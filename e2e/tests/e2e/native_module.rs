//! The native dynamic module (`liboauth2_gateway.so`, `envoy/envoy-native.yaml`) through real
//! Envoy with the real IDP and resource server: the flows the Wasm module's end-to-end tests
//! cover — logout on one gateway refused on another, agreement with `jwt_authn`, key rotation
//! under traffic, IDP down and cold start (503), an invalid configuration refused at start-up.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use e2e::artifacts;
use e2e::client;
use e2e::envoy::{render, validate};
use e2e::process::free_port;
use e2e::stack::{DEMO_CLIENT, Gateway, OTHER_CLIENT, Stack, StackOptions, start_idp, token_from};
use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

const NATIVE: &str = "envoy-native.yaml";

fn native() -> StackOptions {
    StackOptions {
        envoy_template: NATIVE,
        ..StackOptions::default()
    }
}

fn hello(gateway: &str, token: Option<&str>) -> client::Response {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    client::get(&format!("{gateway}/api/hello"), &headers).unwrap()
}

fn logout(gateway: &str, token: &str) -> client::Response {
    let auth = format!("Bearer {token}");
    client::post_form(
        &format!("{gateway}/oauth2/logout"),
        &[("authorization", &auth)],
        &[],
    )
    .unwrap()
}

#[test]
fn native_logout_revokes_here_at_once_and_on_another_gateway_within_the_poll() {
    let _slot = crate::slot();
    let stack = Stack::start(native()).unwrap_or_else(|e| panic!("{e}"));
    let b = stack
        .another_gateway("envoy-b")
        .unwrap_or_else(|e| panic!("{e}"));
    let a = &stack.gateway_url;
    let token = stack.token(DEMO_CLIENT, None).unwrap();
    let survivor = stack.token(DEMO_CLIENT, None).unwrap();
    assert_eq!(hello(a, Some(&token)).status, 200);
    assert_eq!(hello(&b.url, Some(&token)).status, 200);

    let res = logout(a, &token);
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json().unwrap()["status"], "logged_out");
    let logged_out_at = Instant::now();
    let res = hello(a, Some(&token));
    assert_eq!(res.status, 401);
    assert!(
        res.header("www-authenticate")
            .unwrap_or("")
            .contains("revoked"),
        "{:?}",
        res.headers
    );
    while hello(&b.url, Some(&token)).status != 401 {
        assert!(
            logged_out_at.elapsed() < Duration::from_secs(5),
            "gateway B still accepts the revoked token"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    println!(
        "revocation reached gateway B after {:?}",
        logged_out_at.elapsed()
    );
    assert_eq!(hello(a, Some(&survivor)).status, 200);
    let again = logout(&b.url, &token);
    assert_eq!(again.status, 200, "{}", again.body);
    assert!(again.body.contains("already revoked"), "{}", again.body);
    assert_eq!(stack.counter("oauth2gw.logout_ok"), Some(1));
    assert!(stack.counter("oauth2gw.revocation_poll_ok").unwrap_or(0) >= 1);
}

fn with_payload(token: &str, f: impl FnOnce(&mut serde_json::Value)) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    f(&mut claims);
    format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap()),
        parts[2]
    )
}

#[test]
fn native_module_and_jwt_authn_agree() {
    let _slot = crate::slot();
    let stack = Stack::start(StackOptions {
        leeway_seconds: 1,
        ..native()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let reference = stack
        .jwt_authn_reference()
        .unwrap_or_else(|e| panic!("{e}"));
    let valid = stack.token(DEMO_CLIENT, None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rogue = start_idp(dir.path(), "rogue", free_port().unwrap(), &stack.issuer).unwrap();
    let header_none = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"at+jwt"}"#);
    let payload = valid.split('.').nth(1).unwrap();
    let cases: Vec<(&str, Option<String>)> = vec![
        ("valid", Some(valid.clone())),
        ("missing", None),
        ("garbage", Some("not.a.jwt".into())),
        (
            "tampered scope",
            Some(with_payload(&valid, |c| c["scope"] = "admin".into())),
        ),
        (
            "wrong audience",
            Some(stack.token(OTHER_CLIENT, None).unwrap()),
        ),
        (
            "unknown key, same issuer",
            Some(token_from(&rogue.url, DEMO_CLIENT, None).unwrap()),
        ),
        ("alg none", Some(format!("{header_none}.{payload}."))),
        (
            "signature stripped",
            Some(valid.rsplit_once('.').unwrap().0.to_owned() + "."),
        ),
    ];
    for (name, token) in &cases {
        let ours = hello(&stack.gateway_url, token.as_deref()).status;
        let theirs = hello(&reference.url, token.as_deref()).status;
        println!("{name:28} native {ours}  jwt_authn {theirs}");
        assert_eq!(
            (200..300).contains(&ours),
            (200..300).contains(&theirs),
            "{name}: native {ours}, jwt_authn {theirs}"
        );
    }
}

fn kid(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let v: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    v["kid"].as_str().unwrap().to_owned()
}

#[test]
fn native_key_rotation_without_a_single_401() {
    let _slot = crate::slot();
    let stack = Stack::start(StackOptions {
        jwks_refresh_seconds: 1,
        ..native()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let old = stack.token(DEMO_CLIENT, None).unwrap();
    let old_kid = kid(&old);
    let db = stack.dir.path().join("idp.sqlite");
    let out = Command::new(artifacts::idp_bin().unwrap())
        .args(["rotate-key", "--config"])
        .arg(stack.dir.path().join("idp.toml"))
        .arg("--database")
        .arg(format!("sqlite://{}?mode=rwc", db.display()))
        .args(["--publish-seconds", "3"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let start = Instant::now();
    let mut new_kid_seen = None;
    while start.elapsed() < Duration::from_secs(8) {
        let token = stack.token(DEMO_CLIENT, None).unwrap();
        let res = hello(&stack.gateway_url, Some(&token));
        assert_eq!(
            res.status,
            200,
            "kid {} after {:?}",
            kid(&token),
            start.elapsed()
        );
        assert_eq!(hello(&stack.gateway_url, Some(&old)).status, 200);
        if kid(&token) != old_kid {
            new_kid_seen.get_or_insert(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let switched = new_kid_seen.expect("the IDP never signed with the new key");
    println!("new key signing after {switched:?}, every token accepted");
    // The native module defines its counters at start (0); the Wasm one on first use (absent).
    assert_eq!(stack.counter("oauth2gw.denied.unknown_key").unwrap_or(0), 0);
}

#[test]
fn native_idp_down_keeps_cached_keys_and_a_cold_gateway_fails_closed() {
    let _slot = crate::slot();
    let mut stack = Stack::start(native()).unwrap_or_else(|e| panic!("{e}"));
    let token = stack.token(DEMO_CLIENT, None).unwrap();
    stack.idp.proc.stop();
    assert_eq!(hello(&stack.gateway_url, Some(&token)).status, 200);

    let cold = Gateway::launch_template(
        NATIVE,
        stack.dir.path(),
        "cold",
        stack.idp_port,
        stack.rs_port,
        &stack.issuer,
        native(),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while client::get(&format!("{}/ready", cold.admin_url), &[]).map(|r| r.status) != Ok(200) {
        assert!(Instant::now() < deadline, "{}", cold.proc.log_tail());
        std::thread::sleep(Duration::from_millis(50));
    }
    let res = hello(&cold.url, Some(&token));
    assert_eq!(res.status, 503, "{}", res.body);
    assert!(res.body.contains("not available"), "{}", res.body);
    let start = Instant::now();
    while cold.counter("oauth2gw.jwks_fetch_failed").unwrap_or(0) < 1 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no failed fetch counted"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(hello(&cold.url, Some(&token)).status, 503);
}

#[test]
fn native_config_is_valid_and_an_invalid_one_is_refused_with_the_reason_in_the_log() {
    let _slot = crate::slot();
    let values = BTreeMap::from([
        ("LISTEN_PORT", "10000".to_owned()),
        ("ADMIN_PORT", "9901".to_owned()),
        ("IDP_PORT", "9000".to_owned()),
        ("RS_PORT", "9100".to_owned()),
        ("ISSUER", "http://127.0.0.1:9000".to_owned()),
        ("LEEWAY_SECONDS", "30".to_owned()),
        ("JWKS_REFRESH_SECONDS", "300".to_owned()),
    ]);
    let template =
        std::fs::read_to_string(artifacts::workspace_root().join("envoy").join(NATIVE)).unwrap();
    let text = render(&template, &values).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, &text).unwrap();
    let log = validate(&artifacts::envoy_bin().unwrap(), &good).unwrap_or_else(|e| panic!("{e}"));
    assert!(log.contains("ABI version v0.2.0 matched"), "{log}");
    let cases = [
        (
            "\"algorithms\": [\"ES256\"]",
            "\"algorithms\": [\"HS256\"]",
            "providers[0].algorithms[0]",
        ),
        (
            "\"realm\": \"gateway\",",
            "\"realm\": \"gateway\", \"typo_option\": 1,",
            "typo_option",
        ),
    ];
    for (from, to, reason) in cases {
        assert!(text.contains(from), "template lacks {from}");
        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, text.replace(from, to)).unwrap();
        let log = validate(&artifacts::envoy_bin().unwrap(), &bad).expect_err("must be refused");
        assert!(
            log.contains("invalid plugin configuration") && log.contains(reason),
            "{reason}: {log}"
        );
    }
}
