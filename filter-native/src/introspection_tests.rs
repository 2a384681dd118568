//! The native host's introspection flow over fakes: an opaque token holds the request while the
//! provider is asked; the answer lets it through (claim headers set, request continued) or refuses
//! it; a second worker is served from the shared answer without asking again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::host::Stream;
use crate::introspection_flow::{on_answer, start};
use crate::metrics::Counters;
use crate::request::{Next, Plan, execute, plan};
use crate::shared::Gateway;
use filter::config::FilterConfig;
use serde_json::json;
use std::collections::BTreeMap;

const NOW_MS: u64 = 1_900_000_000_000;
const TOKEN: &str = "opaque-abc";

#[derive(Default)]
struct Fake {
    set: BTreeMap<String, Option<String>>,
    reply: Option<(u32, String)>,
    calls: Vec<(String, String)>,
    continued: bool,
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

fn held(gw: &Gateway, stream: &mut Fake) -> crate::introspection_flow::IntrospectionCall {
    let h = headers();
    let Plan::Introspect {
        provider, token, ..
    } = plan(gw, &pairs(&h), NOW_MS)
    else {
        panic!("not introspected");
    };
    start(gw, stream, &pairs(&h), provider, token, NOW_MS).expect("a call")
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
