//! The fixed gateway every target runs against: one provider (`https://idp.example`, audience
//! `demo-api`, ES256 / EdDSA / RS256 / PS256, DPoP allowed) whose keys are `fixtures/jwks.json`,
//! and a token bound to the DPoP test client's key (`fixtures/dpop.json`). Both are written by
//! `seedgen` together with the signed seeds.

use crate::native_verifier::ParsedKeys;
use filter::config::FilterConfig;
use filter::jose::jwk::KeySet;

pub const ISSUER: &str = "https://idp.example";
pub const AUDIENCE: &str = "demo-api";
/// The time every decision is made at (the seeds are valid then).
pub const NOW: u64 = 1_800_000_000;
pub const LEEWAY: u64 = 30;
/// The request a DPoP proof must name.
pub const HTU: &str = "https://api.example.com/api/x";
pub const JWKS: &[u8] = include_bytes!("../fixtures/jwks.json");
const DPOP: &str = include_str!("../fixtures/dpop.json");

pub struct Gateway {
    pub config: FilterConfig,
    pub keys: KeySet,
    /// The same keys parsed by AWS-LC, as the native module holds them.
    pub native: ParsedKeys,
    /// The same keys as the reference (jsonwebtoken) reads them.
    pub reference_keys: jsonwebtoken::jwk::JwkSet,
    /// A token bound (`cnf.jkt`) to the DPoP test client's key, and that thumbprint.
    pub dpop_token: String,
    pub dpop_jkt: String,
}

// The harness runs one input at a time on one thread; `OnceLock` needs `Sync`, a thread-local
// does not (the verifier's parsed keys need not be shareable).
thread_local! {
    static GATEWAY: &'static Gateway = Box::leak(Box::new(checked(build())));
}

/// The differential targets compare accepted inputs only: a fixture under which the valid seeds
/// were refused would make them vacuous. So the valid token of each algorithm and the valid
/// proof must pass both the gateway and the reference before any input runs.
fn checked(g: Gateway) -> Gateway {
    use crate::reference::{verify_access_token, verify_dpop_proof};
    let tokens = [
        include_str!("../seeds/token/es256-valid"),
        include_str!("../seeds/token/eddsa-valid"),
        include_str!("../seeds/token/rs256-valid"),
        include_str!("../seeds/token/ps256-valid"),
    ];
    for token in tokens {
        filter::validate(&g.config, &[&g.keys], token, NOW).expect("a valid seed token");
        verify_access_token(&g, token).expect("a valid seed token (reference)");
    }
    let proof = include_str!("../seeds/dpop_proof/es256-valid");
    let settings = &g.config.providers[0].dpop;
    let max_age = settings.max_age_seconds;
    verify_dpop_proof(
        proof,
        &g.dpop_token,
        &g.dpop_jkt,
        max_age,
        settings.leeway_seconds,
    )
    .expect("the valid seed proof (reference)");
    let replay = filter::shared_state::MemoryShared::default();
    let proof_keys = filter::validation::dpop::proof_keys::ProofKeyCache::default();
    let context = filter::validation::dpop::ProofContext {
        method: "GET",
        uri: Some(HTU),
        proofs: &[proof],
        now: NOW,
        replay: &replay,
        replay_capacity: g.config.dpop_replay_cache_entries,
        native: None,
        proof_keys: &proof_keys,
    };
    let presented = filter::validation::dpop::Presented {
        scheme: filter::http::denial::Scheme::Dpop,
        token: &g.dpop_token,
        jkt: Some(&g.dpop_jkt),
        ath: None,
    };
    filter::validation::dpop::check(settings, presented, &context).expect("the valid seed proof");
    g
}

pub fn gateway() -> &'static Gateway {
    GATEWAY.with(|g| *g)
}

/// The plugin configuration the targets decide with.
pub fn config_json() -> String {
    serde_json::json!({
        "providers": [{
            "name": "idp", "issuer": ISSUER, "audiences": [AUDIENCE],
            "algorithms": ["ES256", "EdDSA", "RS256", "PS256"], "leeway_seconds": LEEWAY,
            "jwks": {"cluster": "idp", "path": "/.well-known/jwks.json"},
            "dpop": "allowed"
        }]
    })
    .to_string()
}

fn build() -> Gateway {
    let config = FilterConfig::from_json(config_json().as_bytes()).expect("fixture configuration");
    let keys = KeySet::parse(JWKS).expect("fixture JWKS").set;
    let native = ParsedKeys::build(std::slice::from_ref(&keys));
    let reference_keys = serde_json::from_slice(JWKS).expect("fixture JWKS for jsonwebtoken");
    let dpop: serde_json::Value = serde_json::from_str(DPOP).expect("fixture DPoP token");
    let text = |name: &str| dpop[name].as_str().expect("DPoP fixture member").to_owned();
    Gateway {
        config,
        keys,
        native,
        reference_keys,
        dpop_token: text("token"),
        dpop_jkt: text("jkt"),
    }
}

/// A request the default rule protects, carrying `headers` besides the pseudo-headers.
pub fn request_headers<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut all = vec![
        (":method", "GET"),
        (":scheme", "https"),
        (":authority", "api.example.com"),
        (":path", "/api/x"),
    ];
    all.extend_from_slice(extra);
    all
}
