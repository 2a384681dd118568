//! Finding the bearer token of a request (RFC 6750 §2.1). Only the `Authorization` header is read:
//! tokens in query strings leak into logs and are refused by design (RFC 9700 §2.5), and form
//! bodies would make the filter buffer every request.

use crate::denial::Denial;

/// The token in the request's `Authorization` headers (all values, as the host gives them).
/// `Ok(None)`: no bearer token at all. More than one `Authorization` header, or a header that is
/// not a single well-formed bearer credential, is an error, never a guess.
pub fn bearer_token<'a>(authorization: &[&'a str]) -> Result<Option<&'a str>, Denial> {
    match authorization {
        [] => Ok(None),
        [value] => parse(value),
        _ => Err(Denial::MultipleTokens),
    }
}

/// The bytes of a b64token (RFC 6750 §2.1) before its `=` padding: one table look-up per byte
/// (the token is scanned on every request, cache hit or not).
static B64TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] =
            c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
        b += 1;
    }
    table
};

fn parse(value: &str) -> Result<Option<&str>, Denial> {
    let value = value.trim_matches([' ', '\t']);
    let Some((scheme, rest)) = value.split_once([' ', '\t']) else {
        // "Bearer" alone is a bearer credential without a token; anything else is another scheme.
        return if value.eq_ignore_ascii_case("bearer") {
            Err(Denial::Malformed("empty bearer credential"))
        } else {
            Ok(None)
        };
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        // Another scheme (Basic, DPoP…): no bearer token for this filter.
        return Ok(None);
    }
    let token = rest.trim_start_matches([' ', '\t']);
    if token.is_empty() {
        return Err(Denial::Malformed("empty bearer credential"));
    }
    // b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
    let body = token.trim_end_matches('=');
    let well_formed = !body.is_empty() && body.bytes().all(|b| B64TOKEN[usize::from(b)]);
    if !well_formed {
        // "Bearer a b" (a list of tokens) and "Bearer a,Bearer b" (folded headers) carry several.
        return Err(if token.contains([' ', '\t', ',']) {
            Denial::MultipleTokens
        } else {
            Denial::Malformed("token is not a b64token")
        });
    }
    Ok(Some(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_the_token() {
        assert_eq!(
            bearer_token(&["Bearer abc.def.ghi"]),
            Ok(Some("abc.def.ghi"))
        );
        assert_eq!(bearer_token(&["bearer   abc"]), Ok(Some("abc")));
        assert_eq!(
            bearer_token(&["BEARER a-b_c~d+e/f=="]),
            Ok(Some("a-b_c~d+e/f=="))
        );
    }

    #[test]
    fn absent_or_other_scheme_is_no_token() {
        assert_eq!(bearer_token(&[]), Ok(None));
        assert_eq!(bearer_token(&["Basic dXNlcjpwYXNz"]), Ok(None));
        assert_eq!(bearer_token(&["Negotiate"]), Ok(None));
    }

    #[test]
    fn several_tokens_are_a_bad_request() {
        assert_eq!(
            bearer_token(&["Bearer a", "Bearer b"]),
            Err(Denial::MultipleTokens)
        );
        assert_eq!(
            bearer_token(&["Bearer a,Bearer b"]),
            Err(Denial::MultipleTokens)
        );
        assert_eq!(bearer_token(&["Bearer a b"]), Err(Denial::MultipleTokens));
    }

    #[test]
    fn malformed_credentials_are_refused() {
        assert!(matches!(
            bearer_token(&["Bearer"]),
            Err(Denial::Malformed(_))
        ));
        assert!(matches!(
            bearer_token(&["Bearer  "]),
            Err(Denial::Malformed(_))
        ));
        assert!(matches!(
            bearer_token(&["Bearer ab\"c"]),
            Err(Denial::Malformed(_))
        ));
        assert!(matches!(
            bearer_token(&["Bearer =="]),
            Err(Denial::Malformed(_))
        ));
    }

    #[test]
    fn the_b64token_table_is_the_rfc_alphabet() {
        for b in 0..=255u8 {
            let expected = b.is_ascii_alphanumeric() || b"-._~+/".contains(&b);
            assert_eq!(B64TOKEN[usize::from(b)], expected, "byte {b}");
        }
    }
}
