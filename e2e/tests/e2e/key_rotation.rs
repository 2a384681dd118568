//! Key rotation at the IDP while traffic flows through real Envoy: tokens signed by the old key
//! and by the new one are both accepted, with no 401 during the switch.

use e2e::artifacts;
use e2e::client;
use e2e::stack::{DEMO_CLIENT, Stack, StackOptions};
use std::process::Command;
use std::time::{Duration, Instant};

fn kid(token: &str) -> String {
    use base64::Engine;
    let header = token.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    v["kid"].as_str().unwrap().to_owned()
}

#[test]
fn rotation_without_a_single_401() {
    let _slot = crate::slot();
    // The gateway refreshes the JWKS every second; the new key is published 3 s before it signs.
    let options = StackOptions {
        jwks_refresh_seconds: 1,
        ..StackOptions::default()
    };
    let stack = Stack::start(options).unwrap_or_else(|e| panic!("{e}"));
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

    let call = |token: &str| {
        let auth = format!("Bearer {token}");
        client::get(
            &format!("{}/api/hello", stack.gateway_url),
            &[("authorization", &auth)],
        )
        .unwrap()
    };
    let start = Instant::now();
    let mut new_kid_seen = None;
    let mut fresh_tokens = 0;
    while start.elapsed() < Duration::from_secs(8) {
        // a fresh token every round: signed by the old key first, by the new one later
        let token = stack.token(DEMO_CLIENT, None).unwrap();
        fresh_tokens += 1;
        let res = call(&token);
        assert_eq!(
            res.status,
            200,
            "token with kid {} refused after {:?}: {}",
            kid(&token),
            start.elapsed(),
            res.body
        );
        assert_eq!(
            call(&old).status,
            200,
            "the old token was refused after {:?}",
            start.elapsed()
        );
        if kid(&token) != old_kid {
            new_kid_seen.get_or_insert(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let switched = new_kid_seen.expect("the IDP never signed with the new key");
    println!("new key signing after {switched:?}; {fresh_tokens} fresh tokens, all accepted");
    // Defined at zero when the configuration loads: never moved.
    assert_eq!(
        stack.counter("oauth2gw.denied.unknown_key"),
        Some(0),
        "no unknown-key refusal"
    );
}
