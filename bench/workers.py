"""Requests/s and p99 latency for each worker class and worker count, through the charm.

Usage: PYTHONPATH=rock:src:lib:. python3 bench/workers.py [SECONDS] [CONNECTIONS]

The sample rock is deployed with the charm locally (scripts/juju-local's machinery: real Pebble,
gunicorn, statsd_exporter), then `worker-type` and `webserver-workers` are set through charm
config, as an operator would, and wrk loads the fast route `/` and the slow (I/O-bound) route
`/slow?seconds=0.05`. Compare figures within one run: the machine is shared and noisy.
"""

import os
import sys
import tempfile
from pathlib import Path

from bench.throughput import ROUTES, wrk
from juju_local.deployment import Deployment

WORKER_TYPES = ("sync", "gthread", "gevent")


def worker_counts() -> tuple[int, ...]:
    """1 (Gunicorn's default), the CPU count, and Gunicorn's suggested 2 x CPUs + 1."""
    cpus = len(os.sched_getaffinity(0))
    return tuple(sorted({1, cpus, 2 * cpus + 1}))


def main() -> int:
    """Print one line per worker class, worker count and route."""
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    connections = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    deployment = Deployment(Path(tempfile.mkdtemp()) / "bench")
    deployment.deploy()
    print(f"wrk -t2 -c{connections} -d{seconds}s; {os.cpu_count()} CPUs")
    print(f"{'worker':8} {'workers':>7} {'route':5} {'req/s':>9} {'p99 ms':>9} {'errors':>7}")
    try:
        for worker_type in WORKER_TYPES:
            for workers in worker_counts():
                threads = 4 if worker_type == "gthread" else None
                deployment.config(
                    {
                        "worker-type": worker_type,
                        "webserver-workers": workers,
                        "webserver-threads": threads,
                    }
                )
                for route, path in ROUTES.items():
                    rps, p99, errors = wrk(path, seconds, connections)
                    print(
                        f"{worker_type:8} {workers:7d} {route:5} {rps:9.1f} {p99:9.1f} "
                        f"{errors:7d}",
                        flush=True,
                    )
    finally:
        deployment.remove()
    return 0


if __name__ == "__main__":
    sys.exit(main())
