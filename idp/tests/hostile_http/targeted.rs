//! What schemathesis does not send, sent raw to the live IDP: wrong methods and content types,
//! repeated and oversized parameters, invalid UTF-8 in forms, queries and credentials, bodies
//! and heads over the limits. Every answer is checked for its endpoint's error shape.

use super::live::{Answer, DEMO, GATEWAY, LiveIdp, basic};

/// The default limits (`[http]` in docs/idp.md, "Request limits").
pub const MAX_BODY: usize = 64 * 1024;
pub const MAX_HEAD: usize = 16 * 1024;
pub const MAX_HEADERS: usize = 64;

const JSON_PATHS: &[&str] = &[
    "/oauth2/token",
    "/oauth2/revoke",
    "/oauth2/introspect",
    "/oauth2/revocations",
    "/.well-known/jwks.json",
    "/.well-known/openid-configuration",
    "/.well-known/oauth-authorization-server",
    "/healthz",
    "/metrics",
];
const PAGE_PATHS: &[&str] = &["/oauth2/authorise", "/oauth2/authorize", "/oauth2/logout"];
const USERINFO: &str = "/oauth2/userinfo";

/// RFC 6749 §5.2: a JSON object with a known `error` and an `error_description` of allowed
/// characters.
pub fn assert_oauth_error(a: &Answer, status: u16, code: &str, what: &str) {
    assert_eq!(a.status, status, "{what}: {a:?}");
    assert!(
        a.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{what}: {a:?}"
    );
    let body = a.json();
    assert_eq!(body["error"], code, "{what}: {body}");
    let description = body["error_description"].as_str().unwrap_or("");
    assert!(
        description
            .chars()
            .all(|c| (' '..='~').contains(&c) && c != '"' && c != '\\'),
        "{what}: error_description {description:?}"
    );
    assert_eq!(a.header("cache-control"), Some("no-store"), "{what}");
}

/// An HTML error page of a browser endpoint.
pub fn assert_page(a: &Answer, status: u16, what: &str) {
    assert_eq!(a.status, status, "{what}: {a:?}");
    assert!(
        a.header("content-type")
            .is_some_and(|c| c.starts_with("text/html")),
        "{what}: {a:?}"
    );
}

/// RFC 6750 §3: no body, the error in `WWW-Authenticate`.
pub fn assert_challenge(a: &Answer, status: u16, what: &str) {
    assert_eq!(a.status, status, "{what}: {a:?}");
    let challenge = a.header("www-authenticate").unwrap_or("");
    assert!(
        challenge.starts_with("Bearer realm=\"userinfo\", error=\"invalid_request\""),
        "{what}: {challenge:?}"
    );
    assert!(a.body.is_empty(), "{what}");
}

/// The refusal of `path` with `status` in its family's shape.
fn assert_refused(a: &Answer, path: &str, status: u16, what: &str) {
    if PAGE_PATHS.contains(&path) {
        assert_page(a, status, what);
    } else if path == USERINFO {
        assert_challenge(a, status, what);
    } else {
        assert_oauth_error(a, status, "invalid_request", what);
    }
}

fn request(method: &str, target: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut r = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (n, v) in headers {
        r.push_str(&format!("{n}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        r.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    r.push_str("\r\n");
    let mut bytes = r.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn form(path: &str, auth: Option<(&str, &str)>, body: &[u8]) -> Vec<u8> {
    let mut headers = vec![(
        "Content-Type",
        "application/x-www-form-urlencoded".to_owned(),
    )];
    if let Some(c) = auth {
        headers.push(("Authorization", basic(c)));
    }
    request("POST", path, &headers, body)
}

pub fn wrong_methods(idp: &LiveIdp) -> usize {
    let mut sent = 0;
    for path in JSON_PATHS.iter().chain(PAGE_PATHS).chain([&USERINFO]) {
        for method in ["PUT", "DELETE", "PATCH", "TRACE", "OPTIONS", "CONNECTX"] {
            let a = idp.send(&request(method, path, &[], b""));
            assert_refused(&a, path, 405, &format!("{method} {path}"));
            assert!(a.header("allow").is_some(), "{method} {path}: Allow");
            sent += 1;
        }
    }
    // GET where only POST is served, and the other way round
    for path in ["/oauth2/token", "/oauth2/revoke", "/oauth2/introspect"] {
        let a = idp.send(&request("GET", path, &[], b""));
        assert_refused(&a, path, 405, &format!("GET {path}"));
        assert_eq!(a.header("allow"), Some("POST"));
        sent += 1;
    }
    let a = idp.send(&form("/oauth2/revocations", Some(GATEWAY), b"since=0"));
    assert_refused(&a, "/oauth2/revocations", 405, "POST feed");
    sent + 1
}

pub fn wrong_content_types(idp: &LiveIdp) -> usize {
    let mut sent = 0;
    let types = [
        None,
        Some("application/json"),
        Some("text/plain"),
        Some("multipart/form-data; boundary=x"),
        Some("application/x-www-form-urlencodedx"),
        Some("\u{1}"),
    ];
    for path in ["/oauth2/token", "/oauth2/revoke", "/oauth2/introspect"] {
        for t in types {
            let mut headers = vec![("Authorization", basic(DEMO))];
            if let Some(t) = t {
                headers.push(("Content-Type", t.to_owned()));
            }
            let a = idp.send(&request(
                "POST",
                path,
                &headers,
                b"{\"grant_type\":\"client_credentials\",\"token\":\"x\"}",
            ));
            if t == Some("\u{1}") {
                // A control character in a header value is malformed HTTP: the parser refuses it.
                assert_eq!(a.status, 400, "{path} {t:?}");
            } else {
                assert_oauth_error(&a, 400, "invalid_request", &format!("{path} {t:?}"));
            }
            sent += 1;
        }
    }
    for path in PAGE_PATHS {
        let a = idp.send(&request(
            "POST",
            path,
            &[("Content-Type", "application/json".into())],
            b"{}",
        ));
        assert_page(&a, 400, &format!("{path} json"));
        sent += 1;
    }
    sent
}

pub fn repeated_parameters(idp: &LiveIdp) -> usize {
    let body = b"grant_type=client_credentials&grant_type=client_credentials";
    let a = idp.send(&form("/oauth2/token", Some(DEMO), body));
    assert_oauth_error(&a, 400, "invalid_request", "repeated grant_type");
    let a = idp.send(&form("/oauth2/token", None, b"grant_type=client_credentials&client_id=demo-client&client_id=demo-client&client_secret=x"));
    assert_oauth_error(&a, 400, "invalid_request", "repeated client_id");
    // a repeated name that is not printable ASCII is cleaned in the description
    let a = idp.send(&form(
        "/oauth2/revoke",
        Some(DEMO),
        b"token=a&token=b&%22%5C%E2%98%83=1&%22%5C%E2%98%83=2",
    ));
    assert_oauth_error(&a, 400, "invalid_request", "repeated odd names");
    for q in ["since=1&since=2", "wait=0&wait=0", "since=0&x=1"] {
        let a = idp.send(&request(
            "GET",
            &format!("/oauth2/revocations?{q}"),
            &[("Authorization", basic(GATEWAY))],
            b"",
        ));
        assert_oauth_error(&a, 400, "invalid_request", q);
    }
    let a = idp.send(&request(
        "GET",
        "/oauth2/authorise?response_type=code&client_id=demo-client&client_id=demo-client",
        &[],
        b"",
    ));
    assert_page(&a, 400, "repeated client_id at authorise");
    let a = idp.send(&request(
        "GET",
        "/oauth2/logout?client_id=a&client_id=b",
        &[],
        b"",
    ));
    assert_page(&a, 400, "repeated client_id at logout");
    let a = idp.send(&request(
        "GET",
        USERINFO,
        &[
            ("Authorization", "Bearer a".into()),
            ("Authorization", "Bearer b".into()),
        ],
        b"",
    ));
    assert_challenge(&a, 400, "two Authorization headers at userinfo");
    9
}

pub fn oversized_parameters(idp: &LiveIdp) -> usize {
    let big = "a".repeat(MAX_BODY - 200);
    let a = idp.send(&form(
        "/oauth2/token",
        Some(DEMO),
        format!("grant_type=client_credentials&scope={big}").as_bytes(),
    ));
    assert_oauth_error(&a, 400, "invalid_scope", "a huge scope");
    let a = idp.send(&form(
        "/oauth2/introspect",
        Some(GATEWAY),
        format!("token={big}").as_bytes(),
    ));
    assert_eq!((a.status, a.json()["active"].as_bool()), (200, Some(false)));
    let a = idp.send(&form(
        "/oauth2/token",
        None,
        format!("grant_type=client_credentials&client_id={big}").as_bytes(),
    ));
    assert_oauth_error(&a, 401, "invalid_client", "a huge client_id");
    let long = "b".repeat(5000);
    let a = idp.send(&request(
        "GET",
        &format!("/oauth2/authorise?client_id=demo-client&state={long}"),
        &[],
        b"",
    ));
    assert_page(&a, 400, "a 5000-byte state");
    let many: String = (0..100).map(|i| format!("p{i}=1&")).collect();
    let a = idp.send(&form("/oauth2/logout", None, many.as_bytes()));
    assert_page(&a, 400, "100 parameters");
    let huge = "c".repeat(MAX_HEAD + 1);
    let a = idp.send(&request(
        "GET",
        &format!("/oauth2/authorize?state={huge}"),
        &[],
        b"",
    ));
    assert_page(&a, 431, "a query over max_header_bytes");
    let a = idp.send(&request(
        "GET",
        &format!("/oauth2/revocations?since={}", "9".repeat(40)),
        &[("Authorization", basic(GATEWAY))],
        b"",
    ));
    assert_oauth_error(&a, 400, "invalid_request", "a 40-digit cursor");
    let a = idp.send(&request(
        "GET",
        &format!("/oauth2/revocations?wait={}", "9".repeat(40)),
        &[("Authorization", basic(GATEWAY))],
        b"",
    ));
    assert_oauth_error(&a, 400, "invalid_request", "a 40-digit wait");
    8
}

pub fn invalid_utf8(idp: &LiveIdp) -> usize {
    let mut sent = 0;
    let bodies: [&[u8]; 4] = [
        b"grant_type=%FF%FE&scope=%C3%28",
        b"grant_type=\xff\xfe\x00&client_id=\xc3\x28",
        b"%ZZ=%&=&&==&grant_type=client_credentials",
        b"grant_type=password&username=%ED%A0%80&password=%F4%90%80%80",
    ];
    for body in bodies {
        for path in ["/oauth2/token", "/oauth2/revoke", "/oauth2/introspect"] {
            let a = idp.send(&form(path, Some(DEMO), body));
            assert!(
                [200, 400].contains(&a.status),
                "{path} {:?}: {a:?}",
                String::from_utf8_lossy(body)
            );
            if a.status == 400 {
                // any RFC 6749 code fits (invalid_request, unsupported_grant_type, ...)
                let code = a.json()["error"].as_str().unwrap().to_owned();
                assert_oauth_error(&a, 400, &code, path);
            }
            sent += 1;
        }
        for path in PAGE_PATHS {
            let a = idp.send(&form(path, None, body));
            assert!([200, 303, 400].contains(&a.status), "{path}: {a:?}");
            sent += 1;
        }
    }
    for target in [
        "/oauth2/authorise?client_id=%FF%FE&redirect_uri=%C3%28",
        "/oauth2/logout?id_token_hint=%80%80%80&state=%ZZ",
        "/oauth2/revocations?since=%FF",
        "/.well-known/jwks.json?%FF=%FE",
    ] {
        let auth = [("Authorization", basic(GATEWAY))];
        let a = idp.send(&request("GET", target, &auth, b""));
        assert!(a.status < 500, "{target}: {a:?}");
        if target.starts_with("/oauth2/revocations") {
            assert_oauth_error(&a, 400, "invalid_request", target);
        }
        sent += 1;
    }
    // raw non-ASCII bytes in the request target: the parser refuses them (400, no endpoint)
    let mut raw = b"GET /oauth2/authorise?state=".to_vec();
    raw.extend_from_slice(b"\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(idp.send(&raw).status, 400);
    // credentials that are not UTF-8, or not Base64, or have no colon
    for auth in ["Basic //79", "Basic !!!", "Basic ZGVtby1jbGllbnQ=", "Basic"] {
        let a = idp.send(&request(
            "POST",
            "/oauth2/token",
            &[
                ("Authorization", auth.into()),
                ("Content-Type", "application/x-www-form-urlencoded".into()),
            ],
            b"grant_type=client_credentials",
        ));
        assert_oauth_error(&a, 401, "invalid_client", auth);
        sent += 1;
    }
    // a header value with obs-text bytes (allowed by HTTP, not UTF-8)
    let mut raw = b"GET /oauth2/userinfo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer \xff\xfe\r\n\r\n".to_vec();
    let a = idp.send(&raw);
    assert_eq!(a.status, 400, "{a:?}");
    assert!(a.header("www-authenticate").is_some());
    raw.clear();
    sent + 2
}

pub fn huge_bodies(idp: &LiveIdp) -> usize {
    let mut sent = 0;
    for path in JSON_PATHS.iter().chain(PAGE_PATHS).chain([&USERINFO]) {
        let method = if ["/oauth2/token", "/oauth2/revoke", "/oauth2/introspect"].contains(path)
            || PAGE_PATHS.contains(path)
        {
            "POST"
        } else {
            "GET"
        };
        // declared too large: refused before the body is read
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\nabc",
            10 * 1024 * 1024
        );
        let a = idp.send(head.as_bytes());
        assert_refused(
            &a,
            path,
            413,
            &format!("{method} {path} Content-Length 10 MiB"),
        );
        // chunked, growing past the limit
        let mut chunked = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        .into_bytes();
        let chunk = vec![b'a'; 16 * 1024];
        for _ in 0..(MAX_BODY / chunk.len() + 2) {
            chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            chunked.extend_from_slice(&chunk);
            chunked.extend_from_slice(b"\r\n");
        }
        chunked.extend_from_slice(b"0\r\n\r\n");
        let a = idp.send(&chunked);
        assert_refused(&a, path, 413, &format!("{method} {path} chunked"));
        sent += 2;
    }
    // exactly at the limit: read, and answered by the endpoint
    let body = format!("grant_type=x&scope={}", "s".repeat(MAX_BODY - 19));
    assert_eq!(body.len(), MAX_BODY);
    let a = idp.send(&form("/oauth2/token", Some(DEMO), body.as_bytes()));
    assert_oauth_error(
        &a,
        400,
        "unsupported_grant_type",
        "a body of exactly the limit",
    );
    // a malformed chunked body: refused, in shape
    let a = idp.send(b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n");
    assert!(a.status == 400, "{a:?}");
    sent + 2
}

pub fn huge_headers(idp: &LiveIdp) -> usize {
    let mut sent = 0;
    for path in JSON_PATHS.iter().chain(PAGE_PATHS).chain([&USERINFO]) {
        // over max_header_bytes, within the parser's margin: refused in shape
        let a = idp.send(&request(
            "GET",
            path,
            &[("X-Big", "h".repeat(MAX_HEAD + 1))],
            b"",
        ));
        assert_refused(&a, path, 431, &format!("{path} one big header"));
        // more than max_headers fields
        let many: Vec<(&str, String)> = (0..=MAX_HEADERS)
            .map(|i| ("X-Many", i.to_string()))
            .collect();
        let a = idp.send(&request("GET", path, &many, b""));
        assert_refused(
            &a,
            path,
            431,
            &format!("{path} {} headers", MAX_HEADERS + 1),
        );
        sent += 2;
    }
    // far beyond: the parser refuses them itself (431, no body) and the server stays up
    let a = idp.send(&request(
        "GET",
        "/oauth2/token",
        &[("X-Huge", "h".repeat(1024 * 1024))],
        b"",
    ));
    assert_eq!(a.status, 431, "a 1 MiB header");
    let many: Vec<(&str, String)> = (0..1000).map(|i| ("X-Many", i.to_string())).collect();
    let a = idp.send(&request("GET", "/oauth2/token", &many, b""));
    assert_eq!(a.status, 431, "1000 headers");
    // a huge Authorization or DPoP header within the limit is just a bad credential
    let token = "e".repeat(MAX_HEAD - 1000);
    let a = idp.send(&request(
        "GET",
        USERINFO,
        &[("Authorization", format!("Bearer {token}"))],
        b"",
    ));
    assert_eq!(a.status, 401);
    let a = idp.send(&request(
        "POST",
        "/oauth2/token",
        &[
            ("Authorization", basic(DEMO)),
            ("Content-Type", "application/x-www-form-urlencoded".into()),
            ("DPoP", token.clone()),
            ("DPoP", "x".into()),
        ],
        b"grant_type=client_credentials",
    ));
    assert_oauth_error(&a, 400, "invalid_dpop_proof", "two DPoP headers");
    sent + 4
}

/// Methods nobody serves, each a new name: refused, and not one new metrics series each
/// (the latency histogram's `method` label took the raw method, so a client could grow the
/// IDP's memory and `/metrics` without bound).
pub fn invented_methods(idp: &LiveIdp) -> usize {
    let metrics = |idp: &LiveIdp| {
        let a = idp.send(&request("GET", "/metrics", &[], b""));
        assert_eq!(a.status, 200);
        String::from_utf8(a.body).unwrap()
    };
    for i in 0..50 {
        let a = idp.send(&request(&format!("X{i}HOSTILE"), "/oauth2/token", &[], b""));
        assert_refused(&a, "/oauth2/token", 405, "an invented method");
    }
    let text = metrics(idp);
    assert!(
        !text.contains("HOSTILE"),
        "invented methods became metric labels"
    );
    assert!(
        text.contains("method=\"other\",route=\"/oauth2/token\",status=\"405\""),
        "{text}"
    );
    51
}
