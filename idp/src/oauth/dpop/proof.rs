//! Parsing and verifying one DPoP proof JWT (RFC 9449 §4.2, §4.3): header, key, signature,
//! claims. No I/O: the replay store and the nonce are checked by the caller (`super::check`).

use super::jwk::{public_key_thumbprint, verify_signature};
use super::{ProofAlg, Target};
use crate::settings::DpopPolicy;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Longer `DPoP` header values are refused unread (an RSA-4096 proof is about 1.3 KB).
pub const MAX_PROOF_BYTES: usize = 8 * 1024;
/// Longest `jti` accepted.
const MAX_JTI_CHARS: usize = 256;

/// What a proof proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedProof {
    /// The RFC 7638 thumbprint of the proof's key.
    pub jkt: String,
    pub jti: String,
    pub iat: i64,
    pub nonce: Option<String>,
}

fn invalid(message: impl Into<String>) -> String {
    message.into()
}

fn decode_json(part: &str, what: &str) -> Result<Map<String, Value>, String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| invalid(format!("the proof's {what} is not base64url")))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(invalid(format!("the proof's {what} is not a JSON object"))),
    }
}

/// The target URI with what RFC 9449 §4.3 compares: scheme, host and port (the default port
/// made explicit, case folded) and the path (dot segments removed); a query or fragment is an
/// error.
fn normalised_htu(htu: &str) -> Result<(String, String, u16, String), String> {
    let url = url::Url::parse(htu).map_err(|_| invalid("htu is not an absolute URL"))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("htu must not have a query or fragment"));
    }
    let host = url
        .host_str()
        .ok_or_else(|| invalid("htu has no host"))?
        .to_ascii_lowercase();
    let port = url
        .port_or_known_default()
        .ok_or_else(|| invalid("htu has no port"))?;
    Ok((url.scheme().to_owned(), host, port, url.path().to_owned()))
}

/// Checks `token` as a proof for `target` at `now`: one compact JWS, `typ: dpop+jwt`, an
/// allowed asymmetric `alg`, a public `jwk` of that algorithm that verifies the signature, and
/// the claims `jti`, `htm`, `htu`, `iat` (within the policy's window) and, with an access
/// token, `ath`.
pub fn verify(
    token: &str,
    target: &Target<'_>,
    policy: &DpopPolicy,
    now: i64,
) -> Result<VerifiedProof, String> {
    if token.len() > MAX_PROOF_BYTES {
        return Err(invalid("the proof is too large"));
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [header_part, payload_part, signature_part] = parts.as_slice() else {
        return Err(invalid("the proof is not a compact JWS (three parts)"));
    };
    let header = decode_json(header_part, "header")?;
    let typ = header.get("typ").and_then(Value::as_str);
    if !typ.is_some_and(|t| t.eq_ignore_ascii_case("dpop+jwt")) {
        return Err(invalid("the proof's typ must be dpop+jwt"));
    }
    let alg_name = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("the proof has no alg"))?;
    let alg = ProofAlg::parse(alg_name).ok_or_else(|| {
        invalid(format!(
            "alg {alg_name:?} is not allowed for DPoP proofs (allowed: {})",
            ProofAlg::ALL_NAMES.join(", ")
        ))
    })?;
    if header.contains_key("crit") {
        return Err(invalid("the proof's crit header is not supported"));
    }
    let jwk_value = header
        .get("jwk")
        .ok_or_else(|| invalid("the proof has no jwk header"))?;
    let jwk_map = jwk_value
        .as_object()
        .ok_or_else(|| invalid("the proof's jwk is not a JSON object"))?;
    let jkt = public_key_thumbprint(jwk_map, alg)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature_part)
        .map_err(|_| invalid("the proof's signature is not base64url"))?;
    let signing_input = &token[..header_part.len() + 1 + payload_part.len()];
    verify_signature(jwk_map, alg, signing_input.as_bytes(), &signature)?;
    let claims = decode_json(payload_part, "payload")?;
    check_claims(&claims, target, policy, now).map(|(jti, iat, nonce)| VerifiedProof {
        jkt,
        jti,
        iat,
        nonce,
    })
}

fn check_claims(
    claims: &Map<String, Value>,
    target: &Target<'_>,
    policy: &DpopPolicy,
    now: i64,
) -> Result<(String, i64, Option<String>), String> {
    let string = |name: &str| -> Result<&str, String> {
        claims
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(format!("the proof has no {name} claim (a string)")))
    };
    let jti = string("jti")?;
    if jti.is_empty() || jti.chars().count() > MAX_JTI_CHARS {
        return Err(invalid(format!(
            "the proof's jti must have 1 to {MAX_JTI_CHARS} characters"
        )));
    }
    let htm = string("htm")?;
    if htm != target.htm {
        return Err(invalid(format!(
            "the proof's htm is {htm:?}, this request's method is {}",
            target.htm
        )));
    }
    let htu = normalised_htu(string("htu")?)?;
    let expected =
        normalised_htu(target.htu).map_err(|_| "the endpoint URL is not valid".to_owned())?;
    if htu != expected {
        return Err(invalid(format!(
            "the proof's htu does not name this endpoint ({})",
            target.htu
        )));
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or_else(|| invalid("the proof has no iat claim (an integer)"))?;
    let max_age = i64::try_from(policy.proof_max_age_seconds).unwrap_or(60);
    let skew = i64::try_from(policy.clock_skew_seconds).unwrap_or(0);
    if iat < now - max_age {
        return Err(invalid(format!(
            "the proof is too old (iat more than {max_age} s ago)"
        )));
    }
    if iat > now + skew {
        return Err(invalid("the proof's iat is in the future"));
    }
    if let Some(token) = target.access_token {
        let expected = URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()));
        match claims.get("ath").and_then(Value::as_str) {
            Some(ath) if ath == expected => {}
            Some(_) => return Err(invalid("the proof's ath does not match the access token")),
            None => return Err(invalid("the proof has no ath claim for the access token")),
        }
    }
    let nonce = match claims.get("nonce") {
        None => None,
        Some(Value::String(n)) => Some(n.clone()),
        Some(_) => return Err(invalid("the proof's nonce must be a string")),
    };
    Ok((jti.to_owned(), iat, nonce))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htu_normalisation() {
        let n = |u| normalised_htu(u);
        assert_eq!(
            n("HTTP://IDP.example:80/oauth2/./token"),
            n("http://idp.example/oauth2/token")
        );
        assert_ne!(
            n("http://idp.example/oauth2/token/"),
            n("http://idp.example/oauth2/token")
        );
        assert!(n("http://idp.example/oauth2/token?x=1").is_err());
        assert!(n("http://idp.example/oauth2/token#f").is_err());
        assert!(n("/oauth2/token").is_err());
    }
}
