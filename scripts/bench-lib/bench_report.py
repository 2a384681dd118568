"""The gateway benchmark's markdown report (scripts/bench-lib/bench.py runs, this writes).

`build(m)` takes the measurements of one run: results keyed (concurrency, connections, alg,
variant, mode) -> list of wrk runs, VmRSS keyed (concurrency, alg, variant), start-up times per
variant, perf profiles, and the run's settings; it returns the report's lines: one table per
(Envoy concurrency, wrk connections, alg, mode), the goals of issue 8 (the Wasm filter against
`jwt_authn` and bare Envoy), of issue 16 (the native module, and the Wasm filter against its own
floor, the no-op Wasm filter), of issue 18 (a DPoP request with a cached token against a cold
bearer request), memory and start-up.
"""

import os
import shutil
import statistics
import subprocess

LABELS = {
    "bare": "bare Envoy",
    "noop-wasm": "no-op Wasm filter (the floor)",
    "jwt-authn-cached": "jwt_authn + jwt_cache_config",
    "jwt-authn": "jwt_authn, no cache",
    "filter": "filter (cache 4096)",
    "filter-nocache": "filter, cache off",
    "filter-baseline": "filter, the BASELINE_WASM build (cache 4096)",
    "filter-full": "filter, envoy.yaml config (rules, revocation feed, logout)",
    "native": "native module (cache 4096)",
    "native-noclaims": "native module, claim_headers {}",
    "native-full": "native module, envoy.yaml config + 100 k denylist",
    "jwt-authn-claims": "jwt_authn + cache + claim_to_headers (5 claims)",
    "noop-native": "no-op dynamic module (the native floor)",
}

WASM_OPT_FLAGS = ["--enable-bulk-memory", "--enable-sign-ext", "--enable-nontrapping-float-to-int",
                  "--enable-mutable-globals", "--enable-multivalue", "--enable-reference-types",
                  "--enable-extended-const"]


def fmt_int(x):
    return f"{x:,.0f}".replace(",", "\u202f")


def ratio(a, b):
    return f"{a / b:.2f}" if a and b else "n/a"


def summarise(results):
    """Medians of every measure over the rounds, the req/s range, the median hit rates."""
    def med(rs, k):
        return statistics.median(r[k] for r in rs)

    def med_opt(rs, k):
        xs = [r[k] for r in rs if r[k] is not None]
        return statistics.median(xs) if xs else None

    return {k: {m: med(rs, m) for m in ("rps", "p50", "p99", "cpu_us")} | {
        "min": min(r["rps"] for r in rs), "max": max(r["rps"] for r in rs),
        "cpu_rounds": [r["cpu_us"] for r in rs],
        "hit": med_opt(rs, "hit"), "native": med_opt(rs, "native")} for k, rs in results.items()}


class Goals:
    def __init__(self):
        self.rows = []

    def add(self, what, value, target, ok):
        self.rows.append(f"| {what} | {value} | {target} | {'met' if ok else '**missed**'} |")

    def table(self, title):
        if not self.rows:
            return []
        return [f"### {title}", "", "| goal | measured | target | |", "|---|---|---|---|", *self.rows, ""]


def median_startup(startup, v, i=0):
    return statistics.median(x[i] for x in startup[v]) if v in startup else None


def tables(m, summary):
    lines = []
    for conc in m["concurrency"]:
        for conns in m["connections"]:
            for mode in m["modes"]:
                for alg in m["algs"]:
                    rows = []
                    at = lambda v: summary.get((conc, conns, alg, v, mode))  # noqa: E731
                    base, jc, jn = at("bare"), at("jwt-authn-cached"), at("jwt-authn")
                    for v in m["variants"]:
                        s = at(v)
                        if not s:
                            continue
                        hit = "—" if s["hit"] is None else f"{s['hit']:.0f} %"
                        nat = "—" if s["native"] is None else f"{s['native']:.0f} %"
                        rows.append(
                            f"| {LABELS.get(v, v)} | {fmt_int(s['rps'])} [{fmt_int(s['min'])}–{fmt_int(s['max'])}] "
                            f"| {s['p50']:.2f} | {s['p99']:.2f} "
                            f"| {ratio(s['rps'], base and base['rps'])} | {ratio(s['rps'], jc and jc['rps'])} "
                            f"| {ratio(s['rps'], jn and jn['rps'])} | {s['cpu_us']:.1f} "
                            f"| {ratio(base and base['cpu_us'], s['cpu_us'])} | {hit} | {nat} |")
                    if rows:
                        lines += [f"### {alg}, {mode}, Envoy `--concurrency {conc}`, wrk -c{conns}", "",
                                  "| variant | req/s | p50 ms | p99 ms | ÷ bare | ÷ jwt_authn+cache "
                                  "| ÷ jwt_authn no cache | Envoy CPU µs/req | CPU: bare ÷ this | cache hits "
                                  "| verified natively |", "|---|---|---|---|---|---|---|---|---|---|---|",
                                  *rows, ""]
    return lines


def issue8_goals(m, summary, rss, startup):
    """The Wasm filter against jwt_authn and bare Envoy, at the primary load."""
    g = Goals()
    conc, conns = m["primary"]
    for alg in m["algs"]:
        at = lambda v, mode: summary.get((conc, conns, alg, v, mode))  # noqa: E731
        for what, f, ref, target in ((f"{alg} warm: filter ÷ jwt_authn with cache", at("filter", "warm"),
                                      at("jwt-authn-cached", "warm"), 1.0),
                                     (f"{alg} warm: filter ÷ bare Envoy", at("filter", "warm"), at("bare", "warm"), 0.9),
                                     (f"{alg} cold: filter ÷ jwt_authn without cache", at("filter", "cold"),
                                      at("jwt-authn", "cold"), 0.8)):
            if f and ref:
                x, y = f["rps"] / ref["rps"], ref["cpu_us"] / f["cpu_us"]
                g.add(what, f"{x:.2f} (by Envoy CPU per request: {y:.2f})", f"≥ {target}", x >= target)
    wasm_dir, shipped_path = m["wasm_dir"], m["filter_wasm"]
    plain = os.path.getsize(f"{wasm_dir}/filter.wasm")
    shipped = os.path.getsize(shipped_path)
    sizes = [f"{os.path.basename(shipped_path)} {shipped:,} B", f"filter.wasm (cargo) {plain:,} B"]
    if m["wasm_oz"] and shutil.which("wasm-opt"):
        oz = f"{m['work']}/filter.oz.wasm"
        subprocess.run(["wasm-opt", "-Oz", *WASM_OPT_FLAGS, f"{wasm_dir}/filter.wasm", "-o", oz], check=True)
        sizes.append(f"wasm-opt -Oz of it {os.path.getsize(oz):,} B (not shipped, not benchmarked)")
    g.add("filter .wasm size (shipped)", "; ".join(sizes), "≤ 600 KB (600 000 B)", shipped <= 600_000)
    rb, rf = rss_of(m, rss, conc, "bare"), rss_of(m, rss, conc, "filter")
    if rb and rf:
        g.add("Envoy VmRSS with filter ÷ without (after 1 s warm-up)",
              f"{rf / rb:.2f} ({rf / 1024:.0f} MiB vs {rb / 1024:.0f} MiB)", "≤ 1.5", rf / rb <= 1.5)
    if "bare" in startup and "filter" in startup:
        for i, what in ((0, "Envoy start-up with filter ÷ without: admin /ready LIVE"),
                        (1, "… until the first 200 with a token (includes the JWKS fetch)")):
            sb, sf = median_startup(startup, "bare", i), median_startup(startup, "filter", i)
            g.add(what, f"{sf / sb:.2f} ({sf:.0f} ms vs {sb:.0f} ms)", "≤ 2", sf / sb <= 2)
    return g.table(f"Goals (issue 8), Envoy `--concurrency {conc}`, wrk -c{conns}")


def rss_of(m, rss, conc, v):
    return next((rss[conc, alg, v] for alg in m["algs"] if (conc, alg, v) in rss), None)


def issue16_goals(m, summary, rss, startup):
    """The native module against jwt_authn and bare Envoy; the Wasm filter against its floor."""
    native, floor = Goals(), Goals()
    for conc in m["concurrency"]:
        for conns in m["connections"]:
            for alg in m["algs"]:
                at = lambda v, mode: summary.get((conc, conns, alg, v, mode))  # noqa: E731
                where = f"{alg}, concurrency {conc}, c={conns}"
                n_w, n_c = at("native", "warm"), at("native", "cold")
                jc_w, jn_c, b_w = at("jwt-authn-cached", "warm"), at("jwt-authn", "cold"), at("bare", "warm")
                if n_w and jc_w:
                    x = n_w["cpu_us"] / jc_w["cpu_us"]
                    native.add(f"{where}: warm Envoy CPU/req ÷ jwt_authn + cache",
                               f"{x:.2f} ({n_w['cpu_us']:.1f} vs {jc_w['cpu_us']:.1f} µs)", "≤ 1.0", x <= 1.0)
                if n_c and jn_c and conns in (16, 64):
                    x = n_c["rps"] / jn_c["rps"]
                    native.add(f"{where}: cold req/s ÷ jwt_authn without cache",
                               f"{x:.2f} ({fmt_int(n_c['rps'])} vs {fmt_int(jn_c['rps'])})", "≥ 1.0", x >= 1.0)
                if n_w and b_w:
                    x = n_w["rps"] / b_w["rps"]
                    o_n = at("noop-native", "warm")
                    floor_note = (f"; the no-op module: {o_n['rps'] / b_w['rps']:.2f}, CPU/req "
                                  f"{n_w['cpu_us']:.1f} vs its {o_n['cpu_us']:.1f} µs") if o_n else ""
                    native.add(f"{where}: warm req/s ÷ bare", f"{x:.2f}{floor_note}", "≥ 0.9", x >= 0.9)
                f_w, o_w = at("filter", "warm"), at("noop-wasm", "warm")
                if f_w and o_w:
                    x = f_w["cpu_us"] / o_w["cpu_us"]
                    floor.add(f"{where}: Wasm filter warm Envoy CPU/req ÷ no-op's",
                              f"{x:.2f} ({f_w['cpu_us']:.1f} vs {o_w['cpu_us']:.1f} µs)", "≤ 1.3", x <= 1.3)
        rb, rn = rss_of(m, rss, conc, "bare"), rss_of(m, rss, conc, "native")
        if rb and rn:
            native.add(f"concurrency {conc}: Envoy VmRSS ÷ bare",
                       f"{rn / rb:.2f} ({rn / 1024:.1f} vs {rb / 1024:.1f} MiB)", "≤ 1.1", rn / rb <= 1.1)
        rf, ro = rss_of(m, rss, conc, "filter"), rss_of(m, rss, conc, "noop-wasm")
        if rf and ro:
            floor.add(f"concurrency {conc}: Envoy VmRSS with the Wasm filter ÷ no-op's",
                      f"{rf / ro:.2f} ({rf / 1024:.1f} vs {ro / 1024:.1f} MiB)", "≤ 1.1", rf / ro <= 1.1)
    sb = median_startup(startup, "bare")
    sn, sf, so = (median_startup(startup, v) for v in ("native", "filter", "noop-wasm"))
    if sb and sn:
        native.add("start-up (exec → /ready LIVE) ÷ bare", f"{sn / sb:.2f} ({sn:.0f} vs {sb:.0f} ms)",
                   "≤ 1.3", sn / sb <= 1.3)
    if sf and so:
        floor.add("start-up of the Wasm filter ÷ no-op's (/ready LIVE)", f"{sf / so:.2f} ({sf:.0f} vs {so:.0f} ms)",
                  "≤ 2", sf / so <= 2)
    return (native.table("Goals of issue 16: the native module") +
            floor.table("Goals of issue 16: the Wasm filter against its floor (the no-op Wasm filter)"))


def issue28_goals(m, summary, rss, startup):
    """Issue 28: the cached path at Envoy's floor (native module; the Wasm filter's floor)."""
    g = Goals()
    for conc in m["concurrency"]:
        for conns in m["connections"]:
            for alg in m["algs"]:
                at = lambda v, mode: summary.get((conc, conns, alg, v, mode))  # noqa: E731
                where = f"{alg}, concurrency {conc}, c={conns}"

                def cpu(what, a, b, target):
                    if a and b:
                        x = a["cpu_us"] / b["cpu_us"]
                        g.add(f"{where}: {what}", f"{x:.2f} ({a['cpu_us']:.1f} vs {b['cpu_us']:.1f} µs)",
                              f"≤ {target}", x <= target)
                cpu("warm Envoy CPU/req, native ÷ jwt_authn + cache + claim_to_headers (equal work)",
                    at("native", "warm"), at("jwt-authn-claims", "warm"), 0.95)
                cpu("warm Envoy CPU/req, native with claim_headers {} ÷ jwt_authn + cache",
                    at("native-noclaims", "warm"), at("jwt-authn-cached", "warm"), 1.0)
                cpu("warm Envoy CPU/req, native full configuration (100 k denylist) ÷ native",
                    at("native-full", "warm"), at("native", "warm"), 1.03)
                cpu("Wasm filter warm Envoy CPU/req ÷ the no-op Wasm filter's",
                    at("filter", "warm"), at("noop-wasm", "warm"), 1.2)
                n_w, b_w = at("native", "warm"), at("bare", "warm")
                if n_w and b_w:
                    x = n_w["rps"] / b_w["rps"]
                    g.add(f"{where}: warm req/s, native ÷ bare", f"{x:.2f}", "≥ 0.92", x >= 0.92)
                n_c, j_c = at("native", "cold"), at("jwt-authn", "cold")
                if n_c and j_c and conns in (16, 64):
                    x = n_c["rps"] / j_c["rps"]
                    g.add(f"{where}: cold req/s, native ÷ jwt_authn without cache",
                          f"{x:.2f} ({fmt_int(n_c['rps'])} vs {fmt_int(j_c['rps'])})", "≥ 1.05", x >= 1.05)
    shipped = os.path.getsize(m["filter_wasm"])
    g.add("Wasm: filter .wasm size (shipped)", f"{shipped:,} B", "≤ 600 000 B", shipped <= 600_000)
    sf, so = median_startup(startup, "filter"), median_startup(startup, "noop-wasm")
    if sf and so:
        g.add("Wasm: start-up (exec → /ready LIVE) ÷ the no-op Wasm filter's",
              f"{sf / so:.2f} ({sf:.0f} vs {so:.0f} ms)", "≤ 2", sf / so <= 2)
    return g.table("Goals of issue 28: the cached path at Envoy's floor")


def floor_rows(m, summary, rss, startup):
    """What issue 8's goals give for a filter that does nothing, at the primary load."""
    conc, conns = m["primary"]
    rows = []
    for alg in m["algs"]:
        n_w = summary.get((conc, conns, alg, "noop-wasm", "warm"))
        for what, ref, target in ((f"{alg} warm: no-op ÷ jwt_authn with cache", "jwt-authn-cached", 1.0),
                                  (f"{alg} warm: no-op ÷ bare Envoy", "bare", 0.9)):
            r = summary.get((conc, conns, alg, ref, "warm"))
            if n_w and r:
                rows.append(f"| {what} | {n_w['rps'] / r['rps']:.2f} (by Envoy CPU per request: "
                            f"{r['cpu_us'] / n_w['cpu_us']:.2f}) | ≥ {target} |")
    rb, rn = rss_of(m, rss, conc, "bare"), rss_of(m, rss, conc, "noop-wasm")
    if rb and rn:
        rows.append(f"| Envoy VmRSS with the no-op ÷ without | {rn / rb:.2f} ({rn / 1024:.0f} MiB) | ≤ 1.5 |")
    sb, sn = median_startup(startup, "bare"), median_startup(startup, "noop-wasm")
    if sb and sn:
        rows.append(f"| Envoy start-up with the no-op ÷ without: /ready LIVE | {sn / sb:.2f} "
                    f"({sn:.0f} ms vs {sb:.0f} ms) | ≤ 2 |")
    if not rows:
        return []
    size = os.path.getsize(m["noop_wasm"])
    return ["### The floor: a filter that does nothing", "",
            f"`tools/noop-filter` ({size:,} B, same SDK, profile and wasm-opt as the gateway "
            "filter) only returns Continue: what Envoy's Wasm runtime costs before any work. "
            "A goal this row misses cannot be met by any proxy-wasm filter on this Envoy.", "",
            "| the goals' measures, for the no-op | measured | target |", "|---|---|---|", *rows, ""]


def dpop_rows(m, summary):
    """Issue 18: a DPoP request (cached token, new proof) against a cold bearer request (a new token
    every request) of the same alg, by Envoy CPU per request, per gateway variant."""
    g = Goals()
    rows = []
    for conc in m["concurrency"]:
        for conns in m["connections"]:
            for alg in m["algs"]:
                at = lambda v, mode: summary.get((conc, conns, alg, v, mode))  # noqa: E731
                floor, floor_cold = at("bare", "dpop"), at("bare", "cold")
                floor_cell = f"{floor['cpu_us']:.1f}" if floor else "—"
                for v in ("filter", "filter-baseline", "native"):
                    d, c = at(v, "dpop"), at(v, "cold")
                    if not (d and c):
                        continue
                    x = d["cpu_us"] / c["cpu_us"]
                    # Paired by round (runs of one round are seconds apart; rounds drift apart).
                    paired = sorted(a / b for a, b in zip(d["cpu_rounds"], c["cpu_rounds"]))
                    paired_cell = (f"{statistics.median(paired):.2f} ({paired[0]:.2f}–{paired[-1]:.2f})"
                                   if paired else "—")
                    # What the gateway adds: each request shape less bare Envoy's cost of it.
                    net = "—"
                    if floor and floor_cold and c["cpu_us"] > floor_cold["cpu_us"]:
                        net = (f"{(d['cpu_us'] - floor['cpu_us']) / (c['cpu_us'] - floor_cold['cpu_us']):.2f}")
                    rows.append(f"| {alg} | {conc} | {conns} | {LABELS.get(v, v)} | {d['cpu_us']:.1f} "
                                f"| {c['cpu_us']:.1f} | {x:.2f} | {paired_cell} | {net} | {fmt_int(d['rps'])} "
                                f"| {fmt_int(c['rps'])} | {floor_cell} |")
                    g.add(f"{alg}, {LABELS.get(v, v)}, concurrency {conc}, c={conns}: DPoP request with a "
                          "cached token ÷ cold bearer verification, Envoy CPU per request",
                          f"{x:.2f} ({d['cpu_us']:.1f} vs {c['cpu_us']:.1f} µs)", "≤ 1.0", x <= 1.0)
    if not rows:
        return []
    return ["### DPoP: a cached DPoP-bound token with a new proof ÷ a cold bearer token (issue 18)", "",
            "Same Envoy, same alg: the DPoP request verifies a new proof of that alg (the token "
            "comes from the cache); the cold bearer request verifies a new token of that alg.", "",
            "DPoP ÷ cold is the ratio of the medians over the rounds; paired: the median (and range) "
            "of the ratio within each round; net of bare: (DPoP − bare Envoy with the DPoP headers) ÷ "
            "(cold − bare Envoy with the cold tokens), what the gateway adds to each request.", "",
            "| alg | Envoy concurrency | wrk -c | variant | DPoP CPU µs/req | cold bearer CPU µs/req "
            "| DPoP ÷ cold | paired by round | net of bare | DPoP req/s | cold req/s "
            "| bare Envoy with the DPoP headers, CPU µs/req |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|", *rows, ""] + g.table("Goals of issue 18 (DPoP)")


def profile_rows(profiles):
    if not profiles:
        return []
    lines = ["### Where Envoy's CPU time goes (perf)", "",
             "One extra run each under `perf record -e cpu-clock -F 999`; µs of Envoy CPU per "
             "request by where the samples fell. The Envoy binary is stripped, so its own code "
             "(HTTP, proxy-wasm host and hostcalls, V8 runtime, BoringSSL) is one column.", "",
             "| alg | variant | mode | total µs/req | Envoy code | the module (Wasm: V8 JIT; native: its .so) | kernel | libc, other |",
             "|---|---|---|---|---|---|---|---|"]
    for alg, v, mode, r, sp in profiles:
        lines.append(f"| {alg} | {LABELS.get(v, v)} | {mode} | {r['cpu_us']:.1f} | {sp['envoy']:.1f} | "
                     f"{sp['jit']:.1f} | {sp['kernel']:.1f} | {sp['other']:.1f} |")
    return lines + [""]


def memory_rows(m, rss, startup):
    lines = ["### Memory and start-up", "",
             "| variant | " + " | ".join(f"VmRSS MiB, concurrency {c}" for c in m["concurrency"]) +
             f" | start-up: /ready LIVE ms (median of {m['startup_runs']}, min–max) | first 200 with token ms |",
             "|---|" + "---|" * len(m["concurrency"]) + "---|---|"]
    for v in m["variants"]:
        mem = [rss_of(m, rss, c, v) for c in m["concurrency"]]
        s = startup.get(v)
        live = first = "—"
        if s:
            lv, fv = [x[0] for x in s], [x[1] for x in s]
            live = f"{statistics.median(lv):.0f} ({min(lv):.0f}–{max(lv):.0f})"
            first = f"{statistics.median(fv):.0f} ({min(fv):.0f}–{max(fv):.0f})"
        cells = " | ".join(f"{r / 1024:.1f}" if r else "—" for r in mem)
        lines.append(f"| {LABELS.get(v, v)} | {cells} | {live} | {first} |")
    return lines


def build(m):
    summary = summarise(m["results"])
    rss, startup = m["rss"], m["startup"]
    return (tables(m, summary) + issue8_goals(m, summary, rss, startup) + floor_rows(m, summary, rss, startup)
            + issue16_goals(m, summary, rss, startup) + issue28_goals(m, summary, rss, startup)
            + dpop_rows(m, summary) + profile_rows(m["profiles"]) + memory_rows(m, rss, startup))
