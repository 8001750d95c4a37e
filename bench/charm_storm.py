"""Count service starts, restarts and reloads over the issue's event storm.

Usage: .venv/bin/python bench/charm_storm.py

Storm: install, leader-elected, config-changed, pebble-ready, update-status x3, config-changed
(no change), config-changed (webserver-timeout), config-changed (worker-type). The charm changes
the workload only through `pebble_io`, which this script wraps to count (the calls still run).
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import pathlib
import sys
import tempfile
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "src"), str(ROOT / "lib")]

import ops  # noqa: E402
from ops import testing  # noqa: E402

import pebble_io  # noqa: E402
from charm import FlaskCharm  # noqa: E402
from tests.unit.charm.charm_state import (  # noqa: E402
    STORM,
    before_storm_step,
    container,
    state,
)


def wrap(counts: collections.Counter[str]) -> None:
    replan, reload, push, run = pebble_io.replan, pebble_io.reload, pebble_io.push, pebble_io.run

    def counting_replan(c: ops.Container) -> None:
        counts["restart" if c.get_service("flask").is_running() else "start"] += 1
        replan(c)

    def counting_reload(c: ops.Container, service: str) -> None:
        counts["reload (SIGHUP)"] += 1
        reload(c, service)

    def counting_push(c: ops.Container, path: str, content: str, owner: int) -> None:
        counts["push"] += 1
        push(c, path, content, owner)

    def counting_run(c: ops.Container, argv: list[str], **kwargs: Any) -> bool:
        counts["exec"] += 1
        return run(c, argv, **kwargs)

    pebble_io.replan, pebble_io.reload = counting_replan, counting_reload
    pebble_io.push, pebble_io.run = counting_push, counting_run


def main() -> None:
    logging.disable(logging.INFO)
    counts: collections.Counter[str] = collections.Counter()
    wrap(counts)
    charm_dir = pathlib.Path(tempfile.mkdtemp()) / "flask" / "charm"
    charm_dir.mkdir(parents=True)
    ctx = testing.Context(FlaskCharm)
    st = state(charm_dir, leader=False)
    st = dataclasses.replace(st, containers={container(charm_dir, can_connect=False)})
    print(f"{'event':<58} start restart reload push exec  status")
    for name, config in STORM:
        before = counts.copy()
        st = before_storm_step(st, name, config)
        event = (
            ctx.on.pebble_ready(st.get_container("flask-app"))
            if name == "pebble_ready"
            else getattr(ctx.on, name)()
        )
        st = ctx.run(event, st)
        step = counts - before
        label = f"{name} {config}" if config else name
        print(
            f"{label:<58} {step['start']:>5} {step['restart']:>7} {step['reload (SIGHUP)']:>6}"
            f" {step['push']:>4} {step['exec']:>4}  {st.unit_status.name}"
        )
    print("\ntotals:", dict(counts) or "nothing")


if __name__ == "__main__":
    main()
