//! DPoP through the native glue: a proof verified with AWS-LC (its key is in no JWKS), the replay
//! cache shared by worker threads through the gateway's process memory, the DPoP answer and its
//! counter.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use crate::host::Stream;
use crate::metrics::Counters;
use crate::request::{self, Next};
use crate::shared::Gateway;
use crate::verifier::tests::p256_jwks;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::EcdsaKeyPair;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use filter::config::FilterConfig;
use filter::validation::dpop::thumbprint::{jwk_thumbprint, token_hash};
use serde_json::{Value, json};
use std::collections::BTreeMap;

const NOW_MS: u64 = 1_900_000_000_000;

#[derive(Default)]
struct Recorded {
    continued: bool,
    reply: Option<(u32, Vec<(String, String)>)>,
    counts: BTreeMap<String, u64>,
}

impl Stream for Recorded {
    fn set_request_header(&mut self, _: &str, _: Option<&str>) {}
    fn send_response(&mut self, status: u32, headers: &[(&str, &str)], _: &[u8]) {
        let headers = headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.reply = Some((status, headers));
    }
    fn callout(&mut self, _: &str, _: &[(&str, &str)], _: &[u8], _: u64) -> Option<u64> {
        None
    }
    fn count(&mut self, name: &str, n: u64) {
        *self.counts.entry(name.to_owned()).or_default() += n;
    }
    fn continue_request(&mut self) {
        self.continued = true;
    }
    fn waker(&mut self) -> Option<std::sync::Arc<dyn crate::host::Wake>> {
        None
    }
}

fn sign(key: &EcdsaKeyPair, header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig = key.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
}

struct Setup {
    gw: Gateway,
    token: String,
    proof: String,
}

fn setup() -> Setup {
    let (idp_jwks, idp_key) = p256_jwks();
    let (client_jwks, client_key) = p256_jwks();
    let mut client_jwk: Value =
        serde_json::from_str::<Value>(&client_jwks).unwrap()["keys"][0].clone();
    for m in ["kid", "use", "alg"] {
        client_jwk.as_object_mut().unwrap().remove(m);
    }
    let jkt = jwk_thumbprint(client_jwk.as_object().unwrap()).unwrap();
    let config = json!({"providers": [{
        "name": "idp", "issuer": "https://idp.test", "audiences": ["api"], "algorithms": ["ES256"],
        "inline_jwks": serde_json::from_str::<Value>(&idp_jwks).unwrap(), "dpop": "allowed"
    }]});
    let gw = Gateway::new(
        FilterConfig::from_json(config.to_string().as_bytes()).unwrap(),
        Counters::default(),
    );
    let now = NOW_MS / 1000;
    let token = sign(
        &idp_key,
        &json!({"alg": "ES256", "typ": "at+jwt", "kid": "k1"}),
        &json!({"iss": "https://idp.test", "aud": "api", "sub": "alice", "jti": "t-1",
                "iat": now - 10, "exp": now + 300, "cnf": {"jkt": jkt}}),
    );
    let proof = sign(
        &client_key,
        &json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": client_jwk}),
        &json!({"htm": "GET", "htu": "https://api.test/api", "iat": now, "jti": "p-1",
                "ath": token_hash(&token)}),
    );
    Setup { gw, token, proof }
}

fn send(s: &Setup) -> Recorded {
    let auth = format!("DPoP {}", s.token);
    let headers = [
        (":method", "GET"),
        (":scheme", "https"),
        (":authority", "api.test"),
        (":path", "/api"),
        ("authorization", auth.as_str()),
        ("dpop", s.proof.as_str()),
    ];
    let plan = request::plan(&s.gw, &headers, NOW_MS);
    let mut stream = Recorded::default();
    let (next, _) = request::execute(&s.gw, &mut stream, plan, NOW_MS);
    assert_eq!(next == Next::Continue, stream.reply.is_none());
    stream
}

#[test]
fn a_proof_is_accepted_once_across_worker_threads() {
    let s = setup();
    let accepted = std::sync::atomic::AtomicUsize::new(0);
    let refused: std::sync::Mutex<Vec<Recorded>> = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                let r = send(&s);
                if r.reply.is_none() {
                    accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                } else {
                    refused.lock().unwrap().push(r);
                }
            });
        }
    });
    assert_eq!(accepted.into_inner(), 1);
    let refused = refused.into_inner().unwrap();
    assert_eq!(refused.len(), 3);
    for r in refused {
        let (status, headers) = r.reply.unwrap();
        assert_eq!(status, 401);
        let challenge = &headers
            .iter()
            .find(|(k, _)| k == "www-authenticate")
            .unwrap()
            .1;
        assert!(
            challenge.starts_with("DPoP realm=\"gateway\", algs=\"ES256 RS256 PS256 EdDSA\", error=\"invalid_dpop_proof\""),
            "{challenge}"
        );
        assert_eq!(r.counts.get("denied.dpop_replayed"), Some(&1));
    }
}
