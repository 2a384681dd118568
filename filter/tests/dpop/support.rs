//! The gateway under test, its configuration, tokens and proofs.

use crate::common::*;

use filter::admission::gateway::{Knowledge, Outcome, RequestInfo, decide};
use filter::admission::token_cache::TokenCache;
use filter::config::FilterConfig;
use filter::http::denial::{Denial, DpopDenial};
use filter::shared_state::MemoryShared;
use filter::shared_state::denylist::Denylist;
use serde_json::{Value, json};
use test_support::proof_claims;

pub const HTU: &str = "https://api.example.com/api/x";

pub fn dpop_config(mode: &str) -> FilterConfig {
    config_with(json!({"providers": [{"dpop": mode}]}))
}

/// A token bound to `client`'s key, from the test IDP (seed 1).
pub fn bound_token(client: &Issuer) -> String {
    let mut claims = claims();
    claims["cnf"] = json!({"jkt": client.thumbprint()});
    Issuer::es256(1, "k1").token(&claims)
}

pub fn unbound_token() -> String {
    Issuer::es256(1, "k1").token(&claims())
}

pub fn client() -> Issuer {
    Issuer::es256(42, "client")
}

/// A gateway: one configuration, keys, shared data, and a worker's cache.
pub struct Gateway {
    pub config: FilterConfig,
    pub keys: filter::jose::jwk::KeySet,
    pub denylist: Denylist,
}

impl Gateway {
    pub fn new(config: FilterConfig) -> Self {
        Gateway {
            config,
            keys: Issuer::es256(1, "k1").key_set(),
            denylist: Denylist::default(),
        }
    }

    /// A GET of `path` on https://api.example.com with `headers`, at `now`, on a worker with
    /// `cache` and the Envoy-wide `shared` data.
    pub fn request(
        &self,
        shared: &MemoryShared,
        cache: &mut TokenCache,
        now: u64,
        headers: &[(&str, &str)],
    ) -> Outcome {
        let mut all = vec![
            (":method", "GET"),
            (":scheme", "https"),
            (":authority", "api.example.com"),
            (":path", "/api/x"),
        ];
        all.extend_from_slice(headers);
        let k = Knowledge {
            keys: &[&self.keys],
            denylist: &self.denylist,
            now,
            revocations_loaded: true,
            native: None,
            replay: shared,
        };
        let request = RequestInfo {
            method: "GET",
            path: "/api/x",
            headers: &all,
        };
        decide(&self.config, k, request, cache)
    }

    pub fn once(&self, headers: &[(&str, &str)]) -> Outcome {
        self.request(
            &MemoryShared::default(),
            &mut TokenCache::new(16),
            NOW,
            headers,
        )
    }
}

pub fn dpop_auth(token: &str) -> String {
    format!("DPoP {token}")
}

pub fn proof_for(key: &Issuer, token: &str, jti: &str) -> String {
    key.proof(&proof_claims("GET", HTU, NOW, jti, token))
}

/// The outcome of a proof with claims changed by `change`, for a token bound to [`client`].
pub fn with_claims(change: impl FnOnce(&mut Value)) -> Outcome {
    let key = client();
    let token = bound_token(&key);
    let mut claims = proof_claims("GET", HTU, NOW, "jti-a", &token);
    change(&mut claims);
    let proof = key.proof(&claims);
    let auth = dpop_auth(&token);
    Gateway::new(dpop_config("allowed")).once(&[("authorization", &auth), ("dpop", &proof)])
}

/// The outcome of a proof with its header changed by `change` (signed by [`client`]).
pub fn with_header(change: impl FnOnce(&mut Value)) -> Outcome {
    let key = client();
    let token = bound_token(&key);
    let mut header = key.proof_header();
    change(&mut header);
    let proof = key.sign(&header, &proof_claims("GET", HTU, NOW, "jti-h", &token));
    let auth = dpop_auth(&token);
    Gateway::new(dpop_config("allowed")).once(&[("authorization", &auth), ("dpop", &proof)])
}

pub fn denied(d: DpopDenial) -> Outcome {
    Outcome::Deny(Denial::Dpop(d))
}

pub fn is_forward(o: &Outcome) -> bool {
    matches!(o, Outcome::Forward { .. })
}
