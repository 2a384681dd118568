//! RP-initiated logout, confirmation, another user signing in, the lockout, several tabs.

use crate::support::*;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};

use crate::common::{basic, form, send};

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
        .header(header::AUTHORIZATION, basic(crate::common::GATEWAY))
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
