//! A user agent with a cookie jar over the router, the clients and users, and flow helpers.

use crate::common::{Resp, basic, form, send};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use http_body_util::BodyExt;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use tower::ServiceExt;

pub const WEB: (&str, &str) = ("web-app", "web-app-secret-0123456789abcdef0123");
pub const CB: &str = "http://127.0.0.1:8080/callback";
pub const SPA_CB: &str = "http://127.0.0.1:8080/spa";
pub const SIGNED_OUT: &str = "http://127.0.0.1:8080/signed-out";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

pub fn config() -> String {
    let h = |s: &str| hex::encode(Sha256::digest(s.as_bytes()));
    format!(
        r#"
[[clients]]
id = "web-app"
secret_sha256 = "{}"
scopes = ["openid", "profile", "email", "read", "write"]
audiences = ["demo-api"]
grant_types = ["authorization_code", "refresh_token"]
redirect_uris = ["{CB}"]
post_logout_redirect_uris = ["{SIGNED_OUT}"]
[[clients]]
id = "spa"
scopes = ["openid", "read"]
audiences = ["demo-api"]
grant_types = ["authorization_code", "implicit"]
redirect_uris = ["{SPA_CB}"]
skip_consent = true
[[clients]]
id = "gateway"
secret_sha256 = "{}"
audiences = ["idp"]
gateway = true
[[users]]
username = "alice"
password_argon2 = "{}"
name = "Alice Example"
email = "alice@example.com"
[[users]]
username = "bob"
password_argon2 = "{}"
"#,
        h(WEB.1),
        h(crate::common::GATEWAY.1),
        crate::common::alice_hash(),
        crate::common::alice_hash(),
    )
}

/// A user agent: a cookie jar over the router.
pub struct Browser {
    pub app: Router,
    pub jar: BTreeMap<String, String>,
    /// The CSRF token of the last form shown.
    pub form_token: Option<String>,
}

pub struct Page {
    pub status: StatusCode,
    pub location: Option<String>,
    pub body: String,
    pub headers: axum::http::HeaderMap,
}

impl Browser {
    pub async fn new(dir: &std::path::Path) -> Browser {
        let state = crate::common::state_with(&dir.join("db.sqlite"), &config()).await;
        Browser {
            app: idp::app(state),
            jar: BTreeMap::new(),
            form_token: None,
        }
    }

    pub fn cookie_header(&self) -> String {
        self.jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub async fn send(&mut self, mut req: Request<Body>) -> Page {
        if !self.jar.is_empty() {
            req.headers_mut()
                .insert(header::COOKIE, self.cookie_header().parse().unwrap());
        }
        let res = self.app.clone().oneshot(req).await.unwrap();
        let headers = res.headers().clone();
        for c in headers.get_all(header::SET_COOKIE) {
            let c = c.to_str().unwrap();
            assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax"), "{c}");
            let (pair, attrs) = c.split_once(';').unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_owned(), value.to_owned());
            }
        }
        let status = res.status();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&body);
        for field in ["name=\"login_csrf\" value=\"", "name=\"csrf\" value=\""] {
            if let Some(at) = text.find(field) {
                let rest = &text[at + field.len()..];
                self.form_token = Some(rest[..rest.find('"').unwrap()].to_owned());
            }
        }
        Page {
            status,
            location: headers
                .get(header::LOCATION)
                .map(|l| l.to_str().unwrap().to_owned()),
            body: String::from_utf8_lossy(&body).into_owned(),
            headers,
        }
    }

    pub async fn get(&mut self, path_and_query: &str) -> Page {
        self.send(Request::get(path_and_query).body(Body::empty()).unwrap())
            .await
    }

    pub async fn post(&mut self, path: &str, body: &str) -> Page {
        self.send(form(path, None, body)).await
    }

    /// A browser sharing the IDP, without cookies.
    pub fn fresh(&self) -> Browser {
        Browser {
            app: self.app.clone(),
            jar: BTreeMap::new(),
            form_token: None,
        }
    }

    pub fn csrf(&self) -> String {
        assert!(
            self.jar.contains_key("idp_csrf"),
            "the browser's CSRF cookie"
        );
        self.form_token.clone().expect("a form with a CSRF token")
    }
}

pub fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub fn web_request(extra: &str) -> String {
    format!(
        "response_type=code&client_id=web-app&redirect_uri={}&scope=openid+profile+email+read&state=st-1&nonce=n-1&code_challenge={CHALLENGE}&code_challenge_method=S256{extra}",
        enc(CB)
    )
}

pub fn query_of(url: &str) -> BTreeMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

pub fn fragment_of(url: &str) -> BTreeMap<String, String> {
    let u = url::Url::parse(url).unwrap();
    url::form_urlencoded::parse(u.fragment().unwrap().as_bytes())
        .into_owned()
        .collect()
}

pub fn claims(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

pub fn header_of(jwt: &str) -> Value {
    let part = jwt.split('.').next().unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

/// Signs in from the login page of `request` (which must be showing).
pub async fn sign_in(b: &mut Browser, request: &str, user: &str, password: &str) -> Page {
    let body = format!(
        "{request}&login_csrf={}&username={user}&password={}",
        b.csrf(),
        enc(password)
    );
    b.post("/oauth2/authorise", &body).await
}

pub async fn exchange(b: &Browser, code: &str) -> Resp {
    send(
        &b.app,
        form(
            "/oauth2/token",
            Some(basic(WEB)),
            &format!(
                "grant_type=authorization_code&code={code}&redirect_uri={}&code_verifier={VERIFIER}",
                enc(CB)
            ),
        ),
    )
    .await
}

pub async fn userinfo(b: &Browser, token: &str) -> Resp {
    let req = Request::get("/oauth2/userinfo")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    send(&b.app, req).await
}

/// Login and consent in one browser: a code, exchanged for tokens with an ID token.
pub async fn full_login(b: &mut Browser) -> Value {
    let request = web_request("");
    let page = b.get(&format!("/oauth2/authorise?{request}")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("name=\"login_csrf\""), "{}", page.body);
    assert_eq!(page.headers["x-frame-options"], "DENY");
    assert!(
        page.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    let page = sign_in(b, &request, "alice", "alice-password-123").await;
    assert_eq!(page.status, 200, "consent page");
    assert!(page.body.contains("Allow web-app"), "{}", page.body);
    assert!(page.body.contains("<code>email</code>"));
    assert!(b.jar.contains_key("idp_session"));
    let page = b
        .post(
            "/oauth2/authorise",
            &format!("{request}&csrf={}&consent=allow", b.csrf()),
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let location = page.location.unwrap();
    assert!(location.starts_with(CB), "{location}");
    let q = query_of(&location);
    assert_eq!(q["state"], "st-1");
    assert_eq!(q["iss"], crate::common::ISSUER);
    let r = exchange(b, &q["code"]).await;
    assert_eq!(r.status, 200, "{}", r.json);
    r.json
}

pub async fn introspect_active(b: &Browser, token: &str) -> bool {
    let r = send(
        &b.app,
        form(
            "/oauth2/introspect",
            Some(basic(crate::common::GATEWAY)),
            &format!("token={token}"),
        ),
    )
    .await;
    r.json["active"].as_bool().unwrap()
}
