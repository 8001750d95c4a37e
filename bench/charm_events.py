"""Mean time per event under ops.testing (the charm's own work, not Juju's or Pebble's).

Usage: .venv/bin/python bench/charm_events.py [RUNS] [--root DIR]

`--root DIR` runs the charm from another checkout's src/ and lib/ (before/after).

Each event runs RUNS times against a settled state (the app already running), so the figure is
the cost of a reconcile that finds nothing to change, plus one run that starts from scratch.
"""

from __future__ import annotations

import dataclasses
import logging
import pathlib
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHARM_ROOT = ROOT
if "--root" in sys.argv:
    at = sys.argv.index("--root")
    CHARM_ROOT = pathlib.Path(sys.argv[at + 1]).resolve()
    del sys.argv[at : at + 2]
sys.path[:0] = [str(CHARM_ROOT / "src"), str(CHARM_ROOT / "lib"), str(ROOT)]

from ops import testing  # noqa: E402

from charm import FlaskCharm  # noqa: E402
from tests.unit.charm.charm_state import state  # noqa: E402


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    logging.disable(logging.INFO)
    charm_dir = pathlib.Path(tempfile.mkdtemp()) / "flask" / "charm"
    charm_dir.mkdir(parents=True)
    ctx = testing.Context(FlaskCharm)
    ingress = testing.Relation("ingress", remote_app_data={"ingress": '{"url": "http://x/m-a"}'})
    fresh = state(charm_dir, relations={ingress})
    start = time.perf_counter()
    settled = ctx.run(ctx.on.pebble_ready(fresh.get_container("flask-app")), fresh)
    print(
        f"pebble-ready from scratch (generate key, push, start): "
        f"{(time.perf_counter() - start) * 1000:.1f} ms"
    )
    events = {
        "install": lambda s: ctx.on.install(),
        "leader-elected": lambda s: ctx.on.leader_elected(),
        "config-changed": lambda s: ctx.on.config_changed(),
        "update-status": lambda s: ctx.on.update_status(),
        "pebble-ready": lambda s: ctx.on.pebble_ready(s.get_container("flask-app")),
        "ingress-relation-changed": lambda s: ctx.on.relation_changed(
            s.get_relation(ingress.id), remote_unit=0
        ),
    }
    print(f"mean per event over {runs} runs, settled state (no-op reconcile):")
    for name, make in events.items():
        times = []
        for _ in range(runs):
            begin = time.perf_counter()
            ctx.run(make(settled), settled)
            times.append(time.perf_counter() - begin)
        print(
            f"  {name:<26} {statistics.mean(times) * 1000:6.2f} ms"
            f"  (median {statistics.median(times) * 1000:.2f})"
        )
    changed = dataclasses.replace(settled, config={"webserver-timeout": 90})
    times = []
    for _ in range(runs):
        begin = time.perf_counter()
        ctx.run(ctx.on.config_changed(), changed)
        times.append(time.perf_counter() - begin)
        (charm_dir / "gunicorn.conf.py").write_text("")  # make the next run reload again
    print(f"  {'config-changed (reload)':<26} {statistics.mean(times) * 1000:6.2f} ms")


if __name__ == "__main__":
    main()
