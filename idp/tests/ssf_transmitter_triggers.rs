//! Every way a session ends at our IDP reaches an SSF receiver as a CAEP `session-revoked` SET
//! (issue 27, part 2), and an RFC 7009 revocation of an access token as an OAuth
//! `token-revoked` SET: RP-initiated logout, a gateway's logout (RFC 7009 by the gateway
//! client), a replayed authorization code, a reused refresh token, the revocation of a refresh
//! token, the administrator's `idp end-sessions` (the real binary, on the server's database),
//! and the revocation of a client-credentials token (no session: `token-revoked` alone, on
//! SQLite and PostgreSQL). Each SET is polled (RFC 8936), checked against the IDP's JWKS, and its subject
//! checked: `complex` with the session (`opaque`, the tokens' `sid`) and the user (`iss_sub`)
//! for `session-revoked`, `jwt_id` for `token-revoked`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;
#[path = "pg_cluster/mod.rs"]
mod pg_cluster;
mod ssf_support;
#[allow(dead_code)]
#[path = "browser_flow/support.rs"]
mod support;

use axum::Router;
use axum::http::StatusCode;
use common::{basic, form, send};
use serde_json::{Value, json};
use ssf_support::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The browser-flow configuration (web-app, the gateway client, alice) with an SSF receiver
/// client and a password-grant client.
fn config() -> String {
    format!(
        "{}\n{}{}{}[ssf]\nmax_poll_wait_seconds = 2\n",
        support::config(),
        receiver_client(RECEIVER),
        user_app_client(),
        client_toml(SERVICE, &["read"], "demo-api", &["client_credentials"]),
    )
}

/// A client that gets tokens for itself (client credentials).
const SERVICE: (&str, &str) = ("service", "service-secret-0123456789abcdef012345");

/// An IDP delivering events, with a poll stream of the receiver client.
struct Rig {
    dir: tempfile::TempDir,
    browser: support::Browser,
    /// The receiver's `ssf.manage` token.
    manager: String,
}

impl Rig {
    async fn new() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let state = common::state_with(&dir.path().join("db.sqlite"), &config()).await;
        Rig::on(dir, state).await
    }

    /// On a fresh PostgreSQL database; `None` when those tests are switched off.
    async fn on_postgresql() -> Option<Rig> {
        let url = pg_cluster::database("ssf_triggers")?;
        let state = common::state_on_url(&url, &config()).await;
        Some(Rig::on(tempfile::tempdir().unwrap(), state).await)
    }

    async fn on(dir: tempfile::TempDir, state: Arc<idp::AppState>) -> Rig {
        idp::http::routes::ssf::spawn_event_delivery(&state);
        let browser = support::Browser {
            app: idp::app(Arc::clone(&state)),
            jar: Default::default(),
            form_token: None,
        };
        let manager = token(&browser.app, RECEIVER, "ssf.manage").await;
        create_stream(
            &browser.app,
            &manager,
            json!({"method": "urn:ietf:rfc:8936"}),
        )
        .await;
        Rig {
            dir,
            browser,
            manager,
        }
    }

    fn app(&self) -> &Router {
        &self.browser.app
    }

    /// Polls (and acknowledges) SETs until `done` holds for the claims of those seen so far
    /// (bounded); every SET is checked against the IDP's JWKS first.
    async fn sets_until(&self, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = Vec::new();
        let mut ack: Vec<String> = Vec::new();
        while !done(&seen) {
            assert!(Instant::now() < deadline, "the SETs never came: {seen:#?}");
            let r = poll(
                self.app(),
                &self.manager,
                json!({"ack": ack, "maxEvents": 10, "returnImmediately": false}),
            )
            .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.json);
            ack.clear();
            for (jti, set) in r.json["sets"].as_object().unwrap() {
                let claims = verified(
                    self.app(),
                    set.as_str().unwrap(),
                    "secevent+jwt",
                    RECEIVER.0,
                )
                .await;
                assert_eq!(claims["jti"], jti.as_str());
                ack.push(jti.clone());
                seen.push(claims);
            }
        }
        seen
    }

    /// Waits for the `session-revoked` SET of each session in `sids` and checks each.
    async fn sessions_revoked(&self, sids: &[&str], sub: &str, not_before: i64) {
        let of = |sets: &[Value], sid: &str| {
            sets.iter()
                .filter(|c| {
                    c["events"].get(SESSION_REVOKED).is_some()
                        && c["sub_id"]["session"]["id"] == sid
                })
                .count()
        };
        let sets = self
            .sets_until(|seen| sids.iter().all(|sid| of(seen, sid) > 0))
            .await;
        for sid in sids {
            assert_eq!(of(&sets, sid), 1, "one SET per ended session: {sets:#?}");
            let set = sets
                .iter()
                .find(|c| c["sub_id"]["session"]["id"] == *sid)
                .unwrap();
            assert_session_revoked(set, sid, sub, not_before);
        }
    }
}

/// A `session-revoked` SET naming session `sid` of user `sub`, ended at or after `not_before`.
fn assert_session_revoked(set: &Value, sid: &str, sub: &str, not_before: i64) {
    assert_eq!(set["iss"], common::ISSUER);
    assert_eq!(set["aud"], RECEIVER.0);
    assert!(
        set.get("sub").is_none() && set.get("exp").is_none(),
        "{set}"
    );
    assert_eq!(
        set["sub_id"],
        json!({
            "format": "complex",
            "session": {"format": "opaque", "id": sid},
            "user": {"format": "iss_sub", "iss": common::ISSUER, "sub": sub},
        })
    );
    let events = set["events"].as_object().unwrap();
    assert_eq!(events.len(), 1, "{set}");
    let at = events[SESSION_REVOKED]["event_timestamp"].as_i64().unwrap();
    assert!(
        at >= not_before && at <= set["iat"].as_i64().unwrap(),
        "{set}"
    );
}

/// The first SET among `sets` carrying `event`.
fn first<'a>(sets: &'a [Value], event: &str) -> Option<&'a Value> {
    sets.iter().find(|c| c["events"].get(event).is_some())
}

/// The first `token-revoked` SET among `sets` names the access token of `claims` (its `jti`),
/// has no `sub` or `exp`, and was not sent for a time before the token was issued.
fn assert_token_revoked(sets: &[Value], claims: &Value) {
    let token = first(sets, TOKEN_REVOKED).unwrap();
    assert_eq!(
        token["sub_id"],
        json!({"format": "jwt_id", "iss": common::ISSUER, "jti": claims["jti"]})
    );
    assert!(token.get("sub").is_none() && token.get("exp").is_none());
    assert!(
        token["events"][TOKEN_REVOKED]["event_timestamp"]
            .as_i64()
            .unwrap()
            >= claims["iat"].as_i64().unwrap()
    );
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap()
}

/// alice's tokens through the user app's password grant: `(access token, refresh token)`.
async fn password_tokens(app: &Router) -> (String, String) {
    let tokens = alice_tokens(app).await;
    (
        text(&tokens["access_token"]).to_owned(),
        text(&tokens["refresh_token"]).to_owned(),
    )
}

async fn refresh(app: &Router, refresh_token: &str) -> common::Resp {
    send(
        app,
        form(
            "/oauth2/token",
            Some(basic(USER_APP)),
            &format!("grant_type=refresh_token&refresh_token={refresh_token}"),
        ),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rp_initiated_logout_is_sent_as_session_revoked() {
    let mut rig = Rig::new().await;
    let tokens = support::full_login(&mut rig.browser).await;
    let id = payload(text(&tokens["id_token"]));
    let page = rig
        .browser
        .get(&format!(
            "/oauth2/logout?id_token_hint={}",
            text(&tokens["id_token"])
        ))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    rig.sessions_revoked(
        &[text(&id["sid"])],
        text(&id["sub"]),
        id["iat"].as_i64().unwrap(),
    )
    .await;
}

/// The gateway's logout: it revokes the user's access token with its own client (RFC 7009),
/// which ends the token's session and revokes the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_logout_is_sent_as_session_revoked_and_token_revoked() {
    let mut rig = Rig::new().await;
    let tokens = support::full_login(&mut rig.browser).await;
    let at = payload(text(&tokens["access_token"]));
    let r = revoke_as(
        rig.app(),
        common::GATEWAY,
        &format!("token={}", text(&tokens["access_token"])),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let sets = rig
        .sets_until(|seen| {
            first(seen, SESSION_REVOKED).is_some() && first(seen, TOKEN_REVOKED).is_some()
        })
        .await;
    assert_session_revoked(
        first(&sets, SESSION_REVOKED).unwrap(),
        text(&at["sid"]),
        text(&at["sub"]),
        at["iat"].as_i64().unwrap(),
    );
    assert_token_revoked(&sets, &at);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_authorization_code_is_sent_as_session_revoked() {
    let mut rig = Rig::new().await;
    let b = &mut rig.browser;
    let request = support::web_request("");
    b.get(&format!("/oauth2/authorise?{request}")).await;
    support::sign_in(b, &request, "alice", "alice-password-123").await;
    let page = b
        .post(
            "/oauth2/authorise",
            &format!("{request}&csrf={}&consent=allow", b.csrf()),
        )
        .await;
    let code = support::query_of(page.location.as_deref().unwrap())["code"].clone();
    let first = support::exchange(b, &code).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.json);
    let at = payload(text(&first.json["access_token"]));
    let replay = support::exchange(b, &code).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    rig.sessions_revoked(
        &[text(&at["sid"])],
        text(&at["sub"]),
        at["iat"].as_i64().unwrap(),
    )
    .await;
}

/// A rotated refresh token used again (someone else has a copy) ends its session; so does an
/// RFC 7009 revocation of a refresh token. Neither names an access token: no `token-revoked`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_or_revoked_refresh_token_is_sent_as_session_revoked() {
    let rig = Rig::new().await;
    let (at1, rt1) = password_tokens(rig.app()).await;
    let rotated = refresh(rig.app(), &rt1).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.json);
    let reused = refresh(rig.app(), &rt1).await;
    assert_eq!(reused.status, StatusCode::BAD_REQUEST, "{}", reused.json);
    let (at2, rt2) = password_tokens(rig.app()).await;
    let r = revoke_as(
        rig.app(),
        USER_APP,
        &format!("token={rt2}&token_type_hint=refresh_token"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let (c1, c2) = (payload(&at1), payload(&at2));
    assert_ne!(c1["sid"], c2["sid"]);
    rig.sessions_revoked(
        &[text(&c1["sid"]), text(&c2["sid"])],
        text(&c1["sub"]),
        c1["iat"].as_i64().unwrap(),
    )
    .await;
    // anything still queued: no token-revoked among it
    let r = poll(
        rig.app(),
        &rig.manager,
        json!({"returnImmediately": true, "maxEvents": 10}),
    )
    .await;
    for set in r.json["sets"].as_object().unwrap().values() {
        assert!(payload(text(set))["events"].get(TOKEN_REVOKED).is_none());
    }
}

/// `idp end-sessions` (the binary, its own store on the server's database) ends a user's
/// sessions; the running server sends a `session-revoked` SET for each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_administrators_end_sessions_command_is_sent_as_session_revoked() {
    let rig = Rig::new().await;
    let (at1, _) = password_tokens(rig.app()).await;
    let (at2, _) = password_tokens(rig.app()).await;
    let (c1, c2) = (payload(&at1), payload(&at2));
    let sub = text(&c1["sub"]).to_owned();
    let config_file = rig.dir.path().join("idp.toml");
    std::fs::write(&config_file, config()).unwrap();
    let database = format!(
        "sqlite://{}?mode=rwc",
        rig.dir.path().join("db.sqlite").display()
    );
    let out = tokio::task::spawn_blocking({
        let config = config_file.clone();
        let sub = sub.clone();
        move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_idp"))
                .args(["end-sessions", "--config"])
                .arg(&config)
                .args(["--database", &database, "--sub", &sub])
                .env_remove("IDP_DATABASE")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("2 session(s) ended"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    rig.sessions_revoked(
        &[text(&c1["sid"]), text(&c2["sid"])],
        &sub,
        c1["iat"].as_i64().unwrap(),
    )
    .await;
}

/// RFC 7009 revocation of a token a client got for itself (client credentials: no user, no
/// session): a `token-revoked` SET naming it, once however often it is revoked, and no
/// `session-revoked`.
async fn a_client_credentials_token_revocation_is_sent_as_token_revoked(rig: Rig) {
    let at = token(rig.app(), SERVICE, "read").await;
    let claims = payload(&at);
    assert!(claims.get("sid").is_none());
    for _ in 0..2 {
        let r = revoke_as(rig.app(), SERVICE, &format!("token={at}")).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let sets = rig
        .sets_until(|seen| first(seen, TOKEN_REVOKED).is_some())
        .await;
    assert_token_revoked(&sets, &claims);
    // the second revocation sent nothing, and nothing is a session-revoked (what was seen is
    // acknowledged: only SETs not seen yet come)
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen: Vec<&Value> = sets.iter().map(|c| &c["jti"]).collect();
    let r = poll(
        rig.app(),
        &rig.manager,
        json!({"ack": seen, "returnImmediately": true, "maxEvents": 10}),
    )
    .await;
    let later: Vec<Value> = r.json["sets"]
        .as_object()
        .unwrap()
        .values()
        .map(|set| payload(text(set)))
        .collect();
    assert!(
        sets.iter()
            .chain(&later)
            .filter(|c| c["events"].get(TOKEN_REVOKED).is_some())
            .count()
            == 1
            && sets
                .iter()
                .chain(&later)
                .all(|c| c["events"].get(SESSION_REVOKED).is_none()),
        "{sets:#?} {later:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_credentials_token_revocation_is_sent_as_token_revoked_on_sqlite() {
    a_client_credentials_token_revocation_is_sent_as_token_revoked(Rig::new().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_credentials_token_revocation_is_sent_as_token_revoked_on_postgresql() {
    let Some(rig) = Rig::on_postgresql().await else {
        return;
    };
    a_client_credentials_token_revocation_is_sent_as_token_revoked(rig).await;
}
