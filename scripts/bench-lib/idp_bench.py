#!/usr/bin/env python3
"""IDP benchmark, run by scripts/bench after the gateway part (SUITES="gateway idp"; SUITES=idp runs
only this). Python 3 stdlib + wrk (Lua scripts generated into a temporary directory).

Starts the release IDP (IDP_RELEASE_BIN) on a free 127.0.0.1 port with a fresh SQLite database and
idp/idp.toml's clients and users, then measures:
- cold start: process spawn -> first successful client_credentials token (a fresh database each
  time, so it includes the migrations and generating the signing key), IDP_STARTUP_RUNS runs;
- VmRSS (/proc/PID/status) idle after start-up, peak while the c=32 client_credentials load runs
  (sampled every 20 ms, and VmHWM), and after all the load;
- client_credentials (demo-client, scope read) at c=1 and c=32;
- introspection (POST /oauth2/introspect, the gateway client's Basic auth, one access token) at
  c=1 and c=32; every answer must say "active":true;
- refresh: refresh tokens rotate on every use, so each wrk thread has one connection and chains
  its own refresh token (seeded through demo-client's password grant for alice): `response()`
  takes the new one from the body and the next `request()` presents it. Reusing a rotated token
  would end the session, so a chaining bug shows as errors. c=1 and c=8;
- password grant (alice, demo-client) at c=4: bounded by argon2id; the report gives the hash's
  parameters (m, t, p) and password_policy.max_concurrent_hashes. Successful logins are not
  failures, so the lockout does not trigger.
Every run is bounded by DURATION seconds; every response must be 2xx (the count is reported
otherwise). Markdown on stdout and in IDP_REPORT (default target/bench/idp.md).

Environment: ROOT, IDP_RELEASE_BIN; knobs DURATION=5, IDP_STARTUP_RUNS=3, IDP_REPORT, KEEP=1.
"""

import base64
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib

import idp_backends  # scripts/bench-lib/idp_backends.py
import processes  # scripts/bench-lib/processes.py

ROOT = os.environ["ROOT"]
IDP = os.environ.get("IDP_RELEASE_BIN", f"{ROOT}/target/release/idp")
CONFIG = f"{ROOT}/idp/idp.toml"
DURATION = int(os.environ.get("DURATION", "5"))
STARTUP_RUNS = int(os.environ.get("IDP_STARTUP_RUNS", "3"))
REPORT = os.environ.get("IDP_REPORT", f"{ROOT}/target/bench/idp.md")

DEMO = ("demo-client", "demo-client-secret-0123456789abcdef")
GATEWAY = ("gateway", "gateway-secret-0123456789abcdef0123")
USER = ("alice", "alice-password-123")
GOAL_TOKENS_PER_S = 10_000
GOAL_IDLE_RSS_MB = 25


def say(msg):
    print(f"\033[1m==> {msg}\033[0m", file=sys.stderr, flush=True)


def basic(client):
    return "Basic " + base64.b64encode(f"{client[0]}:{client[1]}".encode()).decode()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def loadavg():
    return " ".join(open("/proc/loadavg").read().split()[:3])


def post(port, path, body, auth, timeout=10.0):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("POST", path, body, {"Authorization": auth,
                                       "Content-Type": "application/x-www-form-urlencoded"})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def proc_status(pid, field):
    """A kB field of /proc/PID/status (VmRSS, VmHWM), in KiB."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ----------------------------------------------------------------------------------------- IDP

class Idp:
    """One release IDP in its own directory: a fresh SQLite database there, or `database` (a
    PostgreSQL URL); `issuer_port`: another replica's port, for the issuer they share."""

    def __init__(self, work, name, config, database=None, issuer_port=None, env=None):
        self.dir = f"{work}/{name}"
        os.makedirs(self.dir)
        self.port = free_port()
        self.config = config
        self.database = database or f"sqlite://{self.dir}/idp.sqlite?mode=rwc"
        self.issuer = f"http://127.0.0.1:{issuer_port or self.port}"
        self.env = {**os.environ, **(env or {})}
        self.proc = None

    def start(self, deadline_s=30):
        """Spawns the IDP and asks for a client_credentials token until one comes back; returns the
        ms from spawn to that first token (and to /healthz ok)."""
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [IDP, "serve", "--config", self.config, "--listen", f"127.0.0.1:{self.port}",
             "--issuer", self.issuer, "--database", self.database],
            stdout=open(f"{self.dir}/idp.out", "w"), stderr=open(f"{self.dir}/idp.log", "w"), env=self.env)
        first = healthy = None
        while time.monotonic() - t0 < deadline_s:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the IDP exited ({self.proc.returncode}): see {self.dir}/idp.log")
            try:
                status, _ = post(self.port, "/oauth2/token", "grant_type=client_credentials&scope=read",
                                 basic(DEMO), timeout=1.0)
                if status == 200:
                    first = time.monotonic()
                    break
            except OSError:
                pass
            time.sleep(0.001)
        if first is None:
            raise RuntimeError(f"no token from the IDP within {deadline_s} s: see {self.dir}/idp.log")
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            c.request("GET", "/healthz")
            r = c.getresponse()
            healthy = r.status == 200 and r.read().strip() == b"ok"
        finally:
            c.close()
        if not healthy:
            raise RuntimeError("/healthz did not answer ok")
        return (first - t0) * 1000

    def stop(self):
        processes.stop(self.proc)


# ----------------------------------------------------------------------------------------- wrk

# done(): one BENCH line of JSON (and the first error seen) from the threads in `threads`.
REPORT_LUA = r'''
function done(summary, latency, requests)
  local e = summary.errors
  local bad = 0
  for _, t in ipairs(threads) do
    bad = bad + (t:get("bad") or 0)
    local fe = t:get("first_err")
    if fe then io.write("FIRSTERR " .. fe:gsub("\n", " ") .. "\n") end
  end
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"non2xx":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"timeout":%d,"bad":%d,"p50_us":%d,"p99_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout, bad,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
'''

# Scripts without a setup() of their own: collect the threads, then report.
DONE = r'''
local threads = {}
function setup(thread)
  threads[#threads + 1] = thread
end
''' + REPORT_LUA

# A fixed POST (client_credentials, password grant).
STATIC = r'''
bad = 0
function init(args)
  wrk.method = "POST"
  wrk.body = args[2]
  wrk.headers["Authorization"] = args[1]
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  req = wrk.format()
end
function request() return req end
function response(status, headers, body)
  if status == 200 and not body:find('"access_token":"', 1, true) then bad = bad + 1 end
  if status ~= 200 and first_err == nil then first_err = status .. " " .. body:sub(1, 300) end
end
''' + DONE

# Introspection: the same token every time; every answer must say active.
INTROSPECT = r'''
bad = 0
function init(args)
  wrk.method = "POST"
  wrk.body = "token=" .. args[2]
  wrk.headers["Authorization"] = args[1]
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  req = wrk.format()
end
function request() return req end
function response(status, headers, body)
  if status == 200 and not body:find('"active":true', 1, true) then bad = bad + 1 end
  if status ~= 200 and first_err == nil then first_err = status .. " " .. body:sub(1, 300) end
end
''' + DONE

# Refresh: one connection per thread (-t N -c N), each thread chaining its own refresh token.
# setup() runs in the main Lua state and hands each thread its seed; response() takes the rotated
# token from the body; request() presents the latest one. A 200 without a new token counts as bad.
REFRESH = r'''
-- SEED_FILE and AUTH are defined above, in every Lua state (main and threads).
local seeds, n = nil, 0
local threads = {}
function setup(thread)
  if seeds == nil then
    seeds = {}
    for line in io.lines(SEED_FILE) do
      if #line > 0 then seeds[#seeds + 1] = line end
    end
  end
  n = n + 1
  if seeds[n] == nil then error("fewer refresh-token seeds than wrk threads") end
  thread:set("rt", seeds[n])
  thread:set("bad", 0)
  threads[#threads + 1] = thread
end
function request()
  return wrk.format("POST", wrk.path, {
    ["Authorization"] = AUTH,
    ["Content-Type"] = "application/x-www-form-urlencoded",
  }, "grant_type=refresh_token&refresh_token=" .. rt)
end
function response(status, headers, body)
  if status == 200 then
    local t = body:match('"refresh_token":"([^"]+)"')
    if t then rt = t else bad = bad + 1 end
  elseif first_err == nil then
    first_err = status .. " " .. body:sub(1, 300)
  end
end
''' + REPORT_LUA


class Sampler:
    """Samples VmRSS of a process every 20 ms while running."""

    def __init__(self, pid):
        self.pid, self.peak, self.stop_ = pid, 0, threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop_.is_set():
            try:
                self.peak = max(self.peak, proc_status(self.pid, "VmRSS"))
            except OSError:
                return
            self.stop_.wait(0.02)

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, *_):
        self.stop_.set()
        self.t.join()


def wrk(idp, name, script, path, conns, threads=1, args=(), duration=None):
    duration = duration or DURATION
    pid = idp.proc.pid
    cpu0 = cpu_seconds(pid)
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s", "--timeout", "10s",
           "-s", script, f"http://127.0.0.1:{idp.port}{path}"]
    if args:
        cmd += ["--", *args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    cpu = cpu_seconds(pid) - cpu0
    rss_after = proc_status(pid, "VmRSS")
    line = next((ln for ln in p.stdout.splitlines() if ln.startswith("BENCH ")), None)
    if p.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({name}): {p.stdout}\n{p.stderr}")
    r = json.loads(line[6:])
    r["errors"] = r["non2xx"] + r["connect"] + r["read"] + r["write"] + r["timeout"] + r["bad"]
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    r["ok_rps"] = (r["requests"] - r["non2xx"] - r["bad"]) / (r["duration_us"] / 1e6)
    r["p50"], r["p99"] = r["p50_us"] / 1000, r["p99_us"] / 1000
    r["cpu_us"] = cpu * 1e6 / max(r["requests"], 1)
    r["conns"] = conns
    r["rss_after"] = rss_after
    r["first_errors"] = [ln[9:] for ln in p.stdout.splitlines() if ln.startswith("FIRSTERR ")]
    r["load"] = loadavg().split()[0]
    flag = "" if r["errors"] == 0 else (f"  ** {r['errors']} errors (non-2xx {r['non2xx']}, "
                                        f"bad body {r['bad']}, socket {r['errors'] - r['non2xx'] - r['bad']}) **")
    for fe in r["first_errors"][:3]:
        say(f"    first error of a wrk thread: {fe}")
    say(f"  {name:22} c={conns:<3} {r['rps']:9.0f} req/s  p50 {r['p50']:.2f} ms  p99 {r['p99']:.2f} ms"
        f"  {r['cpu_us']:.0f} µs IDP CPU/req  VmRSS {rss_after / 1024:.1f} MiB  load {r['load']}{flag}")
    return r


# ------------------------------------------------------------------------------------------ main

def hash_params(cfg):
    """argon2 parameters of the configured users' hashes, and max_concurrent_hashes."""
    params = set()
    for u in cfg.get("users", []):
        m = re.match(r"\$(argon2(?:id|i|d))\$v=(\d+)\$m=(\d+),t=(\d+),p=(\d+)\$", u.get("password_argon2", ""))
        if m:
            params.add(f"{m.group(1)} m={m.group(3)} KiB, t={m.group(4)}, p={m.group(5)}")
    mch = cfg.get("password_policy", {}).get("max_concurrent_hashes", 4)
    return ", ".join(sorted(params)) or "?", mch


def log_errors(path):
    """The IDP's ERROR/WARN log lines, counted by message (timestamps and colours removed)."""
    counts = {}
    try:
        for line in open(path, errors="replace"):
            line = re.sub(r"\x1b\[[0-9;]*m", "", line).strip()
            m = re.match(r"\S+\s+(ERROR|WARN)\s+(.*)", line)
            if m:
                key = f"{m.group(1)} {m.group(2)}"
                counts[key] = counts.get(key, 0) + 1
    except OSError:
        pass
    return sorted(counts.items(), key=lambda kv: -kv[1])


def seed_refresh_tokens(port, n):
    out = []
    for _ in range(n):
        status, body = post(port, "/oauth2/token",
                            f"grant_type=password&username={USER[0]}&password={USER[1]}&scope=read",
                            basic(DEMO))
        if status != 200:
            raise RuntimeError(f"password grant for a refresh seed: {status} {body[:200]!r}")
        out.append(json.loads(body)["refresh_token"])
    return out


def run(work, results, notes):
    cfg = tomllib.load(open(CONFIG, "rb"))
    clients = {c["id"] for c in cfg.get("clients", [])}
    for need in (DEMO[0], GATEWAY[0]):
        if need not in clients:
            raise RuntimeError(f"{CONFIG} has no client {need}")
    # idp/idp.toml as is: --listen, --issuer and --database override its own.
    config = f"{work}/idp.toml"
    shutil.copy(CONFIG, config)
    for name, body in (("cc", STATIC), ("introspect", INTROSPECT)):
        with open(f"{work}/{name}.lua", "w") as f:
            f.write(body)

    # Cold start, fresh database each time (the first of them is the instance measured below).
    starts = []
    say(f"cold start: {STARTUP_RUNS} runs (spawn -> first client_credentials token, fresh database)")
    for i in range(STARTUP_RUNS - 1):
        idp = Idp(work, f"startup-{i}", config)
        try:
            starts.append(idp.start())
        finally:
            idp.stop()
    idp = Idp(work, "main", config)
    try:
        starts.append(idp.start())
        results["startup"] = starts
        time.sleep(1.0)
        results["rss_idle"] = proc_status(idp.proc.pid, "VmRSS")
        say(f"  {', '.join(f'{s:.0f}' for s in starts)} ms; idle VmRSS {results['rss_idle'] / 1024:.1f} MiB")

        cc_args = (basic(DEMO), "grant_type=client_credentials&scope=read")
        say(f"client_credentials (demo-client, scope read), {DURATION} s each")
        results["cc1"] = wrk(idp, "client_credentials", f"{work}/cc.lua", "/oauth2/token", 1, args=cc_args)
        with Sampler(idp.proc.pid) as s:
            results["cc32"] = wrk(idp, "client_credentials", f"{work}/cc.lua", "/oauth2/token", 32,
                                  args=cc_args)
        results["rss_load"] = s.peak

        status, body = post(idp.port, "/oauth2/token", "grant_type=client_credentials&scope=read", basic(DEMO))
        token = json.loads(body)["access_token"]
        status, body = post(idp.port, "/oauth2/introspect", f"token={token}", basic(GATEWAY))
        if status != 200 or b'"active":true' not in body:
            raise RuntimeError(f"introspection of a fresh token: {status} {body[:200]!r}")
        say("introspection (gateway client, one access token)")
        i_args = (basic(GATEWAY), token)
        results["in1"] = wrk(idp, "introspection", f"{work}/introspect.lua", "/oauth2/introspect", 1,
                             args=i_args)
        with Sampler(idp.proc.pid) as s:
            results["in32"] = wrk(idp, "introspection", f"{work}/introspect.lua", "/oauth2/introspect",
                                  32, args=i_args)
        results["rss_load"] = max(results["rss_load"], s.peak)

        say("refresh (rotation chained per connection; seeds from the password grant)")
        for n in (1, 8):
            before = proc_status(idp.proc.pid, "VmRSS")
            seeds = seed_refresh_tokens(idp.port, n)
            results.setdefault("seed_rss", []).append((n, before, proc_status(idp.proc.pid, "VmRSS")))
            with open(f"{work}/seeds-{n}", "w") as f:
                f.write("\n".join(seeds) + "\n")
            with open(f"{work}/refresh-{n}.lua", "w") as f:
                f.write(f"SEED_FILE = {json.dumps(f'{work}/seeds-{n}')}\nAUTH = {json.dumps(basic(DEMO))}\n"
                        + REFRESH)
            results[f"rf{n}"] = wrk(idp, "refresh_token", f"{work}/refresh-{n}.lua", "/oauth2/token", n,
                                    threads=n)

        say("password grant (alice via demo-client)")
        pw_args = (basic(DEMO), f"grant_type=password&username={USER[0]}&password={USER[1]}&scope=read")
        results["pw4"] = wrk(idp, "password", f"{work}/cc.lua", "/oauth2/token", 4, threads=2, args=pw_args)

        time.sleep(1.0)
        results["rss_after"] = proc_status(idp.proc.pid, "VmRSS")
        results["rss_hwm"] = proc_status(idp.proc.pid, "VmHWM")
        if idp.proc.poll() is not None:
            raise RuntimeError("the IDP exited during the benchmark")
    finally:
        idp.stop()
        results["log_errors"] = log_errors(f"{idp.dir}/idp.log")
    results["hash"] = hash_params(cfg)
    idp_backends.compare(sys.modules[__name__], work, config, results["backends"])


def report(results, notes, load_before, wall):
    mib = lambda k: results[k] / 1024  # noqa: E731
    lines = [f"## IDP benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
             f"Release build `{os.path.relpath(IDP, ROOT)}`, fresh SQLite database, idp/idp.toml's clients "
             f"and users; wrk on loopback, {DURATION} s per run; IDP CPU µs/req = user + system CPU "
             "of the IDP process during the run ÷ requests. Load average (1, 5, 15 min) before: "
             f"{load_before}; the 1-min figure at the end of each run is in the table.", ""]
    lines += ["| what | c | req/s | p50 ms | p99 ms | IDP CPU µs/req | errors | IDP VmRSS after, MiB | load |",
              "|---|---|---|---|---|---|---|---|---|"]
    rows = (("client_credentials (demo-client, scope read)", "cc1"), ("", "cc32"),
            ("introspection (gateway client, active token)", "in1"), ("", "in32"),
            ("refresh_token (rotated, chained per connection)", "rf1"), ("", "rf8"),
            ("password grant (argon2id)", "pw4"))
    for label, k in rows:
        r = results.get(k)
        if not r:
            continue
        err = "0" if r["errors"] == 0 else (f"**{r['errors']}** (non-2xx {r['non2xx']}, bad body {r['bad']})")
        rps = f"{r['rps']:,.0f}" if r["errors"] == 0 else f"{r['rps']:,.0f} (2xx: {r['ok_rps']:,.0f})"
        lines.append(f"| {label} | {r['conns']} | {rps} | {r['p50']:.2f} | {r['p99']:.2f} | "
                     f"{r['cpu_us']:.0f} | {err} | {r['rss_after'] / 1024:.1f} | {r['load']} |")
    lines.append("")
    for label, k in rows:
        r = results.get(k)
        if r and r["first_errors"]:
            what = label or next(lb for lb, kk in rows if kk[:2] == k[:2] and lb)
            lines += [f"First error of each failing wrk thread, {what} at c={r['conns']}: "
                      + "; ".join(f"`{e}`" for e in sorted(set(r["first_errors"]))), ""]
    if "hash" in results:
        params, mch = results["hash"]
        lines += [f"Password grant cost: {params} (the configured users' hashes), "
                  f"password_policy.max_concurrent_hashes = {mch}; successful logins do not count "
                  "towards the lockout.", ""]
    if "startup" in results:
        s = results["startup"]
        lines += [f"Cold start (spawn → first client_credentials token, fresh database: migrations and "
                  f"a new signing key), {len(s)} runs: median {statistics.median(s):.0f} ms "
                  f"({min(s):.0f}–{max(s):.0f}).", ""]
    if "rss_idle" in results:
        mem = f"VmRSS: idle after start-up {mib('rss_idle'):.1f} MiB"
        if "rss_load" in results:
            mem += f"; peak under c=32 load (sampled every 20 ms) {mib('rss_load'):.1f} MiB"
        for n, before, after in results.get("seed_rss", []):
            mem += (f"; {n} sequential password-grant login(s) (the refresh seeds): "
                    f"{before / 1024:.1f} → {after / 1024:.1f} MiB")
        if "rss_after" in results:
            mem += f"; after all the runs (1 s idle) {mib('rss_after'):.1f} MiB (VmHWM {mib('rss_hwm'):.1f} MiB)"
        lines += [mem + ".", ""]
    if results.get("log_errors"):
        lines += ["The IDP's log, ERROR and WARN lines by message (whole run):", ""]
        lines += [f"- {n} × `{msg[:200]}`" for msg, n in results["log_errors"][:5]]
        lines.append("")
    goals = []
    cc = results.get("cc32")
    if cc:
        ok = cc["rps"] >= GOAL_TOKENS_PER_S and cc["errors"] == 0
        goals.append(f"| client_credentials tokens/s (c=32) | {cc['rps']:,.0f} | ≥ {GOAL_TOKENS_PER_S:,} | "
                     f"{'met' if ok else '**missed**'} |")
    if "rss_idle" in results:
        mb = results["rss_idle"] * 1024 / 1e6
        goals.append(f"| IDP idle VmRSS | {mb:.1f} MB ({mib('rss_idle'):.1f} MiB) | ≤ {GOAL_IDLE_RSS_MB} MB | "
                     f"{'met' if mb <= GOAL_IDLE_RSS_MB else '**missed**'} |")
    lines += ["### Goals (issue 6, IDP)", "", "| goal | measured | target | |", "|---|---|---|---|", *goals, ""]
    lines += idp_backends.report(results.get("backends", {}))
    lines += notes
    lines.append(f"Wall time {wall:.0f} s; load average after: {loadavg()}.")
    return lines


def main():
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed (apt-get install wrk)")
    if not os.access(IDP, os.X_OK):
        sys.exit(f"no IDP binary at {IDP} (cargo build --release -p idp)")
    work = tempfile.mkdtemp(prefix="oauth2gw-idp-bench.")

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    t0 = time.monotonic()
    load_before = loadavg()
    results, notes, failed = {"backends": {}}, [], None
    try:
        run(work, results, notes)
    except (Exception, KeyboardInterrupt) as e:  # noqa: BLE001 - reported, partial results kept
        failed = e
        notes.append(f"**The IDP benchmark stopped early:** {e}")
    text = "\n".join(report(results, notes, load_before, time.monotonic() - t0)) + "\n"
    print(text)
    os.makedirs(os.path.dirname(REPORT), exist_ok=True)
    with open(REPORT, "w") as f:
        f.write(text)
    say(f"report also written to {REPORT}")
    errors = sum(r["errors"] for r in results.values() if isinstance(r, dict) and "errors" in r)
    errors += sum(r["errors"] for rs in results["backends"].values() for r in rs if isinstance(r, dict))
    if os.environ.get("KEEP") == "1" or failed or errors:
        say(f"logs kept in {work} (the IDP's: main/idp.log)")
    else:
        shutil.rmtree(work, ignore_errors=True)
    if failed or errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
