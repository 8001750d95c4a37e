"""Wall-clock time of one `juju-local config` round trip (the command, config-changed, status).

Usage (it binds the deployment's fixed ports, so hold the shared lock):
    flock /tmp/flask-k8s-ports.lock python bench/juju_local_config.py [ROUNDS] [CHECKOUT]

Deploys the sample rock from CHECKOUT (default: this one) into a temporary state directory,
times ROUNDS `scripts/juju-local config webserver-keepalive=N` commands (alternating N, so every
round changes something and the charm reloads Gunicorn), then removes the deployment. Pass
another checkout to compare before and after a change.
"""

from __future__ import annotations

import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


def juju_local(checkout: pathlib.Path, state: pathlib.Path, *args: str) -> float:
    """Run one command; its wall-clock seconds. Exits with its error if it fails."""
    argv = [str(checkout / "scripts" / "juju-local"), "--state-dir", str(state), *args]
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return elapsed


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    checkout = pathlib.Path(sys.argv[2]).resolve() if len(sys.argv) > 2 else ROOT
    state = pathlib.Path(tempfile.mkdtemp(prefix="juju-local-bench-")) / "default"
    print(f"checkout {checkout}")
    print(f"deploy: {juju_local(checkout, state, 'deploy'):.2f} s")
    try:
        times = [
            juju_local(checkout, state, "config", f"webserver-keepalive={2 + n % 2}")
            for n in range(rounds)
        ]
    finally:
        juju_local(checkout, state, "remove")
    print(
        f"config round trip over {rounds} rounds: mean {statistics.mean(times):.3f} s, "
        f"median {statistics.median(times):.3f} s, min {min(times):.3f} s, "
        f"max {max(times):.3f} s"
    )


if __name__ == "__main__":
    main()
