//! Shared data, queues, metrics, properties, foreign functions, time.

use crate::support::*;
use host_test::{Envoy, LogSource, Outcome, Request, Status, Val, Vm};
use prost::Message;
use std::path::Path;

use std::time::Duration;

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
