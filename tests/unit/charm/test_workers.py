"""Background services under ops.testing: placement as units come and go, env, restarts, status."""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any

import ops
import pytest
from ops import testing

import pebble_io
from charm import FlaskCharm
from tests.unit.charm.charm_state import container, rock_layer, state
from tests.unit.charm.hook_cost import HookToolCounter, PebbleCounter

WORKER, SCHEDULER = "celery-worker", "celery-scheduler"
WORKER_COMMAND = "/bin/python3 -m celery -A app:celery_app worker"
SCHEDULER_COMMAND = "/bin/python3 -m celery -A app:celery_app beat"
PEER = "secret-storage"
KEY = "scheduler-unit"
ACTIVE = ops.pebble.ServiceStatus.ACTIVE


def rock_with_background() -> ops.pebble.Layer:
    """The flask-framework rock's layer plus a Celery worker and beat, as the sample has."""
    layer: dict[str, Any] = dict(rock_layer().to_dict())
    layer["services"][WORKER] = {
        "override": "replace",
        "command": WORKER_COMMAND,
        "startup": "enabled",
        "user": "_daemon_",
        "working-dir": "/flask/app",
    }
    layer["services"][SCHEDULER] = {
        "override": "replace",
        "command": SCHEDULER_COMMAND,
        "startup": "enabled",
        "user": "_daemon_",
    }
    return ops.pebble.Layer(layer)  # type: ignore[arg-type]


def box(charm_dir: pathlib.Path, **statuses: ops.pebble.ServiceStatus) -> testing.Container:
    """The workload container of a rock with background services (image files and plan)."""
    plain = container(charm_dir)
    layer = rock_with_background()
    (charm_dir.parent.parent / "rock-layers" / "001-rock.yaml").write_text(layer.to_yaml())
    return dataclasses.replace(plain, layers={"rock": layer}, service_statuses=statuses)


def unit_state(
    charm_dir: pathlib.Path,
    *,
    leader: bool = True,
    peers: dict[int, dict[str, str]] | None = None,
    named: str | None = None,
    relations: set[testing.RelationBase] | None = None,
    **statuses: ops.pebble.ServiceStatus,
) -> testing.State:
    app_data = {KEY: named} if named else {}
    peer = testing.PeerRelation(PEER, local_app_data=app_data, peers_data=peers or {})
    return state(
        charm_dir,
        leader=leader,
        # A non-leader's key would come from the leader: configured here, to start the app.
        config={} if leader else {"flask-secret-key": "configured"},
        relations={peer, *(relations or ())},
        containers={box(charm_dir, **statuses)},
    )


def unit_ctx(unit_id: int) -> testing.Context[FlaskCharm]:
    return testing.Context(FlaskCharm, unit_id=unit_id)


def service(out: testing.State, name: str) -> ops.pebble.Service:
    return out.get_container("flask-app").plan.services[name]


def running(out: testing.State) -> set[str]:
    statuses = out.get_container("flask-app").service_statuses
    return {name for name, status in statuses.items() if status == ACTIVE}


def named(out: testing.State) -> str | None:
    return out.get_relations(PEER)[0].local_app_data.get(KEY)


def pebble_ready(ctx: testing.Context[FlaskCharm], st: testing.State) -> testing.State:
    return ctx.run(ctx.on.pebble_ready(st.get_container("flask-app")), st)


# -- what runs, as what, with what --------------------------------------------------------------


def test_lone_leader_runs_worker_and_scheduler_as_the_rock_defines_them(charm_dir):
    ctx = unit_ctx(0)

    out = pebble_ready(ctx, unit_state(charm_dir))

    assert named(out) == "flask-k8s/0"
    assert {WORKER, SCHEDULER} <= running(out)
    worker, scheduler = service(out, WORKER), service(out, SCHEDULER)
    assert (worker.command, scheduler.command) == (WORKER_COMMAND, SCHEDULER_COMMAND)
    assert (worker.user, scheduler.user) == ("_daemon_", "_daemon_")
    assert (worker.startup, scheduler.startup) == ("enabled", "enabled")
    assert worker.working_dir == scheduler.working_dir == "/flask/app"
    assert out.unit_status == testing.ActiveStatus("")


def test_workers_get_flask_environment_and_the_related_redis(charm_dir):
    redis = testing.Relation(
        "redis", remote_units_data={0: {"hostname": "redis-0", "port": "6379"}}
    )
    ctx = unit_ctx(0)
    st = unit_state(charm_dir, relations={redis})

    out = ctx.run(ctx.on.relation_changed(redis, remote_unit=0), pebble_ready(ctx, st))

    env = service(out, WORKER).environment
    assert env["REDIS_DB_CONNECT_STRING"] == "redis://redis-0:6379"
    assert env["FLASK_SECRET_KEY"] and env["FLASK_BASE_URL"].startswith("http://flask-k8s.")
    assert env["FLASK_PREFERRED_URL_SCHEME"] == "HTTPS"  # a FLASK_* option's default
    assert service(out, SCHEDULER).environment == env
    # The same variables the app gets (its FLASK_* ones through its Gunicorn config file).
    assert (
        service(out, "flask").environment["REDIS_DB_CONNECT_STRING"]
        == env["REDIS_DB_CONNECT_STRING"]
    )


# -- placement ----------------------------------------------------------------------------------


def test_unit_not_named_runs_the_worker_but_no_scheduler(charm_dir):
    ctx = unit_ctx(1)
    st = unit_state(charm_dir, leader=False, peers={0: {}}, named="flask-k8s/0")

    out = pebble_ready(ctx, st)

    assert service(out, SCHEDULER).startup == "disabled"
    assert WORKER in running(out) and SCHEDULER not in running(out)
    assert named(out) == "flask-k8s/0"  # only the leader names


def test_new_leader_keeps_the_schedulers_where_they_are(charm_dir):
    ctx = unit_ctx(2)
    st = unit_state(charm_dir, leader=True, peers={0: {}, 1: {}}, named="flask-k8s/1")

    out = ctx.run(ctx.on.leader_elected(), pebble_ready(ctx, st))

    assert named(out) == "flask-k8s/1"
    assert SCHEDULER not in running(out)


def test_first_leader_names_the_lowest_numbered_unit(charm_dir):
    ctx = unit_ctx(3)

    out = pebble_ready(ctx, unit_state(charm_dir, peers={1: {}, 2: {}}))

    assert named(out) == "flask-k8s/1"
    assert SCHEDULER not in running(out)


def test_leader_moves_schedulers_to_itself_when_their_unit_departs(charm_dir):
    ctx = unit_ctx(1)
    st = pebble_ready(ctx, unit_state(charm_dir, peers={0: {}}, named="flask-k8s/0"))
    assert SCHEDULER not in running(st)
    peer = st.get_relations(PEER)[0]
    gone = dataclasses.replace(peer, peers_data={})  # Juju lists it no more

    out = ctx.run(
        ctx.on.relation_departed(gone, remote_unit=0, departing_unit=0),
        dataclasses.replace(st, relations={gone}),
    )

    assert named(out) == "flask-k8s/1"
    assert service(out, SCHEDULER).startup == "enabled" and SCHEDULER in running(out)


def test_blocked_leader_still_moves_the_schedulers(charm_dir):
    ctx = unit_ctx(1)
    st = pebble_ready(ctx, unit_state(charm_dir, peers={0: {}, 2: {}}, named="flask-k8s/0"))
    gone = dataclasses.replace(st.get_relations(PEER)[0], peers_data={2: {}})
    broken = dataclasses.replace(st, relations={gone}, config={"webserver-workers": 0})

    out = ctx.run(ctx.on.relation_departed(gone, remote_unit=0, departing_unit=0), broken)

    assert isinstance(out.unit_status, testing.BlockedStatus)  # its own app cannot be rendered
    assert named(out) == "flask-k8s/1"


def test_leader_being_removed_names_the_lowest_unit_left_which_starts_them(charm_dir):
    leader_ctx, other_ctx = unit_ctx(1), unit_ctx(3)
    leader = pebble_ready(leader_ctx, unit_state(charm_dir, peers={3: {}, 5: {}}))
    assert named(leader) == "flask-k8s/1" and SCHEDULER in running(leader)
    peer = leader.get_relations(PEER)[0]

    # Unit 1 is being removed: its relation-departed hooks see itself departing.
    leaving = leader_ctx.run(
        leader_ctx.on.relation_departed(peer, remote_unit=3, departing_unit=1), leader
    )
    other_dir = charm_dir.parent.parent / "other" / "flask" / "charm"
    other_dir.mkdir(parents=True)
    other = unit_state(other_dir, leader=False, peers={5: {}}, named=named(leaving))
    taking_over = other_ctx.run(other_ctx.on.relation_changed(other.get_relations(PEER)[0]), other)

    assert named(leaving) == "flask-k8s/3"
    assert SCHEDULER not in running(leaving) and WORKER in running(leaving)
    assert SCHEDULER in running(taking_over)


def test_unit_being_removed_stops_its_scheduler_before_the_leader_renames(charm_dir):
    ctx = unit_ctx(2)
    st = pebble_ready(ctx, unit_state(charm_dir, leader=False, peers={1: {}}, named="flask-k8s/2"))
    assert SCHEDULER in running(st)

    leaving = ctx.run(
        ctx.on.relation_departed(st.get_relations(PEER)[0], remote_unit=1, departing_unit=2), st
    )
    later = ctx.run(ctx.on.config_changed(), leaving)  # still named: the leader has not acted

    assert named(later) == "flask-k8s/2"
    assert SCHEDULER not in running(leaving) and SCHEDULER not in running(later)
    assert WORKER in running(later)


def test_scheduler_named_away_is_stopped(charm_dir):
    ctx = unit_ctx(1)
    st = pebble_ready(ctx, unit_state(charm_dir, leader=False, peers={0: {}}, named="flask-k8s/1"))
    assert SCHEDULER in running(st)
    peer = dataclasses.replace(st.get_relations(PEER)[0], local_app_data={KEY: "flask-k8s/0"})

    out = ctx.run(ctx.on.relation_changed(peer), dataclasses.replace(st, relations={peer}))

    assert service(out, SCHEDULER).startup == "disabled"
    assert SCHEDULER not in running(out) and WORKER in running(out)


def test_stop_hands_the_scheduler_over_at_once(charm_dir):
    ctx = unit_ctx(0)
    st = pebble_ready(ctx, unit_state(charm_dir, peers={1: {}}))
    assert SCHEDULER in running(st)

    out = ctx.run(ctx.on.stop(), st)

    assert SCHEDULER not in running(out)


# -- restarts -----------------------------------------------------------------------------------


def test_workers_restart_when_their_environment_changes_and_only_then(charm_dir):
    ctx = unit_ctx(0)
    st = ctx.run(ctx.on.config_changed(), pebble_ready(ctx, unit_state(charm_dir)))
    flask_env = dataclasses.replace(st, config={"flask-env": "staging"})
    pebble = PebbleCounter()

    with pebble.installed():
        env_changed = ctx.run(ctx.on.config_changed(), flask_env)
        after_env = dict(pebble.calls)
        timeout = dataclasses.replace(
            env_changed, config={"flask-env": "staging", "webserver-timeout": 60}
        )
        ctx.run(ctx.on.config_changed(), timeout)

    assert service(env_changed, WORKER).environment["FLASK_ENV"] == "staging"
    assert after_env.get(f"restart {WORKER}") == after_env.get(f"restart {SCHEDULER}") == 1
    assert "restart flask" not in after_env and after_env.get("SIGHUP flask") == 1
    # A Gunicorn setting is no environment: a reload of the app, the workers untouched.
    assert pebble.calls[f"restart {WORKER}"] == 1 and pebble.calls["SIGHUP flask"] == 2


def test_unchanged_config_restarts_nothing(charm_dir):
    ctx = unit_ctx(0)
    st = ctx.run(ctx.on.config_changed(), pebble_ready(ctx, unit_state(charm_dir)))
    pebble = PebbleCounter()

    with pebble.installed():
        ctx.run(ctx.on.upgrade_charm(), st)  # a full reconcile

    assert not [kind for kind in pebble.calls if kind.startswith(("restart", "start"))]


# -- status ---------------------------------------------------------------------------------------


def show_worker_in_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pebble shows the worker in `backoff` (restarting it), a state ops.testing cannot hold."""
    real = ops.Container.get_services

    def get_services(box: ops.Container, *names: str) -> dict[str, ops.pebble.ServiceInfo]:
        infos = dict(real(box, *names))
        if WORKER in infos:
            infos[WORKER] = ops.pebble.ServiceInfo(WORKER, infos[WORKER].startup, "backoff")
        return infos

    monkeypatch.setattr(ops.Container, "get_services", get_services)


def test_worker_that_exits_at_start_blocks_naming_it_and_the_app_still_serves(
    charm_dir, monkeypatch
):
    show_worker_in_backoff(monkeypatch)
    real = pebble_io.replan

    def replan(box: ops.Container) -> None:  # what Pebble answers when the worker exits at once
        real(box)
        err = (
            "cannot perform the following tasks:\n- Start service "
            f'"{WORKER}" (service start attempt: exited quickly with code 1, will restart)'
        )
        raise ops.pebble.ChangeError(err, None)  # type: ignore[arg-type]

    monkeypatch.setattr(pebble_io, "replan", replan)
    ctx = unit_ctx(0)

    out = pebble_ready(ctx, unit_state(charm_dir))

    assert out.unit_status == testing.BlockedStatus(
        f"background service {WORKER} keeps failing (see `pebble logs {WORKER}`)"
    )
    assert "flask" in running(out)


def test_worker_down_at_one_look_is_maintenance_and_at_two_blocked(charm_dir, monkeypatch):
    ctx = unit_ctx(0)
    settled = ctx.run(ctx.on.config_changed(), pebble_ready(ctx, unit_state(charm_dir)))
    with monkeypatch.context() as patch:
        show_worker_in_backoff(patch)
        once = ctx.run(ctx.on.update_status(), settled)
        twice = ctx.run(ctx.on.update_status(), once)
    recovered = ctx.run(ctx.on.update_status(), twice)

    assert once.unit_status == testing.MaintenanceStatus(
        f"background service {WORKER} stopped; Pebble is restarting it "
        f"(see `pebble logs {WORKER}`)"
    )
    assert isinstance(twice.unit_status, testing.BlockedStatus)
    assert f"{WORKER} keeps failing" in twice.unit_status.message
    assert recovered.unit_status == testing.ActiveStatus("")


def test_quiet_update_status_stays_quiet_with_workers_running(charm_dir):
    ctx = unit_ctx(0)
    settled = ctx.run(ctx.on.config_changed(), pebble_ready(ctx, unit_state(charm_dir)))
    tools = HookToolCounter()

    with tools.installed():
        ctx.run(ctx.on.update_status(), settled)

    assert tools.calls["config-get"] == 0 and tools.tools <= 5


def test_update_status_restarts_a_worker_found_stopped(charm_dir):
    ctx = unit_ctx(0)
    settled = ctx.run(ctx.on.config_changed(), pebble_ready(ctx, unit_state(charm_dir)))
    box_ = settled.get_container("flask-app")
    statuses = {**box_.service_statuses, WORKER: ops.pebble.ServiceStatus.INACTIVE}
    stopped = dataclasses.replace(
        settled, containers={dataclasses.replace(box_, service_statuses=statuses)}
    )
    tools = HookToolCounter()

    with tools.installed():
        out = ctx.run(ctx.on.update_status(), stopped)

    assert tools.calls["config-get"] == 1  # not quiet: a full reconcile
    assert WORKER in running(out) and out.unit_status == testing.ActiveStatus("")
