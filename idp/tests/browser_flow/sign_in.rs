//! Login, consent, the SSO session, CSRF and replayed forms, untrusted redirects, implicit.

use crate::support::*;

use axum::http::{StatusCode, header};

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
    assert_eq!(c["iss"], crate::common::ISSUER);
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
    assert_eq!(f["iss"], crate::common::ISSUER);
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
