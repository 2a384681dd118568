//! The `[http]` section: how large a request may be, and how long its body may take. Refused
//! requests get 413 (body), 431 (headers) or 408 (a slow body) in the endpoint's error shape
//! (the http layer's `limits`).

use super::{Overrides, SettingsError, err};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttpLimits {
    /// Largest request body, in bytes (1024..=16 MiB, default 64 KiB).
    pub max_body_bytes: Option<u64>,
    /// Largest sum of the request's header names and values, in bytes (1024..=1 MiB, default
    /// 16 KiB).
    pub max_header_bytes: Option<u64>,
    /// Most request header fields (8..=1000, default 64).
    pub max_headers: Option<u64>,
    /// How long a request body may take to arrive, in seconds (1..=300, default 30).
    pub body_read_timeout_seconds: Option<u64>,
}

/// Request size limits, the same for every endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    pub max_body_bytes: usize,
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub body_read_timeout: std::time::Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_body_bytes: 64 * 1024,
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            body_read_timeout: std::time::Duration::from_secs(30),
        }
    }
}

fn bounded(
    field: &str,
    value: Option<u64>,
    range: std::ops::RangeInclusive<u64>,
    default: usize,
) -> Result<usize, SettingsError> {
    let Some(v) = value else {
        return Ok(default);
    };
    if !range.contains(&v) {
        return Err(err(
            format!("http.{field}"),
            format!("must be between {} and {}", range.start(), range.end()),
        ));
    }
    usize::try_from(v).map_err(|_| err(format!("http.{field}"), "too large"))
}

/// The limits of the file's `[http]` section (if any) with the command line's and the
/// environment's overrides.
pub fn http_limits(
    raw: Option<RawHttpLimits>,
    overrides: &Overrides,
) -> Result<HttpLimits, SettingsError> {
    let d = HttpLimits::default();
    let raw = raw.unwrap_or(RawHttpLimits {
        max_body_bytes: None,
        max_header_bytes: None,
        max_headers: None,
        body_read_timeout_seconds: None,
    });
    Ok(HttpLimits {
        max_body_bytes: bounded(
            "max_body_bytes",
            overrides.max_body_bytes.or(raw.max_body_bytes),
            1024..=16 * 1024 * 1024,
            d.max_body_bytes,
        )?,
        max_header_bytes: bounded(
            "max_header_bytes",
            overrides.max_header_bytes.or(raw.max_header_bytes),
            1024..=1024 * 1024,
            d.max_header_bytes,
        )?,
        max_headers: bounded(
            "max_headers",
            overrides.max_headers.or(raw.max_headers),
            8..=1000,
            d.max_headers,
        )?,
        body_read_timeout: match raw.body_read_timeout_seconds {
            None => d.body_read_timeout,
            Some(s) if (1..=300).contains(&s) => std::time::Duration::from_secs(s),
            Some(_) => {
                return Err(err(
                    "http.body_read_timeout_seconds",
                    "must be between 1 and 300",
                ));
            }
        },
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::settings::RawSettings;

    fn limits(text: &str, overrides: &Overrides) -> Result<HttpLimits, SettingsError> {
        RawSettings::from_toml(text)?
            .validate(overrides)
            .map(|s| s.http)
    }

    #[test]
    fn defaults_file_and_overrides() {
        let none = Overrides::default();
        assert_eq!(limits("", &none).unwrap(), HttpLimits::default());
        let file = "[http]\nmax_body_bytes = 2048\nmax_header_bytes = 4096\nmax_headers = 10\nbody_read_timeout_seconds = 5";
        assert_eq!(
            limits(file, &none).unwrap(),
            HttpLimits {
                max_body_bytes: 2048,
                max_header_bytes: 4096,
                max_headers: 10,
                body_read_timeout: std::time::Duration::from_secs(5),
            }
        );
        let o = Overrides {
            max_body_bytes: Some(4096),
            ..Overrides::default()
        };
        assert_eq!(limits(file, &o).unwrap().max_body_bytes, 4096);
        assert_eq!(limits(file, &o).unwrap().max_headers, 10);
    }

    #[test]
    fn out_of_range_values_name_the_field() {
        let none = Overrides::default();
        for (text, field) in [
            ("[http]\nmax_body_bytes = 0", "http.max_body_bytes"),
            ("[http]\nmax_body_bytes = 100000000", "http.max_body_bytes"),
            ("[http]\nmax_header_bytes = 10", "http.max_header_bytes"),
            ("[http]\nmax_headers = 1001", "http.max_headers"),
            (
                "[http]\nbody_read_timeout_seconds = 0",
                "http.body_read_timeout_seconds",
            ),
        ] {
            assert_eq!(limits(text, &none).unwrap_err().field, field, "{text}");
        }
        assert_eq!(
            limits("[http]\nmax_body = 1", &none).unwrap_err().field,
            "file"
        );
    }
}
