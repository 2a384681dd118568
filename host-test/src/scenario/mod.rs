//! Scenario files: a declarative description of a filter test (configuration, fake upstream
//! services, signing keys, then steps: requests with expected outcomes, time passing, upstream
//! changes, call counts, metrics). The same file runs in the harness ([`Scenario::run`]) and,
//! through an Envoy runner, against real Envoy — the harness is only trusted where the two agree.
//! The format is documented in `host-test/scenarios/README.md`.

mod check;
mod proofs;
mod run;
mod tokens;

pub use check::Observed;
pub use run::ScenarioReport;
pub use tokens::{CannedResponse, SigningKeys};

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// One scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The plugin configuration.
    pub config: Value,
    /// Envoy must refuse the configuration (and the steps are not run).
    #[serde(default)]
    pub config_rejected: bool,
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// Signing keys by name.
    #[serde(default)]
    pub keys: BTreeMap<String, KeySpec>,
    /// Default claims of every token (time placeholders allowed, see [`TokenSpec`]).
    #[serde(default)]
    pub claims: serde_json::Map<String, Value>,
    /// Fake services by cluster name: `"METHOD /path"` → response.
    #[serde(default)]
    pub upstreams: BTreeMap<String, BTreeMap<String, ResponseSpec>>,
    #[serde(default)]
    pub steps: Vec<Step>,
}

fn default_workers() -> usize {
    2
}

/// A signing key derived from a seed, so every runner derives the same key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySpec {
    /// `ES256` (P-256 with the 32-byte secret `[seed; 32]`).
    pub alg: String,
    pub seed: u8,
    /// The JWK `kid`; defaults to the key's name.
    #[serde(default)]
    pub kid: Option<String>,
}

/// A canned response of a fake upstream.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseSpec {
    #[serde(default = "default_status")]
    pub status: u16,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Body text.
    #[serde(default)]
    pub body: Option<String>,
    /// JSON body (sets `content-type: application/json`).
    #[serde(default)]
    pub json: Option<Value>,
    /// A JWKS document with the public keys of these key names.
    #[serde(default)]
    pub jwks: Option<Vec<String>>,
    /// Never answer (the caller's timeout decides).
    #[serde(default)]
    pub hang: bool,
}

fn default_status() -> u16 {
    200
}

impl ResponseSpec {
    /// The response as a runner serves it at Unix time `now` (time placeholders in `json`
    /// resolved, `jwks` built from `keys`). `hang` is the runner's business.
    pub fn render(&self, keys: &SigningKeys, now: u64) -> Result<CannedResponse, String> {
        tokens::render(self, keys, now)
    }
}

/// The canned response of `routes` for a call: the path with its query string first, then
/// without. `None`: the route is not listed (runners answer 404).
pub fn route<'a>(
    routes: &'a BTreeMap<String, ResponseSpec>,
    method: &str,
    path_and_query: &str,
) -> Option<&'a ResponseSpec> {
    let path = path_and_query.split('?').next().unwrap_or("/");
    routes
        .get(&format!("{method} {path_and_query}"))
        .or_else(|| routes.get(&format!("{method} {path}")))
}

/// The key under which [`Step::expect_upstream_calls`] counts a call: `"cluster METHOD /path"`
/// (query string dropped).
pub fn call_key(cluster: &str, method: &str, path_and_query: &str) -> String {
    let path = path_and_query.split('?').next().unwrap_or("/");
    format!("{cluster} {method} {path}")
}

/// One step. Each step object has exactly one of these keys (plus `expect` for requests).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Let time pass (the harness moves its fake clock; an Envoy runner waits).
    #[serde(default, with = "duration_text")]
    pub advance: Option<Duration>,
    /// Replace a fake upstream's route: `{"cluster", "route": "GET /path", "response"}`.
    #[serde(default)]
    pub upstream: Option<UpstreamChange>,
    #[serde(default)]
    pub request: Option<RequestSpec>,
    #[serde(default)]
    pub expect: Option<Expect>,
    /// Requests the fake upstreams received so far: `"cluster METHOD /path"` → count.
    #[serde(default)]
    pub expect_upstream_calls: Option<BTreeMap<String, usize>>,
    /// Metric values by the name the filter defines (Envoy shows them as `wasmcustom.<name>`);
    /// `0` also matches a metric never defined.
    #[serde(default)]
    pub expect_metrics: Option<BTreeMap<String, u64>>,
    /// A comment, ignored.
    #[serde(default)]
    pub note: Option<String>,
}

impl Step {
    /// A short label for error messages: the request, the time step, or the note.
    pub fn describe(&self) -> String {
        if let Some(r) = &self.request {
            return format!("({} {})", r.method, r.path);
        }
        if let Some(d) = self.advance {
            return format!("(advance {d:?})");
        }
        self.note
            .clone()
            .map(|n| format!("({n})"))
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamChange {
    pub cluster: String,
    pub route: String,
    pub response: ResponseSpec,
}

/// A downstream request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    #[serde(default = "default_method")]
    pub method: String,
    pub path: String,
    /// Headers in order (a list of pairs, so repeats are possible).
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// Adds `authorization: Bearer <token>` (or the token's `scheme`).
    #[serde(default)]
    pub token: Option<TokenSpec>,
    /// DPoP proofs (RFC 9449), each sent as a `dpop` header (two: two headers), made when the
    /// request is sent.
    #[serde(default)]
    pub dpop: Vec<ProofSpec>,
    #[serde(default)]
    pub body: Option<String>,
    /// A back-channel logout token made when the request is sent: the body becomes the form
    /// `logout_token=<token>` (instead of `body`).
    #[serde(default)]
    pub logout_token: Option<TokenSpec>,
}

/// A DPoP proof built at request time: `{"typ": "dpop+jwt", "alg", "jwk"}` of `key`, claims
/// `htm` (the request's method), `htu` (`{origin}` and the request's path without query:
/// `{origin}` is the URL the runner sends to, `http://gateway.test` in the harness), `iat`
/// (`"now"`), `jti` (unique per request of the run) and `ath` (the hash of the request's token).
/// Each may be overridden in `claims` (`null` removes); `header` overrides header members;
/// `jwk_members` adds members to its `jwk`; `signed_by` signs with another key than the `jwk`
/// names.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofSpec {
    pub key: String,
    #[serde(default)]
    pub claims: serde_json::Map<String, Value>,
    #[serde(default)]
    pub header: serde_json::Map<String, Value>,
    #[serde(default)]
    pub signed_by: Option<String>,
    /// Members added to the header's `jwk` (a private `d`, say).
    #[serde(default)]
    pub jwk_members: serde_json::Map<String, Value>,
}

fn default_method() -> String {
    "GET".to_owned()
}

/// A token built at request time: the scenario's default claims with `claims` merged over them
/// (a `null` removes a claim), signed by `key`. Any claim value `"now"`, `"now+N"`, `"now-N"`
/// becomes the current Unix time plus/minus N seconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSpec {
    pub key: String,
    #[serde(default)]
    pub claims: serde_json::Map<String, Value>,
    /// JOSE header fields merged over `{"alg", "typ": "at+jwt", "kid"}` (`null` removes).
    #[serde(default)]
    pub header: serde_json::Map<String, Value>,
    /// `signature`: flip a bit of the signature; `payload`: change the payload after signing.
    #[serde(default)]
    pub tamper: Option<String>,
    /// Use this text instead of a built token.
    #[serde(default)]
    pub raw: Option<String>,
    /// The `Authorization` scheme: `Bearer` (default) or `DPoP`.
    #[serde(default)]
    pub scheme: Option<String>,
}

impl TokenSpec {
    /// The `Authorization` value for the token `text`.
    pub fn authorization(&self, text: &str) -> String {
        format!("{} {text}", self.scheme.as_deref().unwrap_or("Bearer"))
    }
}

/// What must be true of the response.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The status the client received.
    #[serde(default)]
    pub status: Option<u16>,
    /// `true`: the request reached the upstream; `false`: the filter answered it.
    #[serde(default)]
    pub forwarded: Option<bool>,
    /// Request headers the upstream received (exact values).
    #[serde(default)]
    pub upstream_headers: BTreeMap<String, String>,
    /// Request headers the upstream must not receive.
    #[serde(default)]
    pub upstream_headers_absent: Vec<String>,
    /// Response headers (exact values).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Response headers containing these substrings.
    #[serde(default)]
    pub headers_contain: BTreeMap<String, String>,
    #[serde(default)]
    pub body_contains: Option<String>,
    #[serde(default)]
    pub body_lacks: Option<String>,
}

impl Scenario {
    /// The scenario's signing keys, derived from their seeds.
    pub fn signing_keys(&self) -> Result<SigningKeys, String> {
        SigningKeys::new(&self.keys)
    }

    /// The token text a request sends for `spec` at Unix time `now` (the scenario's default
    /// claims with the token's overrides, signed by its key).
    pub fn token(&self, keys: &SigningKeys, spec: &TokenSpec, now: u64) -> Result<String, String> {
        keys.token(spec, &self.claims, now)
    }

    /// The body `request` sends at `now`: its `logout_token` as a form, else its `body`.
    pub fn body(
        &self,
        keys: &SigningKeys,
        request: &RequestSpec,
        now: u64,
    ) -> Result<Option<String>, String> {
        match &request.logout_token {
            Some(spec) => Ok(Some(format!(
                "logout_token={}",
                keys.token(spec, &self.claims, now)?
            ))),
            None => Ok(request.body.clone()),
        }
    }

    /// The `dpop` header values of `request` at `now`: `token` is the request's token text,
    /// `origin` the runner's `scheme://authority`, `index` the request's number in the run.
    pub fn proofs(
        &self,
        keys: &SigningKeys,
        request: &RequestSpec,
        token: Option<&str>,
        origin: &str,
        now: u64,
        index: usize,
    ) -> Result<Vec<String>, String> {
        proofs::build_all(keys, request, token, origin, now, index)
    }

    pub fn from_json(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Scenario::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Every `*.json` scenario in `dir`, sorted by file name.
    pub fn load_dir(dir: &Path) -> Result<Vec<(String, Scenario)>, String> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| {
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                Scenario::from_file(p).map(|s| (name, s))
            })
            .collect()
    }
}

/// Durations written as text: `"500ms"`, `"2s"`, `"5m"`, `"1h"`.
mod duration_text {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn parse(text: &str) -> Option<Duration> {
        let text = text.trim();
        let split = text.find(|c: char| !c.is_ascii_digit())?;
        let (number, unit) = text.split_at(split);
        let n: u64 = number.parse().ok()?;
        Some(match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.checked_mul(60)?),
            "h" => Duration::from_secs(n.checked_mul(3600)?),
            _ => return None,
        })
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| {
            parse(&t).ok_or_else(|| {
                serde::de::Error::custom(format!("bad duration {t:?} (use 500ms, 2s, 5m, 1h)"))
            })
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(
            duration_text::parse("500ms"),
            Some(Duration::from_millis(500))
        );
        assert_eq!(duration_text::parse("2s"), Some(Duration::from_secs(2)));
        assert_eq!(duration_text::parse("5m"), Some(Duration::from_secs(300)));
        assert_eq!(duration_text::parse("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(duration_text::parse("2"), None);
        assert_eq!(duration_text::parse("s"), None);
    }

    #[test]
    fn routes_match_with_the_query_first() {
        let mut routes = BTreeMap::new();
        routes.insert("GET /feed".to_owned(), ResponseSpec::default());
        routes.insert(
            "GET /feed?cursor=2".to_owned(),
            ResponseSpec {
                status: 204,
                ..ResponseSpec::default()
            },
        );
        assert_eq!(
            route(&routes, "GET", "/feed?cursor=2").map(|r| r.status),
            Some(204)
        );
        assert_eq!(
            route(&routes, "GET", "/feed?cursor=3").map(|r| r.status),
            Some(0)
        );
        assert!(route(&routes, "POST", "/feed").is_none());
        assert_eq!(call_key("idp", "GET", "/feed?cursor=3"), "idp GET /feed");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = Scenario::from_json(r#"{"name":"x","config":{},"stepz":[]}"#).unwrap_err();
        assert!(err.contains("stepz"), "{err}");
    }
}
