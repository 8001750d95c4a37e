"""Import cost of the tracing integration: with no tracing relation, and with one.

Usage: python bench/tracing_import.py [ROUNDS]   (a Python with the charm's dependencies)

A hook on a charm with no tracing relation imports `charm` only. `integrations.tracing` alone
(which `integrations.identity_of` imports whenever the app has OTEL_* variables) stays light:
the packaged `charmlibs-interfaces-tracing` (and pydantic under it) is imported only by a hook
that reads or answers a tracing relation; most of its cost is pydantic's model machinery, which
a hook whose config changed loads anyway (`config`). Rounds are interleaved so that every
variant sees the same machine state. Figures are per whole process: the median CPU time (user +
system, which other load on the machine disturbs less than wall time) and the mean wall time.
"""

from __future__ import annotations

import os
import pathlib
import resource
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT / 'lib'}"}
VARIANTS = {
    "no tracing relation       ('import charm')": "import charm",
    "+ integrations.tracing    (OTEL_* in the env)": "import charm, integrations.tracing",
    "+ pydantic alone          (for comparison)": "import charm, pydantic",
    "tracing relation read     (+ the library)": (
        "import charm, integrations.tracing, charmlibs.interfaces.tracing"
    ),
    # A hook whose config changed validates it with pydantic models (`config`) anyway.
    "config changed            (+ config)": "import charm, config",
    "config changed, tracing   (+ both)": (
        "import charm, config, integrations.tracing, charmlibs.interfaces.tracing"
    ),
}
HEAVY = ("pydantic", "charmlibs")


def timed(code: str) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one interpreter running `code`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=ENV, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def heavy_loaded(code: str) -> list[str]:
    probe = f"{code}; import sys; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", probe], env=ENV, check=True, capture_output=True, text=True
    )
    return result.stdout.split()


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in VARIANTS}
    for code in VARIANTS.values():
        timed(code)  # warm the bytecode caches
    for _ in range(rounds):
        for name, code in VARIANTS.items():
            samples[name].append(timed(code))
    first = samples[next(iter(VARIANTS))]
    base_cpu = statistics.median(cpu for cpu, _ in first)
    print(f"rounds: {rounds} (interleaved, whole process)")
    for name, code in VARIANTS.items():
        cpu = statistics.median(c for c, _ in samples[name])
        wall = statistics.mean(w for _, w in samples[name])
        print(
            f"{name}: CPU {cpu * 1000:6.1f} ms ({(cpu - base_cpu) * 1000:+6.1f}), "
            f"wall {wall * 1000:6.1f} ms  heavy modules: {heavy_loaded(code) or '-'}"
        )


if __name__ == "__main__":
    main()
