//! The whole local stack on free loopback ports: IDP, resource server and Envoy with the filter,
//! configured from the same `envoy/envoy.yaml` template `scripts/up` uses.

use crate::artifacts;
use crate::client;
use crate::envoy;
use crate::process::{Proc, free_port};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub const DEMO_CLIENT: (&str, &str) = ("demo-client", "demo-client-secret-0123456789abcdef");
pub const OTHER_CLIENT: (&str, &str) = ("other-client", "other-client-secret-0123456789abcdef");
/// A client whose tokens live one second (for expiry tests).
pub const SHORT_CLIENT: (&str, &str) = ("short-lived", "short-lived-secret-0123456789abcdef0");
pub const GATEWAY_CLIENT: (&str, &str) = ("gateway", "gateway-secret-0123456789abcdef0123");
/// A confidential web application (authorization code; first-party, so no consent page).
pub const WEB_CLIENT: (&str, &str) = ("web-client", "web-client-secret-0123456789abcdef01");
pub const WEB_CLIENT_REDIRECT: &str = "http://127.0.0.1/callback";
/// The demo user (password grant through the demo client).
pub const ALICE: (&str, &str) = ("alice", "alice-password-123");
/// argon2id of ALICE's password (as in idp/idp.toml, made with `idp hash-password`).
pub const ALICE_ARGON2: &str = "$argon2id$v=19$m=19456,t=2,p=1$SrReCOeV/xQC+6i27a0vvQ$3DeSqOV5DjJmrMbb6VeomsSLsTWufj959MVrQvIUWYk";

const START_TIMEOUT: Duration = Duration::from_secs(60);

mod idp;
pub use idp::{Idp, idp_config, start_idp, start_idp_on, start_idp_with_config};

pub fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// An Envoy with the filter, in front of the stack's IDP and resource server.
pub struct Gateway {
    pub proc: Proc,
    pub url: String,
    pub admin_url: String,
    pub config: PathBuf,
}

impl Gateway {
    /// Renders envoy/envoy.yaml for these ports, starts Envoy, and waits until the filter has
    /// fetched the JWKS.
    pub fn start(
        dir: &Path,
        name: &str,
        idp_port: u16,
        rs_port: u16,
        issuer: &str,
        options: StackOptions,
    ) -> Result<Gateway, String> {
        let mut gateway = Self::launch(dir, name, idp_port, rs_port, issuer, options)?;
        gateway.wait_ready()?;
        Ok(gateway)
    }

    /// Starts Envoy and waits only until it is live (not for the keys: for cold-start tests).
    pub fn start_without_keys(
        dir: &Path,
        name: &str,
        idp_port: u16,
        rs_port: u16,
        issuer: &str,
    ) -> Result<Gateway, String> {
        let gateway = Self::launch(
            dir,
            name,
            idp_port,
            rs_port,
            issuer,
            StackOptions::default(),
        )?;
        let deadline = Instant::now() + START_TIMEOUT;
        while client::get(&format!("{}/ready", gateway.admin_url), &[]).map(|r| r.status) != Ok(200)
        {
            if Instant::now() > deadline {
                return Err(format!("envoy not live; log:\n{}", gateway.proc.log_tail()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(gateway)
    }

    fn launch(
        dir: &Path,
        name: &str,
        idp_port: u16,
        rs_port: u16,
        issuer: &str,
        options: StackOptions,
    ) -> Result<Gateway, String> {
        Self::launch_template(
            options.envoy_template,
            dir,
            name,
            idp_port,
            rs_port,
            issuer,
            options,
        )
    }

    /// Starts Envoy with the given template of `envoy/` (same placeholders as envoy.yaml).
    pub fn launch_template(
        template: &str,
        dir: &Path,
        name: &str,
        idp_port: u16,
        rs_port: u16,
        issuer: &str,
        options: StackOptions,
    ) -> Result<Gateway, String> {
        let text =
            std::fs::read_to_string(artifacts::workspace_root().join("envoy").join(template))
                .map_err(|e| format!("envoy/{template}: {e}"))?;
        Self::launch_text(&text, dir, name, idp_port, rs_port, issuer, options)
    }

    /// As [`Gateway::start`], from the text of a template (e.g. envoy.yaml with a change).
    pub fn start_text(
        template: &str,
        dir: &Path,
        name: &str,
        (idp_port, rs_port): (u16, u16),
        issuer: &str,
    ) -> Result<Gateway, String> {
        let options = StackOptions::default();
        let mut gateway =
            Self::launch_text(template, dir, name, idp_port, rs_port, issuer, options)?;
        gateway.wait_ready()?;
        Ok(gateway)
    }

    fn launch_text(
        template: &str,
        dir: &Path,
        name: &str,
        idp_port: u16,
        rs_port: u16,
        issuer: &str,
        options: StackOptions,
    ) -> Result<Gateway, String> {
        let listen_port = free_port()?;
        let admin_port = free_port()?;
        let values = BTreeMap::from([
            ("LISTEN_PORT", listen_port.to_string()),
            ("ADMIN_PORT", admin_port.to_string()),
            ("IDP_PORT", idp_port.to_string()),
            ("RS_PORT", rs_port.to_string()),
            ("ISSUER", issuer.to_owned()),
            ("LEEWAY_SECONDS", options.leeway_seconds.to_string()),
            (
                "JWKS_REFRESH_SECONDS",
                options.jwks_refresh_seconds.to_string(),
            ),
            (
                "FILTER_WASM",
                match options.filter_wasm {
                    Some(path) => path.to_owned(),
                    None => artifacts::filter_wasm()?.display().to_string(),
                },
            ),
        ]);
        let config = dir.join(format!("{name}.yaml"));
        std::fs::write(&config, envoy::render(template, &values)?).map_err(|e| e.to_string())?;
        let mut cmd = Command::new(artifacts::envoy_bin()?);
        cmd.arg("-c").arg(&config).args([
            "--use-dynamic-base-id",
            "--concurrency",
            "2",
            "-l",
            "info",
        ]);
        if template.contains("dynamic_modules") {
            // The native module (envoy/envoy-native.yaml): Envoy loads liboauth2_gateway.so from here.
            cmd.env(
                crate::scenario_runner::module::SEARCH_PATH_VAR,
                crate::scenario_runner::native_module_dir()?,
            );
        }
        let proc = Proc::start(name, cmd, dir)?;
        Ok(Gateway {
            proc,
            url: format!("http://127.0.0.1:{listen_port}"),
            admin_url: format!("http://127.0.0.1:{admin_port}"),
            config,
        })
    }

    /// Envoy is live and the filter has fetched the JWKS at least once, and read its revocation
    /// feed up to date when it has one (until then it refuses tokens with 503).
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        let config = std::fs::read_to_string(&self.config).unwrap_or_default();
        let has_feed = config.contains("revocation_feed");
        loop {
            if !self.proc.is_running() {
                return Err(format!("envoy exited; log:\n{}", self.proc.log_tail()));
            }
            if self.counter("oauth2gw.jwks_fetch_ok").unwrap_or(0) >= 1
                && (!has_feed || self.counter("oauth2gw.revocation_feed_synced").unwrap_or(0) >= 1)
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "envoy did not fetch the JWKS (and read its revocation feed) within {START_TIMEOUT:?}; log:\n{}",
                    self.proc.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The value of an Envoy counter defined by the filter (the Wasm module's `wasmcustom.` or
    /// the native module's `dynamicmodulescustom.` prefix is added).
    pub fn counter(&self, name: &str) -> Option<u64> {
        ["wasmcustom.", "dynamicmodulescustom."]
            .iter()
            .find_map(|prefix| {
                let full = format!("{prefix}{name}");
                let url = format!(
                    "{}/stats?filter=^{}$",
                    self.admin_url,
                    full.replace('.', "\\.")
                );
                let res = client::get(&url, &[]).ok()?;
                res.body.lines().find_map(|line| {
                    let (k, v) = line.split_once(": ")?;
                    (k.trim() == full).then(|| v.trim().parse().ok())?
                })
            })
    }
}

pub struct Stack {
    pub dir: tempfile::TempDir,
    pub idp: Idp,
    pub idp_port: u16,
    pub resource_server: Proc,
    pub rs_port: u16,
    pub gateway: Gateway,
    pub gateway_url: String,
    pub issuer: String,
    pub options: StackOptions,
}

/// Defaults: zero leeway, so expiry tests need not wait out the production default of 30 s.
#[derive(Debug, Clone, Copy)]
pub struct StackOptions {
    pub leeway_seconds: u64,
    pub jwks_refresh_seconds: u64,
    /// The Envoy template in `envoy/`: `envoy.yaml` (the local stack) or `istio-sidecar.yaml`
    /// (shaped like an Istio sidecar, see envoy/istio/README.md); same placeholders.
    pub envoy_template: &'static str,
    /// The module Envoy loads (None: the built filter, `artifacts::filter_wasm`), e.g. one pulled
    /// back from an OCI registry.
    pub filter_wasm: Option<&'static str>,
}

/// The Istio-sidecar-shaped Envoy template (`StackOptions::envoy_template`).
pub const ISTIO_SIDECAR_TEMPLATE: &str = "istio-sidecar.yaml";

impl Default for StackOptions {
    fn default() -> Self {
        StackOptions {
            leeway_seconds: 0,
            jwks_refresh_seconds: 300,
            envoy_template: "envoy.yaml",
            filter_wasm: None,
        }
    }
}

impl Stack {
    pub fn start(options: StackOptions) -> Result<Stack, String> {
        let dir = tempfile::Builder::new()
            .prefix("oauth2gw-e2e-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let idp_port = free_port()?;
        let issuer = format!("http://127.0.0.1:{idp_port}");
        let idp = start_idp(dir.path(), "idp", idp_port, &issuer)?;
        let (resource_server, rs_port) = start_resource_server(dir.path(), "resource-server", 0)?;
        let gateway = Gateway::start(dir.path(), "envoy", idp_port, rs_port, &issuer, options)?;
        Ok(Stack {
            gateway_url: gateway.url.clone(),
            dir,
            idp,
            idp_port,
            resource_server,
            rs_port,
            gateway,
            issuer,
            options,
        })
    }

    /// Another Envoy with the filter in front of the same IDP and resource server.
    pub fn another_gateway(&self, name: &str) -> Result<Gateway, String> {
        Gateway::start(
            self.dir.path(),
            name,
            self.idp_port,
            self.rs_port,
            &self.issuer,
            self.options,
        )
    }

    pub fn counter(&self, name: &str) -> Option<u64> {
        self.gateway.counter(name)
    }

    /// An Envoy with the native jwt_authn filter (envoy/jwt-authn-reference.yaml) in front of the
    /// same IDP and resource server, once its listener is up (it waits for the JWKS).
    pub fn jwt_authn_reference(&self) -> Result<Gateway, String> {
        let mut reference = Gateway::launch_template(
            "jwt-authn-reference.yaml",
            self.dir.path(),
            "jwt-authn",
            self.idp_port,
            self.rs_port,
            &self.issuer,
            self.options,
        )?;
        let deadline = Instant::now() + START_TIMEOUT;
        while client::get(&format!("{}/api/hello", reference.url), &[]).is_err() {
            if !reference.proc.is_running() || Instant::now() > deadline {
                return Err(format!(
                    "jwt_authn Envoy not serving; log:\n{}",
                    reference.proc.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(reference)
    }

    pub fn token(&self, (id, secret): (&str, &str), scope: Option<&str>) -> Result<String, String> {
        token_from(&self.idp.url, (id, secret), scope)
    }
}

/// Logs the demo user in with the password grant; returns the token response (access_token,
/// refresh_token, …).
pub fn password_login(idp_url: &str) -> Result<serde_json::Value, String> {
    let (id, secret) = DEMO_CLIENT;
    let form = [
        ("grant_type", "password"),
        ("username", ALICE.0),
        ("password", ALICE.1),
        ("client_id", id),
        ("client_secret", secret),
    ];
    let res = client::post_form(&format!("{idp_url}/oauth2/token"), &[], &form)?;
    if res.status != 200 {
        return Err(format!("login failed: {} {}", res.status, res.body));
    }
    res.json()
}

/// Uses a refresh token; returns the IDP's answer (status, JSON).
pub fn refresh(idp_url: &str, refresh_token: &str) -> Result<(u16, serde_json::Value), String> {
    let (id, secret) = DEMO_CLIENT;
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", id),
        ("client_secret", secret),
    ];
    let res = client::post_form(&format!("{idp_url}/oauth2/token"), &[], &form)?;
    Ok((res.status, res.json()?))
}

/// Gets an access token with client_credentials (client_secret_post).
pub fn token_from(
    idp_url: &str,
    (id, secret): (&str, &str),
    scope: Option<&str>,
) -> Result<String, String> {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("client_id", id),
        ("client_secret", secret),
    ];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    let res = client::post_form(&format!("{idp_url}/oauth2/token"), &[], &form)?;
    if res.status != 200 {
        return Err(format!("token request failed: {} {}", res.status, res.body));
    }
    res.json()?["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no access_token in {}", res.body))
}

/// Starts the demo resource server on `port` (0: any); returns it and its port.
pub fn start_resource_server(dir: &Path, name: &str, port: u16) -> Result<(Proc, u16), String> {
    let mut cmd = Command::new(artifacts::resource_server_bin()?);
    cmd.args(["--listen", &format!("127.0.0.1:{port}")]);
    let (proc, url) = Proc::start_until_line(
        name,
        cmd,
        dir,
        "resource-server listening on ",
        START_TIMEOUT,
    )?;
    Ok((proc, port_of(&url)?))
}

fn port_of(url: &str) -> Result<u16, String> {
    url.rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .ok_or_else(|| format!("no port in {url:?}"))
}
