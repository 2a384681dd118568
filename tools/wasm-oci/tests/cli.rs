//! The `wasm-oci` command as `scripts/test` and the README use it: `build` writes a layout and
//! `extract` gives back the very bytes; a wrong command line prints the usage and fails. Building
//! this test also makes `cargo test` build the binary `scripts/test` packs the filter with.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::process::{Command, Output};

fn wasm_oci(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wasm-oci"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn build_then_extract_gives_back_the_module() {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("in.wasm");
    // a valid, empty Wasm module (magic and version) with some bytes after it
    let bytes: Vec<u8> = [
        b"\0asm".as_slice(),
        &[1, 0, 0, 0],
        &[0u8, 3, b'a', b'b', b'c'],
    ]
    .concat();
    std::fs::write(&module, &bytes).unwrap();
    let layout = dir.path().join("layout");
    let out = wasm_oci(&[
        "build".as_ref(),
        module.as_os_str(),
        layout.as_os_str(),
        "v1".as_ref(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("digest:   sha256:"), "{text}");
    let back = dir.path().join("out.wasm");
    let out = wasm_oci(&[
        "extract".as_ref(),
        layout.as_os_str(),
        back.as_os_str(),
        "v1".as_ref(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(&back).unwrap(), bytes);
}

#[test]
fn a_wrong_command_line_prints_the_usage_and_fails() {
    let out = wasm_oci(&["push".as_ref()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: wasm-oci build"));
}
