//! Faults under load (issue 19, part 3): while `e2e::load` keeps sending valid, invalid and
//! revoked tokens through real Envoy with the Wasm filter, one thing breaks — the IDP killed or
//! hung, the resource server gone, a fresh Envoy or a reloaded plugin configuration, the IDP's
//! database on a full disk — and every test asserts that no answer was wrong (a revoked or
//! invalid token never 200, a valid one never 401), that the only 5xx are the documented kinds,
//! and prints its figures (`fault report | …`, copied into RELIABILITY.md): requests sent,
//! wrong answers, errors by kind, recovery time (fault end → first correct answer of what the
//! fault broke).
//!
//! The gateway here is `envoy/envoy.yaml` with every timeout short (JWKS refresh every second
//! with a 1 s timeout, a 1 s long poll with a 1 s timeout, 1 s logout calls), so a fault can
//! outlast all of them in a few seconds and the module stays within its time budget.
//!
//! Related tests without load: `gateway_rules::idp_down_cached_keys_keep_working_and_a_cold_gateway_fails_closed`
//! (a cold gateway without keys answers 503), `logout::logout_names_the_step_that_failed` (each
//! logout step failing on its own), `idp_replicas::` (an IDP replica killed under load loses
//! nothing it acknowledged).

mod fresh_gateway;
mod idp_disk_full;
mod idp_hangs;
mod idp_killed;
mod idp_outage;
mod reloaded_configuration;
mod resource_server_down;

use e2e::client;
use e2e::load::{self, Tokens};
use e2e::process::{Proc, free_port};
use e2e::stack::{
    self, DEMO_CLIENT, GATEWAY_CLIENT, Gateway, Idp, OTHER_CLIENT, start_resource_server,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The longest time any call of the gateway waits (the feed: 1 s timeout + 1 s long poll): a
/// fault that should outlast every timeout lasts longer than twice this.
pub const LONGEST_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a fault lasts (each test: a few logouts and feed polls fail in it).
pub const FAULT: Duration = Duration::from_secs(5);

/// What a recovery may take at most before the test fails (the feed's backoff after a 5 s
/// outage is at most 4 s; generous for a loaded machine).
pub const RECOVERY_LIMIT: Duration = Duration::from_secs(20);

/// `envoy/envoy.yaml` with short timeouts (see the module comment).
pub fn fault_template() -> String {
    let text =
        std::fs::read_to_string(e2e::artifacts::workspace_root().join("envoy/envoy.yaml")).unwrap();
    let replace = |text: String, from: &str, to: &str| {
        assert!(text.contains(from), "envoy.yaml no longer has {from:?}");
        text.replace(from, to)
    };
    let text = replace(
        text,
        r#""refresh_seconds": ${JWKS_REFRESH_SECONDS}"#,
        r#""refresh_seconds": 1, "timeout_ms": 1000"#,
    );
    let text = replace(
        text,
        r#""poll_ms": 500"#,
        r#""poll_ms": 200, "long_poll_seconds": 1, "timeout_ms": 1000"#,
    );
    replace(text, r#""timeout_ms": 3000"#, r#""timeout_ms": 1000"#)
}

/// An IDP, a resource server and a gateway with [`fault_template`], and the tokens of the load.
pub struct FaultStack {
    pub dir: tempfile::TempDir,
    pub idp: Idp,
    pub idp_port: u16,
    pub issuer: String,
    pub resource_server: Proc,
    pub rs_port: u16,
    pub gateway: Gateway,
}

impl FaultStack {
    pub fn start() -> FaultStack {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("idp.sqlite");
        Self::start_on(dir, &database)
    }

    /// With the IDP's database at `database` (e.g. on a small file system).
    pub fn start_on(dir: tempfile::TempDir, database: &Path) -> FaultStack {
        let idp_port = free_port().unwrap();
        let issuer = format!("http://127.0.0.1:{idp_port}");
        let idp = start_idp(dir.path(), "idp", idp_port, &issuer, database);
        let (resource_server, rs_port) =
            start_resource_server(dir.path(), "resource-server", 0).unwrap();
        let gateway = Gateway::start_text(
            &fault_template(),
            dir.path(),
            "envoy",
            (idp_port, rs_port),
            &issuer,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        FaultStack {
            dir,
            idp,
            idp_port,
            issuer,
            resource_server,
            rs_port,
            gateway,
        }
    }

    pub fn database(&self) -> PathBuf {
        self.dir.path().join("idp.sqlite")
    }

    /// Starts the IDP again on the same port and database (after it was killed).
    pub fn restart_idp(&mut self, name: &str, database: &Path) {
        self.idp = start_idp(self.dir.path(), name, self.idp_port, &self.issuer, database);
    }

    /// Starts the resource server again on the same port (after it was killed).
    pub fn restart_resource_server(&mut self) {
        let (rs, _) =
            start_resource_server(self.dir.path(), "resource-server-again", self.rs_port).unwrap();
        self.resource_server = rs;
    }

    pub fn token(&self) -> String {
        stack::token_from(&self.idp.url, DEMO_CLIENT, Some("read")).unwrap()
    }

    /// `n` tokens of each class, the revoked ones revoked at the IDP and seen refused by the
    /// gateway (so they are in its denylist before the fault).
    pub fn tokens(&self, n: usize) -> Tokens {
        let valid: Vec<String> = (0..n).map(|_| self.token()).collect();
        let revoked: Vec<String> = (0..n).map(|_| self.token()).collect();
        for token in &revoked {
            assert!(revoke_at_idp(&self.idp.url, token), "revocation refused");
        }
        for token in &revoked {
            load::time_until(RECOVERY_LIMIT, "revoked token refused", || {
                hello(&self.gateway.url, token) == Some(401)
            })
            .unwrap();
        }
        Tokens {
            valid,
            invalid: invalid_tokens(&self.token(), &self.idp.url),
            revoked,
        }
    }
}

fn start_idp(dir: &Path, name: &str, port: u16, issuer: &str, database: &Path) -> Idp {
    stack::start_idp_on(dir, name, port, issuer, &stack::idp_config(), database)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Tokens the gateway must refuse: garbage, a valid token with its signature broken, a token
/// for another audience, an unsigned one (`alg: none`).
pub fn invalid_tokens(valid: &str, idp_url: &str) -> Vec<String> {
    let mut parts: Vec<String> = valid.split('.').map(str::to_owned).collect();
    let sig = parts[2].clone();
    let flipped = if sig.starts_with('A') { "B" } else { "A" };
    parts[2] = format!("{flipped}{}", &sig[1..]);
    let tampered = parts.join(".");
    let unsigned = format!("eyJhbGciOiJub25lIn0.{}.", valid.split('.').nth(1).unwrap());
    vec![
        "not-a-token".to_owned(),
        tampered,
        unsigned,
        stack::token_from(idp_url, OTHER_CLIENT, None).unwrap(),
    ]
}

/// RFC 7009 at the IDP itself (not through the gateway): true when acknowledged.
pub fn revoke_at_idp(idp_url: &str, token: &str) -> bool {
    revoke_request(idp_url, token).is_ok_and(|r| r.status == 200)
}

/// RFC 7009 at the IDP itself, with the demo client (client_secret_post): the whole answer.
pub fn revoke_request(idp_url: &str, token: &str) -> Result<client::Response, String> {
    let (id, secret) = DEMO_CLIENT;
    client::post_form(
        &format!("{idp_url}/oauth2/revoke"),
        &[],
        &[
            ("token", token),
            ("client_id", id),
            ("client_secret", secret),
        ],
    )
}

/// RFC 7662 at the IDP: `Some(active)`, `None` when it does not answer 200.
pub fn introspect_active(idp_url: &str, token: &str) -> Option<bool> {
    let (id, secret) = GATEWAY_CLIENT;
    let res = client::post_form(
        &format!("{idp_url}/oauth2/introspect"),
        &[],
        &[
            ("token", token),
            ("client_id", id),
            ("client_secret", secret),
        ],
    )
    .ok()?;
    (res.status == 200).then(|| res.json().ok()?["active"].as_bool())?
}

/// The status of `GET /api/hello` with `token` (None: no answer).
pub fn hello(gateway: &str, token: &str) -> Option<u16> {
    let auth = format!("Bearer {token}");
    client::get(&format!("{gateway}/api/hello"), &[("authorization", &auth)])
        .ok()
        .map(|r| r.status)
}

/// The logouts tried during a fault: answers by kind, and the tokens used.
#[derive(Default)]
pub struct FailedLogouts {
    pub answers: std::collections::BTreeMap<String, u64>,
    pub tokens: Vec<String>,
}

/// Logouts with fresh tokens every 200 ms for `duration`, each of which must fail explicitly
/// (never 200) naming `failing_step`. `tokens` are used up one per logout.
pub fn logouts_fail_during(
    gateway: &str,
    tokens: &mut Vec<String>,
    duration: Duration,
    failing_step: &str,
) -> FailedLogouts {
    let mut seen = FailedLogouts::default();
    let start = std::time::Instant::now();
    while start.elapsed() < duration {
        let Some(token) = tokens.pop() else { break };
        seen.tokens.push(token.clone());
        let answer = load::logout(gateway, &token).unwrap();
        assert_ne!(answer.status, 200, "a logout succeeded during the fault");
        assert!(
            matches!(answer.status, 502 | 504),
            "logout answered {} {}",
            answer.status,
            answer.body
        );
        assert!(
            answer.failed_steps.iter().any(|s| s == failing_step),
            "logout does not name {failing_step}: {}",
            answer.body
        );
        *seen
            .answers
            .entry(format!(
                "{} [{}]",
                answer.status,
                answer.failed_steps.join(", ")
            ))
            .or_insert(0) += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    seen
}
