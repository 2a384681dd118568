//! A DPoP proof's payload (RFC 9449 §4.2), read in one pass on every DPoP request: the five
//! claims the gateway checks (`htm`, `htu`, `iat`, `ath`, `jti`); every other member is skipped
//! without being built, and no map is made. As for every JOSE object the gateway reads
//! ([`crate::jose::strict_json`], [`crate::jose::jose_header`]), a payload naming a member twice is refused.

use crate::jose::jose_header::MemberName;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;

/// One checked claim's value, read by serde_json's own `Value` reader (already in the module
/// for tokens): a reader of its own saved 2 300 Wasm instructions a request for 2 KB of Wasm.
#[derive(Debug, Clone, PartialEq)]
pub struct Member(pub Value);

impl Member {
    /// The value when it is a string.
    pub fn text(&self) -> Option<&str> {
        self.0.as_str()
    }

    /// The value when it is a NumericDate ([`crate::validation::claims::date_of`]).
    pub fn date(&self) -> Option<u64> {
        match &self.0 {
            Value::Number(n) => crate::validation::claims::date_of(n),
            _ => None,
        }
    }
}

/// The claims of a proof the gateway checks; `None` when absent.
#[derive(Debug, Default, PartialEq)]
pub struct ProofClaims {
    pub htm: Option<Member>,
    pub htu: Option<Member>,
    pub iat: Option<Member>,
    pub ath: Option<Member>,
    pub jti: Option<Member>,
}

impl ProofClaims {
    /// Reads a decoded payload: UTF-8 (RFC 8259 §8.1), a JSON object with unique member names,
    /// nothing after it.
    pub fn parse(payload: &[u8]) -> Result<Self, serde_json::Error> {
        // Checked first and whole: serde_json does not look at the bytes of a string it skips,
        // and the strict reader of tokens refuses invalid UTF-8 anywhere (found by fuzzing).
        // (from_slice, not from_str: one reader type for all the module's JSON keeps the Wasm
        // small.)
        std::str::from_utf8(payload).map_err(de::Error::custom)?;
        serde_json::from_slice(payload)
    }
}

impl<'de> Deserialize<'de> for ProofClaims {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ClaimsVisitor)
    }
}

struct ClaimsVisitor;

impl<'de> Visitor<'de> for ClaimsVisitor {
    type Value = ProofClaims;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut claims = ProofClaims::default();
        let mut names: Vec<Cow<'de, str>> = Vec::new();
        while let Some(name) = access.next_key_seed(MemberName)? {
            let slot = match name.as_ref() {
                "htm" => Some(&mut claims.htm),
                "htu" => Some(&mut claims.htu),
                "iat" => Some(&mut claims.iat),
                "ath" => Some(&mut claims.ath),
                "jti" => Some(&mut claims.jti),
                _ => None,
            };
            match slot {
                Some(slot) => *slot = Some(Member(access.next_value::<Value>()?)),
                None => {
                    access.next_value::<IgnoredAny>()?;
                }
            }
            names.push(name);
        }
        // Sorted, two equal names are neighbours: O(n log n) however many members a proof has.
        names.sort_unstable();
        if let Some(pair) = names.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(de::Error::custom(format_args!(
                "duplicate member {:?}",
                pair[0]
            )));
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::strict_json::parse_object;

    #[test]
    fn reads_the_checked_claims() {
        let payload = br#"{"jti":"j-1","htm":"POST","htu":"https://a.example/x","iat":1800000000,
            "ath":"h","other":{"nested":[1,2]},"n":null}"#;
        let claims = ProofClaims::parse(payload).unwrap();
        assert_eq!(claims.htm.as_ref().and_then(Member::text), Some("POST"));
        assert_eq!(
            claims.htu.as_ref().and_then(Member::text),
            Some("https://a.example/x")
        );
        assert_eq!(
            claims.iat.as_ref().and_then(Member::date),
            Some(1_800_000_000)
        );
        assert_eq!(claims.ath.as_ref().and_then(Member::text), Some("h"));
        assert_eq!(claims.jti.as_ref().and_then(Member::text), Some("j-1"));
        // Escapes are decoded, as in any JSON reading.
        let escaped = ProofClaims::parse(br#"{"h\u0074m":"G\u0045T"}"#).unwrap();
        assert_eq!(escaped.htm.as_ref().and_then(Member::text), Some("GET"));
    }

    #[test]
    fn wrong_types_are_kept_for_the_checks_to_refuse() {
        let claims =
            ProofClaims::parse(br#"{"htm":1,"iat":"1800000000","ath":true,"jti":[]}"#).unwrap();
        assert_eq!(claims.htm.as_ref().and_then(Member::text), None);
        assert_eq!(claims.iat.as_ref().and_then(Member::date), None);
        assert_eq!(claims.ath, Some(Member(Value::Bool(true))));
        assert_eq!(claims.jti.as_ref().and_then(Member::text), None);
        assert_eq!(claims.htu, None);
        let negative = ProofClaims::parse(br#"{"iat":-1}"#).unwrap();
        assert_eq!(negative.iat.as_ref().and_then(Member::date), None);
        let fraction = ProofClaims::parse(br#"{"iat":1800000000.5}"#).unwrap();
        assert_eq!(
            fraction.iat.as_ref().and_then(Member::date),
            Some(1_800_000_000)
        );
    }

    #[test]
    fn refuses_what_the_strict_reader_refuses() {
        for payload in [
            &br#"{"jti":"a","jti":"b"}"#[..],
            br#"{"x":1,"x":2}"#,
            br#"{"j\u0074i":"a","jti":"b"}"#,
            b"[1,2]",
            br#"{} trailing"#,
            // Invalid UTF-8 in a member no check reads (dpop_proof fuzz target, 2026-12-04).
            b"{\"jti\":\"a\",\"htt\":\"http\xb6\xe0s://a.example\"}",
            br#""text""#,
            b"{",
        ] {
            assert!(ProofClaims::parse(payload).is_err(), "{payload:?}");
            assert!(parse_object(payload).is_err(), "{payload:?}");
        }
    }
}
