//! The IDP's cookies: always `HttpOnly` and `SameSite=Lax`, `Secure` when the issuer is https.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;

/// The value of cookie `name` in the request, if present once or more (the first wins).
pub fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value)
}

/// How long a cookie lives.
#[derive(Debug, Clone, Copy)]
pub enum Lifetime {
    /// Until the browser closes.
    Browser,
    Seconds(i64),
    /// Deletes the cookie.
    Expired,
}

pub fn set(res: &mut Response, issuer: &str, name: &str, value: &str, lifetime: Lifetime) {
    let secure = if issuer.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let max_age = match lifetime {
        Lifetime::Browser => String::new(),
        Lifetime::Seconds(s) => format!("; Max-Age={s}"),
        Lifetime::Expired => "; Max-Age=0".to_owned(),
    };
    let cookie = format!("{name}={value}; Path=/oauth2; HttpOnly; SameSite=Lax{secure}{max_age}");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_one_cookie_among_several() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; idp_csrf=xyz"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(get(&h, "idp_csrf"), Some("xyz"));
        assert_eq!(get(&h, "b"), Some("2"));
        assert_eq!(get(&h, "idp"), None);
    }
}
