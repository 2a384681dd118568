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
