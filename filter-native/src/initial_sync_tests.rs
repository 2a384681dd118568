//! A fresh gateway refuses tokens (503) until the revocation feed was read up to date, on every
//! worker thread; pages cut short (`more: true`) are followed at once and without a long poll; the
//! opt-out accepts tokens as soon as there are keys.

use super::{Setup, T0, feed_polls, setup, setup_with};
use crate::request::{self, Plan};
use serde_json::json;

fn status_on_another_thread(s: &Setup, token: &str, now: u64) -> (u32, bool) {
    let gw = &s.gw;
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let bearer = format!("Bearer {token}");
                let h = [
                    (":method", "GET"),
                    (":path", "/api"),
                    ("authorization", bearer.as_str()),
                ];
                match request::plan(gw, &h, now) {
                    Plan::Forward { .. } => (200, false),
                    Plan::Reply { status, counts, .. } => (
                        status,
                        counts.contains(&("denied.revocations_not_loaded", 1)),
                    ),
                    other => panic!("{other:?}"),
                }
            })
            .join()
            .unwrap()
    })
}

#[test]
fn tokens_wait_for_the_feed_read_up_to_date_across_pages() {
    let mut s = setup();
    let jwks = s.jwks.clone();
    s.fetch_keys(T0, 200, &jwks);
    let (valid, revoked) = (s.token("k1", "j-ok"), s.token("k1", "j-gone"));
    let refused = s.request("GET", "/api", &valid, T0 + 10);
    let (status, _, body) = refused.reply.unwrap();
    assert_eq!(status, 503);
    assert_eq!(
        body,
        "revoked tokens are not loaded yet; try again shortly\n"
    );
    assert_eq!(
        refused.counts.get("denied.revocations_not_loaded"),
        Some(&1)
    );
    assert_eq!(status_on_another_thread(&s, &valid, T0 + 10), (503, true));

    // A full page: its revocations apply, but more follow: still not loaded.
    let exp = T0 / 1000 + 300;
    let asked = s.answer_feed(
        T0 + 20,
        &json!({"cursor": "1000", "revoked": [{"jti": "j-gone", "exp": exp}], "more": true}),
    );
    assert_eq!(
        asked, "idp /oauth2/revocations",
        "no wait before the first page"
    );
    assert_eq!(
        s.request("GET", "/api", &valid, T0 + 30).reply.unwrap().0,
        503
    );
    let known = s.request("GET", "/api", &revoked, T0 + 30);
    assert_eq!(known.reply.unwrap().0, 401, "known revoked: 401 as always");
    assert_eq!(s.main.counts.get("revocation_feed_synced"), None);

    // The rest at the next tick, from the cursor, still not held.
    s.bg.tick(&s.gw, &mut s.main, T0 + 100);
    let polls = feed_polls(&s);
    assert_eq!(
        polls.last().unwrap().1,
        "idp /oauth2/revocations?since=1000"
    );
    s.answer_feed(
        T0 + 110,
        &json!({"cursor": "1001", "revoked": [], "more": false}),
    );
    assert_eq!(s.main.counts.get("revocation_feed_synced"), Some(&1));
    let accepted = s.request("GET", "/api", &valid, T0 + 120);
    assert_eq!(accepted.reply, None);
    assert_eq!(status_on_another_thread(&s, &valid, T0 + 120), (200, false));
    assert_eq!(
        s.request("GET", "/api", &revoked, T0 + 120)
            .reply
            .unwrap()
            .0,
        401
    );

    // From now on long polls; a failed one keeps the gateway loaded (the list it has).
    s.bg.tick(&s.gw, &mut s.main, T0 + 200);
    let (index, path) = feed_polls(&s).pop().unwrap();
    assert_eq!(path, "idp /oauth2/revocations?since=1001&wait=20");
    s.bg.answer(&s.gw, &mut s.main, index as u64 + 1, None, b"", T0 + 23_200);
    assert_eq!(s.main.counts.get("revocation_poll_failed"), Some(&1));
    assert_eq!(s.request("GET", "/api", &valid, T0 + 23_300).reply, None);
    // Counted once.
    assert_eq!(s.main.counts.get("revocation_feed_synced"), Some(&1));
}

#[test]
fn a_failed_first_poll_keeps_tokens_refused() {
    let mut s = setup();
    let jwks = s.jwks.clone();
    s.fetch_keys(T0, 200, &jwks);
    let (index, _) = feed_polls(&s).pop().unwrap();
    s.bg.answer(
        &s.gw,
        &mut s.main,
        index as u64 + 1,
        Some(500),
        b"down",
        T0 + 10,
    );
    let valid = s.token("k1", "j-ok");
    assert_eq!(
        s.request("GET", "/api", &valid, T0 + 20).reply.unwrap().0,
        503
    );
    // An IDP without the `more` flag: one page read is up to date.
    s.bg.tick(&s.gw, &mut s.main, T0 + 1_100);
    s.answer_feed(T0 + 1_110, &json!({"cursor": "4", "revoked": []}));
    assert_eq!(s.request("GET", "/api", &valid, T0 + 1_120).reply, None);
}

#[test]
fn the_opt_out_accepts_tokens_as_soon_as_there_are_keys() {
    let mut config = super::config();
    config["revocation_feed"]["require_initial_sync"] = json!(false);
    let mut s = setup_with(config);
    let jwks = s.jwks.clone();
    s.fetch_keys(T0, 200, &jwks);
    let valid = s.token("k1", "j-ok");
    assert_eq!(s.request("GET", "/api", &valid, T0 + 10).reply, None);
}
