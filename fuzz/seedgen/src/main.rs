//! Writes the fuzz targets' fixtures and signed seeds (run from `fuzz/`: `cargo run --release -p
//! seedgen`). Tokens and proofs are real signatures by the test keys the filter's own tests use
//! (`test-support`: ES256 and EdDSA, fixed seeds) and by an RSA-2048 key made here with AWS-LC
//! (RS256 and PS256); `fixtures/jwks.json` is the fixed key set they verify with.
//!
//! Unsigned seeds (plugin configurations, JWKS documents from the repository, form bodies) are
//! collected by `scripts/fuzz-seeds`.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_SHA256, RSA_PSS_SHA256};
use serde_json::{Value, json};
use std::path::Path;
use test_support::{Issuer, access_token_claims, b64, proof_claims};

const ISSUER: &str = "https://idp.example";
const AUDIENCE: &str = "demo-api";
const NOW: u64 = 1_800_000_000;
const HTU: &str = "https://api.example.com/api/x";

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

struct Rsa {
    pair: RsaKeyPair,
}

impl Rsa {
    fn generate() -> Result<Rsa> {
        Ok(Rsa {
            pair: RsaKeyPair::generate(KeySize::Rsa2048)?,
        })
    }

    /// The public key as a JWK with `kid` (no `alg`: usable for RS256 and PS256).
    fn jwk(&self, kid: &str) -> Value {
        let public = self.pair.public_key();
        let n = public.modulus().big_endian_without_leading_zero();
        let e = public.exponent().big_endian_without_leading_zero();
        json!({"kty": "RSA", "kid": kid, "use": "sig", "n": b64(n), "e": b64(e)})
    }

    fn sign(&self, alg: &str, header: &Value, claims: &Value) -> Result<String> {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let padding: &'static dyn aws_lc_rs::signature::RsaEncoding = match alg {
            "PS256" => &RSA_PSS_SHA256,
            _ => &RSA_PKCS1_SHA256,
        };
        let mut signature = vec![0; self.pair.public_modulus_len()];
        self.pair.sign(
            padding,
            &SystemRandom::new(),
            input.as_bytes(),
            &mut signature,
        )?;
        Ok(format!("{input}.{}", b64(&signature)))
    }
}

fn write(dir: &Path, name: &str, content: &str) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(name), content)?;
    Ok(())
}

fn main() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let es = Issuer::es256(1, "k1");
    let ed = Issuer::eddsa(2, "ed1");
    let rsa = Rsa::generate()?;
    let client = Issuer::es256(42, "client");
    let client_ed = Issuer::eddsa(43, "client-ed");

    let jwks = json!({"keys": [es.jwk(), ed.jwk(), rsa.jwk("rsa-1")]});
    let fixtures = root.join("fixtures");
    write(
        &fixtures,
        "jwks.json",
        &serde_json::to_string_pretty(&jwks)?,
    )?;

    // Tokens: one valid per algorithm, then one deliberate change each.
    let claims = access_token_claims(ISSUER, AUDIENCE, NOW);
    let with = |extra: Value| {
        let mut c = claims.clone();
        test_support::merge(&mut c, extra);
        c
    };
    let mut bound = claims.clone();
    bound["cnf"] = json!({"jkt": client.thumbprint()});
    let rsa_header = |alg: &str| json!({"alg": alg, "typ": "at+jwt", "kid": "rsa-1"});
    let tokens: Vec<(&str, String)> = vec![
        ("es256-valid", es.token(&claims)),
        ("eddsa-valid", ed.token(&claims)),
        ("rs256-valid", rsa.sign("RS256", &rsa_header("RS256"), &claims)?),
        ("ps256-valid", rsa.sign("PS256", &rsa_header("PS256"), &claims)?),
        ("es256-expired", es.token(&with(json!({"exp": NOW - 100})))),
        ("es256-not-yet-valid", es.token(&with(json!({"nbf": NOW + 100})))),
        ("es256-wrong-audience", es.token(&with(json!({"aud": "other"})))),
        ("es256-audience-array", es.token(&with(json!({"aud": ["x", AUDIENCE]})))),
        ("es256-wrong-issuer", es.token(&with(json!({"iss": "https://evil.example"})))),
        ("es256-exp-string", es.token(&with(json!({"exp": "1800000300"})))),
        ("es256-exp-float", es.token(&with(json!({"exp": 1_800_000_300.5})))),
        ("es256-scp-array", es.token(&with(json!({"scp": ["read", "admin"]})))),
        ("es256-bound", es.token(&bound)),
        ("es256-no-kid", es.sign(&json!({"alg": "ES256", "typ": "at+jwt"}), &claims)),
        ("es256-unknown-kid", es.sign(&json!({"alg": "ES256", "typ": "at+jwt", "kid": "nope"}), &claims)),
        ("es256-typ-jwt", es.sign(&json!({"alg": "ES256", "typ": "JWT", "kid": "k1"}), &claims)),
        ("es256-crit", es.sign(&json!({"alg": "ES256", "typ": "at+jwt", "kid": "k1", "crit": ["exp"], "exp": 1}), &claims)),
        ("es256-duplicate-member", es.sign_raw(r#"{"alg":"ES256","typ":"at+jwt","kid":"k1"}"#, &format!(r#"{{"iss":"{ISSUER}","iss":"https://evil.example","aud":"{AUDIENCE}","exp":{}}}"#, NOW + 300))),
        ("es256-kid-of-eddsa-key", es.sign(&json!({"alg": "ES256", "typ": "at+jwt", "kid": "ed1"}), &claims)),
        ("eddsa-alg-none", ed.sign_raw(r#"{"alg":"none","typ":"at+jwt"}"#, &claims.to_string())),
        ("rs256-with-hs256-header", rsa.sign("RS256", &json!({"alg": "HS256", "kid": "rsa-1", "typ": "at+jwt"}), &claims)?),
    ];
    for (name, token) in &tokens {
        write(&root.join("seeds/token"), name, token)?;
    }

    // JWKS documents: the fixed set, each key alone.
    let jwks_dir = root.join("seeds/jwks");
    write(&jwks_dir, "fixed-set.json", &jwks.to_string())?;
    write(&jwks_dir, "es256.json", &es.jwks().to_string())?;
    write(&jwks_dir, "eddsa.json", &ed.jwks().to_string())?;
    write(
        &jwks_dir,
        "rsa.json",
        &json!({"keys": [rsa.jwk("rsa-1")]}).to_string(),
    )?;

    // DPoP: a token bound to `client`, and proofs for GET https://api.example.com/api/x.
    let dpop_token = es.token(&bound);
    write(
        &fixtures,
        "dpop.json",
        &serde_json::to_string_pretty(&json!({"token": dpop_token, "jkt": client.thumbprint()}))?,
    )?;
    let proof = |key: &Issuer, change: Value| {
        let mut c = proof_claims("GET", HTU, NOW, "proof-jti-1", &dpop_token);
        test_support::merge(&mut c, change);
        key.proof(&c)
    };
    let proofs: Vec<(&str, String)> = vec![
        ("es256-valid", proof(&client, json!({}))),
        ("es256-wrong-htm", proof(&client, json!({"htm": "POST"}))),
        (
            "es256-htu-with-query",
            proof(&client, json!({"htu": format!("{HTU}?a=b")})),
        ),
        (
            "es256-stale-iat",
            proof(&client, json!({"iat": NOW - 3600})),
        ),
        ("es256-wrong-ath", proof(&client, json!({"ath": "AAAA"}))),
        ("es256-nonce", proof(&client, json!({"nonce": "n-1"}))),
        ("eddsa-other-key", proof(&client_ed, json!({}))),
        ("es256-private-key-in-jwk", {
            let mut header = client.proof_header();
            header["jwk"]["d"] = json!("AAAA");
            client.sign(
                &header,
                &proof_claims("GET", HTU, NOW, "proof-jti-2", &dpop_token),
            )
        }),
        ("es256-typ-jwt", {
            let mut header = client.proof_header();
            header["typ"] = json!("JWT");
            client.sign(
                &header,
                &proof_claims("GET", HTU, NOW, "proof-jti-3", &dpop_token),
            )
        }),
    ];
    for (name, p) in &proofs {
        write(&root.join("seeds/dpop_proof"), name, p)?;
    }
    Ok(())
}
