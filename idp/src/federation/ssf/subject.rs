//! Subject identifiers (RFC 9493) as SSF 1.0 uses them: the formats the hub can map to tokens
//! (`iss_sub`, `email`, `opaque`, `jwt_id`, and `complex` with `session`/`user`), any other
//! format kept by name (acknowledged, not mapped), and malformed ones refused.

use serde_json::{Map, Value};

/// The longest identifier value kept.
const MAX_ID_BYTES: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    IssSub {
        iss: String,
        sub: String,
    },
    Email(String),
    Opaque(String),
    JwtId {
        iss: String,
        jti: String,
    },
    Complex {
        session: Option<Box<Subject>>,
        user: Option<Box<Subject>>,
    },
    /// A format this receiver does not map (e.g. `phone_number`, `account`, `did`, `uri`).
    Other,
}

fn member(obj: &Map<String, Value>, name: &str) -> Result<String, &'static str> {
    match obj.get(name) {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_ID_BYTES => Ok(s.clone()),
        _ => Err("a required member of the subject identifier is missing or not a string"),
    }
}

/// Parses a subject identifier; `Err` when it is malformed.
pub fn parse(value: &Value) -> Result<Subject, &'static str> {
    parse_at(value, true)
}

fn parse_at(value: &Value, top: bool) -> Result<Subject, &'static str> {
    let Value::Object(obj) = value else {
        return Err("the subject identifier is not an object");
    };
    let Some(Value::String(format)) = obj.get("format") else {
        return Err("the subject identifier has no format");
    };
    Ok(match format.as_str() {
        "iss_sub" => Subject::IssSub {
            iss: member(obj, "iss")?,
            sub: member(obj, "sub")?,
        },
        "email" => Subject::Email(member(obj, "email")?),
        "opaque" => Subject::Opaque(member(obj, "id")?),
        "jwt_id" => Subject::JwtId {
            iss: member(obj, "iss")?,
            jti: member(obj, "jti")?,
        },
        "complex" if top => {
            let mut parts = 0;
            let mut take = |name: &str| -> Result<Option<Box<Subject>>, &'static str> {
                match obj.get(name) {
                    None => Ok(None),
                    Some(v) => {
                        parts += 1;
                        parse_at(v, false).map(|s| Some(Box::new(s)))
                    }
                }
            };
            let session = take("session")?;
            let user = take("user")?;
            for other in ["device", "application", "tenant", "org_unit", "group"] {
                take(other)?;
            }
            if parts == 0 {
                return Err("a complex subject names no member");
            }
            Subject::Complex { session, user }
        }
        "complex" => return Err("a complex subject inside a complex subject"),
        "aliases" => {
            match obj.get("identifiers") {
                Some(Value::Array(list)) if !list.is_empty() => {
                    for id in list {
                        parse_at(id, false)?;
                    }
                }
                _ => return Err("an aliases subject without identifiers"),
            }
            Subject::Other
        }
        _ => Subject::Other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_rfc_9493_formats_parse_and_malformed_ones_are_refused() {
        assert_eq!(
            parse(&json!({"format": "iss_sub", "iss": "https://op", "sub": "u1"})),
            Ok(Subject::IssSub {
                iss: "https://op".into(),
                sub: "u1".into()
            })
        );
        assert_eq!(
            parse(&json!({"format": "complex",
                "session": {"format": "opaque", "id": "s1"},
                "user": {"format": "email", "email": "a@b"},
                "tenant": {"format": "opaque", "id": "t"}})),
            Ok(Subject::Complex {
                session: Some(Box::new(Subject::Opaque("s1".into()))),
                user: Some(Box::new(Subject::Email("a@b".into())))
            })
        );
        assert_eq!(
            parse(&json!({"format": "phone_number", "phone_number": "+1"})),
            Ok(Subject::Other)
        );
        for bad in [
            json!("alice"),
            json!({"iss": "x", "sub": "y"}),
            json!({"format": "iss_sub", "iss": "x"}),
            json!({"format": "jwt_id", "iss": "x", "jti": 5}),
            json!({"format": "opaque", "id": ""}),
            json!({"format": "complex"}),
            json!({"format": "complex", "user": {"format": "complex", "user": {}}}),
            json!({"format": "complex", "session": "s"}),
            json!({"format": "aliases", "identifiers": []}),
        ] {
            assert!(parse(&bad).is_err(), "{bad}");
        }
    }
}
