"""Wall-clock time of one `juju-local config` round trip (the command, config-changed, status).

Usage (it binds the deployment's fixed ports, so hold the shared lock):
    flock /tmp/flask-k8s-ports.lock python bench/juju_local_config.py [--back-to-back] \
        [ROUNDS] [CHECKOUT …]

Deploys the sample rock from each CHECKOUT in turn (default: this one) into a temporary state
directory, times ROUNDS `scripts/juju-local config webserver-keepalive=N` commands (alternating
N, so every round changes something and the charm reloads Gunicorn), then removes the
deployment.

Each round starts once the machine is quiet again (`wait_until_quiet`): every reload boots all
of Gunicorn's workers anew, and each of the sample's imports Flask (about 0.2 s of CPU here, so
1 s per reload with 5 workers on this 2-CPU machine). A round started while the last reload's
workers still boot measures the app's start-up, not the command; `--back-to-back` does that,
to see the worst case of a script setting options one after another.

To compare before and after a change on a busy machine, interleave two checkouts
(`. /tmp/before . /tmp/before`): the pooled medians close the output. With `perf` installed
each round's CPU time is shown too; it moves less than the wall clock with the machine's load.

First it times one hook tool call (`is-leader`) both ways: through the client and the
`ToolServer`, as hooks call them now, and in a fresh base Python (the charm's) running
`hooktools.main`, as each call ran before the server.
"""

from __future__ import annotations

import os
import pathlib
import shutil
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


CPU_SECONDS: list[float] = []  # per command: CPU time of it and every process it started
PERF = shutil.which("perf")


def juju_local(checkout: pathlib.Path, state: pathlib.Path, *args: str) -> float:
    """Run one command; its wall-clock seconds. Exits with its error if it fails.

    With `perf` installed, also records the CPU time of the command and every process it
    started (the hook too, inside its sandbox): on a shared machine that figure moves less
    than the wall clock does. Pebble's own work is not in it (the pod is not a child), nor,
    when the deployment's controller ran the command, the controller's and its hook's.
    """
    argv = [str(checkout / "scripts" / "juju-local"), "--state-dir", str(state), *args]
    with tempfile.NamedTemporaryFile("r", prefix="perf-stat-") as counts:
        if PERF:
            argv = [PERF, "stat", "-x,", "-e", "task-clock", "-o", counts.name, "--", *argv]
        start = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, timeout=900)
        elapsed = time.perf_counter() - start
        rows = [line.split(",") for line in counts.read().splitlines() if "task-clock" in line]
    if rows and not (state / "controller.pid").exists():
        CPU_SECONDS.append(float(rows[0][0]) / 1000)  # milliseconds
    if done.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return elapsed


def _busy_and_total() -> tuple[int, int]:
    fields = [int(field) for field in pathlib.Path("/proc/stat").read_text().split()[1:9]]
    idle = fields[3] + fields[4]  # idle, iowait
    return sum(fields) - idle, sum(fields)


def wait_until_quiet(limit: float = 10.0, window: float = 0.3, busiest: float = 0.15) -> float:
    """Wait until the CPUs were at most `busiest` busy over `window` s; the seconds waited.

    Gives up after `limit` s (a machine others load may never be quiet) and goes on.
    """
    start = time.perf_counter()
    while time.perf_counter() - start < limit:
        busy_before, total_before = _busy_and_total()
        time.sleep(window)
        busy_after, total_after = _busy_and_total()
        if busy_after - busy_before <= busiest * max(total_after - total_before, 1):
            break
    return time.perf_counter() - start


def measure(
    checkout: pathlib.Path, rounds: int, settle: bool = True
) -> tuple[list[float], list[float]]:
    """Deploy from `checkout`, time `rounds` config round trips, remove; (wall, CPU) seconds."""
    state = pathlib.Path(tempfile.mkdtemp(prefix="juju-local-bench-")) / "default"
    print(f"checkout {checkout}")
    print(f"deploy: {juju_local(checkout, state, 'deploy'):.2f} s")
    CPU_SECONDS.clear()
    times: list[float] = []
    try:
        for n in range(rounds):
            if settle:
                wait_until_quiet()
            times.append(juju_local(checkout, state, "config", f"webserver-keepalive={2 + n % 2}"))
    finally:
        cpu = CPU_SECONDS[:rounds]
        juju_local(checkout, state, "remove")
    print("rounds (s):", " ".join(f"{t:.2f}" for t in times))
    print(
        f"config round trip over {rounds} rounds: mean {statistics.mean(times):.3f} s, "
        f"median {statistics.median(times):.3f} s, min {min(times):.3f} s, "
        f"max {max(times):.3f} s"
    )
    if cpu:
        median = statistics.median(cpu)
        print(f"CPU time of one round trip (command + hook, perf): median {median:.3f} s")
    else:
        print("(the deployment's controller ran the rounds: perf cannot count their CPU time)")
    load = pathlib.Path("/proc/loadavg").read_text().split()[0]
    print(f"(1-minute load average {load} on {os.cpu_count()} CPUs: wall time grows with it)")
    return times, cpu


def main() -> None:
    args = sys.argv[1:]
    settle = "--back-to-back" not in args
    args = [arg for arg in args if arg != "--back-to-back"]
    rounds = int(args[0]) if args else 10
    checkouts = [pathlib.Path(arg).resolve() for arg in args[1:]] or [ROOT]
    tool_call_costs()
    print("rounds start when the machine is quiet" if settle else "rounds back to back")
    pooled: dict[pathlib.Path, tuple[list[float], list[float]]] = {}
    for checkout in checkouts:
        times, cpu = measure(checkout, rounds, settle)
        wall_so_far, cpu_so_far = pooled.setdefault(checkout, ([], []))
        wall_so_far += times
        cpu_so_far += cpu
    if len(checkouts) > 1:
        print("pooled medians (wall, CPU):")
        for checkout, (times, cpu) in pooled.items():
            cpu_median = f"{statistics.median(cpu):.3f} s" if cpu else "-"
            print(f"  {checkout}: {statistics.median(times):.3f} s, {cpu_median}")


if __name__ == "__main__":
    main()
