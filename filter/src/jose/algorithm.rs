//! The JWS algorithms the gateway can verify. HMAC algorithms are deliberately absent: a gateway that
//! validates tokens from an IDP's JWKS only ever holds public keys.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Es256,
    Rs256,
    Ps256,
    EdDsa,
}

impl Algorithm {
    pub const ALL: [Algorithm; 4] = [
        Algorithm::Es256,
        Algorithm::Rs256,
        Algorithm::Ps256,
        Algorithm::EdDsa,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Es256 => "ES256",
            Algorithm::Rs256 => "RS256",
            Algorithm::Ps256 => "PS256",
            Algorithm::EdDsa => "EdDSA",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedAlgorithm(pub String);

impl FromStr for Algorithm {
    type Err = UnsupportedAlgorithm;

    /// The registered names, and `Ed25519`: RFC 9864's fully specified name for EdDSA with
    /// Ed25519, the only EdDSA this filter verifies (openid-client signs DPoP proofs with it).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "Ed25519" {
            return Ok(Algorithm::EdDsa);
        }
        Algorithm::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| UnsupportedAlgorithm(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_supported_names_exactly() {
        for alg in Algorithm::ALL {
            assert_eq!(alg.as_str().parse::<Algorithm>(), Ok(alg));
        }
        assert_eq!("Ed25519".parse::<Algorithm>(), Ok(Algorithm::EdDsa));
        for bad in ["none", "HS256", "es256", "RS512", "Ed448", "ed25519", ""] {
            assert!(bad.parse::<Algorithm>().is_err(), "{bad} must be refused");
        }
    }
}
