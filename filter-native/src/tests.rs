//! The glue's own logic against fake Envoy handles: background fetches, the request path with its
//! per-worker cache and claim headers, early refresh after an unknown `kid`, logout and the feed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use crate::background::Background;
use crate::host::{MainThread, Stream};
use crate::metrics::Counters;
use crate::request::{self, Next, Plan, header_text};
use crate::shared::Gateway;
use crate::verifier::tests::p256_jwks;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::EcdsaKeyPair;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use filter::config::FilterConfig;
use serde_json::{Value, json};
use std::collections::BTreeMap;

#[path = "discovery_tests.rs"]
mod discovery;
#[path = "initial_sync_tests.rs"]
mod initial_sync;

const T0: u64 = 1_900_000_000_000;

#[derive(Default)]
struct FakeMain {
    calls: Vec<(String, Vec<(String, String)>)>,
    counts: BTreeMap<String, u64>,
    next_id: u64,
}

impl MainThread for FakeMain {
    fn callout(
        &mut self,
        cluster: &str,
        headers: &[(&str, &str)],
        _: &[u8],
        _: u64,
    ) -> Option<u64> {
        self.calls.push((
            cluster.to_owned(),
            headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ));
        self.next_id += 1;
        Some(self.next_id)
    }
    fn count(&mut self, name: &str, n: u64) {
        *self.counts.entry(name.to_owned()).or_default() += n;
    }
}

impl FakeMain {
    fn paths(&self) -> Vec<String> {
        self.calls
            .iter()
            .map(|(c, h)| {
                let path = h.iter().find(|(k, _)| k == ":path").map(|(_, v)| v.clone());
                format!("{c} {}", path.unwrap_or_default())
            })
            .collect()
    }
}

/// A local reply: status, headers, body.
type Reply = (u32, Vec<(String, String)>, String);

#[derive(Default)]
struct FakeStream {
    continued: bool,
    headers: BTreeMap<String, Option<String>>,
    reply: Option<Reply>,
    calls: Vec<(u64, String)>,
    counts: BTreeMap<String, u64>,
    next_id: u64,
}

impl Stream for FakeStream {
    fn set_request_header(&mut self, name: &str, value: Option<&str>) {
        self.headers
            .insert(name.to_owned(), value.map(str::to_owned));
    }
    fn send_response(&mut self, status: u32, headers: &[(&str, &str)], body: &[u8]) {
        assert!(self.reply.is_none(), "a second local reply");
        self.reply = Some((
            status,
            headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            String::from_utf8_lossy(body).into_owned(),
        ));
    }
    fn callout(&mut self, cluster: &str, _: &[(&str, &str)], _: &[u8], _: u64) -> Option<u64> {
        self.next_id += 1;
        self.calls.push((self.next_id, cluster.to_owned()));
        Some(self.next_id)
    }
    fn count(&mut self, name: &str, n: u64) {
        *self.counts.entry(name.to_owned()).or_default() += n;
    }
    fn continue_request(&mut self) {
        self.continued = true;
    }
    fn waker(&mut self) -> Option<std::sync::Arc<dyn crate::host::Wake>> {
        None
    }
}

fn config() -> Value {
    json!({
        "providers": [{
            "name": "idp", "issuer": "https://idp.test", "audiences": ["api"],
            "algorithms": ["ES256"],
            "jwks": {"cluster": "idp", "path": "/jwks", "refresh_seconds": 60,
                     "min_early_refresh_seconds": 5}
        }],
        "idp_client": {"client_id": "gateway", "client_secret": "gateway-secret-0123456789"},
        "revocation_feed": {"cluster": "idp", "path": "/oauth2/revocations", "poll_ms": 500},
        "logout": {
            "revoke": {"cluster": "idp", "path": "/oauth2/revoke", "timeout_ms": 2000},
            "resource_server": {"cluster": "rs", "path": "/internal/sessions/revoke",
                "timeout_ms": 2000, "secret_header": "x-gateway-secret",
                "secret": "s3cret-s3cret-s3cret"}
        }
    })
}

struct Setup {
    gw: Gateway,
    bg: Background,
    main: FakeMain,
    jwks: String,
    key: EcdsaKeyPair,
}

fn setup() -> Setup {
    setup_with(config())
}

fn setup_with(config: Value) -> Setup {
    let config = FilterConfig::from_json(config.to_string().as_bytes()).unwrap();
    let gw = Gateway::new(config, Counters::default());
    let bg = Background::new(&gw);
    let (jwks, key) = p256_jwks();
    Setup {
        gw,
        bg,
        main: FakeMain::default(),
        jwks,
        key,
    }
}

impl Setup {
    /// Ticks at `now` and answers the JWKS fetch it makes with `status`/`body`.
    fn fetch_keys(&mut self, now: u64, status: u32, body: &str) {
        let before = self.main.calls.len();
        self.bg.tick(&self.gw, &mut self.main, now);
        let id = (before..self.main.calls.len())
            .find(|i| self.main.paths()[*i] == "idp /jwks")
            .map(|i| i as u64 + 1)
            .expect("a JWKS fetch");
        self.bg.answer(
            &self.gw,
            &mut self.main,
            id,
            Some(status),
            body.as_bytes(),
            now,
        );
    }

    /// Answers the latest feed poll with `page` at `now`; returns the path it asked for.
    fn answer_feed(&mut self, now: u64, page: &Value) -> String {
        let (index, path) = feed_polls(self).pop().expect("a feed poll");
        self.bg.answer(
            &self.gw,
            &mut self.main,
            index as u64 + 1,
            Some(200),
            page.to_string().as_bytes(),
            now,
        );
        path
    }

    /// Keys fetched and the feed read up to date (an empty page): tokens are judged.
    fn ready(&mut self, now: u64) {
        let jwks = self.jwks.clone();
        self.fetch_keys(now, 200, &jwks);
        self.answer_feed(now, &json!({"cursor": "0", "revoked": []}));
    }

    fn token(&self, kid: &str, jti: &str) -> String {
        let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": kid});
        let claims = json!({
            "iss": "https://idp.test", "aud": "api", "sub": "alice", "client_id": "c",
            "scope": "read", "sid": "s-1", "jti": jti,
            "iat": T0 / 1000 - 10, "exp": T0 / 1000 + 300
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = self
            .key
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }

    fn request(&self, method: &str, path: &str, token: &str, now: u64) -> FakeStream {
        let bearer = format!("Bearer {token}");
        let headers = [
            (":method", method),
            (":path", path),
            ("authorization", bearer.as_str()),
            ("x-auth-sub", "forged"),
        ];
        let plan = request::plan(&self.gw, &headers, now);
        let mut stream = FakeStream::default();
        let (next, flow) = request::execute(&self.gw, &mut stream, plan, now);
        assert!(flow.is_none());
        assert_eq!(next == Next::Continue, stream.reply.is_none());
        stream
    }
}

#[test]
fn no_keys_yet_is_503_then_one_fetch_makes_tokens_valid_with_claim_headers() {
    let mut s = setup();
    let token = s.token("k1", "j-1");
    assert_eq!(s.request("GET", "/api", &token, T0).reply.unwrap().0, 503);

    s.bg.tick(&s.gw, &mut s.main, T0);
    s.bg.tick(&s.gw, &mut s.main, T0 + 100);
    // One JWKS fetch (the second tick finds it in flight), plus the feed poll (not held: the
    // list is not up to date yet).
    assert_eq!(s.main.paths(), ["idp /jwks", "idp /oauth2/revocations"]);
    let jwks = s.jwks.clone();
    s.bg.answer(&s.gw, &mut s.main, 1, Some(200), jwks.as_bytes(), T0 + 150);
    assert_eq!(s.main.counts.get("jwks_fetch_ok"), Some(&1));
    // Keys, but the feed has not answered: still 503 (another reason).
    let waiting = s.request("GET", "/api", &token, T0 + 160);
    assert_eq!(waiting.reply.unwrap().0, 503);
    assert_eq!(
        waiting.counts.get("denied.revocations_not_loaded"),
        Some(&1)
    );
    // (verified once, and cached)
    assert_eq!(waiting.counts.get("cache_miss"), Some(&1));
    s.answer_feed(T0 + 170, &json!({"cursor": "0", "revoked": []}));

    let first = s.request("GET", "/api", &token, T0 + 200);
    assert_eq!(first.reply, None);
    assert_eq!(
        first.headers.get("x-auth-sub"),
        Some(&Some("alice".to_owned()))
    );
    assert_eq!(first.counts.get("allowed"), Some(&1));
    let second = s.request("GET", "/api", &token, T0 + 300);
    assert_eq!(second.counts.get("cache_hit"), Some(&1));
}

#[test]
fn a_forged_claim_header_is_removed_even_when_the_route_lets_it_through() {
    let mut s = setup();
    s.ready(T0);
    let headers = [
        (":method", "GET"),
        (":path", "/api"),
        ("X-Auth-Sub", "forged"),
    ];
    // No token: a 401, and nothing forwarded.
    let plan = request::plan(&s.gw, &headers, T0);
    assert!(matches!(plan, Plan::Reply { status: 401, .. }), "{plan:?}");
    let token = s.token("k1", "j-2");
    let stream = s.request("GET", "/api", &token, T0);
    // Removed (inbound copy), then set from the token.
    assert_eq!(
        stream.headers.get("x-auth-sub"),
        Some(&Some("alice".to_owned()))
    );
}

#[test]
fn a_failed_fetch_keeps_the_keys_and_backs_off() {
    let mut s = setup();
    s.ready(T0);
    let jwks = s.jwks.clone();
    // Due again after refresh_seconds; the IDP answers 500.
    s.fetch_keys(T0 + 60_000, 500, "oops");
    assert_eq!(s.main.counts.get("jwks_fetch_failed"), Some(&1));
    let token = s.token("k1", "j-3");
    assert_eq!(s.request("GET", "/api", &token, T0 + 60_001).reply, None);
    let calls = s.main.calls.len();
    s.bg.tick(&s.gw, &mut s.main, T0 + 60_500);
    assert!(!s.main.paths()[calls..].contains(&"idp /jwks".to_owned()));
    s.fetch_keys(T0 + 61_001, 200, &jwks);
    assert_eq!(s.main.counts.get("jwks_fetch_ok"), Some(&2));
}

#[test]
fn an_unknown_kid_asks_for_an_early_fetch_throttled_by_min_early_refresh() {
    let mut s = setup();
    let jwks = s.jwks.clone();
    s.fetch_keys(T0, 200, &jwks);
    let token = s.token("k2", "j-4");
    let denied = s.request("GET", "/api", &token, T0 + 1_000);
    assert_eq!(denied.reply.unwrap().0, 401);
    assert_eq!(denied.counts.get("denied.unknown_key"), Some(&1));
    // Within min_early_refresh_seconds (5 s) of the fetch: nothing.
    let calls = s.main.calls.len();
    s.bg.tick(&s.gw, &mut s.main, T0 + 1_100);
    assert!(!s.main.paths()[calls..].contains(&"idp /jwks".to_owned()));
    // After it, a new unknown kid fetches at once.
    s.request("GET", "/api", &token, T0 + 6_000);
    s.fetch_keys(T0 + 6_100, 200, &jwks);
}

#[test]
fn logout_revokes_on_every_worker_once_the_idp_confirms_and_answers_once() {
    let mut s = setup();
    let jwks = s.jwks.clone();
    s.fetch_keys(T0, 200, &jwks);
    let token = s.token("k1", "j-5");
    let bearer = format!("Bearer {token}");
    let headers = [
        (":method", "POST"),
        (":path", "/oauth2/logout"),
        ("authorization", bearer.as_str()),
    ];
    let plan = request::plan(&s.gw, &headers, T0);
    let mut stream = FakeStream::default();
    let (next, flow) = request::execute(&s.gw, &mut stream, plan, T0);
    assert_eq!(next, Next::StopAndBuffer);
    let mut flow = flow.unwrap();
    assert_eq!(stream.calls, [(1, "idp".to_owned()), (2, "rs".to_owned())]);

    assert_eq!(flow.on_answer(&s.gw, 1, Some(200), b"", T0 + 10), None);
    // Confirmed by the IDP: refused from now on, on any worker (another thread here).
    let gw = &s.gw;
    let (t, now) = (token.clone(), T0 + 20);
    let status = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let bearer = format!("Bearer {t}");
                let h = [
                    (":method", "GET"),
                    (":path", "/api"),
                    ("authorization", bearer.as_str()),
                ];
                match request::plan(gw, &h, now) {
                    Plan::Reply { status, counts, .. } => {
                        assert!(counts.contains(&("denied.revoked", 1)));
                        status
                    }
                    other => panic!("{other:?}"),
                }
            })
            .join()
            .unwrap()
    });
    assert_eq!(status, 401);
    let response = flow.on_answer(&s.gw, 2, Some(204), b"", T0 + 30).unwrap();
    assert_eq!(response.status, 200);
    // A duplicate answer changes nothing.
    assert_eq!(flow.on_answer(&s.gw, 2, Some(500), b"", T0 + 40), None);
}

#[test]
fn logout_reports_a_timed_out_step() {
    let mut s = setup();
    let jwks = s.jwks.clone();
    s.fetch_keys(T0, 200, &jwks);
    let token = s.token("k1", "j-6");
    let bearer = format!("Bearer {token}");
    let headers = [
        (":method", "POST"),
        (":path", "/oauth2/logout"),
        ("authorization", bearer.as_str()),
    ];
    let plan = request::plan(&s.gw, &headers, T0);
    let (_, flow) = request::execute(&s.gw, &mut FakeStream::default(), plan, T0);
    let mut flow = flow.unwrap();
    assert_eq!(flow.on_answer(&s.gw, 2, Some(200), b"", T0 + 10), None);
    let response = flow
        .on_answer(&s.gw, 1, Some(504), b"", T0 + 2_000)
        .unwrap();
    assert_eq!(response.status, 504, "{response:?}");
    assert!(response.body.contains("idp_revocation"), "{response:?}");
}

#[test]
fn get_on_the_logout_path_is_405() {
    let s = setup();
    let plan = request::plan(
        &s.gw,
        &[(":method", "GET"), (":path", "/oauth2/logout")],
        T0,
    );
    match plan {
        Plan::Reply {
            status, headers, ..
        } => {
            assert_eq!(status, 405);
            assert_eq!(headers, [("allow", "POST".to_owned())]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_revocation_feed_is_applied_and_its_cursor_followed() {
    let mut s = setup();
    let jwks = s.jwks.clone();
    s.fetch_keys(T0, 200, &jwks);
    let (index, (_, headers)) = s
        .main
        .calls
        .iter()
        .enumerate()
        .find(|(_, (_, h))| {
            h.iter()
                .any(|(k, v)| k == ":path" && v == "/oauth2/revocations")
        })
        .unwrap();
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "authorization" && v.starts_with("Basic "))
    );
    let page = json!({"cursor": "7", "revoked": [{"jti": "j-7", "exp": T0 / 1000 + 300}]});
    s.bg.answer(
        &s.gw,
        &mut s.main,
        index as u64 + 1,
        Some(200),
        page.to_string().as_bytes(),
        T0,
    );
    assert_eq!(s.main.counts.get("revocation_poll_ok"), Some(&1));
    let token = s.token("k1", "j-7");
    assert_eq!(
        s.request("GET", "/api", &token, T0 + 10).reply.unwrap().0,
        401
    );
    // A page with entries: the next (long) poll starts at the next tick, from the new cursor.
    s.bg.tick(&s.gw, &mut s.main, T0 + 100);
    assert!(
        s.main
            .paths()
            .contains(&"idp /oauth2/revocations?since=7&wait=20".to_owned())
    );
}

/// The feed polls found in the calls made so far.
fn feed_polls(s: &Setup) -> Vec<(usize, String)> {
    s.main
        .paths()
        .into_iter()
        .enumerate()
        .filter(|(_, p)| p.starts_with("idp /oauth2/revocations"))
        .collect()
}

#[test]
fn a_held_empty_poll_is_followed_at_once_and_a_fast_one_after_poll_ms() {
    let mut s = setup();
    s.ready(T0);
    let empty = json!({"cursor": "3", "revoked": []});
    // Up to date: the next poll (at once) is a long one.
    s.bg.tick(&s.gw, &mut s.main, T0 + 100);
    let polls = feed_polls(&s);
    assert_eq!(polls.len(), 2, "{polls:?}");
    assert_eq!(polls[1].1, "idp /oauth2/revocations?since=0&wait=20");
    // The IDP held the poll for its 20 s wait and answered with nothing: poll again at once.
    let held_until = T0 + 20_100;
    s.answer_feed(held_until, &empty);
    s.bg.tick(&s.gw, &mut s.main, held_until + 100);
    let polls = feed_polls(&s);
    assert_eq!(polls.len(), 3, "{polls:?}");
    // This time the IDP answers the empty page at once (it does not hold requests): the next
    // poll waits for poll_ms (500 ms), as plain polling does.
    let answered = held_until + 105;
    s.answer_feed(answered, &empty);
    s.bg.tick(&s.gw, &mut s.main, answered + 100);
    assert_eq!(feed_polls(&s).len(), 3, "no poll before poll_ms");
    s.bg.tick(&s.gw, &mut s.main, answered + 500);
    assert_eq!(feed_polls(&s).len(), 4, "a poll after poll_ms");
}

#[test]
fn header_bytes_that_are_not_utf8_read_with_question_marks() {
    assert_eq!(header_text(b"plain"), "plain");
    assert_eq!(header_text(b"a\xffb\xc3"), "a?b?");
}
