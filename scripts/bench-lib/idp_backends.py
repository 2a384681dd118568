"""SQLite against PostgreSQL with one and with two IDP replicas, side by side in one run (issue 17;
part of the IDP benchmark, `SUITES=idp scripts/bench`; IDP_BACKENDS="" skips it).

Each backend gets a fresh database: SQLite as the IDP's default (WAL, synchronous=FULL), and a
database in a throwaway PostgreSQL cluster (Debian's server, `initdb` in a temporary directory, a
free 127.0.0.1 port, started as the `postgres` user when run as root, default durability: fsync
and synchronous_commit on). "postgres-2" is two replicas on one database, both started with the
same issuer and key-encryption key; each load is split between them (one wrk per replica, half the
connections each, run at once) and summed. Per backend, DURATION seconds each: client_credentials
(c=32), introspection (c=32), chained refresh at c=8 and c=32 (one connection per wrk thread, each
rotating its own refresh token; a reuse would end the session and show as errors). IDP CPU µs/req
is the CPU of every replica during the run ÷ requests, PostgreSQL CPU µs/req the same for the
server and its backends; VmRSS per replica after the runs.
Backends run in IDP_BACKEND_ROUNDS rounds (default 2), the order reversed every other round, so
that the machine's drift shows as spread rather than as a difference between backends.
"""

import glob
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

BACKENDS = os.environ.get("IDP_BACKENDS", "sqlite postgres postgres-2").split()
ROUNDS = int(os.environ.get("IDP_BACKEND_ROUNDS", "2"))
KEK = "5a" * 32  # the replicas' shared key-encryption key (a throwaway database)
GOAL_REFRESH_RATIO = 3.0
GOAL_REFRESH_P99_MS = 50.0
LOADS = (("client_credentials", "cc", 32), ("introspection", "in", 32),
         ("refresh_token", "rf", 8), ("refresh_token", "rf", 32))


def pg_bin_dir():
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: [int(x) for x in d.split("/")[4].split(".") if x.isdigit()])
    return dirs[-1] if dirs and os.path.exists(f"{dirs[-1]}/initdb") else None


class PgCluster:
    """A throwaway PostgreSQL cluster with default durability; stop() deletes it."""

    def __init__(self, free_port):
        self.bin = pg_bin_dir()
        if self.bin is None:
            raise RuntimeError("no PostgreSQL server (/usr/lib/postgresql/*/bin/initdb); scripts/bench installs it")
        self.as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.dir = subprocess.run(self.as_pg + ["mktemp", "-d", "/tmp/idp-bench-pg-XXXXXXXX"],
                                  capture_output=True, text=True, check=True).stdout.strip()
        self.port, self.proc, self.n = free_port(), None, 0
        subprocess.run(self.as_pg + [f"{self.bin}/initdb", "-D", f"{self.dir}/data", "-U", "postgres",
                                     "-A", "trust", "-E", "UTF8"], capture_output=True, check=True)
        self.proc = subprocess.Popen(
            self.as_pg + [f"{self.bin}/postgres", "-D", f"{self.dir}/data", "-p", str(self.port),
                          "-k", self.dir, "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200"],
            stdout=subprocess.DEVNULL, stderr=open(f"{tempfile.gettempdir()}/idp-bench-pg-{self.port}.log", "w"))
        deadline = time.monotonic() + 30
        while self.psql("postgres", "SELECT 1").returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not start (log: /tmp/idp-bench-pg-{self.port}.log)")
            time.sleep(0.1)

    def psql(self, db, sql):
        psql = f"{self.bin}/psql" if os.path.exists(f"{self.bin}/psql") else "psql"
        return subprocess.run([psql, "-X", "-q", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                               "-d", db, "-c", sql], capture_output=True, text=True)

    def database(self):
        self.n += 1
        name = f"bench{self.n}"
        r = self.psql("postgres", f"CREATE DATABASE {name}")
        if r.returncode != 0:
            raise RuntimeError(f"CREATE DATABASE: {r.stderr}")
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def cpu_seconds(self):
        """User + system CPU of the server and its live backends (the IDP's pooled connections
        live through a run; a backend that exited during it is not counted)."""
        root = self.server_pid()
        total = 0.0
        for stat in glob.glob("/proc/[0-9]*/stat"):
            try:
                fields = open(stat).read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            pid = int(stat.split("/")[2])
            if pid == root or int(fields[1]) == root:
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def server_pid(self):
        try:
            return int(open(f"{self.dir}/data/postmaster.pid").readline())
        except (OSError, ValueError):
            return -1

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(2)  # SIGINT: fast shutdown
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def merge(parts):
    """One result from wrk runs made at once against several replicas: requests and errors
    summed, throughput summed, latency percentiles the worst replica's."""
    if len(parts) == 1:
        return parts[0]
    r = {k: sum(p[k] for p in parts) for k in ("requests", "non2xx", "bad", "errors", "rps", "ok_rps")}
    r["p50"] = max(p["p50"] for p in parts)
    r["p99"] = max(p["p99"] for p in parts)
    r["conns"] = sum(p["conns"] for p in parts)
    r["first_errors"] = [e for p in parts for e in p["first_errors"]]
    r["load"] = parts[-1]["load"]
    return r


def run_backend(b, label, replicas, work, round_no, results, cluster):
    """The loads against `replicas` (started); results[(label, key, c)] gets a list of rounds."""
    port = replicas[0].port
    status, body = b.post(port, "/oauth2/token", "grant_type=client_credentials&scope=read", b.basic(b.DEMO))
    token = json.loads(body)["access_token"]
    for name, key, c in LOADS:
        share = c // len(replicas)
        cpu0 = [b.cpu_seconds(i.proc.pid) for i in replicas]
        db0 = cluster.cpu_seconds() if cluster else 0.0
        scripts = []
        for n, idp in enumerate(replicas):
            if key == "rf":
                seeds = b.seed_refresh_tokens(idp.port, share)
                path = f"{work}/seeds-{label}-{round_no}-{c}-{n}"
                with open(path, "w") as f:
                    f.write("\n".join(seeds) + "\n")
                script = f"{work}/rf-{label}-{round_no}-{c}-{n}.lua"
                with open(script, "w") as f:
                    f.write(f"SEED_FILE = {json.dumps(path)}\nAUTH = {json.dumps(b.basic(b.DEMO))}\n" + b.REFRESH)
                scripts.append((idp, script, "/oauth2/token", share, ()))
            elif key == "cc":
                scripts.append((idp, f"{work}/cc.lua", "/oauth2/token", share,
                                (b.basic(b.DEMO), "grant_type=client_credentials&scope=read")))
            else:
                scripts.append((idp, f"{work}/introspect.lua", "/oauth2/introspect", share,
                                (b.basic(b.GATEWAY), token)))
        parts = [None] * len(scripts)

        def one(n, idp, script, path, conns, args):
            threads = conns if key == "rf" else 1
            parts[n] = b.wrk(idp, f"{label} {name}", script, path, conns, threads=threads, args=args)

        workers = [threading.Thread(target=one, args=(n, *s)) for n, s in enumerate(scripts)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        if any(p is None for p in parts):
            raise RuntimeError(f"{label} {name} c={c}: a wrk run failed (see above)")
        r = merge(parts)
        cpu = sum(b.cpu_seconds(i.proc.pid) - c0 for i, c0 in zip(replicas, cpu0))
        r["cpu_us"] = cpu * 1e6 / max(r["requests"], 1)
        r["db_cpu_us"] = ((cluster.cpu_seconds() - db0) * 1e6 / max(r["requests"], 1)) if cluster else None
        results.setdefault((label, key, c), []).append(r)
    results.setdefault((label, "rss"), []).append([b.proc_status(i.proc.pid, "VmRSS") for i in replicas])


def compare(b, work, config, results):
    """Runs every backend of IDP_BACKENDS, ROUNDS times; `b` is the idp_bench module."""
    if not BACKENDS:
        return
    cluster = None
    try:
        if any(x.startswith("postgres") for x in BACKENDS):
            cluster = PgCluster(b.free_port)
        for round_no in range(ROUNDS):
            order = BACKENDS if round_no % 2 == 0 else list(reversed(BACKENDS))
            for label in order:
                b.say(f"backends, round {round_no + 1}/{ROUNDS}: {label}")
                n = 2 if label.endswith("-2") else 1
                database = cluster.database() if label.startswith("postgres") else None
                replicas = []
                try:
                    for i in range(n):
                        idp = b.Idp(work, f"{label}-{round_no}-{i}", config, database=database,
                                    issuer_port=replicas[0].port if replicas else None,
                                    env={"IDP_KEY_ENCRYPTION_KEY": KEK})
                        replicas.append(idp)
                        idp.start()
                    run_backend(b, label, replicas, work, round_no, results,
                                cluster if label.startswith("postgres") else None)
                finally:
                    for idp in replicas:
                        idp.stop()
    finally:
        if cluster is not None:
            cluster.stop()


def report(results):
    """Markdown lines: one row per backend and load (median of the rounds), then the goals."""
    if not any(isinstance(k, tuple) for k in results):
        return []
    labels = [x for x in BACKENDS if (x, "rss") in results]
    lines = ["### SQLite and PostgreSQL side by side (issue 17)", "",
             f"Medians of {ROUNDS} round(s) (each backend a fresh database per round; order reversed every "
             "other round); req/s are 2xx answers per second; two replicas: both loaded at once, half "
             "the connections each, summed (p50/p99: the slower replica's).", "",
             "| backend | load | c | req/s (rounds) | p50 ms | p99 ms | IDP CPU µs/req | PostgreSQL CPU µs/req | errors |",
             "|---|---|---|---|---|---|---|---|---|"]

    def med(xs):
        xs = sorted(xs)
        return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2

    for label in labels:
        for name, key, c in LOADS:
            rs = results.get((label, key, c), [])
            if not rs:
                continue
            errors = sum(r["errors"] for r in rs)
            db = "—" if rs[0]["db_cpu_us"] is None else f"{med([r['db_cpu_us'] for r in rs]):.0f}"
            each = ", ".join(f"{r['ok_rps']:,.0f}" for r in rs)
            lines.append(f"| {label} | {name} | {c} | {med([r['ok_rps'] for r in rs]):,.0f} ({each}) | {med([r['p50'] for r in rs]):.2f} | "
                         f"{med([r['p99'] for r in rs]):.2f} | {med([r['cpu_us'] for r in rs]):.0f} | {db} | "
                         f"{errors if errors else 0} |")
    lines.append("")
    rss = []
    for label in labels:
        last = results[(label, "rss")][-1]
        rss.append(f"{label} " + " + ".join(f"{v / 1024:.1f}" for v in last) + " MiB")
    lines += ["IDP VmRSS after the runs (last round, per replica): " + "; ".join(rss) + ".", ""]

    def rf8(label):
        rs = results.get((label, "rf", 8), [])
        return (med([r["ok_rps"] for r in rs]), med([r["p99"] for r in rs])) if rs else None

    def cc(label):
        rs = results.get((label, "cc", 32), [])
        return med([r["ok_rps"] for r in rs]) if rs else None

    base = rf8("sqlite")
    goals = []
    for label in labels:
        if label == "sqlite" or base is None or rf8(label) is None:
            continue
        rps, p99 = rf8(label)
        ratio = rps / base[0]
        goals.append(f"| refresh c=8, {label} ÷ sqlite ≥ {GOAL_REFRESH_RATIO:.0f}× | {ratio:.2f}× ({rps:,.0f} vs "
                     f"{base[0]:,.0f} req/s) | {'met' if ratio >= GOAL_REFRESH_RATIO else '**missed**'} |")
        goals.append(f"| refresh c=8 p99, {label} ≤ {GOAL_REFRESH_P99_MS:.0f} ms | {p99:.1f} ms | "
                     f"{'met' if p99 <= GOAL_REFRESH_P99_MS else '**missed**'} |")
        if cc(label) and cc("sqlite"):
            ratio = cc(label) / cc("sqlite")
            goals.append(f"| client_credentials c=32, {label} ÷ sqlite ≥ 1 | {ratio:.2f}× | "
                         f"{'met' if ratio >= 1.0 else '**missed**'} |")
    if goals:
        lines += ["| goal (issue 17) | measured | |", "|---|---|---|", *goals, ""]
    return lines
