//! The ABI itself, probed with a hand-written guest (fixtures/probe.wat): hostile arguments,
//! runaway and trapping guests, stream control, HTTP calls, shared data, queues, metrics,
//! properties, foreign functions, time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use host_test::{
    Envoy, EnvoyOptions, Host, HostError, Limits, LogLevel, LogSource, Outcome, Request, Response,
    Status, Val, Vm,
};
use prost::Message;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

fn probe() -> Host {
    static PROBE: OnceLock<Host> = OnceLock::new();
    PROBE
        .get_or_init(|| {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/probe.wat");
            Host::from_bytes(&std::fs::read(&path).unwrap(), "probe.wat").unwrap()
        })
        .clone()
}

fn options() -> EnvoyOptions {
    EnvoyOptions::new()
        .workers(2)
        .plugin_name("probe-plugin")
        .clusters(["idp"])
        .vm_config("vm-config-bytes")
        .property("node.id", "node-1")
}

fn envoy() -> Envoy {
    probe().envoy(options()).unwrap()
}

fn i(v: u32) -> Val {
    Val::I32(i32::from_ne_bytes(v.to_ne_bytes()))
}

/// Calls a trampoline in `context`; returns its status.
fn status(vm: &mut Vm, name: &str, context: u32, args: &[Val]) -> i32 {
    match vm.call_export(name, context, args).unwrap().first() {
        Some(Val::I32(s)) => *s,
        other => panic!("{name} returned {other:?}"),
    }
}

fn root_status(vm: &mut Vm, name: &str, args: &[Val]) -> i32 {
    let root = vm.root_context();
    status(vm, name, root, args)
}

/// Guest memory holding `bytes`: (address, len) as call arguments.
fn put(vm: &mut Vm, bytes: &[u8]) -> [Val; 2] {
    let address = vm.write_guest(bytes).unwrap();
    [i(address), i(u32::try_from(bytes.len()).unwrap())]
}

/// Two zeroed u32 slots for a returned (pointer, size): their addresses.
fn slots(vm: &mut Vm) -> (u32, u32) {
    let address = vm.write_guest(&[0; 8]).unwrap();
    (address, address + 4)
}

fn u32_at(vm: &mut Vm, address: u32) -> u32 {
    u32::from_le_bytes(vm.read_guest(address, 4).unwrap().try_into().unwrap())
}

/// The bytes a hostcall returned through (pointer, size) slots.
fn returned(vm: &mut Vm, (ptr, size): (u32, u32)) -> Vec<u8> {
    let (ptr, size) = (u32_at(vm, ptr), u32_at(vm, size));
    if ptr == 0 {
        return Vec::new();
    }
    vm.read_guest(ptr, size).unwrap()
}

fn pairs(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut out = u32::try_from(pairs.len()).unwrap().to_le_bytes().to_vec();
    for (k, v) in pairs {
        out.extend(u32::try_from(k.len()).unwrap().to_le_bytes());
        out.extend(u32::try_from(v.len()).unwrap().to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend(k.as_bytes());
        out.push(0);
        out.extend(v.as_bytes());
        out.push(0);
    }
    out
}

fn set_mode(vm: &mut Vm, mode: u32) {
    vm.call_export("set_mode", 0, &[i(mode)]).unwrap();
}

const OK: i32 = Status::Ok as i32;
const NOT_FOUND: i32 = Status::NotFound as i32;
const BAD_ARGUMENT: i32 = Status::BadArgument as i32;
const INVALID_MEMORY: i32 = Status::InvalidMemoryAccess as i32;

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

#[test]
fn shared_data_is_shared_across_vms_with_compare_and_swap() {
    let mut envoy = envoy();
    let set = |vm: &mut Vm, value: &[u8], cas: u32| {
        let [k, kl] = put(vm, b"key");
        let [v, vl] = put(vm, value);
        root_status(vm, "t_set_shared", &[k, kl, v, vl, i(cas)])
    };
    let get = |vm: &mut Vm| -> (i32, Vec<u8>, u32) {
        let [k, kl] = put(vm, b"key");
        let (p, s) = slots(vm);
        let cas = vm.write_guest(&[0; 4]).unwrap();
        let status = root_status(vm, "t_get_shared", &[k, kl, i(p), i(s), i(cas)]);
        let value = returned(vm, (p, s));
        (status, value, u32_at(vm, cas))
    };
    assert_eq!(get(envoy.worker(0)).0, NOT_FOUND);
    assert_eq!(set(envoy.worker(0), b"one", 0), OK);
    let (status, value, cas) = get(envoy.worker(1));
    assert_eq!((status, value.as_slice()), (OK, &b"one"[..]));
    assert_eq!(set(envoy.worker(1), b"two", cas), OK);
    assert_eq!(
        set(envoy.worker(0), b"three", cas),
        Status::CasMismatch as i32
    );
    assert_eq!(envoy.shared_data("key").unwrap().0, b"two");
}

#[test]
fn shared_queues_notify_the_registering_vm() {
    let mut envoy = envoy();
    let vm = envoy.main();
    let [n, nl] = put(vm, b"events");
    let id_slot = vm.write_guest(&[0; 4]).unwrap();
    assert_eq!(
        root_status(vm, "t_register_queue", &[n, nl, i(id_slot)]),
        OK
    );
    let id = u32_at(vm, id_slot);

    let worker = envoy.worker(1);
    let [vm_id, vm_id_len] = put(worker, b"");
    let [n, nl] = put(worker, b"events");
    let found = worker.write_guest(&[0; 4]).unwrap();
    let args = [vm_id, vm_id_len, n, nl, i(found)];
    assert_eq!(root_status(worker, "t_resolve_queue", &args), OK);
    assert_eq!(u32_at(worker, found), id);
    let [m, ml] = put(worker, b"hello from worker-1");
    assert_eq!(root_status(worker, "t_enqueue", &[i(id), m, ml]), OK);
    assert_eq!(envoy.queue_len("events"), Some(1));

    envoy.deliver_queue_events().unwrap();
    assert_eq!(envoy.queue_len("events"), Some(0));
    assert!(
        envoy
            .main()
            .logs()
            .iter()
            .any(|e| e.message == "hello from worker-1")
    );
    let [m, ml] = put(envoy.worker(0), b"x");
    assert_eq!(
        root_status(envoy.worker(0), "t_enqueue", &[i(9999), m, ml]),
        NOT_FOUND
    );
}

#[test]
fn metrics_are_one_stat_per_name_across_vms() {
    let mut envoy = envoy();
    let define = |vm: &mut Vm, kind: u32, name: &str| -> (i32, u32) {
        let [n, nl] = put(vm, name.as_bytes());
        let slot = vm.write_guest(&[0; 4]).unwrap();
        let status = root_status(vm, "t_define_metric", &[i(kind), n, nl, i(slot)]);
        (status, u32_at(vm, slot))
    };
    let (s0, c0) = define(envoy.worker(0), 0, "probe.requests");
    let (s1, c1) = define(envoy.worker(1), 0, "probe.requests");
    assert_eq!((s0, s1), (OK, OK));
    for (w, id) in [(0, c0), (1, c1), (1, c1)] {
        let vm = envoy.worker(w);
        assert_eq!(
            root_status(vm, "t_increment_metric", &[i(id), Val::I64(1)]),
            OK
        );
    }
    assert_eq!(envoy.metric("probe.requests"), Some(3));
    let vm = envoy.worker(0);
    assert_eq!(
        root_status(vm, "t_increment_metric", &[i(c0), Val::I64(-1)]),
        BAD_ARGUMENT,
        "counters only go up"
    );
    let out = vm.write_guest(&[0; 8]).unwrap();
    assert_eq!(root_status(vm, "t_get_metric", &[i(c0), i(out)]), OK);
    assert_eq!(vm.read_guest(out, 8).unwrap(), 3u64.to_le_bytes());

    let (_, h) = define(envoy.worker(0), 2, "probe.latency");
    let vm = envoy.worker(0);
    assert_eq!(root_status(vm, "t_record_metric", &[i(h), Val::I64(7)]), OK);
    assert_eq!(
        root_status(vm, "t_get_metric", &[i(h), i(out)]),
        BAD_ARGUMENT
    );
    assert_eq!(
        root_status(vm, "t_get_metric", &[i(12345), i(out)]),
        NOT_FOUND
    );
    assert_eq!(
        envoy.metric_value("probe.latency"),
        Some(host_test::MetricValue::Histogram(vec![7]))
    );
    assert_eq!(
        define(envoy.worker(0), 1, "probe.requests").0,
        BAD_ARGUMENT,
        "type clash"
    );
    assert_eq!(
        define(envoy.worker(0), 7, "x").0,
        BAD_ARGUMENT,
        "no such type"
    );
}

fn property(vm: &mut Vm, context: u32, path: &[&str]) -> (i32, Vec<u8>) {
    let [p, pl] = put(vm, path.join("\0").as_bytes());
    let (rp, rs) = slots(vm);
    let status = status(vm, "t_get_property", context, &[p, pl, i(rp), i(rs)]);
    (status, returned(vm, (rp, rs)))
}

#[test]
fn properties_of_the_plugin_and_of_the_request() {
    let mut envoy = envoy();
    let vm = envoy.worker(0);
    let root = vm.root_context();
    assert_eq!(
        property(vm, root, &["plugin_name"]),
        (OK, b"probe-plugin".to_vec())
    );
    assert_eq!(
        property(vm, root, &["node", "id"]),
        (OK, b"node-1".to_vec())
    );
    assert_eq!(
        property(vm, root, &["request", "path"]).0,
        NOT_FOUND,
        "no request here"
    );
    assert_eq!(property(vm, root, &["no", "such"]).0, NOT_FOUND);

    set_mode(vm, 1);
    let Outcome::Paused(stream) = vm
        .request(Request::get("/items?page=2").header("user-agent", "probe/1"))
        .unwrap()
    else {
        panic!("expected a paused stream");
    };
    let ctx = stream.0;
    assert_eq!(
        property(vm, ctx, &["request", "path"]),
        (OK, b"/items?page=2".to_vec())
    );
    assert_eq!(
        property(vm, ctx, &["request", "url_path"]),
        (OK, b"/items".to_vec())
    );
    assert_eq!(
        property(vm, ctx, &["request", "query"]),
        (OK, b"page=2".to_vec())
    );
    assert_eq!(
        property(vm, ctx, &["request", "method"]),
        (OK, b"GET".to_vec())
    );
    assert_eq!(
        property(vm, ctx, &["request", "useragent"]),
        (OK, b"probe/1".to_vec())
    );
    assert_eq!(property(vm, ctx, &["response", "code"]).0, NOT_FOUND);

    // set_property needs a stream; the value reads back.
    let [p, pl] = put(vm, b"filter_state\0mine");
    let [v, vl] = put(vm, b"value");
    assert_eq!(status(vm, "t_set_property", ctx, &[p, pl, v, vl]), OK);
    assert_eq!(
        status(vm, "t_set_property", root, &[p, pl, v, vl]),
        NOT_FOUND
    );
    assert_eq!(
        property(vm, ctx, &["filter_state", "mine"]),
        (OK, b"value".to_vec())
    );
}

#[test]
fn maps_and_buffers_are_only_available_in_their_phase() {
    let mut envoy = envoy();
    let vm = envoy.worker(0);
    set_mode(vm, 1);
    let Outcome::Paused(stream) = vm.request(Request::get("/").header("a", "1")).unwrap() else {
        panic!("expected a paused stream");
    };
    let ctx = stream.0;
    // Response headers do not exist yet: empty list, BadArgument for a value (Envoy's Context).
    let (p, s) = slots(vm);
    assert_eq!(status(vm, "t_get_pairs", ctx, &[i(2), i(p), i(s)]), OK);
    assert_eq!(u32_at(vm, p), 0);
    let [k, kl] = put(vm, b":status");
    let args = [i(2), k, kl, i(p), i(s)];
    assert_eq!(status(vm, "t_get_value", ctx, &args), BAD_ARGUMENT);
    // Request headers do; a malformed replacement map empties them, as in proxy-wasm-cpp-host.
    assert_eq!(status(vm, "t_get_pairs", ctx, &[i(0), i(p), i(s)]), OK);
    assert_ne!(u32_at(vm, p), 0);
    let [m, ml] = put(vm, &[9, 0, 0, 0, 1]);
    assert_eq!(status(vm, "t_set_pairs", ctx, &[i(0), m, ml]), OK);
    assert_eq!(status(vm, "t_get_pairs", ctx, &[i(0), i(p), i(s)]), OK);
    assert_eq!(u32_at(vm, p), 0, "map is now empty");
    assert!(
        vm.logs()
            .iter()
            .any(|e| e.source == LogSource::Host && e.message.contains("malformed"))
    );
    // Unknown map type.
    assert_eq!(
        status(vm, "t_get_pairs", ctx, &[i(42), i(p), i(s)]),
        BAD_ARGUMENT
    );

    // The VM configuration is always readable, whole even for a usize::MAX length; the plugin
    // configuration only during proxy_on_configure.
    let root = vm.root_context();
    let args = [i(6), i(0), i(u32::MAX), i(p), i(s)];
    assert_eq!(status(vm, "t_get_buffer", root, &args), OK);
    assert_eq!(returned(vm, (p, s)), b"vm-config-bytes");
    let args = [i(6), i(3), i(6), i(p), i(s)];
    assert_eq!(status(vm, "t_get_buffer", root, &args), OK);
    assert_eq!(returned(vm, (p, s)), b"config");
    let args = [i(7), i(0), i(100), i(p), i(s)];
    assert_eq!(status(vm, "t_get_buffer", root, &args), NOT_FOUND);
}

#[test]
fn the_proxy_clock_and_ticks_follow_the_fake_clock() {
    let mut envoy = envoy();
    let now = |envoy: &mut Envoy| {
        let vm = envoy.main();
        let out = vm.write_guest(&[0; 8]).unwrap();
        assert_eq!(root_status(vm, "t_now", &[i(out)]), OK);
        u64::from_le_bytes(vm.read_guest(out, 8).unwrap().try_into().unwrap())
    };
    assert_eq!(now(&mut envoy), envoy.clock().unix_nanos());
    assert_eq!(
        envoy.clock().unix_seconds(),
        host_test::DEFAULT_START_UNIX_SECONDS
    );
    envoy.advance(Duration::from_millis(3500)).unwrap();
    assert_eq!(
        now(&mut envoy),
        (host_test::DEFAULT_START_UNIX_SECONDS * 1_000_000_000) + 3_500_000_000
    );
    // 1 s tick period on each of the 3 VMs: 3 ticks each.
    let ticks = envoy.logs().iter().filter(|e| e.message == "tick").count();
    assert_eq!(ticks, 9);
    envoy.tick_all().unwrap();
    assert_eq!(
        envoy.logs().iter().filter(|e| e.message == "tick").count(),
        12
    );
}

fn verify_args() -> Vec<u8> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/verify_signature");
    host_test::VerifySignatureArguments {
        hash_function: "sha256".into(),
        public_key: std::fs::read(dir.join("p256.pub.der")).unwrap(),
        signature: std::fs::read(dir.join("p256.sha256.sig")).unwrap(),
        text: std::fs::read(dir.join("text.txt")).unwrap(),
        public_key_pem: String::new(),
    }
    .encode_to_vec()
}

fn foreign(vm: &mut Vm, name: &str, args: &[u8]) -> (i32, Vec<u8>) {
    let [n, nl] = put(vm, name.as_bytes());
    let [a, al] = put(vm, args);
    let (p, s) = slots(vm);
    let status = root_status(vm, "t_foreign", &[n, nl, a, al, i(p), i(s)]);
    (status, returned(vm, (p, s)))
}

#[test]
fn verify_signature_is_offered_unless_switched_off() {
    let mut envoy = envoy();
    let (status, result) = foreign(envoy.main(), "verify_signature", &verify_args());
    assert_eq!(status, OK);
    let result = host_test::VerifySignatureResult::decode(result.as_slice()).unwrap();
    assert!(result.result, "{result:?}");
    assert_eq!(
        foreign(envoy.main(), "verify_signature", b"\xff").0,
        BAD_ARGUMENT
    );
    assert_eq!(foreign(envoy.main(), "no_such_function", b"").0, NOT_FOUND);

    let mut without = probe()
        .envoy(options().without_foreign_function("verify_signature"))
        .unwrap();
    assert_eq!(
        foreign(without.main(), "verify_signature", &verify_args()).0,
        NOT_FOUND
    );
}

#[test]
fn unimplemented_hostcalls_answer_unimplemented_and_are_counted() {
    let mut envoy = envoy();
    let vm = envoy.main();
    assert_eq!(
        root_status(vm, "t_grpc_call", &[]),
        Status::Unimplemented as i32
    );
    assert_eq!(vm.unimplemented_calls().get("proxy_grpc_call"), Some(&1));
}

#[test]
fn vms_are_independent_instances() {
    let mut envoy = envoy();
    set_mode(envoy.worker(0), 2);
    assert_eq!(
        envoy.worker(0).request(Request::get("/")).unwrap().status(),
        Some(403)
    );
    assert!(
        envoy
            .worker(1)
            .request(Request::get("/"))
            .unwrap()
            .is_continued()
    );
    // Round robin over workers.
    let statuses: Vec<Option<u16>> = (0..4)
        .map(|_| envoy.request(Request::get("/")).unwrap().status())
        .collect();
    assert_eq!(statuses, [Some(403), Some(200), Some(403), Some(200)]);
}
