//! Registered redirect URIs, checked when the configuration is loaded.

/// A registered redirect URI (RFC 6749 §3.1.2, RFC 9700 §2.1): absolute, no fragment, https or
/// loopback http, or a private-use scheme of a native app (RFC 8252 §7.1, with a dot in it).
pub(super) fn check_redirect_uri(uri: &str) -> Result<(), String> {
    let parsed =
        url::Url::parse(uri).map_err(|e| format!("{uri:?} is not an absolute URL: {e}"))?;
    if parsed.fragment().is_some() {
        return Err(format!("{uri:?} must not have a fragment"));
    }
    match parsed.scheme() {
        "https" => Ok(()),
        "http" => match parsed.host() {
            Some(url::Host::Ipv4(ip)) if ip.is_loopback() => Ok(()),
            Some(url::Host::Ipv6(ip)) if ip.is_loopback() => Ok(()),
            Some(url::Host::Domain("localhost")) => Ok(()),
            _ => Err(format!("{uri:?}: http is allowed for loopback hosts only")),
        },
        scheme if scheme.contains('.') => Ok(()),
        _ => Err(format!(
            "{uri:?}: the scheme must be https, http on loopback, or a reverse-domain private-use scheme"
        )),
    }
}
