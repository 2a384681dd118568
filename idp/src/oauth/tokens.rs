//! RFC 9068 JWT access tokens: issuing (signed with the active key) and checking our own tokens
//! (for revocation and introspection).

use crate::oauth::keys::{KeyError, KeyRing, SigningAlg};
use crate::settings::Client;
use jsonwebtoken::{Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    /// One audience as a string, several as an array (RFC 7519 §4.1.3).
    pub aud: serde_json::Value,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    pub client_id: String,
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sid: Option<String>,
    /// Authentication methods (RFC 8176), e.g. `["pwd"]`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub amr: Option<Vec<String>>,
    /// The key the token is bound to (RFC 9449 §6.1): a DPoP-bound token.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cnf: Option<Confirmation>,
}

/// The `cnf` claim of a DPoP-bound token (RFC 7800, RFC 9449 §6.1).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Confirmation {
    /// The RFC 7638 SHA-256 thumbprint of the client's DPoP key.
    pub jkt: String,
}

impl AccessClaims {
    /// Binds the token to the DPoP key `jkt` (if any).
    pub fn bound_to(mut self, jkt: Option<&str>) -> Self {
        self.cnf = jkt.map(|jkt| Confirmation {
            jkt: jkt.to_owned(),
        });
        self
    }

    /// `DPoP` for a bound token, else `Bearer` (the `token_type` of RFC 6749 §7.1).
    pub fn token_type(&self) -> &'static str {
        if self.cnf.is_some() { "DPoP" } else { "Bearer" }
    }
}

impl AccessClaims {
    /// The claims of a new access token for `client`, valid for the client's lifetime from `now`.
    pub fn issue(issuer: &str, client: &Client, sub: &str, scopes: &[String], now: i64) -> Self {
        let ttl = i64::try_from(client.access_token_ttl_seconds).unwrap_or(300);
        AccessClaims {
            iss: issuer.to_owned(),
            sub: sub.to_owned(),
            aud: audience(&client.audiences),
            exp: now + ttl,
            iat: now,
            nbf: now,
            jti: random_id(),
            client_id: client.id.clone(),
            scope: scopes.join(" "),
            sid: None,
            amr: None,
            cnf: None,
        }
    }
}

pub fn random_id() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub fn audience(audiences: &[String]) -> serde_json::Value {
    match audiences {
        [one] => serde_json::Value::String(one.clone()),
        many => serde_json::Value::from(many.to_vec()),
    }
}

pub fn sign(keys: &KeyRing, claims: &AccessClaims) -> Result<String, KeyError> {
    sign_typed(keys, keys.active_alg, "at+jwt", claims)
}

/// Signs `claims` with the ring's `alg` key (see [`KeyRing::signer`]), with `typ` in the header
/// (`at+jwt` for access tokens, `JWT` for ID tokens, so one can never be taken for the other).
pub fn sign_typed(
    keys: &KeyRing,
    alg: SigningAlg,
    typ: &str,
    claims: &impl Serialize,
) -> Result<String, KeyError> {
    let (kid, encoding) = keys.signer(alg).ok_or(KeyError::NoSigner(alg.as_str()))?;
    let mut header = Header::new(alg.jwt());
    header.typ = Some(typ.into());
    header.kid = Some(kid.to_owned());
    Ok(jsonwebtoken::encode(&header, claims, encoding)?)
}

/// Our own, unexpired, correctly signed token's claims; `None` for anything else.
pub fn verify_own(keys: &KeyRing, issuer: &str, token: &str) -> Option<AccessClaims> {
    let header = jsonwebtoken::decode_header(token).ok()?;
    if header.typ.as_deref() != Some("at+jwt") {
        return None;
    }
    let key = keys.verifier(&header.kid?, header.alg)?;
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[issuer]);
    validation.validate_aud = false;
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp", "iss", "sub"]);
    jsonwebtoken::decode::<AccessClaims>(token, key, &validation)
        .ok()
        .map(|d| d.claims)
}
