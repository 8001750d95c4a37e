"""Hook start-up cost: whole-process `import charm` + what a no-op hook imports, over `import ops`.

Usage: .venv/bin/python bench/charm_import.py [ROUNDS] [--before DIR]

What a no-op hook imports: a settled state (pebble-ready, then config-changed) is pickled; a
fresh interpreter loads it, imports ops.testing and `charm`, runs update-status and an
unchanged config-changed, and lists the modules those hooks imported (ops.testing's own left
out). The timed process is then `import charm` followed by importing exactly those modules, so
the figure is what the charm makes a quiet hook load beyond ops. Rounds are interleaved
(ops, charm, charm + no-op hook, …) so that all see the same machine state; medians and
minimums resist other load on the machine. Bytecode is written (to a temporary cache) and
used, as in a Juju charm dir after the first hook.

`--before DIR` adds the same figures for another checkout's src/ and lib/ (e.g. extracted
with `git archive <commit> src lib charmcraft.yaml | tar -x -C DIR`), interleaved in the same run.
Then `python -X importtime` lists the slowest imports of `import charm` (cumulative).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent.parent
HEAVY = ("pydantic", "jinja2", "cosl")

SETTLE = """
import pickle, sys
from ops import testing
from charm import FlaskCharm
from tests.unit.charm.charm_state import state
charm_dir, out = sys.argv[1], sys.argv[2]
ctx = testing.Context(FlaskCharm)
st = state(__import__("pathlib").Path(charm_dir))
st = ctx.run(ctx.on.pebble_ready(st.get_container("flask-app")), st)
st = ctx.run(ctx.on.config_changed(), st)
open(out, "wb").write(pickle.dumps(st))
"""

NOOP_IMPORTS = """
import json, logging, pickle, sys
from ops import testing
from charm import FlaskCharm
st = pickle.load(open(sys.argv[1], "rb"))
ctx = testing.Context(FlaskCharm)
before = set(sys.modules)
st = ctx.run(ctx.on.update_status(), st)
st = ctx.run(ctx.on.config_changed(), st)
new = sorted(m for m in set(sys.modules) - before if not m.startswith(("scenario", "ops")))
print(json.dumps(new))
"""


# Juju's charm dir is writable, so from the second hook on Python loads the charm's bytecode:
# write it (PYTHONDONTWRITEBYTECODE may be set here), to a cache outside the checkouts.
PYCACHE = tempfile.mkdtemp(prefix="charm-import-pycache-")


def env_for(root: pathlib.Path) -> dict[str, str]:
    paths = [root / "src", root / "lib", HERE]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, paths))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return {**env, "PYTHONPYCACHEPREFIX": PYCACHE}


def noop_modules(root: pathlib.Path) -> list[str]:
    """The modules a no-op hook of the charm in `root` imports beyond `import charm`."""
    env = env_for(root)
    with tempfile.TemporaryDirectory() as tmp:
        blob = pathlib.Path(tmp) / "state.pickle"
        charm_dir = pathlib.Path(tmp) / "charm"
        charm_dir.mkdir()
        subprocess.run(
            [sys.executable, "-c", SETTLE, str(charm_dir), str(blob)], env=env, check=True
        )
        out = subprocess.run(
            [sys.executable, "-c", NOOP_IMPORTS, str(blob)],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
    return json.loads(out.stdout.splitlines()[-1])


def charm_and(modules: list[str]) -> str:
    """Code that imports charm, then each of `modules`."""
    return f"import importlib, charm\nfor m in {modules!r}:\n    importlib.import_module(m)"


def timed(code: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    return time.perf_counter() - start


def importtime_top(env: dict[str, str], count: int = 12) -> list[tuple[int, str]]:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import charm"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    rows = []
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = (part.strip() for part in line[len("import time:") :].split("|"))
        rows.append((int(cumulative), name))
    return sorted(rows, reverse=True)[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description="Hook start-up cost against import ops.")
    parser.add_argument("rounds", nargs="?", type=int, default=20)
    parser.add_argument("--before", type=pathlib.Path, help="another checkout to compare")
    args = parser.parse_args()
    roots = {"this": HERE}
    if args.before:
        roots["before"] = args.before.resolve()
    cases: dict[str, tuple[str, dict[str, str]]] = {"import ops": ("import ops", env_for(HERE))}
    for label, root in roots.items():
        env = env_for(root)
        extra = noop_modules(root)
        heavy = sorted({m.split(".")[0] for m in extra} & set(HEAVY))
        shown = extra if len(extra) <= 8 else [*extra[:8], "…"]
        print(f"[{label}] {root}: a no-op hook imports {len(extra)} more modules {shown}")
        print(f"[{label}] heavy modules among them: {heavy or 'none'}")
        cases[f"[{label}] import charm"] = ("import charm", env)
        cases[f"[{label}] import charm + no-op hook"] = (charm_and(extra), env)
    for code, env in cases.values():  # warm the page cache and .pyc files
        timed(code, env)
    times: dict[str, list[float]] = {label: [] for label in cases}
    for _ in range(args.rounds):
        for label, (code, env) in cases.items():
            times[label].append(timed(code, env))
    base_median = statistics.median(times["import ops"])
    base_min = min(times["import ops"])
    print(f"\nrounds: {args.rounds} (interleaved, whole process; ratios to import ops)")
    print(f"  {'':<40} {'median':>9} {'ratio':>6} {'min':>9} {'ratio':>6}")
    for label, samples in times.items():
        median, least = statistics.median(samples), min(samples)
        print(
            f"  {label:<40} {median * 1000:6.1f} ms {median / base_median:6.2f}"
            f" {least * 1000:6.1f} ms {least / base_min:6.2f}"
        )
    print("target: [this] import charm + no-op hook <= 1.15 x import ops")
    print("\nslowest imports of 'import charm' (cumulative us, python -X importtime):")
    for cumulative, name in importtime_top(env_for(HERE)):
        print(f"  {cumulative:>8}  {name}")


if __name__ == "__main__":
    main()
