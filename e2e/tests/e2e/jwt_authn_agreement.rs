//! The same tokens through the filter and through Envoy's native jwt_authn (same issuer,
//! audience and JWKS): both must accept or refuse each one alike, where their semantics match.
//! Deliberate differences (docs/operations.md, "Compared with Envoy's jwt_authn"): a wrong audience is 401 here and
//! 403 there (both refuse); revoked tokens and `typ` other than at+jwt are refused only here.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use e2e::client;
use e2e::process::free_port;
use e2e::stack::{
    DEMO_CLIENT, OTHER_CLIENT, SHORT_CLIENT, Stack, StackOptions, start_idp, token_from,
};
use std::time::Duration;

fn status(url: &str, token: Option<&str>) -> u16 {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    client::get(&format!("{url}/api/hello"), &headers)
        .unwrap()
        .status
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
fn filter_and_jwt_authn_agree() {
    let _slot = crate::slot();
    // jwt_authn reads clock_skew_seconds 0 as "unset" (its default, 60 s): use 1 s for both.
    let stack = Stack::start(StackOptions {
        leeway_seconds: 1,
        ..StackOptions::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let reference = stack
        .jwt_authn_reference()
        .unwrap_or_else(|e| panic!("{e}"));
    let valid = stack.token(DEMO_CLIENT, None).unwrap();
    let short = stack.token(SHORT_CLIENT, None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rogue_same_iss =
        start_idp(dir.path(), "rogue", free_port().unwrap(), &stack.issuer).unwrap();
    let rogue_port = free_port().unwrap();
    let rogue_other_iss = start_idp(
        dir.path(),
        "rogue2",
        rogue_port,
        &format!("http://127.0.0.1:{rogue_port}"),
    )
    .unwrap();
    let header_none = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"at+jwt"}"#);
    let payload = valid.split('.').nth(1).unwrap();
    std::thread::sleep(Duration::from_millis(3_200)); // the 1-second token is past exp + 1 s

    let cases: Vec<(&str, Option<String>)> = vec![
        ("valid", Some(valid.clone())),
        ("missing", None),
        ("garbage", Some("not.a.jwt".into())),
        (
            "tampered scope",
            Some(with_payload(&valid, |c| c["scope"] = "admin".into())),
        ),
        (
            "tampered exp",
            Some(with_payload(&valid, |c| {
                c["exp"] = (c["exp"].as_i64().unwrap() + 3600).into()
            })),
        ),
        (
            "wrong audience",
            Some(stack.token(OTHER_CLIENT, None).unwrap()),
        ),
        ("expired", Some(short)),
        (
            "unknown key, same issuer",
            Some(token_from(&rogue_same_iss.url, DEMO_CLIENT, None).unwrap()),
        ),
        (
            "other issuer",
            Some(token_from(&rogue_other_iss.url, DEMO_CLIENT, None).unwrap()),
        ),
        ("alg none", Some(format!("{header_none}.{payload}."))),
        (
            "signature stripped",
            Some(valid.rsplit_once('.').unwrap().0.to_owned() + "."),
        ),
    ];
    let mut table = Vec::new();
    for (name, token) in &cases {
        let ours = status(&stack.gateway_url, token.as_deref());
        let theirs = status(&reference.url, token.as_deref());
        table.push(format!("{name:28} filter {ours}  jwt_authn {theirs}"));
        assert_eq!(
            (200..300).contains(&ours),
            (200..300).contains(&theirs),
            "{name}: filter {ours}, jwt_authn {theirs}"
        );
    }
    println!("{}", table.join("\n"));
}
