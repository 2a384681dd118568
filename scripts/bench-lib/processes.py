"""Process handling shared by the benchmark scripts (bench.py, idp_bench.py)."""

import subprocess


def stop(proc):
    """Ends `proc` if it still runs: SIGTERM, SIGKILL after 10 s; always reaped."""
    if proc and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
