"""Wall-clock time of one `juju-local config` round trip (the command, config-changed, status).

Usage (it binds the deployment's fixed ports, so hold the shared lock):
    flock /tmp/flask-k8s-ports.lock python bench/juju_local_config.py [ROUNDS] [CHECKOUT]

Deploys the sample rock from CHECKOUT (default: this one) into a temporary state directory,
times ROUNDS `scripts/juju-local config webserver-keepalive=N` commands (alternating N, so every
round changes something and the charm reloads Gunicorn), then removes the deployment. Pass
another checkout to compare before and after a change.

First it times one hook tool call (`is-leader`) both ways: through the client and the
`ToolServer`, as hooks call them now, and in a fresh base Python (the charm's) running
`hooktools.main`, as each call ran before the server.
"""

from __future__ import annotations

import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "rock")]

from juju_local.charm_stage import default_python  # noqa: E402
from juju_local.hooktools import MODEL_ENV  # noqa: E402
from juju_local.model import Model  # noqa: E402
from juju_local.toolserver import ToolServer, write_client  # noqa: E402

TOOL_CALLS = 30


def _mean_ms(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    for _ in range(TOOL_CALLS):
        subprocess.run(argv, env=env, check=True, capture_output=True)
    return (time.perf_counter() - start) / TOOL_CALLS * 1000


def tool_call_costs() -> None:
    """Print the mean wall-clock cost of one `is-leader` call, served and in a fresh Python."""
    scratch = pathlib.Path(tempfile.mkdtemp(prefix="juju-local-tools-"))
    model = Model.create(scratch / "model.json", "app")
    bin_dir = write_client(scratch / "hooktools")
    hook_env = {"JUJU_UNIT_NAME": "app/0", "PATH": f"{bin_dir}:/usr/bin:/bin"}
    with ToolServer(model, "app/0", hook_env) as server:
        served = _mean_ms(["is-leader", "--format=json"], {**hook_env, **server.client_env})
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); from juju_local.hooktools import main; "
        "sys.exit(main(['is-leader', '--format=json']))"
    )
    fresh_env = {**hook_env, MODEL_ENV: str(model.path)}
    fresh = _mean_ms([str(default_python()), "-sE", "-c", code], fresh_env)
    print(f"one hook tool call: served {served:.1f} ms, fresh Python {fresh:.1f} ms")


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
    tool_call_costs()
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
