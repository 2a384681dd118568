//! The parsed protected headers of DPoP proofs, per worker. A client signs every proof with the
//! same key, so every proof it sends has the same header segment (`typ`, `alg` and `jwk`; what
//! changes from proof to proof is in the payload). Parsing that header — base64url, strict JSON,
//! the `jwk` into a verifying key (the P-256 point check, the Ed25519 point decompression) and
//! its RFC 7638 thumbprint — is done on a client's first proof, not on every one.
//!
//! The cache is keyed by the header segment's exact text, so a hit is the very bytes that were
//! parsed before; what is cached is a pure function of those bytes, refusals included (a client
//! repeating a bad header is refused at the same cost as a good one is accepted). It is bounded
//! ([`MAX_ENTRIES`], oldest first out), and headers longer than [`MAX_HEADER_BYTES`] are parsed
//! every time rather than kept.

use super::thumbprint::jwk_thumbprint;
use crate::http::denial::{Denial, DpopDenial};
use crate::jose::algorithm::Algorithm;
use crate::jose::jwk::{Jwk, parse_jwk};
use crate::jose::jws;
use serde_json::Value;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

/// Headers remembered per worker.
pub const MAX_ENTRIES: usize = 256;
/// Longer headers are not kept (an RSA-4096 `jwk` header is about 1 KB of base64url).
pub const MAX_HEADER_BYTES: usize = 2048;

/// Private and symmetric JWK members (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// What a proof's header says, checked as far as it can be without the provider's settings.
#[derive(Debug)]
pub struct ProofHeader {
    pub alg: Algorithm,
    /// The header's `jwk` as a verifying key usable for `alg`, and its thumbprint (`None` when
    /// a required member is not a string); or why the `jwk` is refused.
    pub key: Result<(Jwk, Option<String>), DpopDenial>,
}

/// Parses one header segment: a refusal here (not base64url, not a JSON object, no supported
/// `alg`, wrong `typ`) comes before any other check of the proof.
pub fn parse_header(segment: &str) -> Result<ProofHeader, DpopDenial> {
    let malformed = DpopDenial::MalformedProof("not a compact JWS");
    let bytes = jws::decode_segment(segment).map_err(|_| malformed)?;
    let header = jws::parse_header(&bytes).map_err(|denial| match denial {
        Denial::UnsupportedAlgorithm => DpopDenial::BadAlgorithm,
        _ => malformed,
    })?;
    if !header
        .typ
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("dpop+jwt"))
    {
        return Err(DpopDenial::MalformedProof("typ is not dpop+jwt"));
    }
    let alg = header.alg;
    Ok(ProofHeader {
        alg,
        key: proof_key(header.jwk.as_ref(), alg),
    })
}

fn proof_key(jwk: Option<&Value>, alg: Algorithm) -> Result<(Jwk, Option<String>), DpopDenial> {
    let Some(Value::Object(jwk_json)) = jwk else {
        return Err(DpopDenial::BadKey("no jwk object in the header"));
    };
    if PRIVATE_MEMBERS.iter().any(|m| jwk_json.contains_key(*m)) {
        return Err(DpopDenial::BadKey("the jwk holds a private key"));
    }
    let key = parse_jwk(jwk_json).map_err(DpopDenial::BadKey)?;
    if !key.usable_for(alg) {
        return Err(DpopDenial::BadKey("the jwk is not a key for alg"));
    }
    Ok((key, jwk_thumbprint(jwk_json)))
}

type Parsed = Rc<Result<ProofHeader, DpopDenial>>;

/// One worker's parsed proof headers (interior mutability: the request path holds it shared).
#[derive(Debug, Default)]
pub struct ProofKeyCache {
    inner: RefCell<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    by_segment: HashMap<String, Parsed>,
    order: VecDeque<String>,
    hits: u64,
    misses: u64,
}

impl ProofKeyCache {
    /// The parsed header `segment`, from the cache or parsed now (and kept when it fits).
    pub fn get_or_parse(&self, segment: &str) -> Parsed {
        let Ok(mut inner) = self.inner.try_borrow_mut() else {
            // Never re-entered; if it were, parsing without the cache is still correct.
            return Rc::new(parse_header(segment));
        };
        if let Some(hit) = inner.by_segment.get(segment) {
            let hit = Rc::clone(hit);
            inner.hits += 1;
            return hit;
        }
        inner.misses += 1;
        let parsed = Rc::new(parse_header(segment));
        if segment.len() <= MAX_HEADER_BYTES {
            while inner.by_segment.len() >= MAX_ENTRIES {
                let Some(oldest) = inner.order.pop_front() else {
                    break;
                };
                inner.by_segment.remove(&oldest);
            }
            inner
                .by_segment
                .insert(segment.to_owned(), Rc::clone(&parsed));
            inner.order.push_back(segment.to_owned());
        }
        parsed
    }

    /// (hits, misses) since the cache was made.
    pub fn stats(&self) -> (u64, u64) {
        self.inner
            .try_borrow()
            .map_or((0, 0), |i| (i.hits, i.misses))
    }

    pub fn len(&self) -> usize {
        self.inner.try_borrow().map_or(0, |i| i.by_segment.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::json;

    /// RFC 8037 A.2's Ed25519 public key.
    const X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

    fn segment(header: &Value) -> String {
        URL_SAFE_NO_PAD.encode(header.to_string())
    }

    fn ed25519_header(extra: &str) -> String {
        segment(&json!({"typ": "dpop+jwt", "alg": "EdDSA", "extra": extra,
            "jwk": {"kty": "OKP", "crv": "Ed25519", "x": X}}))
    }

    #[test]
    fn a_header_is_parsed_once_and_its_refusal_too() {
        let cache = ProofKeyCache::default();
        let good = ed25519_header("a");
        let first = cache.get_or_parse(&good);
        let again = cache.get_or_parse(&good);
        assert!(Rc::ptr_eq(&first, &again));
        let Ok(parsed) = first.as_ref() else {
            panic!("refused: {first:?}")
        };
        assert_eq!(parsed.alg, Algorithm::EdDsa);
        let (_, thumbprint) = parsed.key.as_ref().unwrap();
        // RFC 8037 A.3: the thumbprint of that key.
        assert_eq!(
            thumbprint.as_deref(),
            Some("kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k")
        );
        let private = segment(&json!({"typ": "dpop+jwt", "alg": "EdDSA",
            "jwk": {"kty": "OKP", "crv": "Ed25519", "x": X, "d": X}}));
        for _ in 0..2 {
            let refused = cache.get_or_parse(&private);
            let Ok(header) = refused.as_ref() else {
                panic!("{refused:?}")
            };
            assert_eq!(
                header.key.as_ref().err(),
                Some(&DpopDenial::BadKey("the jwk holds a private key"))
            );
        }
        let wrong_typ = segment(&json!({"typ": "JWT", "alg": "EdDSA"}));
        assert_eq!(
            cache.get_or_parse(&wrong_typ).as_ref().as_ref().err(),
            Some(&DpopDenial::MalformedProof("typ is not dpop+jwt"))
        );
        assert_eq!(cache.stats(), (2, 3));
    }

    #[test]
    fn bounded_and_long_headers_are_not_kept() {
        let cache = ProofKeyCache::default();
        for i in 0..MAX_ENTRIES + 10 {
            cache.get_or_parse(&ed25519_header(&i.to_string()));
        }
        assert_eq!(cache.len(), MAX_ENTRIES);
        // The oldest went first: the newest is still a hit.
        cache.get_or_parse(&ed25519_header(&(MAX_ENTRIES + 9).to_string()));
        assert_eq!(cache.stats().0, 1);
        let long = ed25519_header(&"x".repeat(MAX_HEADER_BYTES));
        assert!(cache.get_or_parse(&long).is_ok());
        cache.get_or_parse(&long);
        assert_eq!(cache.stats(), (1, MAX_ENTRIES as u64 + 12));
    }
}
