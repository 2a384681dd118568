//! The native host's introspection flow over fakes: an opaque token holds the request while the
//! provider is asked; the answer lets it through (claim headers set, request continued) or refuses
//! it; a second worker is served from the shared answer without asking again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::host::{Stream, Wake};
use crate::introspection_flow::{Held, abandon, on_answer, on_woken, start};
use crate::metrics::Counters;
use crate::request::{Next, Plan, execute, plan};
use crate::shared::Gateway;
use filter::config::FilterConfig;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const NOW_MS: u64 = 1_900_000_000_000;
const TOKEN: &str = "opaque-abc";

#[derive(Default)]
struct Fake {
    set: BTreeMap<String, Option<String>>,
    reply: Option<(u32, String)>,
    calls: Vec<(String, String)>,
    continued: bool,
    wakes: Arc<Wakes>,
}

/// How many times a stream was woken.
#[derive(Default)]
struct Wakes(AtomicUsize);

impl Wake for Wakes {
    fn wake(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl Wakes {
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Stream for Fake {
    fn set_request_header(&mut self, name: &str, value: Option<&str>) {
        self.set.insert(name.to_owned(), value.map(str::to_owned));
    }
    fn send_response(&mut self, status: u32, _: &[(&str, &str)], body: &[u8]) {
        self.reply = Some((status, String::from_utf8_lossy(body).into_owned()));
    }
    fn callout(&mut self, cluster: &str, _: &[(&str, &str)], body: &[u8], _: u64) -> Option<u64> {
        self.calls.push((
            cluster.to_owned(),
            String::from_utf8_lossy(body).into_owned(),
        ));
        Some(self.calls.len() as u64)
    }
    fn count(&mut self, _: &str, _: u64) {}
    fn continue_request(&mut self) {
        self.continued = true;
    }
    fn waker(&mut self) -> Option<Arc<dyn Wake>> {
        Some(self.wakes.clone())
    }
}

fn gateway() -> Gateway {
    let config = json!({
        "providers": [{
            "issuer": "https://op.test", "audiences": ["api"], "algorithms": ["ES256"],
            "introspection": {"cluster": "op", "path": "/introspect", "client_id": "gateway",
                              "client_secret": "gateway-secret-0123456789"}
        }]
    });
    let config = FilterConfig::from_json(config.to_string().as_bytes()).unwrap();
    Gateway::new(config, Counters::default())
}

fn headers() -> Vec<(&'static str, String)> {
    vec![
        (":method", "GET".to_owned()),
        (":path", "/api".to_owned()),
        ("authorization", format!("Bearer {TOKEN}")),
    ]
}

fn pairs<'a>(h: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    h.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn hold(gw: &Gateway, stream: &mut Fake) -> Held {
    let h = headers();
    let Plan::Introspect {
        provider, token, ..
    } = plan(gw, &pairs(&h), NOW_MS)
    else {
        panic!("not introspected");
    };
    start(gw, stream, &pairs(&h), provider, token, NOW_MS).expect("held")
}

fn held(gw: &Gateway, stream: &mut Fake) -> crate::introspection_flow::IntrospectionCall {
    match hold(gw, stream) {
        Held::Asking(call) => call,
        Held::Following => panic!("followed instead of asking"),
    }
}

#[test]
fn an_active_answer_lets_the_held_request_through_and_serves_the_next_worker() {
    let gw = gateway();
    let mut stream = Fake::default();
    let pending = held(&gw, &mut stream);
    assert_eq!(stream.calls[0].0, "op");
    assert!(stream.calls[0].1.starts_with("token=opaque-abc&"));
    let answer = json!({"active": true, "iss": "https://op.test", "aud": "api", "sub": "alice",
                        "exp": NOW_MS / 1_000 + 300})
    .to_string();
    let h = headers();
    on_answer(
        &gw,
        &mut stream,
        &pending,
        (Some(200), answer.as_bytes()),
        &pairs(&h),
        NOW_MS,
    );
    assert!(stream.continued, "the request goes on");
    assert_eq!(
        stream.set.get("x-auth-sub"),
        Some(&Some("alice".to_owned()))
    );
    assert_eq!(stream.reply, None);
    // Another worker thread: served from the shared answer, nothing asked.
    let other = std::thread::scope(|s| {
        s.spawn(|| matches!(plan(&gw, &pairs(&h), NOW_MS + 1_000), Plan::Forward { .. }))
            .join()
            .unwrap()
    });
    assert!(other);
}

#[test]
fn inactive_and_unusable_answers_refuse_the_held_request() {
    for (status, body, expected) in [
        (Some(200), r#"{"active": false}"#, 401),
        (Some(500), "", 503),
        (None, "", 503),
    ] {
        let gw = gateway();
        let mut stream = Fake::default();
        let pending = held(&gw, &mut stream);
        let h = headers();
        on_answer(
            &gw,
            &mut stream,
            &pending,
            (status, body.as_bytes()),
            &pairs(&h),
            NOW_MS,
        );
        assert!(!stream.continued);
        assert_eq!(
            stream.reply.as_ref().map(|r| r.0),
            Some(expected),
            "{status:?} {body}"
        );
    }
}

#[test]
fn the_introspect_plan_holds_the_request() {
    let gw = gateway();
    let h = headers();
    let plan = plan(&gw, &pairs(&h), NOW_MS);
    let (next, _) = execute(&gw, &mut Fake::default(), plan, NOW_MS);
    assert_eq!(next, Next::StopAndBuffer);
}

#[test]
fn a_second_request_for_a_token_being_asked_about_follows_that_call_and_is_woken_by_its_answer() {
    let gw = gateway();
    let mut leader = Fake::default();
    let pending = held(&gw, &mut leader);
    // Another worker, same token, while the call is in flight: no call of its own.
    let mut follower = std::thread::scope(|s| {
        s.spawn(|| {
            let mut follower = Fake::default();
            assert!(matches!(hold(&gw, &mut follower), Held::Following));
            follower
        })
        .join()
        .unwrap()
    });
    assert!(follower.calls.is_empty(), "one call in flight per token");
    assert_eq!(follower.wakes.count(), 0, "held until the answer");
    let answer = json!({"active": true, "iss": "https://op.test", "aud": "api", "sub": "alice",
                        "exp": NOW_MS / 1_000 + 300})
    .to_string();
    let h = headers();
    on_answer(
        &gw,
        &mut leader,
        &pending,
        (Some(200), answer.as_bytes()),
        &pairs(&h),
        NOW_MS,
    );
    assert_eq!(follower.wakes.count(), 1, "woken by the answer");
    on_woken(&gw, &mut follower, &pairs(&h), NOW_MS + 5);
    assert!(follower.continued);
    assert_eq!(
        follower.set.get("x-auth-sub"),
        Some(&Some("alice".to_owned()))
    );
}

#[test]
fn followers_of_a_call_that_failed_or_was_abandoned_are_refused_with_503_not_left_waiting() {
    // The provider failed: the followers learn it from the missing answer.
    let gw = gateway();
    let mut leader = Fake::default();
    let pending = held(&gw, &mut leader);
    let mut follower = Fake::default();
    assert!(matches!(hold(&gw, &mut follower), Held::Following));
    let h = headers();
    on_answer(
        &gw,
        &mut leader,
        &pending,
        (Some(500), b""),
        &pairs(&h),
        NOW_MS,
    );
    assert_eq!(follower.wakes.count(), 1);
    on_woken(&gw, &mut follower, &pairs(&h), NOW_MS + 5);
    assert!(!follower.continued);
    assert_eq!(follower.reply.as_ref().map(|r| r.0), Some(503));

    // The asking stream ended (client gone) before the answer.
    let gw = gateway();
    let mut leader = Fake::default();
    let pending = held(&gw, &mut leader);
    let mut follower = Fake::default();
    assert!(matches!(hold(&gw, &mut follower), Held::Following));
    abandon(&gw, &pending);
    assert_eq!(follower.wakes.count(), 1);
    // and the next request for that token asks again
    let mut next = Fake::default();
    assert!(matches!(hold(&gw, &mut next), Held::Asking(_)));
}
