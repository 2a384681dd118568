//! A reloaded plugin configuration (as Istio pushes one on every WasmPlugin change) refuses tokens
//! revoked before it was loaded. Envoy here takes its listener from a file (LDS,
//! `path_config_source`); the test rewrites it under load, twice: once with a changed plugin
//! configuration (the same Wasm VM, whose shared data holds the denylist), once with a new
//! `vm_id` too — a new VM with empty shared data, whose denylist can only come from the feed.

use super::{FaultStack, RECOVERY_LIMIT, fault_template, hello};
use e2e::load::{self, FaultReport, Load};
use e2e::process::{Proc, free_port};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

const LISTENER_TYPE: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";

/// Splits a rendered Envoy config into a bootstrap that reads its listeners from `lds` and the
/// text of that LDS file.
fn split_listeners(rendered: &str, lds: &Path) -> (String, String) {
    let start = rendered.find("  listeners:\n").expect("a listeners block");
    let end = rendered.find("\n  clusters:\n").expect("a clusters block");
    let listeners = &rendered[start + "  listeners:\n".len()..end];
    let resources: String = listeners
        .lines()
        .map(|line| line.strip_prefix("  ").unwrap_or(line))
        .map(|line| {
            line.replace(
                "- name: gateway",
                &format!("- \"@type\": {LISTENER_TYPE}\n    name: gateway"),
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    let bootstrap = format!(
        "{}{}\ndynamic_resources:\n  lds_config:\n    resource_api_version: V3\n    path_config_source:\n      path: {}\n      watched_directory: {{ path: {} }}\n",
        &rendered[..start],
        &rendered[end + 1..],
        lds.display(),
        lds.parent().unwrap().display()
    );
    (bootstrap, format!("resources:\n{resources}\n"))
}

/// Replaces the LDS file the way Envoy's watcher expects (a move into the directory).
fn write_lds(lds: &Path, text: &str) {
    let tmp = lds.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, lds).unwrap();
}

fn realm_of_refusal(gateway: &str) -> String {
    let res = e2e::client::get(&format!("{gateway}/api/hello"), &[]).unwrap();
    res.header("www-authenticate").unwrap_or("").to_owned()
}

#[test]
fn a_reloaded_plugin_configuration_refuses_tokens_revoked_before_it() {
    let _slot = crate::slot();
    let s = FaultStack::start();
    let tokens = s.tokens(4);
    let valid = tokens.valid[0].clone();

    let (listen, admin) = (free_port().unwrap(), free_port().unwrap());
    let values = BTreeMap::from([
        ("LISTEN_PORT", listen.to_string()),
        ("ADMIN_PORT", admin.to_string()),
        ("IDP_PORT", s.idp_port.to_string()),
        ("RS_PORT", s.rs_port.to_string()),
        ("ISSUER", s.issuer.clone()),
        ("LEEWAY_SECONDS", "0".to_owned()),
        (
            "FILTER_WASM",
            e2e::artifacts::filter_wasm().unwrap().display().to_string(),
        ),
    ]);
    let rendered = e2e::envoy::render(&fault_template(), &values).unwrap();
    let lds_dir = s.dir.path().join("lds");
    std::fs::create_dir_all(&lds_dir).unwrap();
    let lds = lds_dir.join("listeners.yaml");
    let (bootstrap, listener) = split_listeners(&rendered, &lds);
    write_lds(&lds, &listener);
    let config = s.dir.path().join("envoy-lds.yaml");
    std::fs::write(&config, &bootstrap).unwrap();
    let mut cmd = std::process::Command::new(e2e::artifacts::envoy_bin().unwrap());
    cmd.arg("-c")
        .arg(&config)
        .args(["--use-dynamic-base-id", "--concurrency", "2", "-l", "info"])
        // dynamic resources need a node identity
        .args(["--service-node", "faults", "--service-cluster", "faults"]);
    let envoy = Proc::start("envoy-lds", cmd, s.dir.path()).unwrap();
    let url = format!("http://127.0.0.1:{listen}");
    load::time_until(RECOVERY_LIMIT, "Envoy from LDS serves", || {
        hello(&url, &valid) == Some(200)
    })
    .unwrap_or_else(|e| panic!("{e}; log:\n{}", envoy.log_tail()));

    let load = Load::start(&url, "/api/hello", tokens, 3);
    std::thread::sleep(Duration::from_millis(500));
    let mut recovery = Vec::new();
    // (each reload changes the realm, so the test sees when the new configuration answers)
    let reloads: [&[(&str, &str)]; 2] = [
        &[("\"realm\": \"gateway\"", "\"realm\": \"reloaded\"")],
        &[
            ("\"realm\": \"reloaded\"", "\"realm\": \"new-vm\""),
            ("vm_id: oauth2_gateway", "vm_id: oauth2_gateway_new_vm"),
        ],
    ];
    let mut text = listener;
    for (i, changes) in reloads.into_iter().enumerate() {
        for (from, to) in changes {
            assert!(text.contains(from), "{from} not in the listener");
            text = text.replace(from, to);
        }
        let realm = if i == 0 { "reloaded" } else { "new-vm" };
        write_lds(&lds, &text);
        let reloaded_at = Instant::now();
        load::time_until(RECOVERY_LIMIT, "the new listener serves", || {
            realm_of_refusal(&url).contains(&format!("realm=\"{realm}\""))
                && hello(&url, &valid) == Some(200)
        })
        .unwrap_or_else(|e| panic!("{e}; log:\n{}", envoy.log_tail()));
        recovery.push((
            format!("reload {} -> new configuration serving", i + 1),
            reloaded_at.elapsed(),
        ));
        std::thread::sleep(Duration::from_millis(1_000));
    }

    // the second reload did start new VMs (Envoy prefixes a VM's log lines with its vm_id)
    assert!(
        envoy
            .log_text()
            .contains("oauth2_gateway_new_vm: oauth2-gateway: configured"),
        "no new VM configured; log:\n{}",
        envoy.log_tail()
    );
    let (tally, ran_for) = load.finish();
    let report = FaultReport {
        fault: "plugin configuration reloaded (LDS), same VM then a new VM".to_owned(),
        tally,
        ran_for,
        during: Default::default(),
        recovery,
    };
    // a new VM has no keys until its first fetch, nor its denylist until its first feed answer:
    // 503, the documented answers
    report.check(&[
        "503 no keys (filter)",
        "503 revocations not loaded (filter)",
    ]);
}
