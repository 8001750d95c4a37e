"""Hook start-up cost: whole-process `import charm` against `import ops`, in one run.

Usage: .venv/bin/python bench/charm_import.py [ROUNDS]

Rounds are interleaved (ops, charm, ops, charm, …) so that both see the same machine state.
Then `python -X importtime -c 'import charm'` lists the slowest imports (cumulative).
"""

from __future__ import annotations

import os
import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT / 'lib'}"}


def timed(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=ENV, check=True)
    return time.perf_counter() - start


def importtime_top(module: str, count: int = 12) -> list[tuple[int, str]]:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        env=ENV,
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
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    timed("import ops")  # warm the page cache and .pyc files
    timed("import charm")
    ops_times, charm_times = [], []
    for _ in range(rounds):
        ops_times.append(timed("import ops"))
        charm_times.append(timed("import charm"))
    ops_mean, charm_mean = statistics.mean(ops_times), statistics.mean(charm_times)
    print(f"rounds: {rounds} (interleaved, whole process)")
    print(f"python -c 'import ops'   : mean {ops_mean * 1000:.1f} ms")
    print(f"python -c 'import charm' : mean {charm_mean * 1000:.1f} ms")
    print(f"ratio charm/ops          : {charm_mean / ops_mean:.2f} (acceptance: <= 1.6)")
    heavy = [name for name in ("pydantic", "jinja2", "cosl") if name in _loaded("charm")]
    print(f"heavy modules loaded by 'import charm': {heavy or 'none'}")
    print("\nslowest imports of 'import charm' (cumulative us, python -X importtime):")
    for cumulative, name in importtime_top("charm"):
        print(f"  {cumulative:>8}  {name}")


def _loaded(module: str) -> set[str]:
    code = f"import sys, {module}; print(' '.join(sorted(m.split('.')[0] for m in sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], env=ENV, check=True, capture_output=True, text=True
    )
    return set(out.stdout.split())


if __name__ == "__main__":
    main()
