//! A rule's regular expression is run only on paths that start with its literal prefix: the
//! prefix must never change which paths match.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use filter::config::literal_prefix;

#[test]
fn the_literal_prefix_is_what_every_match_starts_with() {
    for (regex, prefix) in [
        ("^/api/clients/[^/]+/private$", "/api/clients/"),
        ("/api/clients/[^/]+/private", "/api/clients/"),
        ("/v1/items?", "/v1/item"),
        ("/v1/items*/x", "/v1/item"),
        ("/v1/items{2}", "/v1/item"),
        ("/v1/a+", "/v1/a"),
        ("/a/.*", "/a/"),
        ("/a|/b", ""),
        ("(/a|/b)/x", ""),
        ("(?i)/api/x", ""),
        ("\\d+/x", ""),
        ("[a-z]+", ""),
        ("", ""),
    ] {
        assert_eq!(literal_prefix(regex), prefix, "{regex}");
    }
}

#[test]
fn the_prefix_never_changes_which_paths_match() {
    let regexes = [
        "^/api/clients/[^/]+/private$",
        "/v1/items?",
        "/v1/items*/x",
        "/a|/b",
        "(?i)/API/x",
        "/x/.*/y",
        "/v[0-9]+/(users|groups)/[^/]+",
    ];
    let paths = [
        "/api/clients/c1/private",
        "/api/clients//private",
        "/api/hello",
        "/v1/item",
        "/v1/items",
        "/v1/itemsss/x",
        "/v1/ite",
        "/a",
        "/b",
        "/api/x",
        "/API/x",
        "/x/1/2/y",
        "/v2/users/alice",
        "/v/users/alice",
        "/",
        "",
    ];
    for r in regexes {
        let re = regex_lite::Regex::new(&format!("^(?:{r})$")).unwrap();
        let prefix = literal_prefix(r);
        for path in paths {
            assert_eq!(
                path.starts_with(&prefix) && re.is_match(path),
                re.is_match(path),
                "{r} on {path:?} (prefix {prefix:?})"
            );
        }
    }
}
