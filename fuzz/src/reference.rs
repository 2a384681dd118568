//! The reference path of the differential targets: another JOSE implementation (jsonwebtoken, over
//! AWS-LC) for parsing and signatures, and the claim rules written again here from the RFCs
//! (RFC 7519 §4.1, RFC 9068 §4, RFC 9449 §4.3) with none of the filter's code. The targets
//! assert one direction only: what the filter accepts, this must accept. (The filter is stricter
//! on purpose in places: duplicate members, `crit`, future `iat`; those refusals are not checked.)

use crate::fixtures::{AUDIENCE, Gateway, HTU, ISSUER, LEEWAY, NOW};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

pub type Claims = Map<String, Value>;

/// The algorithms the fixed gateway accepts (tokens and proofs alike).
const ACCEPTED: [Algorithm; 4] = [
    Algorithm::ES256,
    Algorithm::EdDSA,
    Algorithm::RS256,
    Algorithm::PS256,
];

/// Whether `jwk` is a key for `alg`: its type and curve, its own `alg` and `use` when present.
fn key_is_for(jwk: &Jwk, alg: Algorithm) -> bool {
    let type_fits = match (&jwk.algorithm, alg) {
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES256) => p.curve == EllipticCurve::P256,
        (AlgorithmParameters::RSA(_), Algorithm::RS256 | Algorithm::PS256) => true,
        (AlgorithmParameters::OctetKeyPair(p), Algorithm::EdDSA) => {
            p.curve == EllipticCurve::Ed25519
        }
        _ => false,
    };
    let alg_fits = jwk
        .common
        .key_algorithm
        .is_none_or(|k| format!("{k:?}") == format!("{alg:?}"));
    let use_fits = jwk
        .common
        .public_key_use
        .as_ref()
        .is_none_or(|u| *u == PublicKeyUse::Signature);
    type_fits && alg_fits && use_fits
}

/// Signature check only: no claim is validated by jsonwebtoken (they are checked below, at the
/// fixed time, which jsonwebtoken cannot take).
fn signature_only(alg: Algorithm) -> Validation {
    let mut v = Validation::new(alg);
    v.required_spec_claims.clear();
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v
}

fn decode(token: &str, jwk: &Jwk, alg: Algorithm) -> Result<Claims, String> {
    let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("key: {e}"))?;
    jsonwebtoken::decode::<Claims>(token, &key, &signature_only(alg))
        .map(|data| data.claims)
        .map_err(|e| format!("jsonwebtoken: {e}"))
}

/// A NumericDate (RFC 7519 §2): any JSON number; `None` for another type.
fn date(claims: &Claims, name: &str) -> Result<Option<f64>, String> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .map(Some)
            .ok_or_else(|| format!("{name} is not a number")),
        Some(_) => Err(format!("{name} is not a number")),
    }
}

fn string_if_present(claims: &Claims, name: &str) -> Result<(), String> {
    match claims.get(name) {
        None | Some(Value::String(_)) => Ok(()),
        Some(_) => Err(format!("{name} is not a string")),
    }
}

/// RFC 7519 §4.1 and RFC 9068 §4 at [`NOW`] with [`LEEWAY`]: `iss`, `aud`, `exp` required.
fn check_access_claims(claims: &Claims) -> Result<(), String> {
    if claims.get("iss").and_then(Value::as_str) != Some(ISSUER) {
        return Err("iss".into());
    }
    let now = NOW as f64;
    let leeway = LEEWAY as f64;
    let exp = date(claims, "exp")?.ok_or("exp is required")?;
    if now >= exp + leeway {
        return Err("expired".into());
    }
    if let Some(nbf) = date(claims, "nbf")?
        && now + leeway < nbf
    {
        return Err("not yet valid".into());
    }
    date(claims, "iat")?;
    let audience_ok = match claims.get("aud") {
        Some(Value::String(s)) => s == AUDIENCE,
        Some(Value::Array(items)) => {
            items.iter().all(Value::is_string) && items.iter().any(|a| a == AUDIENCE)
        }
        _ => false,
    };
    if !audience_ok {
        return Err("aud".into());
    }
    for name in ["sub", "jti", "sid", "client_id"] {
        string_if_present(claims, name)?;
    }
    Ok(())
}

/// An access token as the reference sees it: its header (jsonwebtoken's parser), a key of the
/// fixed set chosen by `kid` (or any key for the algorithm without one), its signature, its
/// `typ` (RFC 9068 §4: `at+jwt`), then the claims. The claims on success.
pub fn verify_access_token(gateway: &Gateway, token: &str) -> Result<Claims, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| format!("header: {e}"))?;
    if !ACCEPTED.contains(&header.alg) {
        return Err("algorithm".into());
    }
    let typ_ok = header.typ.as_deref().is_some_and(|t| {
        t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
    });
    if !typ_ok {
        return Err("typ".into());
    }
    let mut last = String::from("no key");
    for jwk in &gateway.reference_keys.keys {
        let kid_fits = header
            .kid
            .as_deref()
            .is_none_or(|kid| jwk.common.key_id.as_deref() == Some(kid));
        if !kid_fits || !key_is_for(jwk, header.alg) {
            continue;
        }
        match decode(token, jwk, header.alg) {
            Ok(claims) => {
                check_access_claims(&claims)?;
                return Ok(claims);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// RFC 7638 thumbprint of a public JWK, computed here from the header's own JSON.
fn thumbprint(jwk: &Map<String, Value>) -> Option<String> {
    let members: &[&str] = match jwk.get("kty")?.as_str()? {
        "EC" => &["crv", "kty", "x", "y"],
        "RSA" => &["e", "kty", "n"],
        "OKP" => &["crv", "kty", "x"],
        _ => return None,
    };
    let mut required = BTreeMap::new();
    for m in members {
        required.insert(*m, jwk.get(*m)?.as_str()?);
    }
    let text = serde_json::to_string(&required).ok()?;
    Some(URL_SAFE_NO_PAD.encode(Sha256::digest(text.as_bytes())))
}

/// Percent-decodes the unreserved characters (RFC 3986 §6.2.2.2) and merges repeated slashes
/// (the gateway's documented path form, which its rules and `htu` share).
fn normal_path(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let hex = rest.get(at + 1..at + 3);
        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(b) if b.is_ascii_alphanumeric() || b"-._~".contains(&b) => {
                out.push(char::from(b));
                rest = &rest[at + 3..];
            }
            _ => {
                out.push('%');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    while out.contains("//") {
        out = out.replace("//", "/");
    }
    out
}

/// RFC 9449 §4.3 step 9: `htu` names [`HTU`] (normalised per RFC 3986 §6, by the `url` crate).
fn htu_matches(htu: &str) -> Result<(), String> {
    let expected = url::Url::parse(HTU).map_err(|e| e.to_string())?;
    let got = url::Url::parse(htu).map_err(|e| format!("htu: {e}"))?;
    if got.query().is_some() || got.fragment().is_some() {
        return Err("htu has a query or fragment".into());
    }
    let same = got.scheme() == expected.scheme()
        && got.username().is_empty()
        && got.password().is_none()
        && got.host_str() == expected.host_str()
        && got.port_or_known_default() == expected.port_or_known_default()
        && normal_path(got.path()) == normal_path(expected.path());
    if same {
        Ok(())
    } else {
        Err(format!("htu {htu} is not {HTU}"))
    }
}

/// A DPoP proof (RFC 9449 §4.3) for a GET of [`HTU`] at [`NOW`] with `token`, by the key whose
/// thumbprint is `jkt`, as the reference sees it. `max_age` and `leeway` are the gateway's
/// configured window for `iat`.
pub fn verify_dpop_proof(
    proof: &str,
    token: &str,
    jkt: &str,
    max_age: u64,
    leeway: u64,
) -> Result<(), String> {
    let header = jsonwebtoken::decode_header(proof).map_err(|e| format!("header: {e}"))?;
    if !ACCEPTED.contains(&header.alg) {
        return Err("algorithm".into());
    }
    if !header
        .typ
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("dpop+jwt"))
    {
        return Err("typ".into());
    }
    // The header's own JSON, for the thumbprint and the private-member check.
    let raw_header = proof.split('.').next().unwrap_or("");
    let raw: Value = URL_SAFE_NO_PAD
        .decode(raw_header)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("header JSON")?;
    let raw_jwk = raw.get("jwk").and_then(Value::as_object).ok_or("no jwk")?;
    if ["d", "p", "q", "dp", "dq", "qi", "oth", "k"]
        .iter()
        .any(|m| raw_jwk.contains_key(*m))
    {
        return Err("private key in the proof".into());
    }
    if thumbprint(raw_jwk).as_deref() != Some(jkt) {
        return Err("thumbprint is not the token's cnf.jkt".into());
    }
    let jwk = header.jwk.as_ref().ok_or("no jwk (jsonwebtoken)")?;
    if !key_is_for(jwk, header.alg) {
        return Err("the jwk is not a key for alg".into());
    }
    let claims = decode(proof, jwk, header.alg)?;
    if claims.get("htm").and_then(Value::as_str) != Some("GET") {
        return Err("htm".into());
    }
    htu_matches(claims.get("htu").and_then(Value::as_str).ok_or("htu")?)?;
    let iat = date(&claims, "iat")?.ok_or("iat is required")?;
    let now = NOW as f64;
    if iat > now + leeway as f64 || iat + (max_age + leeway) as f64 + 1.0 < now {
        return Err("iat outside the window".into());
    }
    let ath = URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()));
    if claims.get("ath").and_then(Value::as_str) != Some(ath.as_str()) {
        return Err("ath".into());
    }
    match claims.get("jti") {
        Some(Value::String(j)) if !j.is_empty() => Ok(()),
        _ => Err("jti".into()),
    }
}
