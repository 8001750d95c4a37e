"""gevent tail latency on keep-alive connections, without and with the charm's timer yield.

Usage: PYTHONPATH=rock:src:lib:. python3 bench/gevent_yield.py [SECONDS]
(run it under the shared port lock: it serves on 127.0.0.1:8000)

The sample app runs under real Gunicorn (the app's own environment, gevent workers) with the
Gunicorn config file the charm renders (`workload.gunicorn_config`), once with the gevent yield
off ("before") and once on ("after"), for 1 and 5 workers. wrk loads, with keep-alive unless
said otherwise, at 16 and 64 connections:

- fast: `/`; close: `/` with `Connection: close` (every request on a new connection: the
  reference a keep-alive p99 is compared with);
- slow: `/slow?seconds=0.05` (I/O-bound);
- mix: fast and slow at the same time, half the connections each.

Compare figures within one run: the machine is shared and noisy.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import workload
from flask_rock import toolchain
from tests.e2e.rock_runner import SAMPLE

URL = "http://127.0.0.1:8000"
FAST, SLOW = "/", "/slow?seconds=0.05"
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(path: str, seconds: int, connections: int, *extra: str) -> tuple[float, float, int]:
    """Run wrk; return (requests/s, p99 ms, socket errors + non-2xx)."""
    argv = ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    output = subprocess.run(
        [*argv, "--timeout", "10s", *extra, URL + path], capture_output=True, text=True, check=True
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    number, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", output).groups()  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", output))
    errors += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    return rps, float(number) * _UNITS[unit], errors


def wrk_together(runs: list[tuple[str, int]], seconds: int) -> list[tuple[float, float, int]]:
    """Run several wrk loads at once; return each one's figures, in order."""
    results: list[tuple[float, float, int]] = [(0.0, 0.0, 0)] * len(runs)

    def one(index: int, path: str, connections: int) -> None:
        results[index] = wrk(path, seconds, connections)

    threads = [
        threading.Thread(target=one, args=(i, path, conns)) for i, (path, conns) in enumerate(runs)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def serve(workdir: Path, workers: int, timer_yield: bool) -> subprocess.Popen:
    """Start Gunicorn on the sample app with the charm's config file; wait until it answers."""
    rock_conf = workdir / "rock.conf.py"  # the rock's file, bound to loopback for the bench
    rock_conf.write_text(f'bind = ["127.0.0.1:8000"]\nchdir = {str(SAMPLE)!r}\n')
    settings = {"worker_class": "gevent", "workers": workers}
    charm_conf = workdir / "charm.conf.py"
    charm_conf.write_text(
        workload.gunicorn_config(str(rock_conf), settings, None, timer_yield=timer_yield)
    )
    python = toolchain.ensure_app_environment(SAMPLE) / "bin" / "python"
    process = subprocess.Popen(
        [str(python), "-m", "gunicorn", "-c", str(charm_conf), "app:app"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(URL + FAST, timeout=2):
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("gunicorn did not come up on 127.0.0.1:8000")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=40)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main() -> int:
    """Print one line per worker count, connection count and yield setting."""
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    if shutil.which("wrk") is None:
        print("wrk is not installed: run scripts/bootstrap (apt-get install wrk)", file=sys.stderr)
        return 1
    print(f"gevent workers; wrk -t2 -d{seconds}s per figure; p99 in ms; close: Connection: close")
    header = (
        f"{'workers':>7} {'conns':>5} {'yield':6} {'fast p99':>9} {'close p99':>9} "
        f"{'ratio':>6} {'fast r/s':>9} {'slow p99':>9} {'slow r/s':>9} "
        f"{'mix fast':>9} {'mix slow':>9} {'errors':>6}"
    )
    print(header)
    workdir = Path(tempfile.mkdtemp())
    for workers in (1, 5):
        for timer_yield in (False, True):
            process = serve(workdir, workers, timer_yield)
            try:
                for conns in (16, 64):
                    fast_rps, fast, e1 = wrk(FAST, seconds, conns)
                    _, close, e2 = wrk(FAST, seconds, conns, "-H", "Connection: close")
                    slow_rps, slow, e3 = wrk(SLOW, seconds, conns)
                    (_, mix_fast, e4), (_, mix_slow, e5) = wrk_together(
                        [(FAST, conns // 2), (SLOW, conns // 2)], seconds
                    )
                    label = "after" if timer_yield else "before"
                    print(
                        f"{workers:7d} {conns:5d} {label:6} {fast:9.1f} {close:9.1f} "
                        f"{fast / close:6.1f} {fast_rps:9.0f} {slow:9.1f} {slow_rps:9.0f} "
                        f"{mix_fast:9.1f} {mix_slow:9.1f} {e1 + e2 + e3 + e4 + e5:6d}",
                        flush=True,
                    )
            finally:
                stop(process)
    return 0


if __name__ == "__main__":
    sys.exit(main())
