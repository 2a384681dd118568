//! JWK thumbprints (RFC 7638): SHA-256 over the key's required members, in lexicographic order,
//! as JSON without whitespace, base64url-encoded. The members are taken as the JWK spells them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The SHA-256 thumbprint of a public JWK (EC, RSA or OKP), or `None` when a required member
/// is missing or not a string.
pub fn jwk_thumbprint(jwk: &Map<String, Value>) -> Option<String> {
    let members: &[&str] = match jwk.get("kty")?.as_str()? {
        "EC" => &["crv", "kty", "x", "y"],
        "RSA" => &["e", "kty", "n"],
        "OKP" => &["crv", "kty", "x"],
        _ => return None,
    };
    let mut required = BTreeMap::new();
    for name in members {
        required.insert(*name, jwk.get(*name)?.as_str()?);
    }
    // A BTreeMap serialises in key order, with no whitespace: RFC 7638 §3's form.
    let json = serde_json::to_string(&required).ok()?;
    Some(URL_SAFE_NO_PAD.encode(Sha256::digest(json.as_bytes())))
}

/// `ath` (RFC 9449 §4.2): base64url of the SHA-256 of the access token's ASCII text.
pub fn token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}
