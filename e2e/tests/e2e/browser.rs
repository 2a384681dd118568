//! The IDP's browser side in a real browser: starts an IDP on loopback and runs the Node tests of
//! `e2e/browser` (Debian's chromium driven by playwright-core, and the certified OpenID client
//! `openid-client`) against it with `node --test`. Screenshots of the login and consent pages go
//! to `target/e2e-artifacts/browser/`, with node's output (`node-test.log`).
//!
//! `scripts/test` installs chromium and runs `npm ci` in e2e/browser first; without them this test
//! fails (it never skips). `BROWSER_TESTS=implicit,logout` runs only the test files whose name
//! contains one of those words.

use e2e::artifacts::workspace_root;
use e2e::process::free_port;
use e2e::stack::{
    ALICE, ALICE_ARGON2, GATEWAY_CLIENT, Gateway, sha256_hex, start_idp_with_config,
    start_resource_server,
};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Confidential, asks for consent, code + refresh.
const WEB_CLIENT: (&str, &str) = ("web-app", "web-app-secret-0123456789abcdef01234");
/// Public, first-party, implicit only.
const IMPLICIT_CLIENT: &str = "spa-implicit";
/// Public (PKCE required), first-party, code + refresh, no implicit.
const PUBLIC_CLIENT: &str = "native-app";
/// Confidential service: client_credentials, password, refresh (openid-client's grants test).
const SERVICE_CLIENT: (&str, &str) = ("service-app", "service-app-secret-0123456789abcdef0");
/// Confidential service whose every token request must carry a DPoP proof with a server nonce
/// (`dpop.test.mjs`: openid-client fetches the nonce and retries).
const DPOP_SERVICE_CLIENT: (&str, &str) = ("dpop-service", "dpop-service-secret-0123456789abcdef");
/// Public, first-party, code + refresh, DPoP mandatory (its refresh tokens are bound).
const DPOP_PUBLIC_CLIENT: &str = "dpop-app";
const USER_NAME: &str = "Alice Example";
/// The whole Node suite; each Node test also has its own timeout.
const SUITE_TIMEOUT: Duration = Duration::from_secs(420);

/// envoy/envoy.yaml with `"dpop": "allowed"` for its provider.
fn dpop_allowed() -> String {
    let path = workspace_root().join("envoy").join("envoy.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let issuer = r#""issuer": "${ISSUER}","#;
    assert!(
        text.contains(issuer),
        "{}: the provider's issuer line",
        path.display()
    );
    text.replacen(issuer, &format!(r#"{issuer} "dpop": "allowed","#), 1)
}

fn browser_idp_config(post_logout_port: u16) -> String {
    let (web_id, web_secret) = WEB_CLIENT;
    format!(
        r#"access_token_ttl_seconds = 300

[[clients]]
id = "{web_id}"
secret_sha256 = "{web_hash}"
scopes = ["openid", "profile", "read"]
audiences = ["demo-api"]
grant_types = ["authorization_code", "refresh_token"]
redirect_uris = ["http://127.0.0.1/cb"]
post_logout_redirect_uris = ["http://127.0.0.1:{post_logout_port}/logged-out"]

[[clients]]
id = "{IMPLICIT_CLIENT}"
scopes = ["openid", "profile", "read"]
audiences = ["demo-api"]
grant_types = ["implicit"]
redirect_uris = ["http://127.0.0.1/cb"]
skip_consent = true

[[clients]]
id = "{PUBLIC_CLIENT}"
scopes = ["openid", "profile", "read"]
audiences = ["demo-api"]
grant_types = ["authorization_code", "refresh_token"]
redirect_uris = ["http://127.0.0.1/cb"]
skip_consent = true

[[clients]]
id = "{service_id}"
secret_sha256 = "{service_hash}"
scopes = ["read", "write"]
audiences = ["demo-api"]
grant_types = ["client_credentials", "password", "refresh_token"]

[[clients]]
id = "{dpop_service_id}"
secret_sha256 = "{dpop_service_hash}"
scopes = ["read"]
audiences = ["demo-api"]
grant_types = ["client_credentials"]
dpop_bound_access_tokens = true
dpop_require_nonce = true

[[clients]]
id = "{DPOP_PUBLIC_CLIENT}"
scopes = ["openid", "profile", "read"]
audiences = ["demo-api"]
grant_types = ["authorization_code", "refresh_token"]
redirect_uris = ["http://127.0.0.1/cb"]
skip_consent = true
dpop_bound_access_tokens = true

# reads the revocation feed (logout must put the session's tokens there)
[[clients]]
id = "{gateway_id}"
secret_sha256 = "{gateway_hash}"
audiences = ["idp"]
gateway = true

[[users]]
username = "{user}"
password_argon2 = "{ALICE_ARGON2}"
name = "{USER_NAME}"
email = "alice@example.test"
"#,
        web_hash = sha256_hex(web_secret),
        service_id = SERVICE_CLIENT.0,
        service_hash = sha256_hex(SERVICE_CLIENT.1),
        dpop_service_id = DPOP_SERVICE_CLIENT.0,
        dpop_service_hash = sha256_hex(DPOP_SERVICE_CLIENT.1),
        gateway_id = GATEWAY_CLIENT.0,
        gateway_hash = sha256_hex(GATEWAY_CLIENT.1),
        user = ALICE.0,
    )
}

/// What `scripts/test` installs; a clear failure when it is missing.
fn prerequisites(browser_dir: &Path) -> (PathBuf, PathBuf) {
    let chromium = PathBuf::from(
        std::env::var("CHROMIUM_BIN").unwrap_or_else(|_| "/usr/bin/chromium".to_owned()),
    );
    assert!(
        chromium.is_file(),
        "{} not found: run scripts/test (it installs Debian's chromium), or set CHROMIUM_BIN",
        chromium.display()
    );
    for package in ["playwright-core", "openid-client"] {
        assert!(
            browser_dir.join("node_modules").join(package).is_dir(),
            "e2e/browser/node_modules/{package} is missing: run scripts/test (it runs npm ci in e2e/browser)"
        );
    }
    let node = PathBuf::from(std::env::var("NODE_BIN").unwrap_or_else(|_| "node".to_owned()));
    let version = Command::new(&node).arg("--version").output();
    assert!(
        version.as_ref().is_ok_and(|o| o.status.success()),
        "node not found ({}): run scripts/test, or set NODE_BIN",
        node.display()
    );
    (node, chromium)
}

#[test]
fn browser_suite() {
    let _slot = crate::slot();
    let browser_dir = workspace_root().join("e2e").join("browser");
    let (node, chromium) = prerequisites(&browser_dir);
    let artifacts = workspace_root()
        .join("target")
        .join("e2e-artifacts")
        .join("browser");
    std::fs::create_dir_all(&artifacts).unwrap();

    let dir = tempfile::Builder::new()
        .prefix("oauth2gw-browser-")
        .tempdir()
        .unwrap();
    let idp_port = free_port().unwrap();
    let post_logout_port = free_port().unwrap();
    let issuer = format!("http://127.0.0.1:{idp_port}");
    let idp = start_idp_with_config(
        dir.path(),
        "idp",
        idp_port,
        &issuer,
        &browser_idp_config(post_logout_port),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // The gateway in front of the demo API, as the local stack's envoy/envoy.yaml with DPoP
    // allowed for the IDP's tokens (dpop.test.mjs calls the API with openid-client's proofs).
    let (_rs, rs_port) = start_resource_server(dir.path(), "resource-server", free_port().unwrap())
        .unwrap_or_else(|e| panic!("{e}"));
    let gateway = Gateway::start_text(
        &dpop_allowed(),
        dir.path(),
        "envoy",
        (idp_port, rs_port),
        &issuer,
    )
    .unwrap_or_else(|e| panic!("{e}"));

    let mut tests: Vec<PathBuf> = std::fs::read_dir(browser_dir.join("tests"))
        .unwrap()
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.to_string_lossy().ends_with(".test.mjs"))
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            std::env::var("BROWSER_TESTS").map_or(true, |only| {
                only.split(',')
                    .any(|word| name.as_deref().is_some_and(|n| n.contains(word.trim())))
            })
        })
        .collect();
    tests.sort();
    assert!(!tests.is_empty(), "no e2e/browser/tests/*.test.mjs");

    let log_path = artifacts.join("node-test.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut cmd = Command::new(&node);
    cmd.args([
        "--test",
        "--test-concurrency=1",
        "--test-timeout=240000",
        "--test-reporter=spec",
    ]);
    cmd.args(&tests)
        .current_dir(&browser_dir)
        .env("IDP_URL", &idp.url)
        .env("GATEWAY_URL", &gateway.url)
        .env("CHROMIUM_BIN", &chromium)
        .env("ARTIFACTS", &artifacts)
        .env("WEB_CLIENT_ID", WEB_CLIENT.0)
        .env("WEB_CLIENT_SECRET", WEB_CLIENT.1)
        .env("IMPLICIT_CLIENT_ID", IMPLICIT_CLIENT)
        .env("PUBLIC_CLIENT_ID", PUBLIC_CLIENT)
        .env("SERVICE_CLIENT_ID", SERVICE_CLIENT.0)
        .env("SERVICE_CLIENT_SECRET", SERVICE_CLIENT.1)
        .env("DPOP_SERVICE_CLIENT_ID", DPOP_SERVICE_CLIENT.0)
        .env("DPOP_SERVICE_CLIENT_SECRET", DPOP_SERVICE_CLIENT.1)
        .env("DPOP_PUBLIC_CLIENT_ID", DPOP_PUBLIC_CLIENT)
        .env("GATEWAY_CLIENT_ID", GATEWAY_CLIENT.0)
        .env("GATEWAY_CLIENT_SECRET", GATEWAY_CLIENT.1)
        .env("USERNAME", ALICE.0)
        .env("PASSWORD", ALICE.1)
        .env("USER_NAME", USER_NAME)
        .env("POST_LOGOUT_PORT", post_logout_port.to_string())
        .env("NO_COLOR", "1")
        .env_remove("NODE_OPTIONS")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        // Its own process group, so a timeout ends node, its test processes and chromium.
        .process_group(0);
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start node: {e}"));
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > SUITE_TIMEOUT {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = std::fs::read_to_string(&log_path).unwrap_or_default();
    let elapsed = started.elapsed();
    match status {
        Some(s) if s.success() => {
            println!("browser suite passed in {elapsed:.1?}\n{output}");
        }
        Some(s) => panic!(
            "node --test failed ({s}) after {elapsed:.1?}; output:\n{output}\n--- IDP log (tail):\n{}",
            idp.proc.log_tail()
        ),
        None => panic!(
            "node --test did not finish within {SUITE_TIMEOUT:?}; output so far:\n{output}\n--- IDP log (tail):\n{}",
            idp.proc.log_tail()
        ),
    }
}
