//! The browser side over HTTP, with a cookie jar: login, consent, the SSO session, prompt and
//! max_age, the implicit flow, ID tokens, userinfo, RP-initiated logout, and what must be
//! refused (CSRF, replayed forms, untrusted redirects). The same flows run in a real browser in
//! e2e/browser.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use common::{Resp, basic, form, send};
use http_body_util::BodyExt;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use tower::ServiceExt;

const WEB: (&str, &str) = ("web-app", "web-app-secret-0123456789abcdef0123");
const CB: &str = "http://127.0.0.1:8080/callback";
const SPA_CB: &str = "http://127.0.0.1:8080/spa";
const SIGNED_OUT: &str = "http://127.0.0.1:8080/signed-out";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn config() -> String {
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
        h(common::GATEWAY.1),
        common::alice_hash(),
        common::alice_hash(),
    )
}

/// A user agent: a cookie jar over the router.
struct Browser {
    app: Router,
    jar: BTreeMap<String, String>,
    /// The CSRF token of the last form shown.
    form_token: Option<String>,
}

struct Page {
    status: StatusCode,
    location: Option<String>,
    body: String,
    headers: axum::http::HeaderMap,
}

impl Browser {
    async fn new(dir: &std::path::Path) -> Browser {
        let state = common::state_with(&dir.join("db.sqlite"), &config()).await;
        Browser {
            app: idp::app(state),
            jar: BTreeMap::new(),
            form_token: None,
        }
    }

    fn cookie_header(&self) -> String {
        self.jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, mut req: Request<Body>) -> Page {
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

    async fn get(&mut self, path_and_query: &str) -> Page {
        self.send(Request::get(path_and_query).body(Body::empty()).unwrap())
            .await
    }

    async fn post(&mut self, path: &str, body: &str) -> Page {
        self.send(form(path, None, body)).await
    }

    /// A browser sharing the IDP, without cookies.
    fn fresh(&self) -> Browser {
        Browser {
            app: self.app.clone(),
            jar: BTreeMap::new(),
            form_token: None,
        }
    }

    fn csrf(&self) -> String {
        assert!(
            self.jar.contains_key("idp_csrf"),
            "the browser's CSRF cookie"
        );
        self.form_token.clone().expect("a form with a CSRF token")
    }
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn web_request(extra: &str) -> String {
    format!(
        "response_type=code&client_id=web-app&redirect_uri={}&scope=openid+profile+email+read&state=st-1&nonce=n-1&code_challenge={CHALLENGE}&code_challenge_method=S256{extra}",
        enc(CB)
    )
}

fn query_of(url: &str) -> BTreeMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

fn fragment_of(url: &str) -> BTreeMap<String, String> {
    let u = url::Url::parse(url).unwrap();
    url::form_urlencoded::parse(u.fragment().unwrap().as_bytes())
        .into_owned()
        .collect()
}

fn claims(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

fn header_of(jwt: &str) -> Value {
    let part = jwt.split('.').next().unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

/// Signs in from the login page of `request` (which must be showing).
async fn sign_in(b: &mut Browser, request: &str, user: &str, password: &str) -> Page {
    let body = format!(
        "{request}&login_csrf={}&username={user}&password={}",
        b.csrf(),
        enc(password)
    );
    b.post("/oauth2/authorise", &body).await
}

async fn exchange(b: &Browser, code: &str) -> Resp {
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

async fn userinfo(b: &Browser, token: &str) -> Resp {
    let req = Request::get("/oauth2/userinfo")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    send(&b.app, req).await
}

/// Login and consent in one browser: a code, exchanged for tokens with an ID token.
async fn full_login(b: &mut Browser) -> Value {
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
    assert_eq!(q["iss"], common::ISSUER);
    let r = exchange(b, &q["code"]).await;
    assert_eq!(r.status, 200, "{}", r.json);
    r.json
}

#[tokio::test]
async fn login_consent_code_id_token_and_userinfo() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = Browser::new(dir.path()).await;
    let before = idp::http::state::unix_now();
    let tokens = full_login(&mut b).await;
    let at = tokens["access_token"].as_str().unwrap();
    let id = tokens["id_token"].as_str().unwrap();
    assert!(tokens["refresh_token"].is_string());
    assert_eq!(header_of(id)["typ"], "JWT");
    let c = claims(id);
    let a = claims(at);
    assert_eq!(c["iss"], common::ISSUER);
    assert_eq!(c["aud"], "web-app");
    assert_eq!(c["nonce"], "n-1");
    assert_eq!(c["sub"], a["sub"]);
    assert_eq!(c["sid"], a["sid"]);
    assert_eq!(c["amr"], serde_json::json!(["pwd"]));
    assert!(c["auth_time"].as_i64().unwrap() >= before);
    assert_eq!(
        c["at_hash"],
        idp::oauth::id_token::at_hash(at, idp::oauth::keys::SigningAlg::Es256)
    );
    // userinfo: the claims of the granted scopes
    let r = userinfo(&b, at).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["sub"], a["sub"]);
    assert_eq!(r.json["name"], "Alice Example");
    assert_eq!(r.json["email"], "alice@example.com");
    assert_eq!(r.json["preferred_username"], "alice");
    // an ID token is not an access token anywhere
    let r = userinfo(&b, id).await;
    assert_eq!(r.status, 401);
    assert!(
        r.headers[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
}

#[tokio::test]
async fn the_sso_session_skips_the_password_and_remembered_consent_skips_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = Browser::new(dir.path()).await;
    let first = full_login(&mut b).await;
    let page = b
        .get(&format!("/oauth2/authorise?{}", web_request("")))
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let q = query_of(page.location.as_deref().unwrap());
    let second = exchange(&b, &q["code"]).await;
    assert_eq!(second.status, 200);
    let (c1, c2) = (
        claims(first["id_token"].as_str().unwrap()),
        claims(second.json["id_token"].as_str().unwrap()),
    );
    assert_eq!(c1["auth_time"], c2["auth_time"], "no new login");
    assert_ne!(c1["sid"], c2["sid"], "a token session per grant");
    // a scope not consented yet asks again; prompt=consent always asks
    let more = web_request("").replace("+read", "+read+write");
    let page = b.get(&format!("/oauth2/authorise?{more}")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<code>write</code>"));
    let page = b
        .get(&format!(
            "/oauth2/authorise?{}",
            web_request("&prompt=consent")
        ))
        .await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Allow web-app"));
    // prompt=login and max_age=0 ask for the password again
    for extra in ["&prompt=login", "&max_age=0"] {
        let page = b
            .get(&format!("/oauth2/authorise?{}", web_request(extra)))
            .await;
        assert_eq!(page.status, 200, "{extra}");
        assert!(page.body.contains("name=\"password\""), "{extra}");
    }
    // prompt=none works with a session and consent...
    let page = b
        .get(&format!(
            "/oauth2/authorise?{}",
            web_request("&prompt=none")
        ))
        .await;
    assert!(query_of(page.location.as_deref().unwrap()).contains_key("code"));
    // ...and says login_required without one
    let mut fresh = b.fresh();
    let page = fresh
        .get(&format!(
            "/oauth2/authorise?{}",
            web_request("&prompt=none")
        ))
        .await;
    let q = query_of(page.location.as_deref().unwrap());
    assert_eq!(q["error"], "login_required");
    assert_eq!(q["state"], "st-1");
}

#[tokio::test]
async fn consent_denied_goes_back_with_access_denied() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = Browser::new(dir.path()).await;
    let request = web_request("");
    b.get(&format!("/oauth2/authorise?{request}")).await;
    sign_in(&mut b, &request, "alice", "alice-password-123").await;
    let page = b
        .post(
            "/oauth2/authorise",
            &format!("{request}&csrf={}&consent=deny", b.csrf()),
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let q = query_of(page.location.as_deref().unwrap());
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "st-1");
    assert!(!q.contains_key("code"));
}

#[tokio::test]
async fn forms_need_their_csrf_token_and_cannot_be_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = Browser::new(dir.path()).await;
    let request = web_request("");
    b.get(&format!("/oauth2/authorise?{request}")).await;
    let csrf = b.csrf();
    // no token, a wrong token, no cookie
    for body in [
        format!("{request}&username=alice&password=alice-password-123"),
        format!("{request}&login_csrf=forged&username=alice&password=alice-password-123"),
    ] {
        let page = b.post("/oauth2/authorise", &body).await;
        assert_eq!(page.status, 400, "{body}");
        assert!(!b.jar.contains_key("idp_session"));
    }
    let mut other = b.fresh();
    let body = format!("{request}&login_csrf={csrf}&username=alice&password=alice-password-123");
    assert_eq!(other.post("/oauth2/authorise", &body).await.status, 400);
    // the real form works once...
    let page = b.post("/oauth2/authorise", &body).await;
    assert_eq!(page.status, 200, "consent page");
    // ...and its replay is refused (the cookie was replaced by the consent page's)
    assert_eq!(b.post("/oauth2/authorise", &body).await.status, 400);
    // the consent form, too, works once
    let consent = format!("{request}&csrf={}&consent=allow", b.csrf());
    assert_eq!(
        b.post("/oauth2/authorise", &consent).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(b.post("/oauth2/authorise", &consent).await.status, 400);
    // a wrong password shows the form again, without the password
    let mut c = b.fresh();
    c.get(&format!("/oauth2/authorise?{request}")).await;
    let page = sign_in(&mut c, &request, "alice", "wrong-password").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Invalid username or password"));
    assert!(!page.body.contains("wrong-password"));
    assert!(!c.jar.contains_key("idp_session"));
}

#[tokio::test]
async fn untrusted_clients_and_redirect_uris_get_an_error_page_never_a_redirect() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = Browser::new(dir.path()).await;
    for q in [
        format!("response_type=code&client_id=nobody&redirect_uri={}", enc(CB)),
        "response_type=code&client_id=web-app&redirect_uri=https%3A%2F%2Fevil.example%2Fcb"
            .to_owned(),
        "response_type=code&client_id=web-app&redirect_uri=http%3A%2F%2F127.0.0.1.evil.example%2Fcallback"
            .to_owned(),
        "response_type=code&client_id=web-app&redirect_uri=http%3A%2F%2F127.0.0.1%3A8080%2Fcallback%2F..%2Fevil"
            .to_owned(),
        "response_type=code&client_id=web-app".to_owned(),
    ] {
        let page = b.get(&format!("/oauth2/authorise?{q}")).await;
        assert_eq!(page.status, 400, "{q}");
        assert_eq!(page.location, None, "{q}");
        assert!(page.body.contains("cannot be completed"), "{q}");
    }
    // other errors go back to the client, state echoed
    let page = b
        .get(&format!(
            "/oauth2/authorise?response_type=code&client_id=spa&redirect_uri={}&state=s9",
            enc(SPA_CB)
        ))
        .await;
    let q = query_of(page.location.as_deref().unwrap());
    assert_eq!(
        (q["error"].as_str(), q["state"].as_str()),
        ("invalid_request", "s9"),
        "PKCE is required"
    );
    let page = b
        .get(&format!(
            "/oauth2/authorise?response_type=token&client_id=web-app&redirect_uri={}&state=s9",
            enc(CB)
        ))
        .await;
    let f = fragment_of(page.location.as_deref().unwrap());
    assert_eq!(f["error"], "unauthorized_client");
    assert_eq!(f["state"], "s9");
}

#[tokio::test]
async fn implicit_gives_a_short_access_token_in_the_fragment() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = Browser::new(dir.path()).await;
    let request = format!(
        "response_type=token&client_id=spa&redirect_uri={}&scope=openid+read&state=imp-1",
        enc(SPA_CB)
    );
    b.get(&format!("/oauth2/authorise?{request}")).await;
    let page = sign_in(&mut b, &request, "alice", "alice-password-123").await;
    assert_eq!(
        page.status,
        StatusCode::SEE_OTHER,
        "first-party: no consent page"
    );
    let location = page.location.unwrap();
    assert!(location.starts_with(&format!("{SPA_CB}#")), "{location}");
    let f = fragment_of(&location);
    assert_eq!(f["token_type"], "Bearer");
    assert_eq!(f["state"], "imp-1");
    assert_eq!(f["iss"], common::ISSUER);
    assert!(!f.contains_key("refresh_token") && !f.contains_key("id_token"));
    let expires_in: i64 = f["expires_in"].parse().unwrap();
    assert!((1..=300).contains(&expires_in));
    let c = claims(&f["access_token"]);
    assert!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap() <= 300);
    assert!(c["sid"].is_string());
    assert_eq!(userinfo(&b, &f["access_token"]).await.status, 200);
    // no state, no token
    let page = b
        .get(&format!(
            "/oauth2/authorise?response_type=token&client_id=spa&redirect_uri={}",
            enc(SPA_CB)
        ))
        .await;
    assert_eq!(
        fragment_of(page.location.as_deref().unwrap())["error"],
        "invalid_request"
    );
}

async fn introspect_active(b: &Browser, token: &str) -> bool {
    let r = send(
        &b.app,
        form(
            "/oauth2/introspect",
            Some(basic(common::GATEWAY)),
            &format!("token={token}"),
        ),
    )
    .await;
    r.json["active"].as_bool().unwrap()
}

#[tokio::test]
async fn logout_ends_the_sso_session_and_every_token_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = Browser::new(dir.path()).await;
    let tokens = full_login(&mut b).await;
    // a second grant in the same browser session (implicit, other client)
    let imp = format!(
        "response_type=token&client_id=spa&redirect_uri={}&scope=read&state=x",
        enc(SPA_CB)
    );
    let page = b.get(&format!("/oauth2/authorise?{imp}")).await;
    let implicit_at = fragment_of(page.location.as_deref().unwrap())["access_token"].clone();
    let at = tokens["access_token"].as_str().unwrap();
    assert!(introspect_active(&b, at).await && introspect_active(&b, &implicit_at).await);

    // an unregistered post_logout_redirect_uri: an error page, no redirect, nothing ended
    let id = tokens["id_token"].as_str().unwrap();
    let page = b
        .get(&format!(
            "/oauth2/logout?id_token_hint={id}&post_logout_redirect_uri={}",
            enc("https://evil.example/")
        ))
        .await;
    assert_eq!(
        (page.status.as_u16(), page.location.as_deref()),
        (400, None)
    );
    assert!(introspect_active(&b, at).await);

    let page = b
        .get(&format!(
            "/oauth2/logout?id_token_hint={id}&post_logout_redirect_uri={}&state=bye",
            enc(SIGNED_OUT)
        ))
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(
        page.location.as_deref(),
        Some(&*format!("{SIGNED_OUT}?state=bye"))
    );
    assert!(!b.jar.contains_key("idp_session"));
    assert!(!introspect_active(&b, at).await);
    assert!(!introspect_active(&b, &implicit_at).await);
    assert_eq!(userinfo(&b, at).await.status, 401);
    let r = send(
        &b.app,
        form(
            "/oauth2/token",
            Some(basic(WEB)),
            &format!(
                "grant_type=refresh_token&refresh_token={}",
                tokens["refresh_token"].as_str().unwrap()
            ),
        ),
    )
    .await;
    assert_eq!(r.json["error"], "invalid_grant");
    // the revocation feed names both sessions
    let req = Request::get("/oauth2/revocations")
        .header(header::AUTHORIZATION, basic(common::GATEWAY))
        .body(Body::empty())
        .unwrap();
    let feed = send(&b.app, req).await.json.to_string();
    assert!(feed.contains(claims(at)["sid"].as_str().unwrap()), "{feed}");
    assert!(feed.contains(claims(&implicit_at)["sid"].as_str().unwrap()));
    // signing in is needed again
    let page = b
        .get(&format!("/oauth2/authorise?{}", web_request("")))
        .await;
    assert!(page.body.contains("name=\"password\""));
}

#[tokio::test]
async fn logout_that_cannot_be_tied_to_the_session_asks_for_confirmation() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = Browser::new(dir.path()).await;
    let tokens = full_login(&mut b).await;
    let at = tokens["access_token"].as_str().unwrap();
    let page = b.get("/oauth2/logout").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("name=\"confirm\""));
    assert!(
        introspect_active(&b, at).await,
        "nothing ended before confirming"
    );
    // confirming without the CSRF token is refused
    let refused = b.post("/oauth2/logout", "confirm=yes").await;
    assert_eq!(refused.status, 400);
    assert!(introspect_active(&b, at).await);
    let page = b
        .post("/oauth2/logout", &format!("confirm=yes&csrf={}", b.csrf()))
        .await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Signed out"));
    assert!(!introspect_active(&b, at).await);
    // a forged hint is refused outright
    let page = b.get("/oauth2/logout?id_token_hint=e30.e30.sig").await;
    assert_eq!(page.status, 400);
}

#[tokio::test]
async fn another_user_signing_in_ends_the_previous_users_session() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = Browser::new(dir.path()).await;
    let tokens = full_login(&mut b).await;
    let request = web_request("&prompt=login");
    b.get(&format!("/oauth2/authorise?{request}")).await;
    let page = sign_in(&mut b, &request, "bob", "alice-password-123").await;
    assert_eq!(page.status, 200, "bob's consent page");
    assert!(page.body.contains("<strong>bob</strong>"));
    assert!(!introspect_active(&b, tokens["access_token"].as_str().unwrap()).await);
}

#[tokio::test]
async fn the_login_form_shares_the_password_grants_lockout() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = Browser::new(dir.path()).await;
    let request = web_request("");
    // five failures (the default policy) lock the user out...
    for _ in 0..5 {
        b.get(&format!("/oauth2/authorise?{request}")).await;
        let page = sign_in(&mut b, &request, "alice", "not-her-password").await;
        assert!(page.body.contains("Invalid username or password"));
    }
    // ...so the right password is refused too, with the same words (nothing confirms she exists)
    b.get(&format!("/oauth2/authorise?{request}")).await;
    let page = sign_in(&mut b, &request, "alice", "alice-password-123").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Invalid username or password"));
    assert!(!b.jar.contains_key("idp_session"));
}

#[tokio::test]
async fn forms_open_in_several_tabs_each_work_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = Browser::new(dir.path()).await;
    let tab_a = web_request("").replace("st-1", "tab-a");
    let tab_b = web_request("").replace("st-1", "tab-b");
    b.get(&format!("/oauth2/authorise?{tab_a}")).await;
    let token_a = b.csrf();
    b.get(&format!("/oauth2/authorise?{tab_b}")).await;
    let token_b = b.csrf();
    assert_ne!(token_a, token_b);
    // tab A's form, posted after tab B was opened, still works
    let body = format!("{tab_a}&login_csrf={token_a}&username=alice&password=alice-password-123");
    assert_eq!(b.post("/oauth2/authorise", &body).await.status, 200);
    // a token is bound to its form: tab B's login token cannot confirm a logout
    let page = b
        .post("/oauth2/logout", &format!("confirm=yes&csrf={token_b}"))
        .await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("sign-out request cannot be completed"));
    // a logout page opened before another sign-in in another tab still signs out
    b.get("/oauth2/logout").await;
    let logout_token = b.csrf();
    let consent = b.get(&format!("/oauth2/authorise?{tab_b}")).await;
    assert_eq!(consent.status, 200);
    let page = b
        .post(
            "/oauth2/logout",
            &format!("confirm=yes&csrf={logout_token}"),
        )
        .await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Signed out"));
}
