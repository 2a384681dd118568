//! The configuration error every part of the configuration reports, and the small checks they
//! share. A leaf: it uses nothing else of the crate.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid plugin configuration: {field}: {message}")]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

pub(crate) fn err(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.into(),
        message: message.into(),
    }
}

pub(crate) fn validate_path(path: &str) -> Result<(), &'static str> {
    if !path.starts_with('/') {
        return Err("must start with '/'");
    }
    if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces or control characters");
    }
    Ok(())
}

pub(crate) fn validate_header_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("header name is empty");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return Err("header names must be lowercase letters, digits, '-' or '_'");
    }
    if matches!(
        name,
        "authorization" | "host" | "cookie" | "content-length" | "transfer-encoding"
    ) {
        return Err("this header cannot carry claims");
    }
    Ok(())
}

/// The checks above as JSON Schema patterns (ECMA-262 syntax, `\uXXXX` escapes), for the schema
/// of the configuration (`tools/config-schema`). Rust's `char::is_whitespace` is Unicode's
/// White_Space and `char::is_control` the C0 and C1 controls; the classes spell both out.
#[cfg(feature = "schema")]
pub(crate) mod patterns {
    /// [`super::validate_path`]: starts with `/`, no whitespace or control characters.
    pub const PATH: &str =
        r"^/[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$";
    /// A path as above without a query (`?`).
    pub const PATH_WITHOUT_QUERY: &str =
        r"^/[^?\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$";
    /// [`super::validate_header_name`], the character rule (the reserved names are listed apart).
    pub const HEADER_NAME: &str = r"^[a-z0-9_-]+$";
    /// Non-empty, no whitespace or control characters (an authority, a cluster name of `origins`).
    pub const NO_SPACES: &str =
        r"^[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$";
    /// No control characters (secrets, the claim header separator).
    pub const NO_CONTROLS: &str = r"^[^\u0000-\u001f\u007f-\u009f]*$";
    /// Non-empty printable text without `"` or `\` (the realm).
    pub const REALM: &str = r#"^[^"\\\u0000-\u001f\u007f-\u009f]+$"#;
    /// Non-empty, no surrounding whitespace (an issuer, a client id of back-channel logout).
    pub const TRIMMED: &str = r"^[^\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]([\s\S]*[^\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?$";
    /// A client id: non-empty, without `:` (client_secret_basic).
    pub const CLIENT_ID: &str = r"^[^:]+$";
    /// A query parameter or cookie name carrying a token.
    pub const TOKEN_PARAMETER: &str = r"^[A-Za-z0-9._-]+$";
    /// A header carrying a token (any case: it is lowercased).
    pub const TOKEN_HEADER: &str = r"^[A-Za-z0-9_-]+$";
    /// An uppercase HTTP method.
    pub const METHOD: &str = r"^[A-Z]+$";
    /// One scope token.
    pub const SCOPE: &str = r"^[^ ]+$";
}
