//! A DPoP proof's payload (RFC 9449 §4.2), read in one pass on every DPoP request: the five
//! claims the gateway checks (`htm`, `htu`, `iat`, `ath`, `jti`), borrowed from the decoded payload
//! where they hold no escapes; every other member is skipped without being built. As for every
//! JOSE object the gateway reads ([`crate::strict_json`]), a payload naming a member twice is
//! refused.

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Number;
use std::borrow::Cow;
use std::fmt;

/// One checked claim's value, as far as the checks need it.
#[derive(Debug, Clone, PartialEq)]
pub enum Member<'a> {
    Text(Cow<'a, str>),
    Number(Number),
    /// Anything else (`true`, `null`, an array, an object): never what a check wants.
    Other,
}

impl Member<'_> {
    /// The value when it is a string.
    pub fn text(&self) -> Option<&str> {
        match self {
            Member::Text(text) => Some(text),
            _ => None,
        }
    }

    /// The value when it is a NumericDate ([`crate::claims::date_of`]).
    pub fn date(&self) -> Option<u64> {
        match self {
            Member::Number(n) => crate::claims::date_of(n),
            _ => None,
        }
    }
}

/// The claims of a proof the gateway checks; `None` when absent.
#[derive(Debug, Default, PartialEq)]
pub struct ProofClaims<'a> {
    pub htm: Option<Member<'a>>,
    pub htu: Option<Member<'a>>,
    pub iat: Option<Member<'a>>,
    pub ath: Option<Member<'a>>,
    pub jti: Option<Member<'a>>,
}

impl<'a> ProofClaims<'a> {
    /// Reads a decoded payload: a JSON object with unique member names, nothing after it.
    pub fn parse(payload: &'a [u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(payload)
    }
}

impl<'de> Deserialize<'de> for ProofClaims<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ClaimsVisitor)
    }
}

struct ClaimsVisitor;

impl<'de> Visitor<'de> for ClaimsVisitor {
    type Value = ProofClaims<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut claims = ProofClaims::default();
        let mut names: Vec<Cow<'de, str>> = Vec::new();
        while let Some(name) = access.next_key_seed(NameSeed)? {
            let slot = match name.as_ref() {
                "htm" => Some(&mut claims.htm),
                "htu" => Some(&mut claims.htu),
                "iat" => Some(&mut claims.iat),
                "ath" => Some(&mut claims.ath),
                "jti" => Some(&mut claims.jti),
                _ => None,
            };
            match slot {
                Some(slot) => *slot = Some(access.next_value::<Member<'de>>()?),
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

/// A member name, borrowed when it has no escapes.
struct NameSeed;

impl<'de> DeserializeSeed<'de> for NameSeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

impl<'de> Deserialize<'de> for Member<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(MemberVisitor)
    }
}

struct MemberVisitor;

impl<'de> Visitor<'de> for MemberVisitor {
    type Value = Member<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Member::Text(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Member::Text(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Member::Text(Cow::Owned(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Member::Number(v.into()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Member::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Number::from_f64(v).map_or(Member::Other, Member::Number))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Member::Other)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Member::Other)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Member::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Member::Other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strict_json::parse_object;

    #[test]
    fn reads_the_checked_claims_and_borrows_plain_strings() {
        let payload = br#"{"jti":"j-1","htm":"POST","htu":"https://a.example/x","iat":1800000000,
            "ath":"h","other":{"nested":[1,2]},"n":null}"#;
        let claims = ProofClaims::parse(payload).unwrap();
        assert!(matches!(
            claims.htm,
            Some(Member::Text(Cow::Borrowed("POST")))
        ));
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
        assert_eq!(claims.ath, Some(Member::Other));
        assert_eq!(claims.jti, Some(Member::Other));
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
            br#""text""#,
            b"{",
        ] {
            assert!(ProofClaims::parse(payload).is_err(), "{payload:?}");
            assert!(parse_object(payload).is_err(), "{payload:?}");
        }
    }
}
