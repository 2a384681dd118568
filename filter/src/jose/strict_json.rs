//! A JSON object parser that refuses duplicate member names. serde_json keeps the last of two equal
//! keys silently; for a token header or payload that ambiguity is an attack surface (two parsers may
//! disagree on which `alg` or `exp` counts), so the gateway refuses such tokens outright.

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Value};
use std::fmt;

/// A JSON object whose top-level members had unique names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StrictObject(pub Map<String, Value>);

impl<'de> Deserialize<'de> for StrictObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;

        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = StrictObject;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<StrictObject, A::Error> {
                let mut map = Map::new();
                while let Some(key) = access.next_key::<String>()? {
                    // One search per member: the vacant entry is kept while the value is parsed.
                    match map.entry(key) {
                        Entry::Vacant(slot) => {
                            slot.insert(access.next_value::<Value>()?);
                        }
                        Entry::Occupied(dup) => {
                            return Err(de::Error::custom(format_args!(
                                "duplicate member {:?}",
                                dup.key()
                            )));
                        }
                    }
                }
                Ok(StrictObject(map))
            }
        }

        deserializer.deserialize_map(ObjectVisitor)
    }
}

pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, serde_json::Error> {
    serde_json::from_slice::<StrictObject>(bytes).map(|o| o.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_duplicate_members() {
        assert!(parse_object(br#"{"alg":"ES256","alg":"none"}"#).is_err());
    }

    #[test]
    fn accepts_unique_members_and_refuses_non_objects() {
        let m = parse_object(br#"{"a":1,"b":{"a":2}}"#).unwrap_or_default();
        assert_eq!(m.len(), 2);
        assert!(parse_object(b"[1,2]").is_err());
        assert!(parse_object(b"{} trailing").is_err());
    }
}
