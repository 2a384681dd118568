//! A provider's DPoP settings (RFC 9449): whether proof-of-possession is off, accepted or required,
//! which proof algorithms are accepted, the proof's time window and, behind a proxy that changes
//! the scheme or host, the public origin proofs name in `htu`.

use super::error::{ConfigError, err};
use crate::jose::algorithm::Algorithm;
use serde::Deserialize;

/// How long after its `iat` a proof is accepted, by default (seconds).
pub const DEFAULT_PROOF_MAX_AGE_SECONDS: u64 = 60;
/// How far a proof's `iat` may lie in the future, and how much clock skew is forgiven on the
/// other side too, by default (seconds).
pub const DEFAULT_PROOF_LEEWAY_SECONDS: u64 = 10;
/// Replay-cache entries per Envoy, by default: at the default window (80 s) ≈ 1,600 DPoP
/// requests a second.
pub const DEFAULT_REPLAY_CACHE_ENTRIES: usize = 131_072;

/// `dpop` of a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum DpopMode {
    /// The `DPoP` scheme is refused; so is every DPoP-bound token (it cannot be proven).
    Disabled,
    /// Bearer tokens as `Bearer`, DPoP-bound tokens as `DPoP` with a proof.
    Allowed,
    /// Only DPoP-bound tokens, as `DPoP` with a proof.
    Required,
}

/// A provider's validated DPoP settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpopSettings {
    pub mode: DpopMode,
    pub algorithms: Vec<Algorithm>,
    pub max_age_seconds: u64,
    pub leeway_seconds: u64,
    /// `scheme://authority` proofs name instead of the request's `:scheme` and `:authority`,
    /// normalised (lowercase, no default port).
    pub htu_base: Option<String>,
}

impl DpopSettings {
    pub fn disabled() -> Self {
        DpopSettings {
            mode: DpopMode::Disabled,
            algorithms: Vec::new(),
            max_age_seconds: DEFAULT_PROOF_MAX_AGE_SECONDS,
            leeway_seconds: DEFAULT_PROOF_LEEWAY_SECONDS,
            htu_base: None,
        }
    }

    /// Whether the `DPoP` scheme is accepted at all.
    pub fn offered(&self) -> bool {
        self.mode != DpopMode::Disabled
    }
}

/// The raw DPoP keys of a provider, as the JSON has them.
#[derive(Debug, Default)]
pub struct RawDpop {
    pub mode: Option<DpopMode>,
    pub algorithms: Option<Vec<String>>,
    pub max_age_seconds: Option<u64>,
    pub leeway_seconds: Option<u64>,
    pub htu_base: Option<String>,
}

impl RawDpop {
    pub fn validate(self, at: &str) -> Result<DpopSettings, ConfigError> {
        let f = |name: &str| format!("{at}.{name}");
        let mode = self.mode.unwrap_or(DpopMode::Disabled);
        let algorithms = match self.algorithms {
            None => Algorithm::ALL.to_vec(),
            Some(list) if list.is_empty() => {
                return Err(err(
                    f("dpop_algorithms"),
                    "at least one algorithm is required",
                ));
            }
            Some(list) => {
                let mut out = Vec::new();
                for (j, a) in list.iter().enumerate() {
                    let alg = a.parse::<Algorithm>().map_err(|_| {
                        err(
                            format!("{at}.dpop_algorithms[{j}]"),
                            format!(
                                "unsupported proof algorithm {a:?} (supported: ES256, RS256, PS256, EdDSA; never none or HS*)"
                            ),
                        )
                    })?;
                    if !out.contains(&alg) {
                        out.push(alg);
                    }
                }
                out
            }
        };
        let max_age_seconds = self
            .max_age_seconds
            .unwrap_or(DEFAULT_PROOF_MAX_AGE_SECONDS);
        if !(1..=600).contains(&max_age_seconds) {
            return Err(err(
                f("dpop_proof_max_age_seconds"),
                "must be between 1 and 600",
            ));
        }
        let leeway_seconds = self.leeway_seconds.unwrap_or(DEFAULT_PROOF_LEEWAY_SECONDS);
        if leeway_seconds > 300 {
            return Err(err(f("dpop_proof_leeway_seconds"), "must be at most 300"));
        }
        let htu_base = self
            .htu_base
            .map(|base| {
                normal_origin(&base).ok_or_else(|| {
                    err(
                        f("dpop_htu_base"),
                        "must be an origin: http:// or https://, a host, an optional port, nothing else",
                    )
                })
            })
            .transpose()?;
        Ok(DpopSettings {
            mode,
            algorithms,
            max_age_seconds,
            leeway_seconds,
            htu_base,
        })
    }
}

/// `scheme://authority` in normal form (RFC 3986 §6.2.2–6.2.3: lowercase scheme and host, no
/// default port), or `None` when `origin` is not exactly an http(s) origin (no user info, path,
/// query or fragment; a trailing `/` is allowed).
pub fn normal_origin(origin: &str) -> Option<String> {
    let (scheme, rest) = origin.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    Some(format!(
        "{scheme}://{}",
        normal_authority(&scheme, authority)?
    ))
}

/// An authority (`host[:port]`) in normal form for `scheme` (`http` or `https`): lowercase host,
/// the default port dropped. `None` for anything else (user info, a path, an empty host, a port
/// that is not a number).
pub fn normal_authority(scheme: &str, authority: &str) -> Option<String> {
    let default_port = match scheme {
        "http" => "80",
        "https" => "443",
        _ => return None,
    };
    if authority.is_empty()
        || authority
            .bytes()
            .any(|b| matches!(b, b'/' | b'?' | b'#' | b'@' | b'\\') || b <= b' ' || b == 0x7f)
    {
        return None;
    }
    // The port follows the last ':' outside an IPv6 literal ("[::1]:8080").
    let host_end = authority.rfind(']').map_or(0, |i| i + 1);
    let (host, port) = match authority[host_end..].rfind(':') {
        Some(i) => authority.split_at(host_end + i),
        None => (authority, ""),
    };
    let port = port.strip_prefix(':').unwrap_or(port);
    if host.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let host = host.to_ascii_lowercase();
    // An empty port (`host:`) is the default port (RFC 3986 §6.2.3); leading zeros are dropped.
    if port.is_empty() || port.trim_start_matches('0') == default_port {
        return Some(host);
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => None,
        Ok(n) => Some(format!("{host}:{n}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalised() {
        assert_eq!(
            normal_origin("HTTPS://API.Example.com:443/").as_deref(),
            Some("https://api.example.com")
        );
        assert_eq!(normal_origin("http://h:80").as_deref(), Some("http://h"));
        assert_eq!(normal_origin("http://h:").as_deref(), Some("http://h"));
        assert_eq!(
            normal_origin("http://h:8080").as_deref(),
            Some("http://h:8080")
        );
        assert_eq!(
            normal_origin("https://[::1]:8443").as_deref(),
            Some("https://[::1]:8443")
        );
        assert_eq!(
            normal_origin("https://[::1]").as_deref(),
            Some("https://[::1]")
        );
        for bad in [
            "ftp://h",
            "https://",
            "https://u@h",
            "https://h/p",
            "https://h?q",
            "h",
            "https://h:x",
            "https://h:0",
        ] {
            assert_eq!(normal_origin(bad), None, "{bad}");
        }
    }
}
