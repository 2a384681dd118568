//! The filter's OCI image (tools/wasm-oci, the Wasm image spec's compat variant that Istio's
//! WasmPlugin pulls) through a real OCI registry on loopback: Debian's `docker-registry` (CNCF
//! distribution) started here with its storage in a temp dir, `skopeo` (Debian) to push and pull.
//! The registry serves the image under the digest the build printed, the module pulled back is
//! byte-identical, and Envoy (with the Istio-sidecar-shaped config) loads it and validates tokens.
//!
//! `scripts/test` installs both packages (scripts/lib/common.sh: ensure_oci_tools); elsewhere set
//! DOCKER_REGISTRY_BIN and SKOPEO_BIN.

use e2e::artifacts;
use e2e::client;
use e2e::process::{Proc, free_port};
use e2e::stack::{DEMO_CLIENT, ISTIO_SIDECAR_TEMPLATE, Stack, StackOptions};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn tool(var: &str, name: &str) -> PathBuf {
    let path = std::env::var_os(var).map_or_else(
        || {
            std::env::var_os("PATH")
                .and_then(|p| {
                    std::env::split_paths(&p)
                        .map(|d| d.join(name))
                        .find(|p| p.is_file())
                })
                .unwrap_or_else(|| Path::new("/usr/bin").join(name))
        },
        PathBuf::from,
    );
    assert!(
        path.is_file(),
        "{name} not found (scripts/test installs it from Debian; or set {var})"
    );
    path
}

/// A registry on 127.0.0.1:<free port>, storage in `dir`, stopped when dropped.
fn start_registry(dir: &Path) -> (Proc, String) {
    let port = free_port().unwrap();
    let config = dir.join("registry.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.join("storage").display()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(tool("DOCKER_REGISTRY_BIN", "docker-registry"));
    cmd.arg("serve").arg(&config);
    let mut registry = Proc::start("registry", cmd, dir).unwrap();
    let base = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while client::get(&format!("http://{base}/v2/"), &[]).map(|r| r.status) != Ok(200) {
        assert!(
            registry.is_running() && Instant::now() < deadline,
            "registry not up: {}",
            registry.log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (registry, base)
}

fn skopeo(args: &[&str]) {
    let out = Command::new(tool("SKOPEO_BIN", "skopeo"))
        .arg("--insecure-policy")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn image_pushed_to_a_registry_pulls_back_identical_and_runs_in_envoy() {
    let _slot = crate::slot();
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let module = std::fs::read(artifacts::filter_wasm().unwrap()).unwrap();

    // the image, as the build writes it
    let layout = dir.path().join("layout");
    let image = wasm_oci::write_layout(&module, &layout, "v1").unwrap();
    let layout_str = layout.display().to_string();
    // the build's own layout, when there, is the same image (reproducible)
    let built = artifacts::filter_wasm()
        .unwrap()
        .with_file_name("oci")
        .join("index.json");
    if built.is_file()
        && artifacts::filter_wasm()
            .unwrap()
            .ends_with("filter.opt.wasm")
    {
        let pulled = wasm_oci::read_layout(built.parent().unwrap(), None).unwrap();
        if pulled.module == module {
            assert_eq!(pulled.manifest_digest, image.manifest_digest);
        }
    }

    let (_registry, registry) = start_registry(dir.path());
    let reference = format!("{registry}/oauth2-gateway/filter:v1");
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--preserve-digests",
        &format!("oci:{layout_str}:v1"),
        &format!("docker://{reference}"),
    ]);

    // the registry serves the manifest under the digest the build printed (what a WasmPlugin's
    // sha256 is compared with), as an OCI manifest with one tar+gzip layer
    let manifest = client::get(
        &format!("http://{registry}/v2/oauth2-gateway/filter/manifests/v1"),
        &[("accept", "application/vnd.oci.image.manifest.v1+json")],
    )
    .unwrap();
    assert_eq!(manifest.status, 200, "{}", manifest.body);
    assert_eq!(
        manifest.header("docker-content-digest"),
        Some(image.manifest_digest.as_str())
    );
    assert_eq!(
        manifest.header("content-type"),
        Some("application/vnd.oci.image.manifest.v1+json")
    );
    let json = manifest.json().unwrap();
    assert_eq!(json["layers"].as_array().unwrap().len(), 1);
    assert_eq!(json["layers"][0]["digest"], image.layer_digest.as_str());
    assert_eq!(json["annotations"]["module.wasm.image/variant"], "compat");
    // by digest too (oci://…@sha256:…)
    let by_digest = client::get(
        &format!(
            "http://{registry}/v2/oauth2-gateway/filter/manifests/{}",
            image.manifest_digest
        ),
        &[("accept", "application/vnd.oci.image.manifest.v1+json")],
    )
    .unwrap();
    assert_eq!(by_digest.status, 200);

    // pulled back into a new layout, the module is the same bytes
    let pulled_layout = dir.path().join("pulled");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--preserve-digests",
        &format!("docker://{reference}"),
        &format!("oci:{}:v1", pulled_layout.display()),
    ]);
    let pulled = wasm_oci::read_layout(&pulled_layout, Some("v1")).unwrap();
    assert_eq!(pulled.manifest_digest, image.manifest_digest);
    assert!(pulled.module == module, "pulled module differs");

    // Envoy, configured as Istio configures the WasmPlugin, runs the pulled module
    let pulled_wasm = dir.path().join("pulled.wasm");
    std::fs::write(&pulled_wasm, &pulled.module).unwrap();
    let path: &'static str = Box::leak(pulled_wasm.display().to_string().into_boxed_str());
    let stack = Stack::start(StackOptions {
        envoy_template: ISTIO_SIDECAR_TEMPLATE,
        filter_wasm: Some(path),
        ..StackOptions::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let rendered = std::fs::read_to_string(&stack.gateway.config).unwrap();
    assert!(
        rendered.contains(path),
        "Envoy does not load the pulled module"
    );
    let token = stack.token(DEMO_CLIENT, None).unwrap();
    let hello = format!("{}/api/hello", stack.gateway_url);
    let res = client::get(&hello, &[("authorization", &format!("Bearer {token}"))]).unwrap();
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json().unwrap()["sub"], "client:demo-client");
    assert_eq!(client::get(&hello, &[]).unwrap().status, 401);
    assert_eq!(stack.counter("oauth2gw.allowed"), Some(1));
    println!(
        "image {} ({} B layer, {} B module): push, pull, Envoy in {:?}",
        image.manifest_digest,
        image.layer_size,
        image.module_size,
        started.elapsed()
    );
}
