//! Hostile arguments, runaway and trapping guests, stream control, HTTP calls.

use crate::support::*;
use host_test::{HostError, Limits, LogLevel, LogSource, Outcome, Request, Response, Vm};

use std::time::Duration;

#[test]
fn hostile_pointers_and_sizes_get_a_status_not_a_crash() {
    let mut envoy = envoy();
    let vm = envoy.main();
    assert_eq!(
        root_status(vm, "t_log", &[i(2), i(0xFFFF_FFF0), i(100)]),
        INVALID_MEMORY
    );
    assert_eq!(
        root_status(vm, "t_log", &[i(2), i(200_000), i(10)]),
        INVALID_MEMORY
    );
    // Over the read cap (16 MiB): refused before touching memory.
    assert_eq!(
        root_status(vm, "t_log", &[i(2), i(0), i(0x7FFF_FFFF)]),
        BAD_ARGUMENT
    );
    let [msg, len] = put(vm, b"hello");
    assert_eq!(root_status(vm, "t_log", &[i(99), msg, len]), BAD_ARGUMENT);
    assert_eq!(root_status(vm, "t_log", &[i(3), msg, len]), OK);
    // Results written to a pointer outside memory.
    envoy.set_shared_data("k", b"v").unwrap();
    let vm = envoy.main();
    let [key, key_len] = put(vm, b"k");
    let args = [key, key_len, i(0xFFFF_FFFC), i(0), i(0)];
    assert_eq!(root_status(vm, "t_get_shared", &args), INVALID_MEMORY);
    // The VM is still healthy.
    assert!(vm.failure().is_none());
    let logs = vm.logs();
    assert!(logs.iter().any(|e| e.message == "hello"
        && e.level == LogLevel::Warn
        && e.source == LogSource::Guest));
}

#[test]
fn a_runaway_guest_is_stopped_and_the_vm_fails_closed() {
    let limits = Limits {
        fuel_per_call: 5_000_000,
        ..Limits::default()
    };
    let mut envoy = probe().envoy(options().workers(1).limits(limits)).unwrap();
    let vm = envoy.worker(0);
    set_mode(vm, 3);
    let error = vm.request(Request::get("/")).unwrap_err();
    assert!(matches!(error, HostError::OutOfFuel { .. }), "{error}");
    assert!(vm.failure().is_some());
    let again = vm.request(Request::get("/")).unwrap_err();
    assert!(matches!(again, HostError::VmFailed(_)), "{again}");
}

#[test]
fn a_trap_is_reported_with_the_guests_last_words() {
    let mut envoy = envoy();
    let vm = envoy.worker(0);
    set_mode(vm, 4);
    match vm.request(Request::get("/")).unwrap_err() {
        HostError::Trap {
            callback,
            guest_said,
            trap,
        } => {
            assert_eq!(callback, "proxy_on_request_headers");
            assert_eq!(guest_said.as_deref(), Some("boom"));
            assert!(trap.contains("unreachable"), "{trap}");
        }
        other => panic!("{other}"),
    }
    // Other workers are unaffected.
    assert!(
        envoy
            .worker(1)
            .request(Request::get("/"))
            .unwrap()
            .is_continued()
    );
}

#[test]
fn a_local_reply_passes_through_the_filters_response_headers() {
    let mut envoy = envoy();
    let vm = envoy.worker(0);
    set_mode(vm, 2);
    let outcome = vm.request(Request::get("/")).unwrap();
    let local = outcome
        .local_reply()
        .unwrap_or_else(|| panic!("{outcome:#?}"));
    assert_eq!(local.reply.status, 403);
    assert_eq!(local.reply.body_text(), "denied");
    assert_eq!(
        local.details, "probe_denied",
        "whitespace becomes _ as in Envoy"
    );
    assert_eq!(local.grpc_status, -1);
    let h = &local.reply.headers;
    assert_eq!(h.get(":status"), Some("403"));
    assert_eq!(h.get("x-why"), Some("probe"));
    assert_eq!(h.get("content-length"), Some("6"));
    assert_eq!(h.get("content-type"), Some("text/plain"));
    assert_eq!(h.get("x-seen-by-probe"), Some("yes"));
}

#[test]
fn a_continued_request_reaches_the_upstream_with_the_filters_changes() {
    let mut envoy = envoy();
    let vm = envoy.worker(0);
    set_mode(vm, 5);
    let request = Request::post("/submit")
        .header("X-Client", "a")
        .body("payload")
        .upstream_response(Response::new(201).header("etag", "\"1\"").body("created"));
    let outcome = vm.request(request).unwrap();
    let up = outcome.upstream().unwrap_or_else(|| panic!("{outcome:#?}"));
    assert_eq!(up.header("x-probe"), Some("1"));
    assert_eq!(up.header("x-client"), Some("a"));
    assert_eq!(up.header(":method"), Some("POST"));
    assert_eq!(up.request_body.as_deref(), Some(&b"payload"[..]));
    assert_eq!(up.reply.status, 201);
    assert_eq!(up.reply.header("etag"), Some("\"1\""));
    assert_eq!(up.reply.header("x-seen-by-probe"), Some("yes"));
    assert_eq!(up.reply.body, b"created");
}

#[test]
fn close_stream_resets_the_request() {
    let mut envoy = envoy();
    let vm = envoy.worker(0);
    set_mode(vm, 6);
    assert_eq!(vm.request(Request::get("/")).unwrap(), Outcome::Reset);
}

fn dispatch(vm: &mut Vm, cluster: &str, headers: &[(&str, &str)], timeout: u32) -> (i32, u32) {
    let [c, c_len] = put(vm, cluster.as_bytes());
    let [h, h_len] = put(vm, &pairs(headers));
    let [b, b_len] = put(vm, b"request-body");
    let token = vm.write_guest(&[0; 4]).unwrap();
    let args = [
        c,
        c_len,
        h,
        h_len,
        b,
        b_len,
        i(0),
        i(0),
        i(timeout),
        i(token),
    ];
    let status = root_status(vm, "t_http_call", &args);
    (status, u32_at(vm, token))
}

const GET_JWKS: &[(&str, &str)] = &[
    (":method", "GET"),
    (":path", "/jwks"),
    (":authority", "idp.test"),
];

#[test]
fn http_calls_are_validated_like_envoy() {
    let mut envoy = envoy();
    let vm = envoy.main();
    assert_eq!(
        dispatch(vm, "nope", GET_JWKS, 1000).0,
        BAD_ARGUMENT,
        "unknown cluster"
    );
    let no_path = &GET_JWKS[..1];
    assert_eq!(
        dispatch(vm, "idp", no_path, 1000).0,
        BAD_ARGUMENT,
        "missing :path"
    );
    assert_eq!(
        dispatch(vm, "idp", GET_JWKS, u32::MAX).0,
        BAD_ARGUMENT,
        "negative timeout"
    );
    let (status, token) = dispatch(vm, "idp", GET_JWKS, 2000);
    assert_eq!(status, OK);
    assert_ne!(token, 0);
    let calls = envoy.pending_http_calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!((call.id.vm, call.id.token), (0, token));
    assert_eq!(call.path(), Some("/jwks"));
    assert_eq!(call.body, b"request-body");
    assert_eq!(call.headers.get("content-length"), Some("12"));
    assert_eq!(call.timeout, Some(Duration::from_secs(2)));
}

#[test]
fn an_http_call_answer_is_readable_in_the_callback_and_can_resume_a_paused_stream() {
    let mut envoy = envoy();
    let vm = envoy.worker(0);
    set_mode(vm, 1);
    let outcome = vm.request(Request::get("/wait")).unwrap();
    let Outcome::Paused(stream) = outcome else {
        panic!("{outcome:#?}");
    };
    assert_eq!(vm.paused_streams(), vec![stream]);
    let (status, token) = dispatch(vm, "idp", GET_JWKS, 5000);
    assert_eq!(status, OK);
    vm.respond_http_call(token, Response::new(200).body("the-body"))
        .unwrap();
    let logged: Vec<&str> = vm.logs().iter().map(|e| e.message.as_str()).collect();
    assert!(
        logged.contains(&"200") && logged.contains(&"the-body"),
        "{logged:?}"
    );
    let resumed = vm.outcome(stream);
    assert!(resumed.is_continued(), "{resumed:#?}");
    assert!(vm.paused_streams().is_empty());
}

#[test]
fn a_call_that_is_never_answered_times_out_with_envoys_504() {
    let mut envoy = envoy();
    let (status, _) = dispatch(envoy.main(), "idp", GET_JWKS, 1500);
    assert_eq!(status, OK);
    envoy.advance(Duration::from_millis(1499)).unwrap();
    assert_eq!(envoy.pending_http_calls().len(), 1);
    envoy.advance(Duration::from_millis(1)).unwrap();
    assert!(envoy.pending_http_calls().is_empty());
    let logged: Vec<String> = envoy
        .main()
        .logs()
        .iter()
        .map(|e| e.message.clone())
        .collect();
    assert!(logged.contains(&"504".to_owned()), "{logged:?}");
    assert!(logged.contains(&"upstream request timeout".to_owned()));
}

#[test]
fn a_reset_call_has_no_response_maps_and_reports_broken_connection() {
    let mut envoy = envoy();
    let vm = envoy.main();
    let (_, token) = dispatch(vm, "idp", GET_JWKS, 0);
    vm.answer_http_call(token, host_test::CallAnswer::Reset)
        .unwrap();
    // The probe logs `:status` only when the map read succeeds: it must not have.
    assert!(vm.logs().iter().all(|e| e.source != LogSource::Guest));
    // Outside a callback the status is cleared again.
    let code = vm.write_guest(&[0; 4]).unwrap();
    let (p, s) = slots(vm);
    assert_eq!(root_status(vm, "t_get_status", &[i(code), i(p), i(s)]), OK);
    assert_eq!(u32_at(vm, code), 0);
}
