//! The probe guest, its VMs, and reading and writing guest memory.

use host_test::{Envoy, EnvoyOptions, Host, Status, Val, Vm};

use std::path::Path;
use std::sync::OnceLock;

pub fn probe() -> Host {
    static PROBE: OnceLock<Host> = OnceLock::new();
    PROBE
        .get_or_init(|| {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/probe.wat");
            Host::from_bytes(&std::fs::read(&path).unwrap(), "probe.wat").unwrap()
        })
        .clone()
}

pub fn options() -> EnvoyOptions {
    EnvoyOptions::new()
        .workers(2)
        .plugin_name("probe-plugin")
        .clusters(["idp"])
        .vm_config("vm-config-bytes")
        .property("node.id", "node-1")
}

pub fn envoy() -> Envoy {
    probe().envoy(options()).unwrap()
}

pub fn i(v: u32) -> Val {
    Val::I32(i32::from_ne_bytes(v.to_ne_bytes()))
}

/// Calls a trampoline in `context`; returns its status.
pub fn status(vm: &mut Vm, name: &str, context: u32, args: &[Val]) -> i32 {
    match vm.call_export(name, context, args).unwrap().first() {
        Some(Val::I32(s)) => *s,
        other => panic!("{name} returned {other:?}"),
    }
}

pub fn root_status(vm: &mut Vm, name: &str, args: &[Val]) -> i32 {
    let root = vm.root_context();
    status(vm, name, root, args)
}

/// Guest memory holding `bytes`: (address, len) as call arguments.
pub fn put(vm: &mut Vm, bytes: &[u8]) -> [Val; 2] {
    let address = vm.write_guest(bytes).unwrap();
    [i(address), i(u32::try_from(bytes.len()).unwrap())]
}

/// Two zeroed u32 slots for a returned (pointer, size): their addresses.
pub fn slots(vm: &mut Vm) -> (u32, u32) {
    let address = vm.write_guest(&[0; 8]).unwrap();
    (address, address + 4)
}

pub fn u32_at(vm: &mut Vm, address: u32) -> u32 {
    u32::from_le_bytes(vm.read_guest(address, 4).unwrap().try_into().unwrap())
}

/// The bytes a hostcall returned through (pointer, size) slots.
pub fn returned(vm: &mut Vm, (ptr, size): (u32, u32)) -> Vec<u8> {
    let (ptr, size) = (u32_at(vm, ptr), u32_at(vm, size));
    if ptr == 0 {
        return Vec::new();
    }
    vm.read_guest(ptr, size).unwrap()
}

pub fn pairs(pairs: &[(&str, &str)]) -> Vec<u8> {
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

pub fn set_mode(vm: &mut Vm, mode: u32) {
    vm.call_export("set_mode", 0, &[i(mode)]).unwrap();
}

pub const OK: i32 = Status::Ok as i32;
pub const NOT_FOUND: i32 = Status::NotFound as i32;
pub const BAD_ARGUMENT: i32 = Status::BadArgument as i32;
pub const INVALID_MEMORY: i32 = Status::InvalidMemoryAccess as i32;
