"""What the standard event storm costs: Pebble work per service, hook-tool calls, log lines.

Usage: .venv/bin/python bench/charm_storm.py [--root DIR] [--tools]

Storm (tests/unit/charm/charm_state.py `STORM`): install, leader-elected, config-changed,
pebble-ready, update-status x3, config-changed (no change), config-changed (webserver-timeout),
config-changed (worker-type).

How it counts (tests/unit/charm/hook_cost.py):
- Pebble, from the plan: layers added, replans, and per service the starts and restarts a real
  Pebble would do on each replan (start: enabled and not running; restart: running with a
  definition changed since it started), SIGHUPs, execs and pushes.
- Hook tools: every call the ops model backend makes, counted by wrapping the ops.testing
  backend's methods (each is one hook-tool process under Juju), with the real backend's own
  savings kept (the 30 s is-leader lease; the event relation's remote app from the
  environment). juju-log lines (one juju-log process each, ops's own debug lines included:
  Juju filters by level only after the call) are counted apart.

`--root DIR` runs the charm from another checkout's src/ and lib/ (e.g. `git worktree add` or
`git archive` of an older commit) with this checkout's storm and counters: before and after.
`--tools` adds the calls per hook tool.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import pathlib
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description="Count what the standard event storm costs.")
    parser.add_argument("--root", type=pathlib.Path, default=HERE, help="charm checkout to run")
    parser.add_argument("--tools", action="store_true", help="also list calls per hook tool")
    args = parser.parse_args()
    root = args.root.resolve()
    sys.path[:0] = [str(root / "src"), str(root / "lib"), str(HERE)]

    from ops import testing

    from charm import FlaskCharm
    from tests.unit.charm.charm_state import (
        STORM,
        before_storm_step,
        container,
        cos_and_ingress_relations,
        state,
    )
    from tests.unit.charm.hook_cost import HookToolCounter, PebbleCounter

    tools, pebble = HookToolCounter(), PebbleCounter()
    charm_dir = pathlib.Path(tempfile.mkdtemp()) / "flask" / "charm"
    charm_dir.mkdir(parents=True)
    ctx = testing.Context(FlaskCharm)
    st = state(charm_dir, leader=False)
    st = dataclasses.replace(st, containers={container(charm_dir, can_connect=False)})
    print(f"charm: {root}")
    header = f"{'event':<52} tools logs layer replan start restart HUP push exec  status"
    print(header)
    per_tool: list[tuple[str, collections.Counter[str]]] = []
    update_status_tools: list[int] = []
    with tools.installed(), pebble.installed():
        for name, config in STORM:
            tools_before, pebble_before = tools.calls.copy(), pebble.calls.copy()
            st = before_storm_step(st, name, config)
            event = (
                ctx.on.pebble_ready(st.get_container("flask-app"))
                if name == "pebble_ready"
                else getattr(ctx.on, name)()
            )
            st = ctx.run(event, st)
            used, work = tools.calls - tools_before, pebble.calls - pebble_before
            n_tools = sum(n for tool, n in used.items() if tool != "juju-log")
            if name == "update_status":
                update_status_tools.append(n_tools)
            starts = sum(n for kind, n in work.items() if kind.startswith("start "))
            restarts = sum(n for kind, n in work.items() if kind.startswith("restart "))
            hups = sum(n for kind, n in work.items() if kind.startswith("SIGHUP "))
            label = f"{name} {config}" if config else name
            per_tool.append((label, used))
            print(
                f"{label:<52} {n_tools:>5} {used['juju-log']:>4} {work['add_layer']:>5}"
                f" {work['replan']:>6} {starts:>5} {restarts:>7} {hups:>3} {work['push']:>4}"
                f" {work['exec']:>4}  {st.unit_status.name}"
            )
    print(f"\nhook-tool calls over the storm (juju-log apart): {tools.tools} (target <= 70)")
    print(f"juju-log lines over the storm: {tools.log_lines}")
    print(
        "hook-tool calls, update-status with nothing changed: "
        f"{', '.join(map(str, update_status_tools))} (target <= 5)"
    )
    print("Pebble over the storm, per service:", dict(sorted(pebble.calls.items())))
    related = state(charm_dir, relations=cos_and_ingress_relations())
    related = ctx.run(ctx.on.pebble_ready(related.get_container("flask-app")), related)
    related = ctx.run(ctx.on.config_changed(), related)
    quiet = HookToolCounter()
    with quiet.installed():
        ctx.run(ctx.on.update_status(), related)
    print(
        "hook-tool calls, update-status with nothing changed, leader with ingress, metrics, "
        f"logging and dashboard relations: {quiet.tools} {dict(sorted(quiet.calls.items()))}"
    )
    if args.tools:
        print("\ncalls per hook tool:")
        for label, used in per_tool:
            print(f"  {label:<50} {dict(sorted(used.items()))}")
        print(f"  {'total':<50} {dict(sorted(tools.calls.items()))}")


if __name__ == "__main__":
    main()
