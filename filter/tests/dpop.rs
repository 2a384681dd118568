//! DPoP at the gateway (RFC 9449): one named vector per refusal, accepting vectors for each proof
//! algorithm, the replay cache across workers, the scheme rules and the answers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_SHA256, RSA_PSS_SHA256, RsaEncoding, RsaKeyPair};
use common::*;
use filter::config::FilterConfig;
use filter::denial::{Denial, DpopDenial};
use filter::denylist::Denylist;
use filter::dpop::thumbprint::jwk_thumbprint;
use filter::gateway::{Knowledge, Outcome, RequestInfo, decide, denial_response};
use filter::shared_state::MemoryShared;
use filter::token_cache::TokenCache;
use serde_json::{Value, json};
use test_support::{ath, proof_claims};

const HTU: &str = "https://api.example.com/api/x";

fn dpop_config(mode: &str) -> FilterConfig {
    config_with(json!({"providers": [{"dpop": mode}]}))
}

/// A token bound to `client`'s key, from the test IDP (seed 1).
fn bound_token(client: &Issuer) -> String {
    let mut claims = claims();
    claims["cnf"] = json!({"jkt": client.thumbprint()});
    Issuer::es256(1, "k1").token(&claims)
}

fn unbound_token() -> String {
    Issuer::es256(1, "k1").token(&claims())
}

fn client() -> Issuer {
    Issuer::es256(42, "client")
}

/// A gateway: one configuration, keys, shared data, and a worker's cache.
struct Gateway {
    config: FilterConfig,
    keys: filter::jwk::KeySet,
    denylist: Denylist,
}

impl Gateway {
    fn new(config: FilterConfig) -> Self {
        Gateway {
            config,
            keys: Issuer::es256(1, "k1").key_set(),
            denylist: Denylist::default(),
        }
    }

    /// A GET of `path` on https://api.example.com with `headers`, at `now`, on a worker with
    /// `cache` and the Envoy-wide `shared` data.
    fn request(
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

    fn once(&self, headers: &[(&str, &str)]) -> Outcome {
        self.request(
            &MemoryShared::default(),
            &mut TokenCache::new(16),
            NOW,
            headers,
        )
    }
}

fn dpop_auth(token: &str) -> String {
    format!("DPoP {token}")
}

fn proof_for(key: &Issuer, token: &str, jti: &str) -> String {
    key.proof(&proof_claims("GET", HTU, NOW, jti, token))
}

/// The outcome of a proof with claims changed by `change`, for a token bound to [`client`].
fn with_claims(change: impl FnOnce(&mut Value)) -> Outcome {
    let key = client();
    let token = bound_token(&key);
    let mut claims = proof_claims("GET", HTU, NOW, "jti-a", &token);
    change(&mut claims);
    let proof = key.proof(&claims);
    let auth = dpop_auth(&token);
    Gateway::new(dpop_config("allowed")).once(&[("authorization", &auth), ("dpop", &proof)])
}

/// The outcome of a proof with its header changed by `change` (signed by [`client`]).
fn with_header(change: impl FnOnce(&mut Value)) -> Outcome {
    let key = client();
    let token = bound_token(&key);
    let mut header = key.proof_header();
    change(&mut header);
    let proof = key.sign(&header, &proof_claims("GET", HTU, NOW, "jti-h", &token));
    let auth = dpop_auth(&token);
    Gateway::new(dpop_config("allowed")).once(&[("authorization", &auth), ("dpop", &proof)])
}

fn denied(d: DpopDenial) -> Outcome {
    Outcome::Deny(Denial::Dpop(d))
}

fn is_forward(o: &Outcome) -> bool {
    matches!(o, Outcome::Forward { .. })
}

#[test]
fn accepts_an_es256_proof() {
    let key = client();
    let token = bound_token(&key);
    let (auth, proof) = (dpop_auth(&token), proof_for(&key, &token, "es"));
    let o =
        Gateway::new(dpop_config("allowed")).once(&[("authorization", &auth), ("dpop", &proof)]);
    assert!(is_forward(&o), "{o:?}");
}

#[test]
fn accepts_an_eddsa_proof() {
    let key = Issuer::eddsa(43, "client");
    let token = bound_token(&key);
    let (auth, proof) = (dpop_auth(&token), proof_for(&key, &token, "ed"));
    let o =
        Gateway::new(dpop_config("required")).once(&[("authorization", &auth), ("dpop", &proof)]);
    assert!(is_forward(&o), "{o:?}");
}

/// openid-client signs Ed25519 proofs with `alg: "Ed25519"` (RFC 9864's fully specified name for
/// EdDSA with Ed25519): accepted as EdDSA.
#[test]
fn accepts_an_eddsa_proof_named_ed25519() {
    let key = Issuer::eddsa(44, "client");
    let token = bound_token(&key);
    let mut header = key.proof_header();
    header["alg"] = json!("Ed25519");
    let proof = key.sign(&header, &proof_claims("GET", HTU, NOW, "ed-named", &token));
    let auth = dpop_auth(&token);
    let o =
        Gateway::new(dpop_config("required")).once(&[("authorization", &auth), ("dpop", &proof)]);
    assert!(is_forward(&o), "{o:?}");
}

/// An RSA client key (aws-lc-rs): its public JWK and a signer.
fn rsa_client() -> (Value, RsaKeyPair) {
    let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let der = aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&key).unwrap();
    let pair = RsaKeyPair::from_pkcs8(der.as_ref()).unwrap();
    let public = key.public_key();
    let jwk = json!({"kty": "RSA",
        "n": b64(public.modulus().big_endian_without_leading_zero()),
        "e": b64(public.exponent().big_endian_without_leading_zero())});
    (jwk, pair)
}

fn rsa_proof(
    jwk: &Value,
    pair: &RsaKeyPair,
    alg: &str,
    padding: &'static dyn RsaEncoding,
    token: &str,
) -> String {
    let header = json!({"typ": "dpop+jwt", "alg": alg, "jwk": jwk});
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(proof_claims("GET", HTU, NOW, alg, token)
            .to_string()
            .as_bytes())
    );
    let mut sig = vec![0u8; pair.public_modulus_len()];
    pair.sign(padding, &SystemRandom::new(), input.as_bytes(), &mut sig)
        .unwrap();
    format!("{input}.{}", b64(&sig))
}

#[test]
fn accepts_rs256_and_ps256_proofs() {
    let (jwk, pair) = rsa_client();
    let mut claims = claims();
    claims["cnf"] = json!({"jkt": test_support::thumbprint(&jwk).unwrap()});
    let token = Issuer::es256(1, "k1").token(&claims);
    let auth = dpop_auth(&token);
    let gateway = Gateway::new(dpop_config("allowed"));
    let shared = MemoryShared::default();
    for (alg, padding) in [
        ("RS256", &RSA_PKCS1_SHA256 as &'static dyn RsaEncoding),
        ("PS256", &RSA_PSS_SHA256),
    ] {
        let proof = rsa_proof(&jwk, &pair, alg, padding, &token);
        let o = gateway.request(
            &shared,
            &mut TokenCache::new(16),
            NOW,
            &[("authorization", &auth), ("dpop", &proof)],
        );
        assert!(is_forward(&o), "{alg}: {o:?}");
    }
    // PS256 refused when the provider accepts only RS256 proofs.
    let only_rs =
        config_with(json!({"providers": [{"dpop": "allowed", "dpop_algorithms": ["RS256"]}]}));
    let proof = rsa_proof(&jwk, &pair, "PS256", &RSA_PSS_SHA256, &token);
    assert_eq!(
        Gateway::new(only_rs).once(&[("authorization", &auth), ("dpop", &proof)]),
        denied(DpopDenial::BadAlgorithm)
    );
}

#[test]
fn thumbprint_of_the_rfc_7638_example() {
    let jwk = json!({
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29"
    });
    assert_eq!(
        jwk_thumbprint(jwk.as_object().unwrap()).as_deref(),
        Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
    );
}

#[test]
fn replayed_jti() {
    let key = client();
    let token = bound_token(&key);
    let (auth, proof) = (dpop_auth(&token), proof_for(&key, &token, "once"));
    let headers = [("authorization", auth.as_str()), ("dpop", proof.as_str())];
    let gateway = Gateway::new(dpop_config("allowed"));
    let shared = MemoryShared::default();
    let mut cache = TokenCache::new(16);
    assert!(is_forward(
        &gateway.request(&shared, &mut cache, NOW, &headers)
    ));
    assert_eq!(
        gateway.request(&shared, &mut cache, NOW + 1, &headers),
        denied(DpopDenial::Replayed)
    );
    // The access token came from the cache the second time; the proof was still checked.
    assert_eq!(cache.take_stats(), (1, 1));
    // A fresh proof with the same (cached) token is accepted.
    let fresh = proof_for(&key, &token, "twice");
    assert!(is_forward(&gateway.request(
        &shared,
        &mut cache,
        NOW + 1,
        &[("authorization", &auth), ("dpop", &fresh)]
    )));
}

#[test]
fn replayed_jti_across_two_workers() {
    let key = client();
    let token = bound_token(&key);
    let (auth, proof) = (dpop_auth(&token), proof_for(&key, &token, "shared"));
    let headers = [("authorization", auth.as_str()), ("dpop", proof.as_str())];
    let gateway = Gateway::new(dpop_config("allowed"));
    // One Envoy: two workers (each its own token cache), one shared data.
    let shared = MemoryShared::default();
    filter::dpop::replay::prepare(&shared);
    let (mut worker_1, mut worker_2) = (TokenCache::new(16), TokenCache::new(16));
    assert!(is_forward(&gateway.request(
        &shared,
        &mut worker_1,
        NOW,
        &headers
    )));
    assert_eq!(
        gateway.request(&shared, &mut worker_2, NOW, &headers),
        denied(DpopDenial::Replayed)
    );
    // At the same moment on real threads: exactly one worker accepts a proof.
    let racing = proof_for(&key, &token, "raced");
    let headers = [("authorization", auth.as_str()), ("dpop", racing.as_str())];
    let accepted = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                let gateway = Gateway::new(dpop_config("allowed"));
                if is_forward(&gateway.request(&shared, &mut TokenCache::new(16), NOW, &headers)) {
                    accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
    });
    assert_eq!(accepted.into_inner(), 1);
    // Once the proof's window has passed it is refused as stale, not as replayed.
    assert_eq!(
        gateway.request(&shared, &mut worker_2, NOW + 71, &headers),
        denied(DpopDenial::Stale)
    );
}

#[test]
fn wrong_htm() {
    assert_eq!(
        with_claims(|c| c["htm"] = json!("POST")),
        denied(DpopDenial::WrongMethod)
    );
    assert_eq!(
        with_claims(|c| c["htm"] = json!("get")),
        denied(DpopDenial::WrongMethod)
    );
}

#[test]
fn wrong_htu() {
    for htu in [
        "https://api.example.com/api/y",
        "http://api.example.com/api/x",
        "https://other.example.com/api/x",
        "https://api.example.com:8443/api/x",
    ] {
        assert_eq!(
            with_claims(|c| c["htu"] = json!(htu)),
            denied(DpopDenial::WrongUri),
            "{htu}"
        );
    }
}

#[test]
fn equivalent_htu_is_accepted() {
    for htu in [
        "HTTPS://API.EXAMPLE.COM/api/x",
        "https://api.example.com:443/api/x",
        "https://api.example.com/api/./y/../x",
    ] {
        assert!(is_forward(&with_claims(|c| c["htu"] = json!(htu))), "{htu}");
    }
}

#[test]
fn query_in_htu() {
    assert_eq!(
        with_claims(|c| c["htu"] = json!(format!("{HTU}?a=1"))),
        denied(DpopDenial::WrongUri)
    );
    assert_eq!(
        with_claims(|c| c["htu"] = json!(format!("{HTU}#f"))),
        denied(DpopDenial::WrongUri)
    );
}

#[test]
fn stale_iat() {
    // Default window: 60 s max age + 10 s leeway.
    assert!(is_forward(&with_claims(|c| c["iat"] = json!(NOW - 70))));
    assert_eq!(
        with_claims(|c| c["iat"] = json!(NOW - 71)),
        denied(DpopDenial::Stale)
    );
}

#[test]
fn future_iat() {
    assert!(is_forward(&with_claims(|c| c["iat"] = json!(NOW + 10))));
    assert_eq!(
        with_claims(|c| c["iat"] = json!(NOW + 11)),
        denied(DpopDenial::Future)
    );
}

#[test]
fn missing_ath() {
    let o = with_claims(|c| {
        c.as_object_mut().unwrap().remove("ath");
    });
    assert_eq!(o, denied(DpopDenial::WrongTokenHash));
}

#[test]
fn wrong_ath() {
    assert_eq!(
        with_claims(|c| c["ath"] = json!(ath("another-token"))),
        denied(DpopDenial::WrongTokenHash)
    );
}

#[test]
fn missing_jti_iat_htm_are_malformed() {
    for claim in ["jti", "iat", "htm", "htu"] {
        let o = with_claims(|c| {
            c.as_object_mut().unwrap().remove(claim);
        });
        assert!(
            matches!(
                o,
                Outcome::Deny(Denial::Dpop(DpopDenial::MalformedProof(_)))
            ),
            "{claim}: {o:?}"
        );
    }
}

#[test]
fn proof_signed_by_another_key() {
    // The header names the client's key, another key signed.
    let key = client();
    let token = bound_token(&key);
    let forger = Issuer::es256(99, "forger");
    let proof = forger.sign(
        &key.proof_header(),
        &proof_claims("GET", HTU, NOW, "f", &token),
    );
    let auth = dpop_auth(&token);
    assert_eq!(
        Gateway::new(dpop_config("allowed")).once(&[("authorization", &auth), ("dpop", &proof)]),
        denied(DpopDenial::BadSignature)
    );
    // A proof that is valid for its own key, but not the key the token is bound to.
    let proof = proof_for(&forger, &token, "g");
    assert_eq!(
        Gateway::new(dpop_config("allowed")).once(&[("authorization", &auth), ("dpop", &proof)]),
        denied(DpopDenial::KeyMismatch)
    );
}

#[test]
fn alg_none_proof() {
    assert_eq!(
        with_header(|h| h["alg"] = json!("none")),
        denied(DpopDenial::BadAlgorithm)
    );
}

#[test]
fn hs256_proof() {
    assert_eq!(
        with_header(|h| h["alg"] = json!("HS256")),
        denied(DpopDenial::BadAlgorithm)
    );
}

#[test]
fn private_key_in_jwk() {
    let o = with_header(|h| h["jwk"]["d"] = json!(b64(&[42u8; 32])));
    assert!(
        matches!(o, Outcome::Deny(Denial::Dpop(DpopDenial::BadKey(_)))),
        "{o:?}"
    );
}

#[test]
fn wrong_typ_or_no_jwk() {
    assert!(matches!(
        with_header(|h| h["typ"] = json!("JWT")),
        Outcome::Deny(Denial::Dpop(DpopDenial::MalformedProof(_)))
    ));
    assert!(matches!(
        with_header(|h| {
            h.as_object_mut().unwrap().remove("jwk");
        }),
        Outcome::Deny(Denial::Dpop(DpopDenial::BadKey(_)))
    ));
    // An EdDSA alg with a P-256 key.
    assert!(matches!(
        with_header(|h| h["alg"] = json!("EdDSA")),
        Outcome::Deny(Denial::Dpop(DpopDenial::BadKey(_)))
    ));
}

#[test]
fn two_dpop_headers() {
    let key = client();
    let token = bound_token(&key);
    let auth = dpop_auth(&token);
    let (a, b) = (proof_for(&key, &token, "a"), proof_for(&key, &token, "b"));
    let gateway = Gateway::new(dpop_config("allowed"));
    assert_eq!(
        gateway.once(&[("authorization", &auth), ("dpop", &a), ("DPoP", &b)]),
        denied(DpopDenial::MultipleProofs)
    );
    let folded = format!("{a}, {b}");
    assert_eq!(
        gateway.once(&[("authorization", &auth), ("dpop", &folded)]),
        denied(DpopDenial::MultipleProofs)
    );
    assert_eq!(
        gateway.once(&[("authorization", &auth)]),
        denied(DpopDenial::MissingProof)
    );
}

#[test]
fn bound_token_as_bearer() {
    let key = client();
    let token = bound_token(&key);
    let bearer = format!("Bearer {token}");
    let proof = proof_for(&key, &token, "b");
    for mode in ["disabled", "allowed", "required"] {
        let gateway = Gateway::new(dpop_config(mode));
        assert_eq!(
            gateway.once(&[("authorization", &bearer), ("dpop", &proof)]),
            denied(DpopDenial::BoundTokenAsBearer),
            "{mode}"
        );
    }
}

#[test]
fn dpop_scheme_with_unbound_token_under_required() {
    let key = client();
    let token = unbound_token();
    let (auth, proof) = (dpop_auth(&token), proof_for(&key, &token, "u"));
    assert_eq!(
        Gateway::new(dpop_config("required")).once(&[("authorization", &auth), ("dpop", &proof)]),
        denied(DpopDenial::UnboundToken)
    );
    // A bearer token where DPoP is required.
    let bearer = format!("Bearer {token}");
    assert_eq!(
        Gateway::new(dpop_config("required")).once(&[("authorization", &bearer)]),
        denied(DpopDenial::BearerNotAccepted)
    );
    // Allowed: the bearer token is fine as Bearer.
    assert!(is_forward(
        &Gateway::new(dpop_config("allowed")).once(&[("authorization", &bearer)])
    ));
}

#[test]
fn dpop_scheme_where_disabled() {
    let key = client();
    let token = bound_token(&key);
    let (auth, proof) = (dpop_auth(&token), proof_for(&key, &token, "d"));
    // Two providers, one with DPoP disabled: its tokens are refused under the DPoP scheme.
    let config = config_with(json!({"providers": [
        {"dpop": "disabled"},
        {"name": "other", "issuer": "https://other.example", "audiences": ["x"], "algorithms": ["ES256"],
         "jwks": {"cluster": "other", "path": "/jwks"}, "dpop": "allowed"}
    ]}));
    assert_eq!(
        Gateway::new(config).once(&[("authorization", &auth), ("dpop", &proof)]),
        denied(DpopDenial::SchemeNotAccepted)
    );
    // With DPoP disabled everywhere, the DPoP scheme is not read at all (as before DPoP).
    assert_eq!(
        Gateway::new(dpop_config("disabled")).once(&[("authorization", &auth), ("dpop", &proof)]),
        Outcome::Deny(Denial::Missing)
    );
}

#[test]
fn a_proof_is_not_forwarded_when_the_token_is_not() {
    let key = client();
    let token = bound_token(&key);
    let (auth, proof) = (dpop_auth(&token), proof_for(&key, &token, "f"));
    let config = config_with(json!({"providers": [{"dpop": "allowed", "forward_token": false}]}));
    match Gateway::new(config).once(&[("authorization", &auth), ("dpop", &proof)]) {
        Outcome::Forward { remove_headers, .. } => {
            assert!(remove_headers.contains(&"authorization".to_owned()));
            assert!(remove_headers.contains(&"dpop".to_owned()));
        }
        other => panic!("{other:?}"),
    }
    match Gateway::new(dpop_config("allowed")).once(&[("authorization", &auth), ("dpop", &proof)]) {
        Outcome::Forward { remove_headers, .. } => assert!(remove_headers.is_empty()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_configured_public_origin_is_the_htu() {
    let key = client();
    let token = bound_token(&key);
    let auth = dpop_auth(&token);
    let config = config_with(
        json!({"providers": [{"dpop": "allowed", "dpop_htu_base": "https://public.example"}]}),
    );
    let gateway = Gateway::new(config);
    let proof = key.proof(&proof_claims(
        "GET",
        "https://public.example/api/x",
        NOW,
        "p",
        &token,
    ));
    assert!(is_forward(
        &gateway.once(&[("authorization", &auth), ("dpop", &proof)])
    ));
    let proof = proof_for(&key, &token, "q");
    assert_eq!(
        gateway.once(&[("authorization", &auth), ("dpop", &proof)]),
        denied(DpopDenial::WrongUri)
    );
}

#[test]
fn the_answers_carry_dpop_and_bearer_challenges() {
    let allowed = dpop_config("allowed");
    let answer = |config: &FilterConfig, auth: &str, denial: Denial| {
        denial_response(config, &[("authorization", auth)], &denial)
    };
    let r = answer(&allowed, "DPoP x", Denial::Dpop(DpopDenial::Replayed));
    assert_eq!(r.status, 401);
    assert_eq!(
        r.www_authenticate.as_deref(),
        Some(
            "DPoP realm=\"gateway\", algs=\"ES256 RS256 PS256 EdDSA\", error=\"invalid_dpop_proof\", error_description=\"the DPoP proof was used before\", Bearer realm=\"gateway\""
        )
    );
    let r = answer(
        &allowed,
        "Bearer x",
        Denial::Dpop(DpopDenial::BoundTokenAsBearer),
    );
    assert_eq!(
        r.www_authenticate.as_deref(),
        Some(
            "Bearer realm=\"gateway\", error=\"invalid_token\", error_description=\"the access token is DPoP-bound: use the DPoP scheme with a proof\", DPoP realm=\"gateway\", algs=\"ES256 RS256 PS256 EdDSA\""
        )
    );
    // No token: both schemes offered, no error (RFC 9449 §7.2, Figure 17).
    let r = denial_response(&allowed, &[], &Denial::Missing);
    assert_eq!(
        r.www_authenticate.as_deref(),
        Some("Bearer realm=\"gateway\", DPoP realm=\"gateway\", algs=\"ES256 RS256 PS256 EdDSA\"")
    );
    // An expired token under the DPoP scheme: the error goes in the DPoP challenge.
    let r = answer(&allowed, "DPoP x", Denial::Expired);
    assert!(r.www_authenticate.unwrap().starts_with(
        "DPoP realm=\"gateway\", algs=\"ES256 RS256 PS256 EdDSA\", error=\"invalid_token\""
    ));
    // Required: no Bearer challenge at all; the configured algorithms only.
    let required = config_with(
        json!({"providers": [{"dpop": "required", "dpop_algorithms": ["ES256", "EdDSA"]}]}),
    );
    let r = answer(
        &required,
        "Bearer x",
        Denial::Dpop(DpopDenial::BearerNotAccepted),
    );
    assert_eq!(
        r.www_authenticate.as_deref(),
        Some(
            "DPoP realm=\"gateway\", algs=\"ES256 EdDSA\", error=\"invalid_token\", error_description=\"a DPoP-bound access token is required\""
        )
    );
    // Disabled (the default): the answers are the RFC 6750 ones.
    let r = answer(&dpop_config("disabled"), "Bearer x", Denial::Expired);
    assert!(
        r.www_authenticate
            .unwrap()
            .starts_with("Bearer realm=\"gateway\", error=\"invalid_token\"")
    );
    // A full replay cache fails closed with 503.
    assert_eq!(
        answer(
            &allowed,
            "DPoP x",
            Denial::Dpop(DpopDenial::ReplayCacheFull)
        )
        .status,
        503
    );
}

#[test]
fn dpop_configuration_errors_name_the_field() {
    let bad = |provider: Value| {
        let mut base = json!({"providers": [{
            "issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["ES256"],
            "jwks": {"cluster": "idp", "path": "/jwks"}
        }]});
        test_support::merge(&mut base, json!({"providers": [provider]}));
        FilterConfig::from_json(base.to_string().as_bytes()).unwrap_err()
    };
    assert_eq!(bad(json!({"dpop": "sometimes"})).field, "configuration");
    for (provider, field) in [
        (
            json!({"dpop": "allowed", "dpop_algorithms": ["HS256"]}),
            "providers[0].dpop_algorithms[0]",
        ),
        (
            json!({"dpop": "allowed", "dpop_algorithms": ["none"]}),
            "providers[0].dpop_algorithms[0]",
        ),
        (
            json!({"dpop": "allowed", "dpop_algorithms": []}),
            "providers[0].dpop_algorithms",
        ),
        (
            json!({"dpop": "allowed", "dpop_proof_max_age_seconds": 0}),
            "providers[0].dpop_proof_max_age_seconds",
        ),
        (
            json!({"dpop": "allowed", "dpop_proof_leeway_seconds": 301}),
            "providers[0].dpop_proof_leeway_seconds",
        ),
        (
            json!({"dpop": "allowed", "dpop_htu_base": "https://h/path"}),
            "providers[0].dpop_htu_base",
        ),
        (
            json!({"dpop": "required", "token_sources": [{"cookie": "at"}]}),
            "providers[0].dpop",
        ),
    ] {
        assert_eq!(bad(provider.clone()).field, field, "{provider}");
    }
    let e = FilterConfig::from_json(
        json!({"providers": [{"issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["ES256"],
            "jwks": {"cluster": "idp", "path": "/jwks"}}], "dpop_replay_cache_entries": 10})
        .to_string()
        .as_bytes(),
    )
    .unwrap_err();
    assert_eq!(e.field, "dpop_replay_cache_entries");
}

#[test]
fn an_unknown_confirmation_method_is_refused() {
    let mut claims = claims();
    claims["cnf"] = json!({"x5t#S256": "abc"});
    let token = Issuer::es256(1, "k1").token(&claims);
    let bearer = format!("Bearer {token}");
    assert!(matches!(
        Gateway::new(dpop_config("disabled")).once(&[("authorization", &bearer)]),
        Outcome::Deny(Denial::Malformed(_))
    ));
}

#[test]
fn a_bound_token_from_another_token_source_is_a_downgrade() {
    let key = client();
    let token = bound_token(&key);
    let cookie = format!("at={token}");
    let proof = proof_for(&key, &token, "c");
    let config = config_with(json!({"providers": [{
        "dpop": "allowed",
        "token_sources": [{"header": "authorization", "prefix": "Bearer "}, {"cookie": "at"}]
    }]}));
    assert_eq!(
        Gateway::new(config).once(&[("cookie", &cookie), ("dpop", &proof)]),
        denied(DpopDenial::BoundTokenAsBearer)
    );
}
