#!/usr/bin/env python3
"""Gateway benchmark, run by scripts/bench (which installs and builds first; see its header).

Starts an IDP and one Envoy (one worker) per variant, all at once, each answering from Envoy
itself (direct_response) so only the auth filter differs; pre-generates the tokens; then runs wrk
against the variants in interleaved rounds (round 2 in reverse order, and so on) and prints a
markdown report. Loopback only; every run is bounded by DURATION seconds.

Environment (set by scripts/bench): ROOT, ENVOY_BIN, IDP_BIN, FILTER_WASM, WASM_DIR; knobs:
DURATION, ROUNDS, CONNECTIONS (list, e.g. 1,16,64), ENVOY_CONCURRENCY (list, e.g. 1,2), TOKENS,
STARTUP_RUNS, VARIANTS, ALGS, MODES, WASM_OZ, PROFILE, REPORT.
"""

import base64
import hashlib
import http.client
import json
import os
import re
import shutil
import sqlite3
import signal
import subprocess
import sys
import tempfile
import threading
import time

import bench_report  # scripts/bench-lib/bench_report.py
import dpop_proofs  # scripts/bench-lib/dpop_proofs.py
from bench_tokens import free_port, mint_idp_dpop, minted_setup  # scripts/bench-lib/bench_tokens.py
import processes  # scripts/bench-lib/processes.py

ROOT = os.environ["ROOT"]
ENVOY_BIN = os.environ["ENVOY_BIN"]
IDP_BIN = os.environ["IDP_BIN"]
FILTER_WASM = os.environ["FILTER_WASM"]
# The no-op proxy-wasm module (tools/noop-filter), for the variant noop-wasm.
NOOP_WASM = os.environ.get("NOOP_WASM", "")
# The native dynamic module (filter-native: liboauth2_gateway.so in this directory), for the
# variant native.
NATIVE_MODULE_DIR = os.environ.get("NATIVE_MODULE_DIR", "")
WASM_DIR = os.environ["WASM_DIR"]
# Another build of the filter (e.g. an earlier commit's), for the variant filter-baseline: the
# same configuration as the variant filter, so both builds are compared in one run.
BASELINE_WASM = os.environ.get("BASELINE_WASM", "")
HERE = os.path.dirname(os.path.abspath(__file__))

DURATION = int(os.environ.get("DURATION", "5"))
ROUNDS = int(os.environ.get("ROUNDS", "2"))
# wrk connections and Envoy worker threads: comma-separated lists, every combination is measured.
CONNECTIONS = [int(c) for c in os.environ.get("CONNECTIONS", "16").split(",")]
CONCURRENCY = [int(c) for c in os.environ.get("ENVOY_CONCURRENCY", "1").split(",")]
# The load the goals of issue 8 are judged at.
PRIMARY = (CONCURRENCY[0], 16 if 16 in CONNECTIONS else CONNECTIONS[0])
N_TOKENS = int(os.environ.get("TOKENS", "6000"))
# PIN=1: with `--concurrency 1`, Envoy runs on CPU 0 and wrk on CPU 1 (taskset), so neither is
# moved between CPUs or preempted by the other: rounds spread less on a 2-core machine. Envoy with
# more workers is not pinned (its workers need every CPU).
PIN = os.environ.get("PIN", "0") == "1" and shutil.which("taskset") is not None
ENVOY_CPU, WRK_CPU = "0", "1"
STARTUP_RUNS = int(os.environ.get("STARTUP_RUNS", "5"))
VARIANTS = os.environ.get(
    "VARIANTS", "bare noop-wasm noop-native jwt-authn-cached jwt-authn-claims jwt-authn filter "
    "filter-full native native-noclaims native-full").split()
# The dynamic-module variants (ENVOY_DYNAMIC_MODULES_SEARCH_PATH = NATIVE_MODULE_DIR).
NATIVE_VARIANTS = {"native", "native-noclaims", "native-full", "noop-native"}
# A requested variant whose build is missing stops the run: never a report without it.
_missing = [f"{v} ({path})" for v, path in (
    ("noop-wasm", NOOP_WASM or "NOOP_WASM unset"),
    ("native", f"{NATIVE_MODULE_DIR}/liboauth2_gateway.so"),
    ("native-noclaims", f"{NATIVE_MODULE_DIR}/liboauth2_gateway.so"),
    ("native-full", f"{NATIVE_MODULE_DIR}/liboauth2_gateway.so"),
    ("noop-native", f"{NATIVE_MODULE_DIR}/libnoop_native.so"),
    ("filter-baseline", BASELINE_WASM or "BASELINE_WASM unset"),
) if v in VARIANTS and not os.path.isfile(path)]
if _missing:
    sys.exit("requested variants whose module is not built: " + ", ".join(_missing)
             + " (build them, or leave them out of VARIANTS)")
# Variants that do not check tokens: one Envoy serves both token sets.
SHARED = {"bare", "noop-wasm", "noop-native"}
ALGS = os.environ.get("ALGS", "ES256 RS256 EdDSA").split()
MODES = os.environ.get("MODES", "warm cold dpop").split()
# The DPoP case (mode dpop): proofs of these algs, against the gateway's variants (jwt_authn has
# no DPoP) and bare Envoy (the floor with the same request headers; it checks nothing, so it gets a
# short proof file sent round and round: a proof takes ~0.1 ms to write in Python).
DPOP_ALGS = ("ES256", "EdDSA")
DPOP_VARIANTS = {"bare", "filter", "filter-baseline", "native"}
DPOP_FLOOR_PROOFS = 2000
DPOP_MAX_PROOFS = 400_000
WASM_OZ = os.environ.get("WASM_OZ", "1") == "1"
PROFILE = os.environ.get("PROFILE", "1") == "1" and shutil.which("perf") is not None
# PROFILE_SYMBOLS=1: also print each profile's hottest functions (per DSO and symbol).
PROFILE_SYMBOLS = os.environ.get("PROFILE_SYMBOLS") == "1"
PATH = "/api/hello"
# Variants that need the real IDP (revocation feed): not run with the self-minted RS256 tokens.
IDP_ONLY = {"filter-full", "native-full"}
# Variants measured only with the warm token (floors and the equal-work anchors of issue 28).
WARM_ONLY = {"noop-wasm", "noop-native", "native-noclaims", "jwt-authn-claims", "native-full"}
# Entries put in the IDP's revocation list before the gateways start (the full variants' denylist).
DENYLIST_ENTRIES = int(os.environ.get("DENYLIST_ENTRIES", "100000"))
# The caches must hold fewer tokens than a cold run rotates through (FIFO in the filter, LRU in
# jwt_authn: a cyclic walk over more tokens than the capacity never hits).
FILTER_CACHE, JWT_AUTHN_CACHE = 4096, 1000

LABELS = bench_report.LABELS


def say(msg):
    print(f"\033[1m==> {msg}\033[0m", file=sys.stderr, flush=True)


def http_get(port, path, headers=None, timeout=2.0):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


PROCS = []


def cleanup(*_):
    for p in PROCS:
        if p.poll() is None:
            p.terminate()
    for p in PROCS:
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
    PROCS.clear()


def on_signal(signum, _frame):
    cleanup()
    sys.exit(128 + signum)


# ---------------------------------------------------------------------------------------- tokens

def start_idp(work):
    port = free_port()
    sha = lambda s: hashlib.sha256(s.encode()).hexdigest()  # noqa: E731
    with open(f"{work}/idp.toml", "w") as f:
        f.write(f"""access_token_ttl_seconds = 3600
[[clients]]
id = "demo-client"
secret_sha256 = "{sha('demo-client-secret-0123456789abcdef')}"
scopes = ["read"]
audiences = ["demo-api"]
grant_types = ["client_credentials"]

[[clients]]
id = "gateway"
secret_sha256 = "{sha('gateway-secret-0123456789abcdef0123')}"
audiences = ["idp"]
gateway = true
""")
    issuer = f"http://127.0.0.1:{port}"
    out = open(f"{work}/idp.out", "w")
    p = subprocess.Popen([IDP_BIN, "serve", "--config", f"{work}/idp.toml",
                          "--listen", f"127.0.0.1:{port}", "--issuer", issuer,
                          "--database", f"sqlite://{work}/idp.sqlite?mode=rwc"],
                         stdout=out, stderr=open(f"{work}/idp.log", "w"))
    PROCS.append(p)
    for _ in range(300):
        if "idp listening on" in open(f"{work}/idp.out").read():
            if DENYLIST_ENTRIES and IDP_ONLY & set(VARIANTS):
                fill_revocations(f"{work}/idp.sqlite", DENYLIST_ENTRIES)
            return port, issuer
        if p.poll() is not None:
            sys.exit(f"the IDP exited: see {work}/idp.log")
        time.sleep(0.05)
    sys.exit("the IDP did not start within 15 s")


def fill_revocations(db, n):
    """n revoked jtis (unknown tokens, live for two hours) straight into the IDP's SQLite store,
    committed before any gateway starts: each gateway's first reads of the feed bring them all."""
    exp = int(time.time()) + 7200
    con = sqlite3.connect(db, timeout=10)
    with con:
        con.executemany(
            "INSERT INTO revocations (kind, iss, value, cutoff, exp, revoked_at) VALUES ('jti', '', ?, NULL, ?, ?)",
            ((f"bench-revoked-{i:07d}", exp, exp - 7200) for i in range(n)))
    con.close()
    say(f"  {n} revocations put in the IDP's store (the full variants' denylist)")


def mint_idp(port, n, threads=4):
    """n ES256 access tokens from the IDP (client_credentials), on keep-alive connections."""
    auth = "Basic " + base64.b64encode(b"demo-client:demo-client-secret-0123456789abcdef").decode()
    out = [None] * n
    errors = []

    def work(k):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            for i in range(k, n, threads):
                c.request("POST", "/oauth2/token", "grant_type=client_credentials",
                          {"Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"})
                r = c.getresponse()
                body = r.read()
                if r.status != 200:
                    raise RuntimeError(f"token endpoint: {r.status} {body[:200]!r}")
                out[i] = json.loads(body)["access_token"]
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    t0 = time.monotonic()
    ts = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        sys.exit(f"minting tokens failed: {errors[0]}")
    return out, n / (time.monotonic() - t0)


# ----------------------------------------------------------------------------------------- Envoy

def render(template, out, values):
    text = open(template).read()
    missing = sorted({m for m in re.findall(r"\$\{([A-Z_]+)\}", text) if m not in values})
    if missing:
        sys.exit(f"{template}: no value for {', '.join(missing)}")
    with open(out, "w") as f:
        f.write(re.sub(r"\$\{([A-Z_]+)\}", lambda m: str(values[m.group(1)]), text))


class PortTaken(Exception):
    """Envoy could not bind a port picked for it (another process took it in between)."""


class Envoy:
    def __init__(self, work, name, variant, issuer, idp_port, token, concurrency=1):
        self.name, self.variant, self.token = name, variant, token
        self.concurrency = concurrency
        self.config = f"{work}/{name}.yaml"
        self.log = f"{work}/{name}.log"
        self.render = lambda: self._render(variant, issuer, idp_port)  # noqa: E731
        self.render()
        self.proc = None
        self.position = {}
        self.warm_rps = 20000.0  # until the warm-up measured it
        self.dpop_rps = {}  # alg -> the fastest DPoP run seen: sizes the next run's proof file

    def _render(self, variant, issuer, idp_port):
        """Picks free ports and writes the variant's configuration with them."""
        self.port, self.admin = free_port(), free_port()
        wasm = {"noop-wasm": NOOP_WASM, "filter-baseline": BASELINE_WASM}.get(variant, FILTER_WASM)
        template = "filter" if variant == "filter-baseline" else variant
        render(f"{ROOT}/envoy/bench/{template}.yaml", self.config, {
            "LISTEN_PORT": self.port, "ADMIN_PORT": self.admin, "IDP_PORT": idp_port,
            "RS_PORT": free_port(), "ISSUER": issuer, "LEEWAY_SECONDS": 30,
            "JWKS_REFRESH_SECONDS": 300, "FILTER_WASM": wasm})

    def start(self):
        """Starts Envoy (again on other ports, twice at most, when one it was given was taken in
        the meantime by another process); returns as `start_once`."""
        for attempt in range(3):
            try:
                return self.start_once()
            except PortTaken:
                if attempt == 2:
                    raise
                say(f"  {self.name}: a port was taken meanwhile; again on other ports")
                self.render()

    def start_once(self):
        """Starts Envoy; returns (ms until admin /ready says LIVE, ms until the first 200 with the
        token on the listener: the latter includes the JWKS fetch)."""
        t0 = time.monotonic()
        env = dict(os.environ)
        if self.variant in NATIVE_VARIANTS:
            env["ENVOY_DYNAMIC_MODULES_SEARCH_PATH"] = NATIVE_MODULE_DIR
        pin = ["taskset", "-c", ENVOY_CPU] if PIN and self.concurrency == 1 else []
        self.proc = subprocess.Popen([*pin, ENVOY_BIN, "-c", self.config, "--concurrency", str(self.concurrency),
                                      "--use-dynamic-base-id", "-l", "warn"],
                                     stdout=subprocess.DEVNULL, stderr=open(self.log, "w"),
                                     env=env)
        PROCS.append(self.proc)
        live = first = None
        deadline = t0 + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                PROCS.remove(self.proc)
                if "Address already in use" in open(self.log).read():
                    raise PortTaken(self.name)
                sys.exit(f"Envoy {self.name} exited: see {self.log}")
            try:
                if live is None:
                    status, body = http_get(self.admin, "/ready", timeout=0.5)
                    if status == 200 and body.strip() == b"LIVE":
                        live = time.monotonic()
                if live is not None:
                    status, _ = http_get(self.port, PATH, {"Authorization": f"Bearer {self.token}"},
                                         timeout=0.5)
                    if status == 200:
                        first = time.monotonic()
                        return (live - t0) * 1000, (first - t0) * 1000
            except OSError:
                pass
            time.sleep(0.002)
        sys.exit(f"Envoy {self.name} did not answer 200 within 60 s: see {self.log}")

    def stop(self):
        processes.stop(self.proc)
        if self.proc in PROCS:
            PROCS.remove(self.proc)

    def rss_kib(self):
        for line in open(f"/proc/{self.proc.pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def cpu_seconds(self):
        """User + system CPU time of the whole Envoy process (all threads)."""
        fields = open(f"/proc/{self.proc.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def counters(self):
        """Cache hit/miss counters: the filter's and jwt_authn's."""
        _, body = http_get(self.admin, "/stats?filter=cache_(hit|miss)|verify_native")
        out = {}
        for line in body.decode().splitlines():
            name, _, value = line.partition(": ")
            if name.endswith("cache_hit"):
                out["hit"] = out.get("hit", 0) + int(value)
            elif name.endswith("cache_miss"):
                out["miss"] = out.get("miss", 0) + int(value)
            elif name.endswith("verify_native"):
                out["native"] = out.get("native", 0) + int(value)
        return out


# ------------------------------------------------------------------------------------------- wrk

def wrk(envoy, tokens_file, duration, conns=16, script="rotate.lua", may_wrap=False):
    """One wrk run; a cold run goes on in the token file where the previous run against this Envoy
    with this file stopped (so tokens still in a cache are not replayed). With script dpop.lua,
    `tokens_file` holds "token<TAB>proof" lines, each sent once (see dpop_run)."""
    start = envoy.position.get(tokens_file, 0)
    before_cpu = envoy.cpu_seconds()
    before = envoy.counters()
    pin = ["taskset", "-c", WRK_CPU] if PIN and envoy.concurrency == 1 else []
    p = subprocess.run([*pin, "wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--timeout", "5s",
                        "-s", f"{HERE}/{script}", f"http://127.0.0.1:{envoy.port}{PATH}",
                        "--", tokens_file, str(start)], capture_output=True, text=True, timeout=duration + 60)
    cpu = envoy.cpu_seconds() - before_cpu
    line = next((ln for ln in p.stdout.splitlines() if ln.startswith("BENCH ")), None)
    if p.returncode != 0 or line is None:
        sys.exit(f"wrk failed against {envoy.name}: {p.stdout}\n{p.stderr}")
    r = json.loads(line[6:])
    envoy.position[tokens_file] = start + r["requests"] + conns  # + the ones in flight
    if r.get("wrapped") and not may_wrap:
        sys.exit(f"{envoy.name}: the run sent more requests than the proof file has lines "
                 f"({r['requests']} requests): replayed proofs are refused; see dpop_run")
    bad = r["non2xx"] + r["connect"] + r["read"] + r["write"] + r["timeout"]
    if bad:
        sys.exit(f"{envoy.name}: {bad} failed or refused requests (non-2xx {r['non2xx']}): "
                 f"every token must be accepted; see {envoy.log}")
    time.sleep(0.25)  # the filter publishes its cache counters on its 100 ms tick
    after = envoy.counters()
    hit = after.get("hit", 0) - before.get("hit", 0)
    miss = after.get("miss", 0) - before.get("miss", 0)
    native = after.get("native", 0) - before.get("native", 0)
    return {"native": 100.0 * native / max(r["requests"], 1) if "native" in after else None,
            "rps": r["requests"] / (r["duration_us"] / 1e6), "p50": r["p50_us"] / 1000,
            "p99": r["p99_us"] / 1000, "cpu_us": cpu * 1e6 / max(r["requests"], 1),
            "hit": (100.0 * hit / (hit + miss)) if hit + miss else None}


def dpop_run(envoy, alg, dpop, work, duration, conns):
    """One wrk run of the DPoP case against `envoy`: the alg's DPoP-bound token (cached by the
    gateway after its first request) with a new proof of the alg's key every request. The proofs
    are written right before the run (iat now: fresh for dpop_proof_max_age_seconds), as many as
    the fastest DPoP rate seen on this Envoy allows in `duration`, with a margin."""
    return dpop_proof_file(envoy, alg, dpop, work, duration)(conns)


def dpop_proof_file(envoy, alg, dpop, work, duration):
    """Writes the proofs of one DPoP run (see dpop_run); returns the run, a function of wrk's
    connection count (so that perf can start between the two)."""
    key, token = dpop[alg]
    rate = envoy.dpop_rps.get(alg) or envoy.warm_rps
    floor = envoy.variant in SHARED  # checks no proof: replays are fine
    n = DPOP_FLOOR_PROOFS if floor else min(int(rate * duration * 1.5) + 2000, DPOP_MAX_PROOFS)
    path = f"{work}/{envoy.name}-{alg}.proofs"
    dpop_proofs.write_proofs(path, key, token, f"http://127.0.0.1:{envoy.port}{PATH}", n)

    def run(conns):
        r = wrk(envoy, path, duration, conns, script="dpop.lua", may_wrap=floor)
        envoy.position.pop(path, None)
        envoy.dpop_rps[alg] = max(envoy.dpop_rps.get(alg, 0), r["rps"])
        return r
    return run


def profile(envoy, run, work):
    """perf (software cpu-clock sampling: no hardware counters on these VMs) on the Envoy process
    during one wrk run: the share of its CPU time per DSO, turned into µs per request. The envoy
    binary is stripped, so the split is per DSO only: Envoy's own code (HTTP, the proxy-wasm host
    and its hostcalls, V8's runtime, BoringSSL) / the Wasm module's code compiled by V8 (JIT) /
    kernel (loopback TCP, syscalls) / libc. `run(connections)` is the wrk run."""
    data = f"{work}/perf.data"
    graph = ["--call-graph", "dwarf,16384"] if PROFILE_SYMBOLS else []
    perf = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "999", *graph, "-o", data,
                             "-p", str(envoy.proc.pid), "--", "sleep", str(DURATION)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.2)
    r = run(PRIMARY[1])
    perf.wait()
    rep = subprocess.run(["perf", "report", "-i", data, "--sort", "dso", "--stdio", "--no-children",
                          "-g", "none"], capture_output=True, text=True).stdout
    if PROFILE_SYMBOLS:
        # The modules' own functions (an unstripped build: NATIVE_MODULE_DIR pointing at one).
        # With call graphs: the time spent inside each of the module's hooks, Envoy's callbacks
        # they make included (children).
        hooks = subprocess.run(["perf", "report", "-i", data, "--children", "--sort", "sym", "--stdio",
                                "-g", "none", "--percent-limit", "0.1"],
                               capture_output=True, text=True).stdout
        lines = [ln for ln in hooks.splitlines() if "envoy_dynamic_module_on_" in ln
                 or "oauth2_gateway::" in ln or "filter::" in ln]
        say(f"  perf children (inclusive), {envoy.name}:\n    " + "\n    ".join(lines[:40]))
        for dsos in ([], ["--dsos", "liboauth2_gateway.so"]):
            syms = subprocess.run(["perf", "report", "-i", data, "--sort", "dso,sym", "--stdio",
                                   "--no-children", "-g", "none", "--percent-limit", "0.2", *dsos],
                                  capture_output=True, text=True).stdout
            lines = [ln for ln in syms.splitlines() if ln.strip() and not ln.startswith("#")]
            say(f"  perf symbols, {envoy.name} {' '.join(dsos)}:\n    " + "\n    ".join(lines[:60]))
    shares = {"envoy": 0.0, "jit": 0.0, "kernel": 0.0, "other": 0.0}
    for m in re.finditer(r"^\s*([\d.]+)%\s+(.+?)\s*$", rep, re.M):
        pct, dso = float(m.group(1)), m.group(2)
        key = ("envoy" if dso == "envoy" else
               "jit" if dso.startswith("[JIT]") or "oauth2_gateway" in dso or "noop_native" in dso else
               "kernel" if dso.startswith("[kernel") else "other")
        shares[key] += pct
    total = sum(shares.values()) or 1
    return r, {k: r["cpu_us"] * v / total for k, v in shares.items()}


# ------------------------------------------------------------------------------------------ main

def machine():
    model = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                  if ln.startswith("model name")), "?")
    mem = next((int(ln.split()[1]) for ln in open("/proc/meminfo") if ln.startswith("MemTotal")), 0)
    ver = subprocess.run([ENVOY_BIN, "--version"], capture_output=True, text=True).stdout
    m = re.search(r"version: \S+/(\d+\.\d+\.\d+)", ver)
    return (f"{os.cpu_count()} cores ({model}), {mem / 2**20:.0f} GiB, Linux {os.uname().release}, "
            f"Envoy {m.group(1) if m else '?'}")


def loadavg():
    return open("/proc/loadavg").read().split()[0]


def main():
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    work = tempfile.mkdtemp(prefix="oauth2gw-bench.")
    t_start = time.monotonic()
    load_before = loadavg()
    try:
        report = run(work)
    finally:
        cleanup()
    report.append(f"\nWall time {time.monotonic() - t_start:.0f} s; load average (1 min) "
                  f"{load_before} before, {loadavg()} after.")
    text = "\n".join(report) + "\n"
    print(text)
    out = os.environ.get("REPORT")
    if out:
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, "w") as f:
            f.write(text)
        say(f"report also written to {out}")
    if os.environ.get("KEEP") == "1":
        say(f"logs kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


def run(work):
    idp_port, issuer = start_idp(work)
    token_sets = {}  # alg -> (issuer, jwks port, tokens)
    if "ES256" in ALGS:
        say(f"minting {N_TOKENS} ES256 tokens at the IDP (client_credentials)")
        tokens, rate = mint_idp(idp_port, N_TOKENS)
        say(f"  {rate:.0f} tokens/s (debug build of the IDP, 4 client threads)")
        token_sets["ES256"] = (issuer, idp_port, tokens)
    notes = []
    dpop = {}  # alg -> (the DPoP client key, a token of the alg's issuer bound to it)
    want_dpop = "dpop" in MODES
    if want_dpop:
        try:
            import cryptography  # noqa: F401 - only whether it is there
        except ImportError:
            want_dpop = False
            notes.append("DPoP not measured: the Python package `cryptography` is missing.")
    if want_dpop and "ES256" in token_sets:
        say("a DPoP-bound ES256 token from the IDP (client_credentials with a proof)")
        key = dpop_proofs.ProofKey("ES256")
        dpop["ES256"] = (key, mint_idp_dpop(idp_port, issuer, key))
    for alg, what in (("RS256", "RSA-2048"), ("EdDSA", "Ed25519")):
        if alg not in ALGS:
            continue
        say(f"minting {N_TOKENS} {alg} tokens (Python cryptography, {what}) and serving their JWKS")
        key = dpop_proofs.ProofKey(alg) if want_dpop and alg in DPOP_ALGS else None
        minted = minted_setup(work, alg, N_TOKENS, key and key.jkt)
        if minted is None:
            notes.append(f"{alg} not measured: the Python package `cryptography` is missing.")
            continue
        port, minted_issuer, tokens, _, bound = minted
        token_sets[alg] = (minted_issuer, port, tokens)
        if key:
            dpop[alg] = (key, bound)
    files = {}
    for alg, (_, _, tokens) in token_sets.items():
        for mode, subset in (("warm", tokens[:1]), ("cold", tokens)):
            files[alg, mode] = f"{work}/{alg}-{mode}.tokens"
            with open(files[alg, mode], "w") as f:
                f.write("\n".join(subset) + "\n")

    # Start-up: sequential, interleaved over the variants, before any load.
    startup = {}
    st_variants = [v for v in ("bare", "noop-wasm", "noop-native", "jwt-authn-cached", "filter", "native")
                   if v in VARIANTS]
    if STARTUP_RUNS > 0 and "ES256" in token_sets:
        say(f"start-up time: {STARTUP_RUNS} runs each of {', '.join(st_variants)}")
        iss, port, tokens = token_sets["ES256"]
        for i in range(STARTUP_RUNS):
            for v in st_variants:
                e = Envoy(work, f"startup-{v}-{i}", v, iss, port, tokens[0])
                live, first = e.start()
                e.stop()
                startup.setdefault(v, []).append((live, first))

    results = {}  # (concurrency, connections, alg, variant, mode) -> [wrk results]
    rss = {}  # (concurrency, alg, variant) -> KiB
    profiles = []
    for conc in CONCURRENCY:
        measure_at(work, conc, token_sets, files, dpop, results, rss, profiles)

    lines = [f"## Gateway benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
             f"Machine: {machine()}.",
             f"Load: wrk -t1 -c{'/'.join(map(str, CONNECTIONS))}, {DURATION} s per run, {ROUNDS} rounds "
             f"interleaved (median shown, req/s range in brackets); Envoy `--concurrency "
             f"{'/'.join(map(str, CONCURRENCY))}`"
             f"{f' (with 1 worker pinned to CPU {ENVOY_CPU}, wrk to CPU {WRK_CPU})' if PIN else ''}; upstream: "
             f"`direct_response` in every variant; GET {PATH}. Warm: the same token every request. "
             f"Cold: {N_TOKENS} different tokens in rotation (more than any cache holds: filter "
             f"{FILTER_CACHE}, jwt_authn {JWT_AUTHN_CACHE}), so each request brings a token the "
             "gateway has not got cached. ES256 tokens come from the IDP; RS256 (RSA-2048) and EdDSA "
             "(Ed25519) tokens are minted by the script with the same claims and issuer layout, their "
             "JWKS served on loopback; all are fetched as remote JWKS by every variant. DPoP (RFC "
             "9449; filter and native module with `\"dpop\": \"allowed\"`): one DPoP-bound token "
             "of the alg's issuer (ES256: from the IDP) sent as `Authorization: DPoP`, cached by the "
             "gateway after its first request, with a new proof (the alg's client key, fresh jti, "
             "iat, ath) every request, written before each run; bare Envoy gets the same headers "
             f"({DPOP_FLOOR_PROOFS} proofs sent round and round: it checks nothing). "
             "Envoy CPU µs/req: user + "
             "system CPU time of the Envoy process during the run ÷ requests (less sensitive to other "
             "load on the machine than req/s; `CPU: bare ÷ this` is the throughput ratio a CPU-bound "
             "Envoy would show). Ratio goals are judged on req/s unless they name CPU. filter.wasm: "
             f"`{os.path.relpath(FILTER_WASM, ROOT)}`.", ""]
    lines += notes
    return lines + bench_report.build({
        "results": results, "rss": rss, "startup": startup, "profiles": profiles,
        "concurrency": CONCURRENCY, "connections": CONNECTIONS, "primary": PRIMARY,
        "algs": list(token_sets), "modes": MODES, "variants": VARIANTS, "work": work,
        "wasm_dir": WASM_DIR, "filter_wasm": FILTER_WASM, "noop_wasm": NOOP_WASM,
        "wasm_oz": WASM_OZ, "startup_runs": STARTUP_RUNS})


def measure_at(work, conc, token_sets, files, dpop, results, rss, profiles):
    """Every variant with `conc` Envoy workers, all up at once (idle ones cost only their timers):
    warm-up, VmRSS, then the runs of every connection count in interleaved rounds."""
    envoys = {}
    for alg, (iss, port, tokens) in token_sets.items():
        for v in VARIANTS:
            if v in SHARED and alg != ALGS[0]:
                continue  # one Envoy serves both token sets
            if v in IDP_ONLY and alg != "ES256":
                continue
            envoys[alg, v] = Envoy(work, f"{v}-{alg}-x{conc}", v, iss, port, tokens[0], conc)
    say(f"starting {len(envoys)} Envoys ({conc} worker{'s' if conc > 1 else ''} each)")
    for e in envoys.values():
        e.start()
    runs = []  # (connections, alg, variant, mode)
    # One variant's modes run back to back (cold then dpop, reversed every other round), so the
    # DPoP ÷ cold pairs of issue 18 are seconds apart, not a whole round.
    for conns in CONNECTIONS:
        for alg in token_sets:
            for v in VARIANTS:
                for mode in MODES:
                    key = (ALGS[0], v) if v in SHARED else (alg, v)
                    if mode == "dpop" and (alg not in dpop or v not in DPOP_VARIANTS):
                        continue
                    if key in envoys and not (v in WARM_ONLY and mode != "warm"):
                        runs.append((conns, alg, v, mode))
    say("warm-up: 1 s per Envoy with its warm token, then VmRSS")
    for (alg, v), e in envoys.items():
        e.warm_rps = wrk(e, files[alg, "warm"], 1, PRIMARY[1])["rps"]
        rss[conc, alg, v] = e.rss_kib()
    if "dpop" in MODES and dpop:
        say("DPoP warm-up: 1 s per Envoy and proof alg (it also sizes the proof files)")
        for (alg, v), e in envoys.items():
            if v in DPOP_VARIANTS:
                for a in (dpop if v in SHARED else [alg] if alg in dpop else []):
                    dpop_run(e, a, dpop, work, 1, PRIMARY[1])

    est = len(runs) * ROUNDS * (DURATION + 0.5)
    say(f"{len(runs)} runs x {ROUNDS} rounds x {DURATION} s (about {est / 60:.1f} min), "
        f"wrk -t1 -c{'/'.join(map(str, CONNECTIONS))}, Envoy --concurrency {conc}")
    for rnd in range(ROUNDS):
        order = runs if rnd % 2 == 0 else list(reversed(runs))
        for conns, alg, v, mode in order:
            e = envoys[ALGS[0], v] if v in SHARED else envoys[alg, v]
            if mode == "dpop":
                r = dpop_run(e, alg, dpop, work, DURATION, conns)
            else:
                r = wrk(e, files[alg, mode], DURATION, conns)
            results.setdefault((conc, conns, alg, v, mode), []).append(r)
            say(f"  round {rnd + 1} x{conc} c{conns:<3} {alg} {mode:4} {v:17} {r['rps']:9.0f} req/s  "
                f"p50 {r['p50']:.2f} ms  p99 {r['p99']:.2f} ms  {r['cpu_us']:.1f} µs CPU/req")
    if PROFILE and "ES256" in token_sets and conc == PRIMARY[0]:
        say("profiles (perf, cpu-clock) of one run each")
        cases = [("ES256", v, "warm") for v in ("bare", "noop-wasm", "noop-native", "jwt-authn-cached",
                                                "filter", "native")]
        cases.append(("ES256", "jwt-authn", "cold"))
        # Cold bearer against DPoP (issue 18) for every alg measured: where the difference goes.
        cases += [(alg, v, mode) for alg in ALGS if alg in token_sets
                  for v in ("filter", "native") for mode in ("cold", "dpop")]
        for alg, v, mode in cases:
            e = envoys.get((ALGS[0] if v in SHARED else alg, v))
            if e is None or mode not in MODES:
                continue
            if mode == "dpop":
                if alg not in dpop:
                    continue
                run = dpop_proof_file(e, alg, dpop, work, DURATION)
            else:
                run = lambda conns, e=e, alg=alg, mode=mode: wrk(e, files[alg, mode], DURATION, conns)  # noqa: E731
            r, split = profile(e, run, work)
            profiles.append((alg, v, mode, r, split))
    for e in envoys.values():
        e.stop()

if __name__ == "__main__":
    main()
