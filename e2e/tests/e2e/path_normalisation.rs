//! Issue 20, defect 6 on real Envoy: route rules hold whatever Envoy normalises. Envoy here runs
//! envoy/envoy.yaml with `normalize_path` and `merge_slashes` removed (both off, Envoy's default)
//! and escaped slashes kept (`path_with_escaped_slashes_action: KEEP_UNCHANGED`, as in
//! envoy/istio-sidecar.yaml), so every trick reaches the filter as the client wrote it. Requests
//! are written byte for byte on a TCP socket (an HTTP client library could tidy the path up).

use e2e::artifacts;
use e2e::envoy::render;
use e2e::process::{Proc, free_port};
use e2e::stack::{DEMO_CLIENT, Gateway, start_idp, start_resource_server, token_from};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

/// envoy/envoy.yaml without Envoy's own path normalisation.
fn raw_path_config(values: &BTreeMap<&str, String>) -> String {
    let template =
        std::fs::read_to_string(artifacts::workspace_root().join("envoy/envoy.yaml")).unwrap();
    let text = render(&template, values).unwrap();
    for setting in [
        "normalize_path: true",
        "merge_slashes: true",
        "path_with_escaped_slashes_action: UNESCAPE_AND_REDIRECT",
    ] {
        assert!(
            text.contains(setting),
            "envoy.yaml no longer has {setting:?}"
        );
    }
    // Whole lines out (indentation included), escaped slashes kept as sent.
    let mut text: String = text
        .lines()
        .filter(|line| {
            let line = line.trim_start();
            !line.starts_with("normalize_path:") && !line.starts_with("merge_slashes:")
        })
        .map(|line| format!("{line}\n"))
        .collect();
    text = text.replace(
        "path_with_escaped_slashes_action: UNESCAPE_AND_REDIRECT",
        "path_with_escaped_slashes_action: KEEP_UNCHANGED",
    );
    assert!(!text.contains("normalize_path") && !text.contains("merge_slashes"));
    text
}

struct RawGateway {
    gateway: Gateway,
    _idp: Proc,
    _rs: Proc,
    _dir: tempfile::TempDir,
    idp_url: String,
}

fn start() -> RawGateway {
    let dir = tempfile::Builder::new()
        .prefix("oauth2gw-paths-")
        .tempdir()
        .unwrap();
    let idp_port = free_port().unwrap();
    let issuer = format!("http://127.0.0.1:{idp_port}");
    let idp = start_idp(dir.path(), "idp", idp_port, &issuer).unwrap_or_else(|e| panic!("{e}"));
    let (rs, rs_port) = start_resource_server(dir.path(), "resource-server", 0).unwrap();
    let (listen_port, admin_port) = (free_port().unwrap(), free_port().unwrap());
    let values = BTreeMap::from([
        ("LISTEN_PORT", listen_port.to_string()),
        ("ADMIN_PORT", admin_port.to_string()),
        ("IDP_PORT", idp_port.to_string()),
        ("RS_PORT", rs_port.to_string()),
        ("ISSUER", issuer.clone()),
        ("LEEWAY_SECONDS", "0".to_owned()),
        ("JWKS_REFRESH_SECONDS", "300".to_owned()),
        (
            "FILTER_WASM",
            artifacts::filter_wasm().unwrap().display().to_string(),
        ),
    ]);
    let config = dir.path().join("envoy-raw-paths.yaml");
    std::fs::write(&config, raw_path_config(&values)).unwrap();
    let mut cmd = Command::new(artifacts::envoy_bin().unwrap());
    cmd.arg("-c")
        .arg(&config)
        .args(["--use-dynamic-base-id", "--concurrency", "2", "-l", "info"]);
    let proc = Proc::start("envoy", cmd, dir.path()).unwrap();
    let mut gateway = Gateway {
        proc,
        url: format!("http://127.0.0.1:{listen_port}"),
        admin_url: format!("http://127.0.0.1:{admin_port}"),
        config,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    // keys fetched and the revocation feed read (until then tokens are refused with 503)
    while gateway.counter("oauth2gw.jwks_fetch_ok").unwrap_or(0) < 1
        || gateway
            .counter("oauth2gw.revocation_feed_synced")
            .unwrap_or(0)
            < 1
    {
        assert!(
            gateway.proc.is_running() && Instant::now() < deadline,
            "envoy not ready; log:\n{}",
            gateway.proc.log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    RawGateway {
        gateway,
        _idp: idp.proc,
        _rs: rs,
        _dir: dir,
        idp_url: idp.url,
    }
}

/// Sends `GET <target> HTTP/1.1` exactly as given; returns the status and the body.
fn raw_get(base: &str, target: &str, token: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let auth = token.map_or(String::new(), |t| format!("authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nhost: gateway\r\n{auth}connection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

#[test]
fn path_tricks_do_not_bypass_route_rules_on_envoy_without_path_normalisation() {
    let _slot = crate::slot();
    let stack = start();
    let g = &stack.gateway.url;
    // a valid token without the admin scope that /api/admin/ requires
    let token = token_from(&stack.idp_url, DEMO_CLIENT, None).unwrap();
    let t = Some(token.as_str());

    // the legitimate paths work
    assert_eq!(raw_get(g, "/api/hello", t).0, 200);
    assert_eq!(raw_get(g, "/api/public/info", None).0, 200);
    assert_eq!(raw_get(g, "/api/admin/users", t).0, 403);

    // normalised, then judged by the rule of the path they really name: 403 with the token,
    // 401 without (never the allow_missing of /api/public/)
    for trick in [
        "/api/public/../admin/users",
        "/api/public/./../admin/users",
        "/api/x/y/../../admin/users",
        "//api/admin/users",
        "/api//admin/users",
        "/api/admin//users",
        "/api/admin/.",
        "/api/%61dmin/users",
        "/api/public/%2e%2e/admin/users",
        "/api/public/%2E%2E/admin/users",
        "/api/public/.%2e/admin/users",
    ] {
        let (status, body) = raw_get(g, trick, t);
        assert_eq!(status, 403, "{trick} with a token: {body}");
        let (status, body) = raw_get(g, trick, None);
        assert_eq!(status, 401, "{trick} without a token: {body}");
    }

    // ambiguous: refused with 400 (by the filter, or by Envoy before it)
    for trick in [
        "/api/admin%2Fusers",
        "/api/admin%2fusers",
        "/api/public/..%2Fadmin/users",
        "/api/public/%2e%2e%2fadmin/users",
        "/api/public/..%5Cadmin/users",
        "/api/admin;x/users",
        "/api/public/..;/admin/users",
    ] {
        for token in [t, None] {
            let (status, body) = raw_get(g, trick, token);
            assert_eq!(status, 400, "{trick}: {body}");
        }
    }

    // what the upstream gets is the path the rules saw
    let (status, body) = raw_get(g, "/api//public/./x/../info", None);
    assert_eq!(status, 200, "{body}");
    let echoed: serde_json::Value = serde_json::from_str(body.trim()).unwrap();
    assert_eq!(echoed["path"], "/api/public/info", "{body}");
    let (status, body) = raw_get(g, "/api/%6Frders", t);
    assert_eq!(status, 200, "{body}");
    let echoed: serde_json::Value = serde_json::from_str(body.trim()).unwrap();
    assert_eq!(echoed["path"], "/api/orders", "{body}");
}
