"""Memory of the soaked processes (scripts/soak): VmRSS samples from /proc/PID/status, the
least-squares slope after warm-up, the CSV and the PNG plot (matplotlib, Agg backend)."""

import csv
import threading
import time

MIB = 1024.0


def proc_status_kib(pid, field):
    """A KiB field of /proc/PID/status (VmRSS, RssAnon, RssFile); None when the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def vm_rss_kib(pid):
    """VmRSS of `pid` in KiB (None when the process is gone)."""
    return proc_status_kib(pid, "VmRSS")


def slope_mib_per_10min(samples, warmup_s):
    """Least-squares slope of RSS over time, in MiB per 10 minutes, over the samples taken at or
    after `warmup_s`; `samples` are (seconds, KiB). None with fewer than 3 such samples.

    >>> round(slope_mib_per_10min([(0, 0), (60, 1024), (120, 2048), (180, 3072)], 0), 6)
    10.0
    >>> slope_mib_per_10min([(0, 500), (200, 100), (300, 100), (400, 100)], 120)
    0.0
    >>> slope_mib_per_10min([(0, 1), (130, 2)], 120) is None
    True
    """
    pts = [(t, kib) for t, kib in samples if t >= warmup_s and kib is not None]
    if len(pts) < 3:
        return None
    n = len(pts)
    mean_t = sum(t for t, _ in pts) / n
    mean_y = sum(y for _, y in pts) / n
    var_t = sum((t - mean_t) ** 2 for t, _ in pts)
    if var_t == 0:
        return None
    cov = sum((t - mean_t) * (y - mean_y) for t, y in pts)
    kib_per_s = cov / var_t
    return kib_per_s * 600.0 / MIB


class Sampler(threading.Thread):
    """Samples VmRSS of every named pid every `period` seconds from `t0` (time.monotonic())
    until `stop()`. Each row: seconds since t0, then KiB per process (None once it is gone), then
    whatever `extra()` returns (e.g. the requests sent so far)."""

    def __init__(self, pids, period, t0, extra=lambda: {}):
        super().__init__(daemon=True)
        self.pids = pids  # {"envoy": pid, "idp": pid}
        self.period = period
        self.t0 = t0
        self.extra = extra
        self.rows = []
        self._done = threading.Event()

    def sample(self):
        row = {"seconds": round(time.monotonic() - self.t0, 1)}
        for name, pid in self.pids.items():
            row[f"{name}_rss_kib"] = vm_rss_kib(pid)
        # VmRSS = RssAnon (heap, stacks, V8) + RssFile (the binary's pages as code first runs) + RssShmem
        for name, pid in self.pids.items():
            row[f"{name}_anon_kib"] = proc_status_kib(pid, "RssAnon")
            row[f"{name}_file_kib"] = proc_status_kib(pid, "RssFile")
        row.update(self.extra())
        self.rows.append(row)
        return row

    def run(self):
        k = 0
        while not self._done.is_set():
            self.sample()
            k += 1
            delay = self.t0 + k * self.period - time.monotonic()
            if delay > 0 and self._done.wait(delay):
                break

    def stop(self):
        self._done.set()
        self.join()
        self.sample()  # one at the very end

    def series(self, name):
        return [(r["seconds"], r[f"{name}_rss_kib"]) for r in self.rows]


def write_csv(path, rows):
    if not rows:
        return
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)


def plot(path, series, warmup_s, title):
    """A small PNG: RSS (MiB) over minutes, one line per process, warm-up shaded, with the fitted
    slope in the legend. `series`: {name: [(seconds, KiB)]}; returns False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, (ax, delta) = plt.subplots(2, 1, figsize=(6.4, 4.6), dpi=100, sharex=True,
                                    gridspec_kw={"height_ratios": [3, 2]})
    for name, pts in series.items():
        pts = [(t, k) for t, k in pts if k is not None]
        slope = slope_mib_per_10min(pts, warmup_s)
        label = name if slope is None else f"{name} ({slope:+.2f} MiB / 10 min after warm-up)"
        minutes = [t / 60 for t, _ in pts]
        line, = ax.plot(minutes, [k / MIB for _, k in pts], marker=".", markersize=3,
                        linewidth=1, label=label)
        base = next((k for t, k in pts if t >= warmup_s), None)
        if base is not None:
            after = [(t / 60, (k - base) / MIB) for t, k in pts if t >= warmup_s]
            delta.plot([m for m, _ in after], [d for _, d in after], marker=".", markersize=3,
                       linewidth=1, color=line.get_color())
    for a in (ax, delta):
        a.axvspan(0, warmup_s / 60, color="0.9")
        a.grid(True, linewidth=0.3)
    ax.set_ylabel("VmRSS (MiB)")
    ax.set_ylim(bottom=0)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="lower right", title="grey: warm-up", title_fontsize=7)
    delta.set_ylabel("MiB since warm-up", fontsize=8)
    delta.set_xlabel("minutes")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


if __name__ == "__main__":
    # Re-plots a soak's CSV: python3 rss.py rss.csv rss.png [warm-up seconds] [title]
    import sys

    with open(sys.argv[1]) as f:
        rows = list(csv.DictReader(f))
    names = [c[: -len("_rss_kib")] for c in rows[0] if c.endswith("_rss_kib")]
    data = {n: [(float(r["seconds"]), int(r[f"{n}_rss_kib"]) if r[f"{n}_rss_kib"] else None)
                for r in rows] for n in names}
    warm = float(sys.argv[3]) if len(sys.argv) > 3 else 120
    sys.exit(0 if plot(sys.argv[2], data, warm, sys.argv[4] if len(sys.argv) > 4 else "VmRSS") else 1)
