//! Comparing a proof's `htu` with the request's URI (RFC 9449 §4.3 step 9): both in normal form
//! (RFC 3986 §6.2.2–6.2.3: lowercase scheme and host, no default port, the path normalised as
//! rules see it). An `htu` with a query or fragment is refused: the proof names the target URI
//! without them (§4.2).

use crate::config::normal_authority;
use crate::http::request_path::normalise;

/// The request's URI without query, in normal form: `scheme://authority/path`. `base` (a
/// provider's `dpop_htu_base`, already normal) replaces the request's scheme and authority.
/// `None` when the request has no usable scheme or authority.
pub fn request_uri(
    base: Option<&str>,
    scheme: Option<&str>,
    authority: Option<&str>,
    normal_path: &str,
) -> Option<String> {
    if let Some(base) = base {
        return Some(format!("{base}{normal_path}"));
    }
    let scheme = scheme?.to_ascii_lowercase();
    let authority = normal_authority(&scheme, authority?)?;
    Some(format!("{scheme}://{authority}{normal_path}"))
}

/// `htu` in normal form, or `None` when it is not an absolute http(s) URI without query and
/// fragment.
pub fn normal_htu(htu: &str) -> Option<String> {
    if htu.contains(['?', '#']) {
        return None;
    }
    let (scheme, rest) = htu.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let authority = normal_authority(&scheme, authority)?;
    let path = if path.is_empty() { "/" } else { path };
    let path = normalise(path).ok()?.path;
    Some(format!("{scheme}://{authority}{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equivalent_uris_compare_equal() {
        let request = request_uri(None, Some("https"), Some("API.example.com:443"), "/a/b");
        assert_eq!(request.as_deref(), Some("https://api.example.com/a/b"));
        for htu in [
            "https://api.example.com/a/b",
            "HTTPS://Api.Example.COM/a/b",
            "https://api.example.com:443/a/b",
            "https://api.example.com/a/./c/../b",
            "https://api.example.com/%61/b",
            "https://api.example.com//a/b",
        ] {
            assert_eq!(normal_htu(htu), request, "{htu}");
        }
        assert_eq!(normal_htu("http://h").as_deref(), Some("http://h/"));
    }

    #[test]
    fn other_uris_differ_or_are_refused() {
        let request = request_uri(None, Some("http"), Some("h:8080"), "/a");
        for htu in [
            "https://h:8080/a",
            "http://h/a",
            "http://h:8080/A",
            "http://g:8080/a",
            "http://h:8080/a/",
        ] {
            assert_ne!(normal_htu(htu), request, "{htu}");
        }
        for htu in [
            "http://h:8080/a?x=1",
            "http://h:8080/a#f",
            "/a",
            "ftp://h/a",
            "http://u@h:8080/a",
            "http://h:8080/a%2Fb",
        ] {
            assert_eq!(normal_htu(htu), None, "{htu}");
        }
    }

    /// `proof::same_uri` takes an `htu` equal to the request's URI without normalising it: that
    /// is only right if a URI in normal form is its own normal form.
    #[test]
    fn a_request_uri_is_its_own_normal_form() {
        let mut checked = 0;
        for (scheme, authority, raw_path) in [
            ("https", "API.example.com:443", "/a/b"),
            ("HTTP", "h:8080", "/a/./b/../c"),
            ("http", "h:80", "/%61%62/%3A/x"),
            ("https", "[::1]:8443", "//a///b/"),
            ("http", "127.0.0.1:00080", "/"),
            ("https", "h", "/a;b"),
            ("http", "h:", "/~u/%7e/%41"),
        ] {
            let Ok(path) = normalise(raw_path) else {
                continue;
            };
            let uri = request_uri(None, Some(scheme), Some(authority), &path.path);
            let Some(uri) = uri else {
                panic!("no URI for {scheme} {authority} {raw_path}")
            };
            assert_eq!(normal_htu(&uri).as_deref(), Some(uri.as_str()), "{uri}");
            checked += 1;
        }
        assert!(
            checked >= 6,
            "only {checked} paths were normal enough to check"
        );
    }

    #[test]
    fn a_configured_base_replaces_scheme_and_authority() {
        assert_eq!(
            request_uri(
                Some("https://api.example.com"),
                Some("http"),
                Some("10.0.0.1:8080"),
                "/x"
            )
            .as_deref(),
            Some("https://api.example.com/x")
        );
        assert_eq!(request_uri(None, Some("http"), None, "/x"), None);
    }
}
