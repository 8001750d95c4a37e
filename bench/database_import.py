"""Import cost of the database integrations: with no database relation, and with one.

Usage: python bench/database_import.py [ROUNDS]

A hook on a charm with no database relation imports `charm` only: the registry
(`integrations/__init__.py`) names the kinds' modules without importing them. A hook with a
database relation also imports that kind's module and the requirer library. Rounds are
interleaved so that both see the same machine state; figures are whole-process means.
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
WITH_DATABASE = "import charm, integrations.postgresql, integrations.redis"
OURS = ("integrations", "charms.flask_k8s.v0.database_requires")


def timed(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=ENV, check=True)
    return time.perf_counter() - start


def loaded(code: str) -> list[str]:
    probe = f"{code}; import sys; print('\\n'.join(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", probe], env=ENV, check=True, capture_output=True, text=True
    )
    return [name for name in result.stdout.split() if name.startswith(OURS)]


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    timed("import charm")
    timed(WITH_DATABASE)
    without, with_db = [], []
    for _ in range(rounds):
        without.append(timed("import charm"))
        with_db.append(timed(WITH_DATABASE))
    bare, related = statistics.mean(without), statistics.mean(with_db)
    print(f"rounds: {rounds} (interleaved, whole process)")
    print(f"no database relation  ('import charm')       : mean {bare * 1000:.1f} ms")
    print(f"database relations    (+ postgresql, redis)  : mean {related * 1000:.1f} ms")
    print(f"cost of the database integrations            : {(related - bare) * 1000:+.1f} ms")
    print(f"integration modules loaded by 'import charm' : {loaded('import charm')}")
    print(f"... and with database relations             : {loaded(WITH_DATABASE)}")


if __name__ == "__main__":
    main()
