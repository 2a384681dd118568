//! The request path as rules see it, whatever Envoy's `normalize_path`, `merge_slashes` and
//! `path_with_escaped_slashes_action` say (issue 20, defect 6). RFC 3986 §6.2.2 normalisation:
//!
//! - percent-encoded unreserved characters (`A-Z a-z 0-9 - . _ ~`) are decoded, other escapes
//!   keep their bytes with uppercase hex (`%2e` is `.`, `%7e` is `~`, `%c3%a9` is `%C3%A9`);
//! - empty segments are merged (`//admin` is `/admin`);
//! - dot segments are removed (`/a/./b/../c` is `/a/c`; `..` never climbs above the root).
//!
//! What no normalisation can settle, because servers read it in different ways, is refused (400):
//! an encoded slash or backslash (`%2F`, `%5C`: one server sees a separator, another a
//! character), a literal backslash, a `;` (path parameters, which Tomcat, Jetty and Spring strip
//! before routing: `/admin;x/users`, `/..;/`), a malformed or control-character escape
//! (`%zz`, `%00`), control characters and a path that does not start with `/`.
//!
//! The query and fragment are kept as they are. The gateway forwards the normalised path, so the
//! upstream serves exactly the path the rules were checked against.

use std::borrow::Cow;

/// A request target split into its normalised path and the rest (`?query`, `#fragment`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalPath<'a> {
    /// The normalised path, starting with `/`, without query.
    pub path: Cow<'a, str>,
    /// Everything from the first `?` or `#` on (empty when there is none), unchanged.
    pub rest: &'a str,
    /// Whether `path` differs from the path the client sent.
    pub changed: bool,
}

impl NormalPath<'_> {
    /// The request target to forward: the normalised path and the query.
    pub fn target(&self) -> String {
        format!("{}{}", self.path, self.rest)
    }
}

/// Normalises the `:path` of a request, or says why it is ambiguous.
pub fn normalise(raw: &str) -> Result<NormalPath<'_>, &'static str> {
    let end = raw.find(['?', '#']).unwrap_or(raw.len());
    let (path, rest) = raw.split_at(end);
    if !path.starts_with('/') {
        return Err("the path does not start with '/'");
    }
    if is_normal(path) {
        // The common case costs a scan, no allocation.
        return Ok(NormalPath {
            path: Cow::Borrowed(path),
            rest,
            changed: false,
        });
    }
    let decoded = decode_unreserved(path)?;
    let normal = remove_dot_segments(&decoded);
    Ok(NormalPath {
        changed: normal != path,
        path: Cow::Owned(normal),
        rest,
    })
}

/// No escapes, no characters to refuse, no empty or dot segments.
fn is_normal(path: &str) -> bool {
    !path
        .bytes()
        .any(|b| matches!(b, b'%' | b'\\' | b';' | 0..=0x20 | 0x7f))
        && !path.contains("//")
        && !path.split('/').any(|s| s == "." || s == "..")
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes escaped unreserved characters, uppercases the others, refuses the ambiguous ones.
fn decode_unreserved(path: &str) -> Result<String, &'static str> {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'%' => {
                let (Some(hi), Some(lo)) = (
                    bytes.get(i + 1).copied().and_then(hex_value),
                    bytes.get(i + 2).copied().and_then(hex_value),
                ) else {
                    return Err("the path has a malformed percent-encoding");
                };
                let value = hi << 4 | lo;
                if is_unreserved(value) {
                    out.push(char::from(value));
                } else if matches!(value, b'/' | b'\\') {
                    return Err("the path has an encoded slash or backslash (%2F, %5C)");
                } else if value.is_ascii_control() {
                    return Err("the path has an encoded control character");
                } else {
                    out.push_str(&format!("%{value:02X}"));
                }
                i += 3;
            }
            b'\\' => return Err("the path has a backslash"),
            b';' => return Err("the path has a ';' (path parameters)"),
            _ if b.is_ascii_control() || b == b' ' => {
                return Err("the path has a space or control character");
            }
            _ => {
                // Copy the run of ordinary characters up to the next special byte (keeps any
                // non-ASCII UTF-8 text whole).
                let start = i;
                while i < bytes.len() && !matches!(bytes[i], b'%' | b'\\' | b';' | 0..=0x20 | 0x7f)
                {
                    i += 1;
                }
                out.push_str(&path[start..i]);
            }
        }
    }
    Ok(out)
}

/// Merges empty segments and removes `.` and `..` (RFC 3986 §5.2.4); a path that ended with `/`,
/// `/.` or `/..` keeps its trailing `/`.
fn remove_dot_segments(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    for segment in path.split('/').skip(1) {
        trailing_slash = false;
        match segment {
            "" | "." => trailing_slash = true,
            ".." => {
                segments.pop();
                trailing_slash = true;
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(path.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if trailing_slash || segments.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(raw: &str) -> Result<String, &'static str> {
        normalise(raw).map(|n| n.target())
    }

    #[test]
    fn ordinary_paths_are_unchanged() {
        for p in [
            "/",
            "/api/hello",
            "/api/admin/",
            "/a-b_c.d~e/x",
            "/api?x=1&y=/../z",
            "/caf\u{e9}",
            "/a%20b",
            "/a.b/..c/c..",
        ] {
            let n = normalise(p).unwrap();
            assert_eq!(n.target(), p);
            assert!(!n.changed, "{p}");
        }
    }

    #[test]
    fn dot_segments_are_removed() {
        assert_eq!(norm("/admin/../x").unwrap(), "/x");
        assert_eq!(norm("/public/../admin/users").unwrap(), "/admin/users");
        assert_eq!(norm("/admin/.").unwrap(), "/admin/");
        assert_eq!(norm("/admin/./users").unwrap(), "/admin/users");
        assert_eq!(norm("/admin/..").unwrap(), "/");
        assert_eq!(norm("/../../admin").unwrap(), "/admin");
        assert_eq!(norm("/a/b/../../admin/x?q=1").unwrap(), "/admin/x?q=1");
    }

    #[test]
    fn slashes_are_merged() {
        assert_eq!(norm("//admin").unwrap(), "/admin");
        assert_eq!(norm("/api//admin///users").unwrap(), "/api/admin/users");
        assert_eq!(norm("/admin//").unwrap(), "/admin/");
        assert!(normalise("//admin").unwrap().changed);
    }

    #[test]
    fn escaped_unreserved_characters_are_decoded_before_dot_removal() {
        assert_eq!(norm("/%61dmin/x").unwrap(), "/admin/x");
        assert_eq!(norm("/public/%2e%2e/admin").unwrap(), "/admin");
        assert_eq!(norm("/public/%2E%2E/admin").unwrap(), "/admin");
        assert_eq!(norm("/public/.%2e/admin").unwrap(), "/admin");
        assert_eq!(norm("/admin/%2e").unwrap(), "/admin/");
        assert_eq!(norm("/%7euser").unwrap(), "/~user");
        // other escapes keep their bytes, hex in uppercase
        assert_eq!(norm("/a%c3%a9").unwrap(), "/a%C3%A9");
        assert_eq!(norm("/a%2520b").unwrap(), "/a%2520b");
    }

    #[test]
    fn ambiguous_paths_are_refused() {
        for bad in [
            "/api%2Fadmin/users",
            "/api%2fadmin",
            "/public/..%2Fadmin",
            "/api%5Cadmin",
            "/api\\admin",
            "/admin;x/users",
            "/public/..;/admin",
            "/a%zz",
            "/a%4",
            "/a%",
            "/a%00b",
            "/a%0a",
            "/a b",
            "*",
            "admin/x",
            "",
        ] {
            assert!(normalise(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_query_is_left_alone() {
        let n = normalise("//x?a=%2F;b\\#f").unwrap();
        assert_eq!(n.path, "/x");
        assert_eq!(n.rest, "?a=%2F;b\\#f");
    }
}
