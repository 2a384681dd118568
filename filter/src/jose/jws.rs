//! Compact JWS parsing (RFC 7515 §7.1) with strict base64url (no padding, no trailing bits) and
//! strict JSON (no duplicate members). Nothing here verifies anything: it only splits and decodes.

use crate::http::denial::Denial;
use crate::jose::algorithm::Algorithm;
use crate::jose::jose_header;
use crate::jose::strict_json::parse_object;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

/// A token split into its parts. `signing_input` borrows from the token.
#[derive(Debug)]
pub struct Jws<'a> {
    pub header: Header,
    pub claims: Map<String, Value>,
    pub signing_input: &'a str,
    pub signature: Vec<u8>,
}

/// The protected header members the gateway acts on. `jku`, `x5u` and `x5c` are never used to
/// find a key, and `jwk` is only for DPoP proofs (RFC 9449 §4.2): a token's keys come only from
/// the configured JWKS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub alg: Algorithm,
    pub kid: Option<String>,
    pub typ: Option<String>,
    pub jwk: Option<Value>,
}

pub fn decode_segment(segment: &str) -> Result<Vec<u8>, Denial> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| Denial::Malformed("segment is not canonical base64url"))
}

/// A compact JWS's three segments, still encoded. `signing_input` is "header.payload".
#[derive(Debug, Clone, Copy)]
pub struct Segments<'a> {
    pub header: &'a str,
    pub payload: &'a str,
    pub signature: &'a str,
    pub signing_input: &'a str,
}

pub fn split(token: &str) -> Result<Segments<'_>, Denial> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Denial::Malformed("not a compact JWS with three segments"));
    };
    if h.is_empty() || p.is_empty() || s.is_empty() {
        return Err(Denial::Malformed("empty JWS segment"));
    }
    Ok(Segments {
        header: h,
        payload: p,
        signature: s,
        // Everything before the last dot.
        signing_input: &token[..h.len() + 1 + p.len()],
    })
}

/// The payload segment as a JSON object with unique members.
pub fn parse_claims(payload: &str) -> Result<Map<String, Value>, Denial> {
    parse_object(&decode_segment(payload)?)
        .map_err(|_| Denial::Malformed("payload is not a JSON object with unique members"))
}

pub fn parse(token: &str) -> Result<Jws<'_>, Denial> {
    let segments = split(token)?;
    let header = parse_header(&decode_segment(segments.header)?)?;
    let claims = parse_claims(segments.payload)?;
    let signature = decode_segment(segments.signature)?;
    Ok(Jws {
        header,
        claims,
        signing_input: segments.signing_input,
        signature,
    })
}

/// A decoded protected header: strict JSON, no `crit`, only encoded payloads, a supported `alg`.
pub fn parse_header(bytes: &[u8]) -> Result<Header, Denial> {
    let raw = jose_header::read(bytes)
        .map_err(|_| Denial::Malformed("header is not a JSON object with unique members"))?;
    // RFC 7515 §4.1.11: a recipient must refuse `crit` extensions it does not understand, and
    // this gateway understands none.
    if raw.crit {
        return Err(Denial::Malformed(
            "critical header extensions are not supported",
        ));
    }
    if raw.b64.is_some_and(|b64| b64 != Value::Bool(true)) {
        return Err(Denial::Malformed("unencoded payloads are not supported"));
    }
    let alg = match raw.alg {
        Some(Value::String(s)) => s
            .parse::<Algorithm>()
            .map_err(|_| Denial::UnsupportedAlgorithm)?,
        _ => return Err(Denial::Malformed("header has no string alg")),
    };
    Ok(Header {
        alg,
        kid: optional_string(raw.kid)?,
        typ: optional_string(raw.typ)?,
        jwk: raw.jwk,
    })
}

fn optional_string(member: Option<Value>) -> Result<Option<String>, Denial> {
    match member {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Denial::Malformed("header member has the wrong type")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    fn token(header: &str, payload: &str) -> String {
        format!("{}.{}.{}", b64(header), b64(payload), b64("sig"))
    }

    #[test]
    fn splits_a_well_formed_token() {
        let t = token(
            r#"{"alg":"ES256","kid":"k1","typ":"at+jwt"}"#,
            r#"{"sub":"a"}"#,
        );
        let jws = parse(&t).unwrap();
        assert_eq!(jws.header.alg, Algorithm::Es256);
        assert_eq!(jws.header.kid.as_deref(), Some("k1"));
        assert_eq!(jws.claims["sub"], "a");
        assert_eq!(jws.signature, b"sig");
        assert_eq!(jws.signing_input, t.rsplit_once('.').unwrap().0);
    }

    #[test]
    fn refuses_alg_none_and_hmac() {
        for alg in ["none", "HS256", "NONE"] {
            let t = token(&format!(r#"{{"alg":"{alg}"}}"#), "{}");
            assert_eq!(
                parse(&t).unwrap_err(),
                Denial::UnsupportedAlgorithm,
                "{alg}"
            );
        }
    }

    #[test]
    fn refuses_crit_unencoded_payload_and_duplicates() {
        for header in [
            r#"{"alg":"ES256","crit":["exp"],"exp":1}"#,
            r#"{"alg":"ES256","b64":false}"#,
            r#"{"alg":"ES256","alg":"RS256"}"#,
            r#"{"alg":"ES256","kid":5}"#,
            r#"{"kid":"x"}"#,
        ] {
            assert!(
                matches!(parse(&token(header, "{}")), Err(Denial::Malformed(_))),
                "{header}"
            );
        }
        let dup_payload = token(r#"{"alg":"ES256"}"#, r#"{"exp":1,"exp":99999999999}"#);
        assert!(matches!(parse(&dup_payload), Err(Denial::Malformed(_))));
    }

    #[test]
    fn refuses_wrong_segment_counts_and_bad_base64() {
        let good = token(r#"{"alg":"ES256"}"#, "{}");
        let padded = format!("{good}=");
        let four = format!("{good}.x");
        for t in [
            "",
            "a.b",
            "a..c",
            good.replace('.', "").as_str(),
            &padded,
            &four,
            "a+b.c.d",
        ] {
            assert!(matches!(parse(t), Err(Denial::Malformed(_))), "{t}");
        }
    }

    #[test]
    fn refuses_non_canonical_trailing_bits() {
        // "sig" encodes as "c2ln"; "c2lo" decodes to the same bytes only if trailing bits were
        // ignored. Use a 2-byte signature so there are trailing bits: "AB" -> "QUI", "QUJ" differs
        // only in the unused low bits.
        let h = b64(r#"{"alg":"ES256"}"#);
        let p = b64("{}");
        assert!(parse(&format!("{h}.{p}.QUI")).is_ok());
        assert!(matches!(
            parse(&format!("{h}.{p}.QUJ")),
            Err(Denial::Malformed(_))
        ));
    }
}
