//! Every Envoy config in envoy/ is accepted by the real Envoy (`--mode validate` instantiates the
//! Wasm VMs, so the filter must load and accept its configuration), and an invalid filter
//! configuration is refused with the reason in Envoy's log.

use e2e::artifacts;
use e2e::envoy::{render, validate};
use std::collections::BTreeMap;

fn values() -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("LISTEN_PORT", "10000".to_owned()),
        ("ADMIN_PORT", "9901".to_owned()),
        ("IDP_PORT", "9000".to_owned()),
        ("RS_PORT", "9100".to_owned()),
        ("ISSUER", "http://127.0.0.1:9000".to_owned()),
        ("LEEWAY_SECONDS", "30".to_owned()),
        ("JWKS_REFRESH_SECONDS", "300".to_owned()),
        (
            "FILTER_WASM",
            artifacts::filter_wasm().unwrap().display().to_string(),
        ),
    ])
}

fn template() -> String {
    std::fs::read_to_string(artifacts::workspace_root().join("envoy/envoy.yaml")).unwrap()
}

#[test]
fn local_stack_config_is_valid() {
    let _slot = crate::slot();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("envoy.yaml");
    std::fs::write(&path, render(&template(), &values()).unwrap()).unwrap();
    let log = validate(&artifacts::envoy_bin().unwrap(), &path).unwrap_or_else(|e| panic!("{e}"));
    assert!(log.contains("oauth2-gateway: configured"), "{log}");
}

#[test]
fn every_config_in_envoy_dir_is_valid() {
    let _slot = crate::slot();
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    let root = artifacts::workspace_root().join("envoy");
    let files = std::fs::read_dir(&root)
        .unwrap()
        .chain(std::fs::read_dir(root.join("bench")).unwrap())
        .map(|e| e.unwrap().path());
    for path in files {
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let out = dir.path().join(format!("{checked}.yaml"));
        std::fs::write(&out, render(&text, &values()).unwrap()).unwrap();
        validate(&artifacts::envoy_bin().unwrap(), &out)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        checked += 1;
    }
    assert!(
        checked >= 2,
        "expected envoy.yaml and jwt-authn-reference.yaml"
    );
}

#[test]
fn invalid_filter_config_fails_closed_with_the_reason_in_the_log() {
    let _slot = crate::slot();
    let cases = [
        (
            "\"algorithms\": [\"ES256\"]",
            "\"algorithms\": [\"HS256\"]",
            "providers[0].algorithms[0]",
        ),
        (
            "\"audiences\": [\"demo-api\"]",
            "\"audiences\": []",
            "providers[0].audiences",
        ),
        (
            "\"realm\": \"gateway\",",
            "\"realm\": \"gateway\", \"typo_option\": 1,",
            "typo_option",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (from, to, reason) in cases {
        let text = render(&template(), &values()).unwrap();
        assert!(text.contains(from), "template lacks {from}");
        let path = dir.path().join("bad.yaml");
        std::fs::write(&path, text.replace(from, to)).unwrap();
        let log = validate(&artifacts::envoy_bin().unwrap(), &path).expect_err("must be refused");
        assert!(
            log.contains("invalid plugin configuration") && log.contains(reason),
            "{reason}: {log}"
        );
    }
}
