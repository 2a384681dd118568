//! Where a request's token may be: the `Authorization: Bearer` header (RFC 6750 §2.1, the
//! default), another header (with an optional prefix), a query parameter or a cookie — configured
//! per provider. A request carrying more than one token, or the same token in two places, is
//! refused (RFC 6750 §2: one method only), never guessed at.

use crate::admission::bearer::credential;
use crate::config::TokenSource;
use crate::http::denial::{Denial, Scheme};

/// A token found in a request, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found<'a> {
    pub token: &'a str,
    pub source: TokenSource,
    /// `Dpop` for `Authorization: DPoP`; a token anywhere else is a bearer token.
    pub scheme: Scheme,
}

/// Looks for a token in every source of `sources`. `Ok(None)`: no token anywhere.
pub fn find_token<'a>(
    sources: &[TokenSource],
    path: &'a str,
    headers: &'a [(&'a str, &'a str)],
) -> Result<Option<Found<'a>>, Denial> {
    find_token_or_dpop(sources, false, path, headers)
}

/// [`find_token`], also reading `Authorization: DPoP` when `dpop` (some provider accepts it).
pub fn find_token_or_dpop<'a>(
    sources: &[TokenSource],
    dpop: bool,
    path: &'a str,
    headers: &'a [(&'a str, &'a str)],
) -> Result<Option<Found<'a>>, Denial> {
    let mut found: Option<Found<'a>> = None;
    let mut add = |token: &'a str, source: &TokenSource, scheme| -> Result<(), Denial> {
        if found.is_some() {
            return Err(Denial::MultipleTokens);
        }
        found = Some(Found {
            token,
            source: source.clone(),
            scheme,
        });
        Ok(())
    };
    for source in sources {
        match source {
            TokenSource::AuthorizationBearer => {
                let values: Vec<&str> = header_values(headers, "authorization").collect();
                if let Some((scheme, t)) = credential(&values, dpop)? {
                    add(t, source, scheme)?;
                }
            }
            TokenSource::Header { name, prefix } => {
                for value in header_values(headers, name) {
                    let token = strip_prefix_ignore_case(value.trim(), prefix)
                        .ok_or(Denial::Malformed("token header without its prefix"))?
                        .trim();
                    if token.is_empty() || token.contains([' ', ',']) {
                        return Err(Denial::Malformed("token header is empty or lists several"));
                    }
                    add(token, source, Scheme::Bearer)?;
                }
            }
            TokenSource::Query(name) => {
                let query = path.split_once('?').map_or("", |(_, q)| q);
                let query = query.split('#').next().unwrap_or("");
                for pair in query.split('&') {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    if k == name {
                        if v.is_empty() || v.contains('%') {
                            // JWTs need no escaping; an escaped or empty value is not a token.
                            return Err(Denial::Malformed("query token is empty or escaped"));
                        }
                        add(v, source, Scheme::Bearer)?;
                    }
                }
            }
            TokenSource::Cookie(name) => {
                for header in header_values(headers, "cookie") {
                    for pair in header.split(';') {
                        let (k, v) = pair.trim().split_once('=').unwrap_or((pair.trim(), ""));
                        if k == name {
                            let v = v.trim_matches('"');
                            if v.is_empty() {
                                return Err(Denial::Malformed("cookie token is empty"));
                            }
                            add(v, source, Scheme::Bearer)?;
                        }
                    }
                }
            }
        }
    }
    Ok(found)
}

/// `rest` (`?query#fragment`, as [`crate::http::request_path::NormalPath::rest`]) without the query
/// parameters named `name` — for a provider that does not forward its tokens.
pub fn without_query_param(rest: &str, name: &str) -> String {
    let Some(after) = rest.strip_prefix('?') else {
        return rest.to_owned();
    };
    let (query, fragment) = after.split_at(after.find('#').unwrap_or(after.len()));
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| pair.split_once('=').map_or(*pair, |(k, _)| k) != name)
        .filter(|pair| !pair.is_empty())
        .collect();
    if kept.is_empty() {
        fragment.to_owned()
    } else {
        format!("?{}{fragment}", kept.join("&"))
    }
}

/// The request's cookies (every `cookie` header, joined) without those named `name`.
pub fn cookies_without(headers: &[(&str, &str)], name: &str) -> String {
    header_values(headers, "cookie")
        .flat_map(|h| h.split(';'))
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .filter(|pair| pair.split_once('=').map_or(*pair, |(k, _)| k) != name)
        .collect::<Vec<_>>()
        .join("; ")
}

pub fn header_values<'a, 'n>(
    headers: &'a [(&'a str, &'a str)],
    name: &'n str,
) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
    headers
        .iter()
        .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

fn strip_prefix_ignore_case<'a>(value: &'a str, prefix: &str) -> Option<&'a str> {
    let head = value.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &value[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConfigError, RawTokenSource};

    fn src(json: &str) -> Result<TokenSource, ConfigError> {
        serde_json::from_str::<RawTokenSource>(json)
            .unwrap()
            .validate("s")
    }

    #[test]
    fn configuration() {
        assert_eq!(
            src(r#"{"header":"Authorization","prefix":"Bearer "}"#),
            Ok(TokenSource::AuthorizationBearer)
        );
        assert_eq!(
            src(r#"{"header":"x-token"}"#),
            Ok(TokenSource::Header {
                name: "x-token".into(),
                prefix: String::new()
            })
        );
        assert_eq!(
            src(r#"{"query":"access_token"}"#),
            Ok(TokenSource::Query("access_token".into()))
        );
        assert_eq!(
            src(r#"{"cookie":"at"}"#),
            Ok(TokenSource::Cookie("at".into()))
        );
        for bad in [
            r#"{}"#,
            r#"{"header":"x","query":"y"}"#,
            r#"{"query":"a b"}"#,
            r#"{"cookie":"c","prefix":"p"}"#,
            r#"{"header":"authorization","prefix":"Token "}"#,
            r#"{"header":"bad header"}"#,
        ] {
            assert!(src(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn finds_one_token_in_any_configured_place() {
        let all = [
            TokenSource::AuthorizationBearer,
            TokenSource::Header {
                name: "x-token".into(),
                prefix: "Token ".into(),
            },
            TokenSource::Query("access_token".into()),
            TokenSource::Cookie("at".into()),
        ];
        let found = |path: &'static str, headers: &'static [(&'static str, &'static str)]| {
            find_token(&all, path, headers).map(|f| f.map(|f| f.token))
        };
        assert_eq!(
            found("/a", &[("authorization", "Bearer t1")]),
            Ok(Some("t1"))
        );
        assert_eq!(found("/a", &[("x-token", "token t2")]), Ok(Some("t2")));
        assert_eq!(found("/a?x=1&access_token=t3#f", &[]), Ok(Some("t3")));
        assert_eq!(
            found("/a", &[("cookie", "a=b; at=t4; c=d")]),
            Ok(Some("t4"))
        );
        assert_eq!(found("/a", &[]), Ok(None));
        // more than one token, even the same one twice, is refused
        assert_eq!(
            found("/a?access_token=t", &[("authorization", "Bearer t")]),
            Err(Denial::MultipleTokens)
        );
        assert_eq!(
            found("/a?access_token=t&access_token=u", &[]),
            Err(Denial::MultipleTokens)
        );
        assert!(found("/a", &[("x-token", "t2")]).is_err(), "missing prefix");
        assert!(found("/a?access_token=a%2Eb", &[]).is_err());
        // sources that are not configured are not read
        let only_header = [TokenSource::AuthorizationBearer];
        assert_eq!(find_token(&only_header, "/a?access_token=t", &[]), Ok(None));
    }

    #[test]
    fn query_tokens_are_cut_out_of_the_query() {
        let cut = |rest| without_query_param(rest, "access_token");
        assert_eq!(cut("?access_token=t"), "");
        assert_eq!(cut("?a=1&access_token=t&b=2"), "?a=1&b=2");
        assert_eq!(cut("?access_token=t#f"), "#f");
        assert_eq!(cut("?x_access_token=t"), "?x_access_token=t");
        assert_eq!(cut(""), "");
        assert_eq!(cut("#f"), "#f");
    }

    #[test]
    fn cookie_tokens_are_cut_out_of_the_cookies() {
        let headers = [("cookie", "a=1; at=t; b=2"), ("Cookie", "at=u;c=3")];
        assert_eq!(cookies_without(&headers, "at"), "a=1; b=2; c=3");
        assert_eq!(cookies_without(&[("cookie", "at=t")], "at"), "");
        assert_eq!(cookies_without(&[("cookie", "xat=t")], "at"), "xat=t");
    }
}
