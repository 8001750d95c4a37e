"""How long `juju-local integrate rabbitmq` waits for Debian's RabbitMQ broker.

Usage: python bench/rabbitmq_start.py [ROUNDS]

Each round starts the broker in a fresh state directory (a first start: new database, cookie,
the guest user dropped), stops it, starts it again on the same data, creates the app's user,
and stops it: the figures are the means of each step, whole wall-clock time.
"""

from __future__ import annotations

import pathlib
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from juju_local.rabbitmq import RabbitServer  # noqa: E402


def timed(step) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    steps: dict[str, list[float]] = {"first start": [], "stop": [], "restart": [], "user": []}
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as state:
            broker = RabbitServer(pathlib.Path(state))
            try:
                steps["first start"].append(timed(broker.start))
                steps["stop"].append(timed(broker.stop))
                steps["restart"].append(timed(broker.start))
                steps["user"].append(timed(lambda: broker.create("/", "bench", "pw")))
            finally:
                broker.stop()
    print(f"rounds: {rounds} (wall clock, mean)")
    for name, times in steps.items():
        print(f"  {name:<12} {statistics.mean(times):6.2f} s   (max {max(times):.2f} s)")


if __name__ == "__main__":
    main()
