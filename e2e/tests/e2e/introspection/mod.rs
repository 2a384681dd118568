//! Token introspection (RFC 7662, RFC 9701 answers) end to end: the gateway in front of a real
//! third-party OP (node `oidc-provider`, see `e2e::oidc_provider`) and the demo resource server,
//! on real Envoy with `--concurrency 2` (two workers: "once per Envoy" means something), for BOTH
//! builds of the filter (`*_wasm`: `filter.wasm` on V8; `*_native`: `liboauth2_gateway.so`).
//! Each test starts its own OP, resource server and Envoy on free loopback ports.
//!
//! 1. `opaque_tokens_*` (one Envoy, `cache_seconds` 3, `negative_cache_seconds` 3):
//!    - 20 sequential requests with a fresh opaque token, over new connections spread over both
//!      workers: all 200 with the answer's claims forwarded, and the OP counted exactly one
//!      introspection (the answer is shared by the workers); a user's opaque token forwards its
//!      `sub` and `sid`;
//!    - a garbage opaque token: 401 `invalid_token`, and asked again within
//!      `negative_cache_seconds`: no new introspection;
//!    - after `cache_seconds` the token is introspected once more;
//!    - a token revoked at the OP is refused within `cache_seconds` + 1 s;
//!    - the OP's introspection failing: a token not cached → 503 with `Retry-After: 1` (asked
//!      again every time: a failure is not cached); a token cached before keeps working until its
//!      cache time ends and is then refused with 503 (never a stale positive); the OP back → 200;
//!    - the OP stopped: a token never seen → 503 with `Retry-After: 1`.
//! 2. `introspect_always_with_jwts_*`: `introspect: "always"` with the OP's JWTs → 503 (the OP
//!    refuses to introspect JWTs; see the test).
//! 3. `jwt_introspection_response_*`: RFC 9701 answers (`jwt_response: true`) → 200.
//! 4. `concurrent_first_requests_share_one_call_*` (ignored, known gap): 8 concurrent first
//!    requests with one token should make one introspection.
//! 5. `scripted_answers_*`: answers oidc-provider cannot be made to give, from a scripted loopback
//!    endpoint (a thread of the test): `iss` absent, another `iss` or `aud`, an `exp` before
//!    `cache_seconds` ends (asked again after it), an `exp` that has come (401), 5 KB of claims
//!    (kept) and 20 KB (503), unusable answers (503), 32 tokens at once (all kept), no answer in
//!    time (503); `rotated_key_answers_*`: an RFC 9701 answer signed by the OP's new key makes
//!    the gateway fetch the keys early.
//! 6. `dpop_bound_opaque_tokens_*`: an opaque token bound by the OP (`cnf.jkt` in its answer)
//!    needs its proof: as a bearer token, with another key's proof or another `htu` → 401.
//! 7. `introspect_always_scripted_*`: `introspect: "always"` in front of an IDP that introspects
//!    its JWTs (the scripted endpoint): active → 200 once per Envoy, inactive at the IDP → 401
//!    although the JWT is valid, a JWT refused locally is never introspected.
//! 8. `logout_with_an_opaque_token_*`: logout through the gateway with a user's opaque token
//!    (its answer cached) revokes it at the OP and refuses it and its session's sibling at once;
//!    `logout_with_a_fresh_opaque_token_*` (ignored, known gap): the same with a token the gateway
//!    has not introspected yet.
//! 9. `backchannel_logout_ends_opaque_sessions_*`: the OP's back-channel logout (`end_session`)
//!    refuses that session's cached opaque token at once; another user and a new login pass.
//! 10. `rfc9701_right_after_start_*` (ignored, timing-dependent probe): RFC 9701 answers in the
//!     first 100 ms after the keys were fetched (Wasm: sometimes a 503).
//!
//! One module per part: [`opaque_tokens`] (1, 4), [`jwt_answers`] (2, 3, 10), [`scripted_answers`]
//! (5, 7, on [`scripted_endpoint`]), [`dpop`] (6), [`logout`] (8, 9). The filter's configuration
//! is built here, the bootstrap around it by `e2e::third_party::bootstrap`; Envoy refuses an
//! invalid one at start-up. By hand: `cargo test -p e2e --test e2e -- introspection:: --nocapture`
//! (add `--include-ignored` for the known defects).

mod dpop;
mod jwt_answers;
mod logout;
mod opaque_tokens;
mod scripted_answers;
mod scripted_endpoint;

use e2e::client;
use e2e::oidc_provider::{GATEWAY_SECRET, OidcProvider, OpOptions, RESOURCE_OPAQUE};
use e2e::process::free_port;
use e2e::third_party::{Build, Gateway, now_f64};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// `cache_seconds` of the opaque-token test (short, so that its expiry can be waited for).
const CACHE_SECONDS: u64 = 3;
/// `negative_cache_seconds` of the opaque-token test (at most `cache_seconds`).
const NEGATIVE_CACHE_SECONDS: u64 = 3;
const INTROSPECTION_PATH: &str = "/token/introspection";

/// Sleeps until the epoch time `t` (seconds) has passed.
fn sleep_until(t: f64) {
    let left = t - now_f64();
    if left > 0.0 {
        std::thread::sleep(Duration::from_secs_f64(left));
    }
}

/// How the gateway's one provider (the OP) is configured.
struct ProviderShape {
    audiences: Vec<&'static str>,
    /// The provider's `introspection` object.
    introspection: Value,
    /// Keys fetched from the OP's JWKS (needed for JWTs and RFC 9701 answers).
    jwks: bool,
    /// The provider's `dpop` mode (`None`: the default, disabled).
    dpop: Option<&'static str>,
    /// More members: `{"provider": {…}, "filter": {…}}` (`Null`: none).
    extra: Value,
}

/// A shape with neither DPoP nor more members.
fn shape(audiences: Vec<&'static str>, introspection: Value, jwks: bool) -> ProviderShape {
    ProviderShape {
        audiences,
        introspection,
        jwks,
        dpop: None,
        extra: Value::Null,
    }
}

/// The filter's JSON configuration: the OP (`issuer`, on `op_port`) as its only provider.
fn filter_config(issuer: &str, op_port: u16, shape: &ProviderShape) -> String {
    let authority = format!("127.0.0.1:{op_port}");
    let mut provider = json!({
        "name": "oidc-provider",
        "issuer": issuer,
        "audiences": shape.audiences,
        "algorithms": ["ES256", "RS256"],
        "leeway_seconds": 5,
        "introspection": shape.introspection,
    });
    if let Some(mode) = shape.dpop {
        provider["dpop"] = json!(mode);
    }
    if let (Some(p), Some(Value::Object(more))) =
        (provider.as_object_mut(), shape.extra.get("provider"))
    {
        p.extend(more.clone());
    }
    if shape.jwks {
        provider["jwks"] = json!({
            "cluster": "op", "path": "/jwks", "authority": authority, "refresh_seconds": 300,
            "min_early_refresh_seconds": 1
        });
    }
    let mut filter = json!({
        "realm": "gateway",
        "providers": [provider],
        "rules": [
            {"match": {"exact": "/healthz"}, "action": "bypass"},
            {"match": {"prefix": "/api/"}}
        ]
    });
    if let (Some(f), Some(Value::Object(more))) =
        (filter.as_object_mut(), shape.extra.get("filter"))
    {
        f.extend(more.clone());
    }
    filter.to_string()
}

/// The `introspection` object: the endpoint of the OP on `op_port` as the `gateway` client.
fn introspection(op_port: u16, extra: Value) -> Value {
    let mut v = json!({
        "cluster": "op",
        "path": INTROSPECTION_PATH,
        "authority": format!("127.0.0.1:{op_port}"),
        "timeout_ms": 2000,
        "client_id": "gateway",
        "client_secret": GATEWAY_SECRET,
    });
    if let (Some(v), Value::Object(extra)) = (v.as_object_mut(), extra) {
        v.extend(extra);
    }
    v
}

/// The OP, the resource server and Envoy (2 workers) with the filter, stopped when dropped.
struct Setup {
    kind: Build,
    /// The OP (`None` once stopped by the test).
    op_proc: Option<OidcProvider>,
    /// The provider's issuer.
    issuer: String,
    gateway: Gateway,
}

/// The gateway's URL, Envoy, its counters: `s.url`, `s.envoy`, `s.counter(..)`.
impl std::ops::Deref for Setup {
    type Target = Gateway;
    fn deref(&self) -> &Gateway {
        &self.gateway
    }
}

impl Setup {
    /// node oidc-provider as the OP.
    fn start(kind: Build, shape: impl FnOnce(&OidcProvider) -> ProviderShape) -> Setup {
        Self::start_with(kind, |_| OpOptions::default(), shape)
    }

    /// node oidc-provider as the OP, started with `options(the gateway's listen port)`.
    fn start_with(
        kind: Build,
        options: impl Fn(u16) -> OpOptions,
        shape: impl FnOnce(&OidcProvider) -> ProviderShape,
    ) -> Setup {
        let listen = free_port().unwrap();
        // Seen twice in ~12 runs of this file on a loaded 2-core machine: node started but never
        // printed OP_READY within 30 s (its log holds only Node's version warning). Started
        // again once, saying so; a second failure fails the test.
        let op = OidcProvider::start(options(listen))
            .or_else(|e| {
                println!("[{kind:?}] oidc-provider did not start, trying once more: {e}");
                OidcProvider::start(options(listen))
            })
            .unwrap_or_else(|e| panic!("{e}"));
        let shape = shape(&op);
        let (issuer, port) = (op.issuer().to_owned(), op.port());
        Self::launch(kind, Some(op), &issuer, port, listen, &shape)
    }

    /// Envoy in front of the resource server, with the OP `issuer` listening on `op_port`; ready
    /// once Envoy answers with the gateway's challenge (the filter is configured) and, with
    /// `shape.jwks`, the filter has fetched the OP's keys.
    fn launch(
        kind: Build,
        op: Option<OidcProvider>,
        issuer: &str,
        op_port: u16,
        listen: u16,
        shape: &ProviderShape,
    ) -> Setup {
        let started = Instant::now();
        let filter = filter_config(issuer, op_port, shape);
        let mut gateway = Gateway::start(kind, "oauth2gw-introspection-", listen, &filter, op_port)
            .unwrap_or_else(|e| panic!("{e}"));
        gateway
            .wait_until("envoy ready", |g| {
                let challenged = g.get_hello(None).is_ok_and(|r| {
                    r.status == 401
                        && r.header("www-authenticate")
                            .is_some_and(|c| c.starts_with("Bearer"))
                });
                challenged && (!shape.jwks || g.counter("jwks_fetch_ok") >= 1)
            })
            .unwrap_or_else(|e| panic!("{e}"));
        let setup = Setup {
            kind,
            op_proc: op,
            issuer: issuer.to_owned(),
            gateway,
        };
        println!(
            "[{:?}] OP {issuer}, Envoy {} ready in {:?}",
            setup.kind,
            setup.url,
            started.elapsed()
        );
        setup
    }

    /// The OP (panics once it was stopped).
    fn op(&self) -> &OidcProvider {
        self.op_proc.as_ref().expect("the OP was stopped")
    }

    /// `GET /api/hello` with `token` as a Bearer token, on a new connection.
    fn hello(&self, token: &str) -> client::Response {
        self.get_hello(Some(token))
            .unwrap_or_else(|e| panic!("[{:?}] GET /api/hello: {e}", self.kind))
    }

    /// Introspection requests the OP received so far.
    fn introspections(&self) -> u64 {
        self.op().counters().unwrap_or_else(|e| panic!("{e}")).0
    }

    fn opaque_token(&self) -> String {
        let token = self
            .op()
            .client_credentials(RESOURCE_OPAQUE)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!token.contains('.'), "not an opaque token: {token}");
        token
    }
}

/// A 200 from the resource server for the OP's `service` client (claims forwarded by the filter).
fn assert_service_allowed(s: &Setup, res: &client::Response, what: &str) {
    assert_eq!(
        res.status, 200,
        "[{:?}] {what}: {} {:?} {}",
        s.kind, res.status, res.headers, res.body
    );
    let body = res.json().unwrap();
    assert_eq!(
        body["client_id"], "service",
        "[{:?}] {what}: {body}",
        s.kind
    );
    assert_eq!(body["scope"], "api", "[{:?}] {what}: {body}", s.kind);
    assert_eq!(body["issuer"], s.issuer, "[{:?}] {what}: {body}", s.kind);
}

/// A 401 `invalid_token` answered by the gateway.
fn assert_invalid_token(res: &client::Response, what: &str) {
    assert_eq!(
        res.status, 401,
        "{what}: {} {:?} {}",
        res.status, res.headers, res.body
    );
    let challenge = res.header("www-authenticate").unwrap_or("");
    assert!(
        challenge.starts_with("Bearer") && challenge.contains("invalid_token"),
        "{what}: challenge {challenge:?}"
    );
}

/// A 503 of the gateway that cannot judge the token now: `Retry-After: 1`.
fn assert_unavailable(res: &client::Response, what: &str) {
    assert_eq!(
        res.status, 503,
        "{what}: {} {:?} {}",
        res.status, res.headers, res.body
    );
    assert_eq!(
        res.header("retry-after"),
        Some("1"),
        "{what}: {:?}",
        res.headers
    );
}
