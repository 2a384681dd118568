//! The protected header of a JWS (RFC 7515 §4), read member by member: no map is built, member
//! names are borrowed from the decoded segment where they have no escapes, and members the gateway
//! does not act on are skipped unparsed. Every member name must still be unique.

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;

/// What the header says about the members the gateway acts on, before any of it is judged.
#[derive(Debug, Default)]
pub struct RawHeader {
    pub alg: Option<Value>,
    pub kid: Option<Value>,
    pub typ: Option<Value>,
    pub b64: Option<Value>,
    /// A public key in the header: only DPoP proofs (RFC 9449 §4.2) are verified with it.
    pub jwk: Option<Value>,
    pub crit: bool,
}

/// Reads a header object; `Err` for anything but UTF-8 text (RFC 8259 §8.1) holding one JSON
/// object with unique member names.
pub fn read(bytes: &[u8]) -> Result<RawHeader, serde_json::Error> {
    // Checked whole first: serde_json does not look at the bytes of a string it skips.
    // (from_slice, not from_str: one reader type for all the module's JSON keeps the Wasm small.)
    std::str::from_utf8(bytes).map_err(de::Error::custom)?;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let header = de.deserialize_map(HeaderVisitor)?;
    de.end()?;
    Ok(header)
}

struct HeaderVisitor;

impl<'de> Visitor<'de> for HeaderVisitor {
    type Value = RawHeader;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<RawHeader, A::Error> {
        let mut header = RawHeader::default();
        let mut seen: Vec<Cow<'de, str>> = Vec::new();
        while let Some(name) = access.next_key_seed(MemberName)? {
            if seen.contains(&name) {
                return Err(de::Error::custom(format_args!("duplicate member {name:?}")));
            }
            match name.as_ref() {
                "alg" => header.alg = Some(access.next_value()?),
                "kid" => header.kid = Some(access.next_value()?),
                "typ" => header.typ = Some(access.next_value()?),
                "b64" => header.b64 = Some(access.next_value()?),
                "jwk" => header.jwk = Some(access.next_value()?),
                "crit" => {
                    access.next_value::<IgnoredAny>()?;
                    header.crit = true;
                }
                _ => {
                    access.next_value::<IgnoredAny>()?;
                }
            }
            seen.push(name);
        }
        Ok(header)
    }
}

/// A member name, borrowed when the JSON text has it verbatim.
pub(crate) struct MemberName;

impl<'de> DeserializeSeed<'de> for MemberName {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for MemberName {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::strict_json::parse_object;

    #[test]
    fn reads_the_members_the_gateway_acts_on() {
        let h = read(br#"{"alg":"ES256","kid":"k1","typ":"at+jwt","x5u":"https://x","crit":[]}"#)
            .unwrap();
        assert_eq!(h.alg, Some(Value::from("ES256")));
        assert_eq!(h.kid, Some(Value::from("k1")));
        assert_eq!(h.typ, Some(Value::from("at+jwt")));
        assert!(h.crit);
        assert_eq!(h.b64, None);
    }

    #[test]
    fn refuses_duplicates_also_of_ignored_or_escaped_members() {
        for text in [
            r#"{"alg":"ES256","alg":"none"}"#,
            r#"{"alg":"ES256","x":1,"x":2}"#,
            r#"{"alg":"ES256","\u0061lg":"none"}"#,
        ] {
            assert!(read(text.as_bytes()).is_err(), "{text}");
        }
    }

    #[test]
    fn refuses_non_objects_and_trailing_text() {
        for text in ["[1]", "\"alg\"", "{} {}", "{\"alg\":\"ES256\"", ""] {
            assert!(read(text.as_bytes()).is_err(), "{text}");
        }
    }

    #[test]
    fn refuses_invalid_utf8_also_in_a_skipped_member() {
        assert!(read(b"{\"alg\":\"ES256\",\"x5u\":\"\xb6\xe0\"}").is_err());
        assert!(parse_object(b"{\"alg\":\"ES256\",\"x5u\":\"\xb6\xe0\"}").is_err());
    }
}
