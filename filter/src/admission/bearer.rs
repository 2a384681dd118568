//! Finding the token of a request's `Authorization` header: `Bearer` (RFC 6750 §2.1) and, where
//! a provider accepts it, `DPoP` (RFC 9449 §7.1, the same token68 syntax).

use crate::http::denial::{Denial, Scheme};

/// The bearer token in the request's `Authorization` headers (all values, as the host gives
/// them). `Ok(None)`: no bearer token at all. More than one `Authorization` header, or a header
/// that is not a single well-formed bearer credential, is an error, never a guess.
pub fn bearer_token<'a>(authorization: &[&'a str]) -> Result<Option<&'a str>, Denial> {
    let token = credential(authorization, false)?.map(|(_, token)| token);
    if let Some(token) = token {
        check_b64token(token)?;
    }
    Ok(token)
}

/// The token in the `Authorization` headers and its scheme: `Bearer`, or `DPoP` when `dpop`
/// (otherwise the `DPoP` scheme is another scheme, not read).
pub fn credential<'a>(
    authorization: &[&'a str],
    dpop: bool,
) -> Result<Option<(Scheme, &'a str)>, Denial> {
    match authorization {
        [] => Ok(None),
        [value] => parse(value, dpop),
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

fn scheme_of(name: &str, dpop: bool) -> Option<Scheme> {
    if name.eq_ignore_ascii_case("bearer") {
        Some(Scheme::Bearer)
    } else if dpop && name.eq_ignore_ascii_case("dpop") {
        Some(Scheme::Dpop)
    } else {
        None
    }
}

fn parse(value: &str, dpop: bool) -> Result<Option<(Scheme, &str)>, Denial> {
    let value = value.trim_matches([' ', '\t']);
    let Some((name, rest)) = value.split_once([' ', '\t']) else {
        // "Bearer" alone is a bearer credential without a token; anything else is another scheme.
        return if scheme_of(value, dpop).is_some() {
            Err(Denial::Malformed("empty bearer credential"))
        } else {
            Ok(None)
        };
    };
    let Some(scheme) = scheme_of(name, dpop) else {
        // Another scheme (Basic, …): no token for this filter.
        return Ok(None);
    };
    let token = rest.trim_start_matches([' ', '\t']);
    if token.is_empty() {
        return Err(Denial::Malformed("empty bearer credential"));
    }
    Ok(Some((scheme, token)))
}

/// The syntax of a token found by [`credential`]: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_"
/// / "~" / "+" / "/" ) *"=". Checked once per token, before it is verified (the gateway's
/// `admit`): a token found in the verified-token cache passed it when it was cached, and the scan
/// of every byte was a fifth of a cache hit's work in Wasm.
pub fn check_b64token(token: &str) -> Result<(), Denial> {
    let body = token.trim_end_matches('=');
    if !body.is_empty() && body.bytes().all(|b| B64TOKEN[usize::from(b)]) {
        return Ok(());
    }
    // "Bearer a b" (a list of tokens) and "Bearer a,Bearer b" (folded headers) carry several.
    Err(if token.contains([' ', '\t', ',']) {
        Denial::MultipleTokens
    } else {
        Denial::Malformed("token is not a b64token")
    })
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
    fn the_dpop_scheme_is_read_only_where_offered() {
        assert_eq!(credential(&["DPoP abc"], false), Ok(None));
        assert_eq!(
            credential(&["dpop abc"], true),
            Ok(Some((Scheme::Dpop, "abc")))
        );
        assert_eq!(
            credential(&["Bearer abc"], true),
            Ok(Some((Scheme::Bearer, "abc")))
        );
        assert!(matches!(
            credential(&["DPoP"], true),
            Err(Denial::Malformed(_))
        ));
        assert_eq!(
            credential(&["DPoP a", "Bearer a"], true),
            Err(Denial::MultipleTokens)
        );
    }

    #[test]
    fn the_b64token_table_is_the_rfc_alphabet() {
        for b in 0..=255u8 {
            let expected = b.is_ascii_alphanumeric() || b"-._~+/".contains(&b);
            assert_eq!(B64TOKEN[usize::from(b)], expected, "byte {b}");
        }
    }
}
