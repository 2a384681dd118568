//! Proof vectors: accepted algorithms, the thumbprint, one named vector per refusal, replay.

use crate::common::*;
use crate::support::*;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_SHA256, RSA_PSS_SHA256, RsaEncoding, RsaKeyPair};

use filter::admission::gateway::Outcome;
use filter::admission::token_cache::TokenCache;
use filter::http::denial::{Denial, DpopDenial};
use filter::shared_state::MemoryShared;
use filter::validation::dpop::thumbprint::jwk_thumbprint;
use serde_json::{Value, json};
use test_support::{ath, proof_claims};

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
    filter::validation::dpop::replay::prepare(&shared);
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

/// The `ath` a cached token's proofs are held to is the one kept with that token: a proof made
/// for another token is refused on the cached path too.
#[test]
fn wrong_ath_with_a_cached_token() {
    let key = client();
    let token = bound_token(&key);
    let auth = dpop_auth(&token);
    let gateway = Gateway::new(dpop_config("allowed"));
    let shared = MemoryShared::default();
    let mut cache = TokenCache::new(16);
    let first = proof_for(&key, &token, "first");
    assert!(is_forward(&gateway.request(
        &shared,
        &mut cache,
        NOW,
        &[("authorization", &auth), ("dpop", &first)]
    )));
    let other = key.proof(&proof_claims("GET", HTU, NOW, "second", "another-token"));
    assert_eq!(
        gateway.request(
            &shared,
            &mut cache,
            NOW,
            &[("authorization", &auth), ("dpop", &other)]
        ),
        denied(DpopDenial::WrongTokenHash)
    );
    assert_eq!(
        cache.take_stats(),
        (1, 1),
        "the second request used the cache"
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

/// The worker keeps a client's parsed proof header (`filter::validation::dpop::proof_keys`): a forger who
/// copies that very header after the client's proof was accepted still has to sign with the key
/// it names; the same worker goes on accepting the client's own next proof.
#[test]
fn a_cached_proof_header_does_not_stand_for_a_signature() {
    let key = client();
    let token = bound_token(&key);
    let auth = dpop_auth(&token);
    let gateway = Gateway::new(dpop_config("allowed"));
    let (shared, mut worker) = (MemoryShared::default(), TokenCache::new(16));
    let mut send = |proof: &str| {
        gateway.request(
            &shared,
            &mut worker,
            NOW,
            &[("authorization", &auth), ("dpop", proof)],
        )
    };
    assert!(is_forward(&send(&proof_for(&key, &token, "c1"))));
    let forger = Issuer::es256(99, "forger");
    let forged = forger.sign(
        &key.proof_header(),
        &proof_claims("GET", HTU, NOW, "f1", &token),
    );
    assert_eq!(send(&forged), denied(DpopDenial::BadSignature));
    assert!(is_forward(&send(&proof_for(&key, &token, "c2"))));
    assert_eq!(worker.proof_keys.stats(), (2, 1), "(hits, misses)");
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
