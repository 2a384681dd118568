//! Password and refresh-token grants: sessions, rotation, reuse detection, lockout, logout.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use axum::Router;
use common::*;
use serde_json::Value;

async fn login(app: &Router, password: &str, scope: Option<&str>) -> Resp {
    let mut body = format!("grant_type=password&username=alice&password={password}");
    if let Some(s) = scope {
        body.push_str(&format!("&scope={s}"));
    }
    send(app, form("/oauth2/token", Some(basic(DEMO)), &body)).await
}

async fn refresh(app: &Router, rt: &str, scope: Option<&str>) -> Resp {
    let mut body = format!("grant_type=refresh_token&refresh_token={rt}");
    if let Some(s) = scope {
        body.push_str(&format!("&scope={s}"));
    }
    send(app, form("/oauth2/token", Some(basic(DEMO)), &body)).await
}

fn claims(at: &str) -> Value {
    use base64::Engine;
    let part = at.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

async fn feed(app: &Router) -> Value {
    let req = axum::http::Request::get("/oauth2/revocations")
        .header(axum::http::header::AUTHORIZATION, basic(GATEWAY))
        .body(axum::body::Body::empty())
        .unwrap();
    send(app, req).await.json
}

#[tokio::test]
async fn password_login_opens_a_session_and_refresh_rotates() {
    let dir = tempfile::tempdir().unwrap();
    let app = idp::app(state_at(&dir.path().join("db.sqlite")).await);
    let r = login(&app, "alice-password-123", Some("read")).await;
    assert_eq!(r.status, 200, "{}", r.json);
    let c = claims(r.json["access_token"].as_str().unwrap());
    assert_eq!(c["amr"], serde_json::json!(["pwd"]));
    assert!(c["sid"].is_string());
    assert!(!c["sub"].as_str().unwrap().starts_with("client:"));
    assert_eq!(c["scope"], "read");
    let rt1 = r.json["refresh_token"].as_str().unwrap().to_owned();

    // rotation: a new refresh token, same session; scopes can narrow but not widen
    assert_eq!(
        refresh(&app, &rt1, Some("read write")).await.json["error"],
        "invalid_scope"
    );
    let r2 = refresh(&app, &rt1, None).await;
    assert_eq!(r2.status, 200, "{}", r2.json);
    let rt2 = r2.json["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2);
    assert_eq!(
        claims(r2.json["access_token"].as_str().unwrap())["sid"],
        c["sid"]
    );

    // reuse of the rotated token: the whole session ends, the newer token dies too
    let reuse = refresh(&app, &rt1, None).await;
    assert_eq!(reuse.json["error"], "invalid_grant");
    assert_eq!(
        refresh(&app, &rt2, None).await.json["error"],
        "invalid_grant"
    );
    let f = feed(&app).await;
    assert!(
        f["revoked"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["sid"] == c["sid"]),
        "{f}"
    );
}

#[tokio::test]
async fn revoking_the_access_token_ends_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let app = idp::app(state_at(&dir.path().join("db.sqlite")).await);
    let r = login(&app, "alice-password-123", None).await;
    let at = r.json["access_token"].as_str().unwrap().to_owned();
    let rt = r.json["refresh_token"].as_str().unwrap().to_owned();
    // the gateway revokes at logout
    let rev = send(
        &app,
        form(
            "/oauth2/revoke",
            Some(basic(GATEWAY)),
            &format!("token={at}&token_type_hint=access_token"),
        ),
    )
    .await;
    assert_eq!(rev.status, 200);
    assert_eq!(
        refresh(&app, &rt, None).await.json["error"],
        "invalid_grant"
    );
    let f = feed(&app).await;
    let sid = claims(&at)["sid"].clone();
    assert!(
        f["revoked"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["sid"] == sid),
        "{f}"
    );
    // revoking a refresh token ends its session too
    let r = login(&app, "alice-password-123", None).await;
    let rt = r.json["refresh_token"].as_str().unwrap().to_owned();
    send(
        &app,
        form("/oauth2/revoke", Some(basic(DEMO)), &format!("token={rt}")),
    )
    .await;
    assert_eq!(
        refresh(&app, &rt, None).await.json["error"],
        "invalid_grant"
    );
}

#[tokio::test]
async fn wrong_passwords_do_not_tell_and_lock_out() {
    let dir = tempfile::tempdir().unwrap();
    let app = idp::app(state_at(&dir.path().join("db.sqlite")).await);
    let wrong = login(&app, "nope", None).await;
    let body = "grant_type=password&username=mallory&password=x";
    let unknown = send(&app, form("/oauth2/token", Some(basic(DEMO)), body)).await;
    assert_eq!(
        wrong.json, unknown.json,
        "the same answer for an unknown user"
    );
    assert_eq!(wrong.json["error"], "invalid_grant");
    // max_failures = 3: two more failures lock alice out, even with the right password
    login(&app, "nope", None).await;
    login(&app, "nope", None).await;
    let locked = login(&app, "alice-password-123", None).await;
    assert_eq!(locked.json["error"], "invalid_grant", "{}", locked.json);
    // clients not allowed the password grant are refused
    let body = "grant_type=password&username=alice&password=alice-password-123";
    assert_eq!(
        send(&app, form("/oauth2/token", Some(basic(GATEWAY)), body))
            .await
            .json["error"],
        "unauthorized_client"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refresh_chains_all_succeed() {
    // Eight sessions rotating their refresh tokens at the same time: every rotation must get
    // through (write transactions wait their turn instead of failing with SQLITE_BUSY).
    let dir = tempfile::tempdir().unwrap();
    let app = idp::app(state_at(&dir.path().join("db.sqlite")).await);
    let mut chains = Vec::new();
    for _ in 0..8 {
        let r = login(&app, "alice-password-123", None).await;
        assert_eq!(r.status, 200, "{}", r.json);
        let app = app.clone();
        let mut rt = r.json["refresh_token"].as_str().unwrap().to_owned();
        chains.push(tokio::spawn(async move {
            for i in 0..25 {
                let r = refresh(&app, &rt, None).await;
                assert_eq!(r.status, 200, "rotation {i}: {}", r.json);
                rt = r.json["refresh_token"].as_str().unwrap().to_owned();
            }
        }));
    }
    for chain in chains {
        chain.await.unwrap();
    }
}

/// A transaction that installs another key ring when the refresh token is written: the moment
/// between signing the access token and signing the ID token of one issuance.
struct RotatesMidIssuance {
    inner: Box<dyn idp::store::Transaction>,
    state: std::sync::Arc<idp::AppState>,
    other: std::sync::Arc<idp::oauth::keys::KeyRing>,
}

#[async_trait::async_trait]
impl idp::store::Transaction for RotatesMidIssuance {
    async fn commit(self: Box<Self>) -> idp::store::StoreResult<()> {
        self.inner.commit().await
    }
    async fn record_issued(
        &mut self,
        token: &idp::store::IssuedToken<'_>,
    ) -> idp::store::StoreResult<()> {
        self.inner.record_issued(token).await
    }
    async fn revoke_jti(&mut self, jti: &str, exp: i64, now: i64) -> idp::store::StoreResult<()> {
        self.inner.revoke_jti(jti, exp, now).await
    }
    async fn client_token_revoked(
        &mut self,
        jti: &str,
        sub: &str,
        client_id: &str,
        now: i64,
    ) -> idp::store::StoreResult<()> {
        self.inner
            .client_token_revoked(jti, sub, client_id, now)
            .await
    }
    async fn create_session(
        &mut self,
        session: &idp::store::NewSession<'_>,
    ) -> idp::store::StoreResult<()> {
        self.inner.create_session(session).await
    }
    async fn end_session(
        &mut self,
        sid: &str,
        feed_exp: i64,
        now: i64,
    ) -> idp::store::StoreResult<()> {
        self.inner.end_session(sid, feed_exp, now).await
    }
    async fn insert_refresh_token(
        &mut self,
        token: &idp::store::NewRefreshToken<'_>,
    ) -> idp::store::StoreResult<()> {
        self.state.install_keys(self.other.clone());
        self.inner.insert_refresh_token(token).await
    }
    async fn find_refresh_token(
        &mut self,
        hash: &[u8],
    ) -> idp::store::StoreResult<Option<idp::store::StoredRefresh>> {
        self.inner.find_refresh_token(hash).await
    }
    async fn mark_refresh_used(&mut self, hash: &[u8], now: i64) -> idp::store::StoreResult<bool> {
        self.inner.mark_refresh_used(hash, now).await
    }
    async fn use_code(
        &mut self,
        hash: &[u8],
        now: i64,
    ) -> idp::store::StoreResult<idp::store::CodeUse> {
        self.inner.use_code(hash, now).await
    }
    async fn set_code_session(&mut self, hash: &[u8], sid: &str) -> idp::store::StoreResult<()> {
        self.inner.set_code_session(hash, sid).await
    }
    async fn end_sso_session(
        &mut self,
        id: &str,
        now: i64,
    ) -> idp::store::StoreResult<Vec<String>> {
        self.inner.end_sso_session(id, now).await
    }
    async fn consented_scopes(
        &mut self,
        sub: &str,
        client_id: &str,
    ) -> idp::store::StoreResult<Option<String>> {
        self.inner.consented_scopes(sub, client_id).await
    }
    async fn set_consent(
        &mut self,
        sub: &str,
        client_id: &str,
        scope: &str,
        now: i64,
    ) -> idp::store::StoreResult<()> {
        self.inner.set_consent(sub, client_id, scope, now).await
    }
    async fn insert_key(&mut self, key: &idp::store::NewKey<'_>) -> idp::store::StoreResult<()> {
        self.inner.insert_key(key).await
    }
    async fn active_key(&mut self) -> idp::store::StoreResult<Option<String>> {
        self.inner.active_key().await
    }
    async fn usable_key(&mut self, alg: &str) -> idp::store::StoreResult<Option<String>> {
        self.inner.usable_key(alg).await
    }
    async fn key_due(&mut self, now: i64) -> idp::store::StoreResult<Option<String>> {
        self.inner.key_due(now).await
    }
    async fn activate_key(&mut self, kid: &str, retire_at: i64) -> idp::store::StoreResult<()> {
        self.inner.activate_key(kid, retire_at).await
    }
    async fn retire_keys(&mut self, now: i64) -> idp::store::StoreResult<()> {
        self.inner.retire_keys(now).await
    }
    async fn private_keys(&mut self) -> idp::store::StoreResult<Vec<(String, Vec<u8>)>> {
        self.inner.private_keys().await
    }
    async fn set_private_key(&mut self, kid: &str, key: &[u8]) -> idp::store::StoreResult<()> {
        self.inner.set_private_key(kid, key).await
    }
    async fn login_failures_for_update(
        &mut self,
        user: &str,
        address: Option<&str>,
    ) -> idp::store::StoreResult<idp::store::LoginFailures> {
        self.inner.login_failures_for_update(user, address).await
    }
    async fn set_login_failures(
        &mut self,
        user: &str,
        address: Option<&str>,
        records: &idp::store::LoginFailures,
    ) -> idp::store::StoreResult<()> {
        self.inner.set_login_failures(user, address, records).await
    }
    async fn record_cutoff(
        &mut self,
        cutoff: &idp::store::NewCutoff<'_>,
    ) -> idp::store::StoreResult<bool> {
        self.inner.record_cutoff(cutoff).await
    }
    async fn record_logout_jti(
        &mut self,
        iss: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> idp::store::StoreResult<bool> {
        self.inner
            .record_logout_jti(iss, jti, expires_at, now)
            .await
    }
    async fn record_received_set(
        &mut self,
        transmitter: &str,
        jti: &str,
        digest: &str,
        expires_at: i64,
        now: i64,
    ) -> idp::store::StoreResult<idp::store::SetReceipt> {
        self.inner
            .record_received_set(transmitter, jti, digest, expires_at, now)
            .await
    }
    async fn deny_federated_jti(
        &mut self,
        jti: &str,
        exp: i64,
        now: i64,
    ) -> idp::store::StoreResult<()> {
        self.inner.deny_federated_jti(jti, exp, now).await
    }
}

fn header(jwt: &str) -> Value {
    use base64::Engine;
    let part = jwt.split('.').next().unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn one_issuance_signs_with_one_key_snapshot() {
    // Defect 7 (issue 20): the key ring was read once per signature, so a rotation landing
    // between the access token and the ID token split one issuance over two keys (and computed
    // `at_hash` for the wrong algorithm).
    let dir = tempfile::tempdir().unwrap();
    let state = state_at(&dir.path().join("db.sqlite")).await;
    let other_dir = tempfile::tempdir().unwrap();
    let other = state_with(
        &other_dir.path().join("db.sqlite"),
        &format!("signing_algorithm = \"EdDSA\"\n{}", config()),
    )
    .await
    .keys();
    let inner = state.store.begin().await.unwrap();
    let mut tx = RotatesMidIssuance {
        inner,
        state: state.clone(),
        other,
    };
    let client = state.settings.client(DEMO.0).unwrap().clone();
    let now = idp::http::state::unix_now();
    let amr = ["pwd".to_owned()];
    // what the token endpoint does: one snapshot of the keys for the issuance
    let keys = state.keys();
    let issued = idp::oauth::grants::user_tokens::issue(
        &state.grant_context(&keys),
        &mut tx,
        &client,
        "alice-sub",
        &["openid".to_owned()],
        idp::oauth::grants::user_tokens::Origin::NewSession(
            idp::oauth::grants::user_tokens::Login {
                amr: &amr,
                auth_time: now,
                sso_id: None,
                nonce: None,
            },
        ),
        now,
    )
    .await
    .unwrap();
    idp::store::Transaction::commit(Box::new(tx)).await.unwrap();
    let at = header(issued.body["access_token"].as_str().unwrap());
    let id = header(issued.body["id_token"].as_str().unwrap());
    assert_eq!(at["kid"], id["kid"], "one key for the whole issuance");
    assert_eq!(
        (at["alg"].as_str(), id["alg"].as_str()),
        (Some("ES256"), Some("ES256"))
    );
    // the next issuance sees the new ring
    assert_eq!(state.keys().active_alg, idp::oauth::keys::SigningAlg::EdDsa);
}

/// A password-grant request that reaches the IDP through a proxy at 127.0.0.1 which says the
/// client is `client_ip`.
fn via_proxy(
    client_ip: &str,
    username: &str,
    password: &str,
) -> axum::http::Request<axum::body::Body> {
    let body = format!("grant_type=password&username={username}&password={password}");
    let mut req = form("/oauth2/token", Some(basic(DEMO)), &body);
    req.headers_mut()
        .insert("x-forwarded-for", client_ip.parse().unwrap());
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
            [127, 0, 0, 1],
            40000,
        ))));
    req
}

#[tokio::test]
async fn a_guesser_behind_the_gateway_does_not_lock_out_every_login() {
    // Defect 5 (issue 20): failures were counted per peer address, and behind Envoy every
    // client has Envoy's address, so three bad passwords from anyone locked out everyone.
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "{}\n[forwarded]\ntrusted_proxies = [\"127.0.0.1\"]\n",
        config()
    );
    let app = idp::app(state_with(&dir.path().join("db.sqlite"), &config).await);
    for user in ["u1", "u2", "u3"] {
        let r = send(&app, via_proxy("203.0.113.7", user, "guess")).await;
        assert_eq!(r.json["error"], "invalid_grant");
    }
    // the guesser's address is out of budget, even with a right password...
    let r = send(
        &app,
        via_proxy("203.0.113.7", "alice", "alice-password-123"),
    )
    .await;
    assert_eq!(r.json["error"], "invalid_grant", "{}", r.json);
    // ...but another client behind the same proxy signs in
    let r = send(
        &app,
        via_proxy("198.51.100.9", "alice", "alice-password-123"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.json);
    // a client cannot escape its budget by forging X-Forwarded-For: the proxy appends the
    // address it saw, and only the entry it appended is believed
    let r = send(
        &app,
        via_proxy("198.51.100.9, 203.0.113.7", "alice", "alice-password-123"),
    )
    .await;
    assert_eq!(r.json["error"], "invalid_grant", "{}", r.json);
}

#[tokio::test]
async fn a_named_user_is_delayed_not_locked_out() {
    // Defect 5 (issue 20): anyone could lock a named user out for lockout_seconds (renewed at
    // will) by typing wrong passwords for them. Now the user's budget is a delay capped at
    // max_user_delay_seconds (60 s by default) after the last failure.
    let dir = tempfile::tempdir().unwrap();
    let state = state_at(&dir.path().join("db.sqlite")).await;
    let t = 1_000_000;
    // each failure as soon as the growing delay (5, 10, 20, 40, 60 s) allows: 8 failures
    let mut now = t;
    for gap in [0, 0, 0, 5, 10, 20, 40, 60] {
        now += gap;
        let r = state
            .passwords
            .verify(&state.settings.users, "alice", "wrong", None, now)
            .await;
        assert!(r.is_err());
    }
    let early = state.passwords.verify(
        &state.settings.users,
        "alice",
        "alice-password-123",
        None,
        now + 59,
    );
    assert!(early.await.is_err(), "within the delay");
    let later = state.passwords.verify(
        &state.settings.users,
        "alice",
        "alice-password-123",
        None,
        now + 60,
    );
    assert!(later.await.is_ok(), "the delay is over: not a lockout");
}

#[tokio::test]
async fn a_refused_attempt_costs_a_password_check() {
    // Defect 5 (issue 20): the locked path skipped argon2, so its speed revealed the lockout.
    let dir = tempfile::tempdir().unwrap();
    let app = idp::app(state_at(&dir.path().join("db.sqlite")).await);
    async fn checks(app: &Router) -> u64 {
        let req = axum::http::Request::get("/metrics")
            .body(axum::body::Body::empty())
            .unwrap();
        let res = tower::ServiceExt::oneshot(app.clone(), req).await.unwrap();
        let bytes = http_body_util::BodyExt::collect(res.into_body())
            .await
            .unwrap()
            .to_bytes();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("idp_password_checks_total "))
            .unwrap_or_else(|| panic!("no password check counter in {text}"))
            .parse()
            .unwrap()
    }
    for _ in 0..3 {
        login(&app, "nope", None).await;
    }
    let before = checks(&app).await;
    let refused = login(&app, "alice-password-123", None).await;
    assert_eq!(refused.json["error"], "invalid_grant", "delayed");
    assert_eq!(checks(&app).await, before + 1, "the refusal ran argon2 too");
}
