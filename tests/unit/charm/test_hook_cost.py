"""What hooks cost as Juju pays it: hook-tool calls, Pebble work, and what a no-op hook imports."""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import pickle
import subprocess
import sys
import textwrap
import time

import ops
import pytest
from ops import testing

from charm import FlaskCharm
from tests.unit.charm.charm_state import (
    STORM,
    app_env,
    before_storm_step,
    container,
    cos_and_ingress_relations,
    state,
)
from tests.unit.charm.hook_cost import HookToolCounter, PebbleCounter

ROOT = pathlib.Path(__file__).resolve().parents[3]
HEAVY = ("pydantic", "jinja2", "cosl")


def run(ctx: testing.Context[FlaskCharm], event_name: str, st: testing.State) -> testing.State:
    if event_name == "pebble_ready":
        return ctx.run(ctx.on.pebble_ready(st.get_container("flask-app")), st)
    return ctx.run(getattr(ctx.on, event_name)(), st)


def settled(ctx: testing.Context[FlaskCharm], charm_dir: pathlib.Path, **kwargs) -> testing.State:
    """A leader serving, after pebble-ready and a config-changed."""
    out = run(ctx, "pebble_ready", state(charm_dir, **kwargs))
    return run(ctx, "config_changed", out)


def counted(ctx, event_name: str, st: testing.State) -> tuple[testing.State, HookToolCounter]:
    tools = HookToolCounter()
    with tools.installed():
        out = run(ctx, event_name, st)
    return out, tools


# -- the counter itself ----------------------------------------------------------------------


class Asking(ops.CharmBase):
    """Asks Juju the same things twice in one hook."""

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        framework.observe(self.on.update_status, self._on_update_status)

    def _on_update_status(self, _: ops.EventBase) -> None:
        for _twice in range(2):
            self.unit.is_leader()
            dict(self.config)
            relation = self.model.get_relation("peers")
            assert relation is not None
            dict(relation.data[self.app])
        self.unit.status = ops.ActiveStatus()


def test_counter_counts_what_the_real_backend_would_run():
    ctx = testing.Context(
        Asking, meta={"name": "asking", "peers": {"peers": {"interface": "x"}}}, config={}
    )
    st = testing.State(relations={testing.PeerRelation("peers")})
    tools = HookToolCounter()

    with tools.installed():
        ctx.run(ctx.on.update_status(), st)

    # ops caches config, relations and databags per hook; the backend caches is-leader (lease).
    assert tools.calls["is-leader"] == 1
    assert tools.calls["config-get"] == 1
    assert tools.calls["relation-ids"] == 1
    assert tools.calls["relation-get"] == 1
    assert tools.calls["status-set"] == 1
    assert tools.log_lines == tools.calls["juju-log"] > 0


# -- the storm ---------------------------------------------------------------------------------


def test_storm_hook_tools_and_pebble_work_per_service(ctx, charm_dir):
    st = state(charm_dir, leader=False)
    st = dataclasses.replace(st, containers={container(charm_dir, can_connect=False)})
    tools, pebble = HookToolCounter(), PebbleCounter()
    per_event: list[int] = []

    with tools.installed(), pebble.installed():
        for event_name, config in STORM:
            before = tools.tools
            st = run(ctx, event_name, before_storm_step(st, event_name, config))
            per_event.append(tools.tools - before)

    update_status = [n for (name, _), n in zip(STORM, per_event) if name == "update_status"]
    assert update_status and max(update_status) <= 5
    assert per_event[STORM.index(("config_changed", {}), 4)] <= 2  # config unchanged
    assert tools.tools <= 70
    assert tools.calls["status-set"] == 2  # waiting for Pebble, then active: only changes
    assert tools.calls["secret-get"] == 0  # the key generated at pebble-ready is reused
    assert tools.calls["opened-ports"] + tools.calls["open-port"] == 1
    assert {kind: n for kind, n in pebble.calls.items() if kind != "signal"} == {
        "add_layer": 1,  # pebble-ready: the service stays the same for the container's life
        "replan": 1,
        "start flask": 1,
        "start statsd-exporter": 1,
        "SIGHUP flask": 2,  # webserver-timeout, then worker-type: reloads, no restart
        "push": 3,
    }
    assert st.unit_status == testing.ActiveStatus("")


def test_quiet_update_status_with_every_relation(ctx, charm_dir):
    out = settled(ctx, charm_dir, relations=cos_and_ingress_relations())

    after, tools = counted(ctx, "update_status", out)

    assert tools.tools <= 5  # is-leader, and ingress: relation-ids/-list, network-get, -get
    assert after.get_container("flask-app").layers == out.get_container("flask-app").layers


# -- quiet hooks still see a broken workload ---------------------------------------------------


def test_update_status_reapplies_a_plan_changed_under_us(ctx, charm_dir):
    out = settled(ctx, charm_dir)
    box = out.get_container("flask-app")
    stripped = dataclasses.replace(
        box, layers={"rock": box.layers["rock"]}, check_infos=frozenset()
    )

    after = run(ctx, "update_status", dataclasses.replace(out, containers={stripped}))

    assert "flask-k8s" in after.get_container("flask-app").layers


def test_update_status_with_a_check_down_reconciles(ctx, charm_dir):
    out = settled(ctx, charm_dir)
    down = testing.CheckInfo(
        "flask-ready", level=ops.pebble.CheckLevel.READY, status=ops.pebble.CheckStatus.DOWN
    )
    box = dataclasses.replace(out.get_container("flask-app"), check_infos={down})

    _, quiet = counted(ctx, "update_status", out)
    _, full = counted(ctx, "update_status", dataclasses.replace(out, containers={box}))

    assert quiet.calls["config-get"] == 0
    assert full.calls["config-get"] == 1


def test_update_status_reconciles_while_not_active(ctx, charm_dir):
    blocked = settled(ctx, charm_dir, config={"webserver-workers": 0})
    assert isinstance(blocked.unit_status, testing.BlockedStatus)

    out, tools = counted(ctx, "update_status", blocked)

    assert tools.calls["config-get"] == 1
    assert out.unit_status == blocked.unit_status


def test_leader_with_a_migration_lease_reconciles_on_update_status(ctx, charm_dir):
    out = settled(ctx, charm_dir)
    peer = out.get_relations("secret-storage")[0]
    lease = {"unit": "flask-k8s/1", "code": "c1", "serial": 1, "expires": time.time() + 600}
    leased = dataclasses.replace(
        peer,
        local_app_data={**peer.local_app_data, "migration-lease": json.dumps(lease)},
        peers_data={1: {}},
    )
    # The leader learns of the lease in a hook that reconciles (here a config change).
    changed = dataclasses.replace(out, relations={leased}, config={"flask-env": "x"})
    st = run(ctx, "config_changed", changed)

    _, tools = counted(ctx, "update_status", st)

    assert tools.calls["config-get"] == 1  # a full reconcile: it may have to expire the lease


def test_changed_config_reconciles_and_unchanged_does_not(ctx, charm_dir):
    out = settled(ctx, charm_dir)

    same, quiet = counted(ctx, "config_changed", out)
    changed, full = counted(
        ctx, "config_changed", dataclasses.replace(out, config={"flask-env": "x"})
    )

    assert quiet.tools <= 2
    assert same.get_container("flask-app").plan == out.get_container("flask-app").plan
    assert app_env(changed)["FLASK_ENV"] == "x"
    assert full.calls["relation-ids"] > 0


def test_status_set_again_after_upgrade_charm(ctx, charm_dir):
    out = settled(ctx, charm_dir)

    _, tools = counted(ctx, "upgrade_charm", out)

    assert tools.calls["status-set"] == 1


# -- the secret key is read only when it may have changed --------------------------------------


def test_user_secret_reread_on_secret_changed_only(ctx, charm_dir):
    user = testing.Secret(tracked_content={"value": "v1"}, latest_content={"value": "v1"})
    out = settled(ctx, charm_dir, config={"flask-secret-key-id": user.id}, secrets={user})
    renewed = dataclasses.replace(out.get_secret(id=user.id), latest_content={"value": "v2"})
    st = dataclasses.replace(out, secrets={renewed})

    other, tools = counted(
        ctx, "config_changed", dataclasses.replace(st, config={**st.config, "flask-env": "x"})
    )
    key_after_config_change = app_env(other)["FLASK_SECRET_KEY"]  # the file is shared: read now
    after = ctx.run(ctx.on.secret_changed(renewed), st)

    assert tools.calls["secret-get"] == 0
    assert key_after_config_change == "v1"
    assert app_env(after)["FLASK_SECRET_KEY"] == "v2"


# -- a no-op hook imports no pydantic, jinja2 or cosl -------------------------------------------

# Runs in a fresh interpreter: argv = state pickle, heavy modules (JSON), events to run in turn.
# Prints, per event, which heavy modules were imported by then. `config_changed_new` changes
# the config: the positive control.
CHILD = textwrap.dedent(
    """
    import dataclasses, json, pickle, sys
    from ops import testing
    from charm import FlaskCharm

    st = pickle.load(open(sys.argv[1], "rb"))
    heavy_names = json.loads(sys.argv[2])
    ctx = testing.Context(FlaskCharm)
    seen = {}
    for name in sys.argv[3:]:
        if name == "config_changed_new":
            st = dataclasses.replace(st, config={"flask-env": "new"})
            event = ctx.on.config_changed()
        else:
            event = getattr(ctx.on, name)()
        out = ctx.run(event, st)
        if name != "config_changed_new":  # a no-op: the plan is untouched
            assert out.get_container("flask-app").plan == st.get_container("flask-app").plan
        seen[name] = [m for m in heavy_names if m in sys.modules]
    print(json.dumps(seen))
    """
)


def child_imports(st: testing.State, tmp_path: pathlib.Path, *events: str) -> dict[str, list[str]]:
    """Run events one after another in a fresh interpreter; the heavy modules seen after each."""
    blob = tmp_path / "state.pickle"
    blob.write_bytes(pickle.dumps(st))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in ("src", "lib", "."))}
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(blob), json.dumps(HEAVY), *events],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


# update-status and config-changed (same config) only check; start runs a full reconcile.
@pytest.mark.parametrize("event", ["update_status", "config_changed", "start"])
def test_noop_hook_imports_no_pydantic_jinja2_or_cosl(ctx, charm_dir, tmp_path, event):
    grafana = testing.Relation("grafana-dashboard", remote_app_name="grafana")
    out = settled(ctx, charm_dir, relations={grafana})
    assert out.unit_status == testing.ActiveStatus("")

    seen = child_imports(out, tmp_path, event, "config_changed_new")

    assert seen[event] == []
    assert "pydantic" in seen["config_changed_new"]  # the check can see an import
