"""Requests/s and p99 latency of the sample rock per Gunicorn worker class, measured with wrk.

Usage: PYTHONPATH=rock:src:lib:. python3 bench/throughput.py [SECONDS] [CONNECTIONS]

Each worker class runs in turn under `flask_rock run rock/sample --args flask <worker>` (real
Pebble, gunicorn and statsd_exporter) at Gunicorn's default worker count, and wrk loads the
fast route `/` and the slow route `/slow?seconds=0.05`. Compare figures within one run: the
machine is shared and noisy.
"""

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.e2e import rock_runner

WORKERS = ("sync", "gevent", "gthread")
ROUTES = {"fast": "/", "slow": "/slow?seconds=0.05"}
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _milliseconds(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def wrk(path: str, seconds: int, connections: int) -> tuple[float, float, int]:
    """Run wrk against the app; return (requests/s, p99 ms, non-2xx or socket errors)."""
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    output = subprocess.run(
        [*argv, rock_runner.APP_URL + path], capture_output=True, text=True, check=True
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p99 = _milliseconds(re.search(r"99%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    errors = sum(
        int(n) for n in re.findall(r"(?:Non-2xx or 3xx responses|errors: .*?): (\d+)", output)
    )
    return rps, p99, errors


def main() -> int:
    """Print one line per worker class and route."""
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    connections = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    if shutil.which("wrk") is None:
        print("wrk is not installed: run scripts/bootstrap (apt-get install wrk)", file=sys.stderr)
        return 1
    print(f"wrk -t2 -c{connections} -d{seconds}s, gunicorn default worker count (1)")
    print(f"{'worker':8} {'route':5} {'req/s':>9} {'p99 ms':>9} {'errors':>7}")
    for worker in WORKERS:
        running = rock_runner.start(Path(tempfile.mkdtemp()), "flask", worker)
        try:
            for route, path in ROUTES.items():
                rps, p99, errors = wrk(path, seconds, connections)
                print(f"{worker:8} {route:5} {rps:9.1f} {p99:9.1f} {errors:7d}", flush=True)
        finally:
            running.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
