//! OpenID Connect ID tokens (OIDC Core §2, §3.1.3.6): issued with the tokens of a login when the
//! scope has `openid`; read back (signature and issuer only) as `id_token_hint` at logout.

use crate::oauth::keys::{KeyError, KeyRing, SigningAlg};
use crate::oauth::tokens::sign_typed;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Validation;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};

pub const TYP: &str = "JWT";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IdClaims {
    pub iss: String,
    pub sub: String,
    /// The client the token is for.
    pub aud: String,
    pub azp: String,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub nonce: Option<String>,
    /// Binds the access token issued with it (§3.1.3.8).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub at_hash: Option<String>,
    pub sid: String,
    #[serde(default)]
    pub amr: Vec<String>,
}

/// `at_hash` (OIDC Core §3.1.3.6): the left half of the hash of the access token, base64url —
/// SHA-256 for ES256 and RS256, SHA-512 for EdDSA with Ed25519 (OIDC Core errata).
pub fn at_hash(access_token: &str, alg: SigningAlg) -> String {
    match alg {
        SigningAlg::Es256 | SigningAlg::Rs256 => {
            URL_SAFE_NO_PAD.encode(&Sha256::digest(access_token.as_bytes())[..16])
        }
        SigningAlg::EdDsa => URL_SAFE_NO_PAD.encode(&Sha512::digest(access_token.as_bytes())[..32]),
    }
}

/// Signs an ID token with the ring's `alg` key (the client's `id_token_signed_response_alg`).
pub fn sign(keys: &KeyRing, alg: SigningAlg, claims: &IdClaims) -> Result<String, KeyError> {
    sign_typed(keys, alg, TYP, claims)
}

/// An ID token this IDP signed, for `id_token_hint`: signature, `typ` and issuer are checked, but
/// not its expiry (a hint is usually an old token, OIDC RP-Initiated Logout §2).
pub fn read_hint(keys: &KeyRing, issuer: &str, token: &str) -> Option<IdClaims> {
    let header = jsonwebtoken::decode_header(token).ok()?;
    if header.typ.as_deref() != Some(TYP) {
        return None;
    }
    let key = keys.verifier(&header.kid?, header.alg)?;
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[issuer]);
    validation.validate_aud = false;
    validation.validate_exp = false;
    validation.set_required_spec_claims(&["iss", "sub"]);
    jsonwebtoken::decode::<IdClaims>(token, key, &validation)
        .ok()
        .map(|d| d.claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_follows_the_spec_example() {
        // OIDC Core appendix A.3 uses RS256 (SHA-256 too): this access token hashes to this value.
        assert_eq!(
            at_hash(
                "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y",
                SigningAlg::Rs256
            ),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }
}
