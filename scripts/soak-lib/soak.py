#!/usr/bin/env python3
"""The soak (scripts/soak starts the IDP, the resource server and Envoy, then runs this): mixed
traffic through Envoy for SOAK_SECONDS, signing-key rotations at the IDP during the run, VmRSS of
Envoy and the IDP every SOAK_SAMPLE_SECONDS. Writes, in SOAK_OUT: rss.csv, rss.png, summary.md,
summary.json. Exits 1 when a goal is missed: a wrong answer, an unexpected error, a failed
rotation, tokens never signed by a rotated key, or an RSS slope after warm-up of
SOAK_SLOPE_GOAL MiB / 10 min or more.

Environment (set by scripts/soak): GATEWAY_PORT, ADMIN_PORT, ENVOY_PID, IDP_PID, IDP_BIN,
IDP_CONFIG, IDP_DATABASE, SOAK_OUT, MODULE, LEEWAY_SECONDS; knobs SOAK_SECONDS (600),
SOAK_RATE (operations/s over all workers, 30), SOAK_WORKERS (3), SOAK_ROTATE_SECONDS (120),
SOAK_ROTATE_FIRST_SECONDS (60), SOAK_PUBLISH_SECONDS (40), SOAK_SAMPLE_SECONDS (10),
SOAK_WARMUP_SECONDS (120), SOAK_SLOPE_GOAL (1.0), SOAK_WEIGHTS (e.g. "logout=0 password=0":
the share of each operation, default traffic.WEIGHTS).
"""

import http.client
import json
import os
import subprocess
import sys
import threading
import time

import rss
import traffic

ENV = os.environ


def knob(name, default, cast=int):
    return cast(ENV.get(name, default))


SECONDS = knob("SOAK_SECONDS", 600)
RATE = knob("SOAK_RATE", 30, float)
WORKERS = knob("SOAK_WORKERS", 3)
ROTATE_EVERY = knob("SOAK_ROTATE_SECONDS", 120)
ROTATE_FIRST = knob("SOAK_ROTATE_FIRST_SECONDS", 60)
PUBLISH = knob("SOAK_PUBLISH_SECONDS", 40)
SAMPLE = knob("SOAK_SAMPLE_SECONDS", 10)
WARMUP = knob("SOAK_WARMUP_SECONDS", 120)
SLOPE_GOAL = knob("SOAK_SLOPE_GOAL", 1.0, float)
OUT = ENV["SOAK_OUT"]


def say(msg):
    print(f"\033[1m==> {msg}\033[0m", file=sys.stderr, flush=True)


class Rotator(threading.Thread):
    """Runs `idp rotate-key` against the running IDP's database at ROTATE_FIRST, then every
    ROTATE_EVERY seconds (the running IDP picks the new key up within a second; it signs after
    PUBLISH seconds, longer than the gateway's JWKS refresh_seconds). Each run is judged as the
    kind rotate_key (exit status 0)."""

    def __init__(self, tally, t0, deadline):
        super().__init__(daemon=True, name="soak-rotator")
        self.tally = tally
        self.t0 = t0
        self.deadline = deadline
        self.activations = []  # seconds (since t0) at which a new key starts signing

    def run(self):
        at = self.t0 + ROTATE_FIRST
        while at < self.deadline:
            time.sleep(max(0.0, at - time.monotonic()))
            cmd = [ENV["IDP_BIN"], "rotate-key", "--config", ENV["IDP_CONFIG"],
                   "--database", ENV["IDP_DATABASE"], "--publish-seconds", str(PUBLISH)]
            started = time.monotonic() - self.t0
            try:
                r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
                ok, detail = r.returncode == 0, (r.stdout + r.stderr).strip()[-300:]
            except (OSError, subprocess.TimeoutExpired) as e:
                ok, detail = False, str(e)
            self.tally.record("rotate_key", "ok" if ok else "errors", detail)
            if ok:
                say(f"t={started:.0f}s {detail.splitlines()[-1] if detail else 'rotated'}")
                self.activations.append(started + PUBLISH)
            at += ROTATE_EVERY


def envoy_stats():
    """The filter's counters from Envoy's admin (/stats), by name without the host prefix."""
    try:
        c = http.client.HTTPConnection("127.0.0.1", int(ENV["ADMIN_PORT"]), timeout=5)
        c.request("GET", "/stats?filter=oauth2gw")
        text = c.getresponse().read().decode()
        c.close()
    except (OSError, http.client.HTTPException) as e:
        return {"error": str(e)}
    stats = {}
    for line in text.splitlines():
        name, _, value = line.partition(": ")
        if ".oauth2gw." in name and value.strip().isdigit():
            stats[name.split(".oauth2gw.", 1)[1]] = int(value)
    return stats


def envoy_heap():
    """Envoy's C++ heap from its admin (/memory, tcmalloc): bytes allocated and the heap's size,
    in KiB. What VmRSS has beyond them is code, thread stacks and, with the Wasm module, V8 (the
    Wasm VMs' compiled code and linear memory)."""
    try:
        c = http.client.HTTPConnection("127.0.0.1", int(ENV["ADMIN_PORT"]), timeout=5)
        c.request("GET", "/memory")
        doc = json.loads(c.getresponse().read())
        c.close()
        return {"envoy_heap_allocated_kib": int(doc["allocated"]) // 1024,
                "envoy_heap_size_kib": int(doc["heap_size"]) // 1024}
    except (OSError, http.client.HTTPException, ValueError, KeyError):
        return {"envoy_heap_allocated_kib": None, "envoy_heap_size_kib": None}


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def apply_weights(spec):
    """SOAK_WEIGHTS, e.g. "logout=0 password=0": overrides the share of each operation."""
    for item in spec.split():
        op, _, weight = item.partition("=")
        if op not in traffic.WEIGHTS or not weight.isdigit():
            sys.exit(f"SOAK_WEIGHTS: '{item}' is not OPERATION=N with OPERATION one of {', '.join(traffic.WEIGHTS)}")
        traffic.WEIGHTS[op] = int(weight)


def main():
    apply_weights(ENV.get("SOAK_WEIGHTS", ""))
    pids = {"envoy": int(ENV["ENVOY_PID"]), "idp": int(ENV["IDP_PID"])}
    tally = traffic.Tally()
    shared = traffic.Shared(int(ENV.get("LEEWAY_SECONDS", "30")))
    shared.start = threading.Barrier(WORKERS)
    t0 = time.monotonic()
    deadline = t0 + SECONDS
    sampler = rss.Sampler(pids, SAMPLE, t0, extra=lambda: {"requests": tally.total(), **envoy_heap()})
    workers = [traffic.Worker(i, int(ENV["GATEWAY_PORT"]), tally, shared, RATE / WORKERS, deadline, seed=i)
               for i in range(WORKERS)]
    rotator = Rotator(tally, t0, deadline)
    say(f"soak: {SECONDS} s, {RATE:g} operations/s over {WORKERS} workers, key rotation every "
        f"{ROTATE_EVERY} s from {ROTATE_FIRST} s (publish {PUBLISH} s), VmRSS every {SAMPLE} s")
    sampler.start()
    rotator.start()
    for w in workers:
        w.start()
    last = 0.0
    while time.monotonic() < deadline:
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        elapsed = time.monotonic() - t0
        if elapsed - last >= 60 or time.monotonic() >= deadline:
            last = elapsed
            row = sampler.rows[-1] if sampler.rows else {}
            say(f"t={elapsed:.0f}s requests={tally.total()} wrong={tally.total('wrong')} "
                f"errors={tally.total('errors')} envoy={row.get('envoy_rss_kib')} KiB "
                f"idp={row.get('idp_rss_kib')} KiB")
        if not all(alive(p) for p in pids.values()):
            say("a soaked process exited")
            break
    for w in workers:
        w.join()
    rotator.join(timeout=0)
    sampler.stop()
    wall = time.monotonic() - t0
    return report(tally, sampler, rotator, workers, pids, wall)


def report(tally, sampler, rotator, workers, pids, wall):
    kinds = tally.snapshot()
    stats = envoy_stats()
    series = {name: sampler.series(name) for name in pids}
    rss.write_csv(os.path.join(OUT, "rss.csv"), sampler.rows)
    module = ENV.get("MODULE", "wasm")
    plotted = rss.plot(os.path.join(OUT, "rss.png"), series, WARMUP,
                       f"scripts/soak: VmRSS, {wall / 60:.0f} min, {module} module, "
                       f"{tally.total() / wall:.0f} req/s")
    problems = []
    wrong, errors = tally.total("wrong"), tally.total("errors")
    if wrong:
        problems.append(f"{wrong} wrong answers")
    if errors:
        problems.append(f"{errors} unexpected errors")
    for name, pid in pids.items():
        if not alive(pid):
            problems.append(f"{name} exited during the soak")
    # a key that began signing (with margin) before the end must have signed tokens
    expected_kids = 1 + sum(1 for a in rotator.activations if a + 20 < wall)
    if len(tally.kids) < expected_kids:
        problems.append(f"tokens signed by {len(tally.kids)} keys, expected {expected_kids} (rotation)")
    memory = {}
    for name, pts in series.items():
        vals = [k for _, k in pts if k is not None]
        slope = rss.slope_mib_per_10min(pts, WARMUP)
        memory[name] = {"start_kib": vals[0] if vals else None, "end_kib": vals[-1] if vals else None,
                        "max_kib": max(vals) if vals else None, "slope_mib_per_10min": slope}
        if slope is None:
            problems.append(f"{name}: too few samples after warm-up for a slope")
        elif slope >= SLOPE_GOAL:
            problems.append(f"{name}: RSS slope {slope:.2f} MiB / 10 min >= {SLOPE_GOAL}")
        for part in ("anon", "file"):
            col = [(r["seconds"], r[f"{name}_{part}_kib"]) for r in sampler.rows]
            memory[name][f"{part}_slope_mib_per_10min"] = rss.slope_mib_per_10min(col, WARMUP)
    heap = [(r["seconds"], r["envoy_heap_allocated_kib"]) for r in sampler.rows]
    memory["envoy"]["heap_allocated_slope_mib_per_10min"] = rss.slope_mib_per_10min(heap, WARMUP)
    ops = {}
    for w in workers:
        for op, n in w.ops.items():
            ops[op] = ops.get(op, 0) + n
    summary = {
        "module": module, "seconds": round(wall, 1), "rate_ops_per_s": RATE, "workers": WORKERS,
        "requests": tally.total(), "wrong": wrong, "errors": errors, "kinds": kinds,
        "operations": ops, "weights": dict(traffic.WEIGHTS), "rotations": len(rotator.activations), "token_kids": dict(tally.kids),
        "memory": memory, "envoy_stats": stats, "examples": dict(tally.examples),
        "problems": problems, "plot": plotted,
    }
    with open(os.path.join(OUT, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    md = markdown(summary)
    with open(os.path.join(OUT, "summary.md"), "w") as f:
        f.write(md)
    print(md)
    for kind, lines in tally.examples.items():
        for line in lines:
            say(f"{kind}: {line}")
    if problems:
        say("soak FAILED: " + "; ".join(problems))
        return 1
    say(f"soak passed; {OUT}/rss.csv, rss.png, summary.md")
    return 0


def f(slope):
    return "-" if slope is None else f"{slope:+.2f}"


def mib(kib):
    return "-" if kib is None else f"{kib / 1024:.1f}"


def markdown(s):
    lines = [f"Soak: {s['seconds'] / 60:.1f} min, {s['module']} module, {s['requests']} requests "
             f"({s['requests'] / s['seconds']:.1f}/s; {s['rate_ops_per_s']:g} operations/s over "
             f"{s['workers']} workers), {s['rotations']} key rotations, tokens signed by "
             f"{len(s['token_kids'])} keys.", "",
             "| request kind | sent | as expected | wrong | errors |", "|---|---:|---:|---:|---:|"]
    for kind, k in s["kinds"].items():
        lines.append(f"| {kind} | {k['sent']} | {k['ok']} | {k['wrong']} | {k['errors']} |")
    lines.append(f"| **total** | {s['requests']} | {s['requests'] - s['wrong'] - s['errors']} | "
                 f"{s['wrong']} | {s['errors']} |")
    lines += ["", "| process | VmRSS start (MiB) | end | max | slope after warm-up (MiB / 10 min) "
              "| of which RssAnon | RssFile |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, m in s["memory"].items():
        slope, anon, file = (f(m.get(k)) for k in ("slope_mib_per_10min", "anon_slope_mib_per_10min",
                                                     "file_slope_mib_per_10min"))
        lines.append(f"| {name} | {mib(m['start_kib'])} | {mib(m['end_kib'])} | {mib(m['max_kib'])} "
                     f"| {slope} | {anon} | {file} |")
    heap_slope = s["memory"].get("envoy", {}).get("heap_allocated_slope_mib_per_10min")
    if heap_slope is not None:
        lines += ["", f"Envoy's C++ heap (admin /memory, allocated): {heap_slope:+.2f} MiB / 10 min after "
                  "warm-up (the rest of its RSS: code, thread stacks and, with the Wasm module, V8 and the "
                  "Wasm VMs' memory)."]
    stats = s["envoy_stats"]
    if stats and "error" not in stats:
        lines += ["", "Envoy counters: " + ", ".join(f"{k} {v}" for k, v in sorted(stats.items()))]
    lines += ["", "Result: " + ("passed" if not s["problems"] else "FAILED: " + "; ".join(s["problems"])), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
