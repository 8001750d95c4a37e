"""State-transition tests of the charm with ops.testing: one behaviour per test."""

from __future__ import annotations

import ast
import dataclasses
import pathlib
import shlex
from typing import Any

import ops
import pytest
from ops import testing

import app_health
import pebble_io
from charm import FlaskCharm
from tests.unit.charm.charm_state import (
    ROCK_COMMAND,
    STORM,
    app_env,
    before_storm_step,
    container,
    state,
)

KEY = "the-generated-key"


def app_secret() -> testing.Secret:
    return testing.Secret(tracked_content={"value": KEY}, owner="app")


def settled_state(charm_dir: pathlib.Path, **kwargs: Any) -> testing.State:
    """Return a state where the leader already generated the secret key."""
    secret = app_secret()
    peer = testing.PeerRelation("secret-storage", local_app_data={"secret-key-id": secret.id})
    relations = {peer, *kwargs.pop("relations", ())}
    return state(charm_dir, relations=relations, secrets={secret}, **kwargs)


def flask_service(out: testing.State) -> ops.pebble.Service:
    return out.get_container("flask-app").plan.services["flask"]


def rendered_setting(charm_dir: pathlib.Path, name: str) -> object:
    """A Gunicorn setting as the charm's config file assigns it at top level (None: not set)."""
    tree = ast.parse((charm_dir / "gunicorn.conf.py").read_text())
    found = None
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == [
            name
        ]:
            found = ast.literal_eval(node.value)
    return found


def run(ctx: testing.Context[FlaskCharm], event_name: str, st: testing.State) -> testing.State:
    """Run an event by name against a state."""
    if event_name == "pebble_ready":
        return ctx.run(ctx.on.pebble_ready(st.get_container("flask-app")), st)
    return ctx.run(getattr(ctx.on, event_name)(), st)


def test_pebble_ready_renders_whole_layer(ctx, charm_dir):
    st = settled_state(charm_dir)

    out = run(ctx, "pebble_ready", st)

    plan: dict[str, Any] = dict(out.get_container("flask-app").plan.to_dict())
    assert plan["services"]["flask"] == {
        "override": "replace",
        "summary": "Flask app served by Gunicorn",
        "startup": "enabled",
        "after": ["statsd-exporter"],
        "user": "_daemon_",
        "command": "/bin/python3 -m gunicorn -c /flask/charm/gunicorn.conf.py app:app",
        "kill-delay": "35s",  # beyond Gunicorn's graceful_timeout (30 s)
        "on-check-failure": {"flask-ready": "restart"},
    }
    assert app_env(out) == {
        "FLASK_PREFERRED_URL_SCHEME": "HTTPS",
        "FLASK_SECRET_KEY": KEY,
        "FLASK_BASE_URL": "http://flask-k8s.shop:8000",
        "FLASK_PEER_FQDNS": "flask-k8s-0.flask-k8s-endpoints.shop.svc.cluster.local",
    }
    assert rendered_setting(charm_dir, "worker_class") == "sync"
    assert rendered_setting(charm_dir, "graceful_timeout") == 30
    assert plan["checks"] == {
        "flask-ready": {
            "override": "replace",
            "level": "ready",
            "period": "10s",
            "timeout": "9s",
            "threshold": 3,
            "exec": {
                "command": shlex.join(app_health.probe_argv("/bin/python3", 8000)),
                "working-dir": "/",
                "user": "_daemon_",
            },
        },
        "statsd-exporter-up": {
            "override": "replace",
            "http": {"url": "http://localhost:9102/metrics"},
        },
    }
    assert plan["services"]["statsd-exporter"]["command"].startswith("/bin/statsd_exporter")
    assert out.unit_status == testing.ActiveStatus("")


def test_pebble_ready_starts_both_services(ctx, charm_dir):
    out = run(ctx, "pebble_ready", settled_state(charm_dir))

    statuses = out.get_container("flask-app").service_statuses
    assert statuses == {
        "flask": ops.pebble.ServiceStatus.ACTIVE,
        "statsd-exporter": ops.pebble.ServiceStatus.ACTIVE,
    }


def test_pebble_ready_writes_gunicorn_config_running_rock_config(ctx, charm_dir):
    run(ctx, "pebble_ready", settled_state(charm_dir, config={"webserver-workers": 3}))

    content = (charm_dir / "gunicorn.conf.py").read_text()
    assert "_rock_config = '/flask/gunicorn.conf.py'" in content
    assert rendered_setting(charm_dir, "workers") == 3


EVENTS = [
    "install",
    "start",
    "leader_elected",
    "config_changed",
    "upgrade_charm",
    "update_status",
    "pebble_ready",
]


@pytest.mark.parametrize("event_name", EVENTS)
def test_every_event_converges_to_the_same_plan(ctx, charm_dir, event_name):
    reference = run(ctx, "pebble_ready", settled_state(charm_dir))
    (charm_dir / "gunicorn.conf.py").unlink()

    out = run(ctx, event_name, settled_state(charm_dir))

    assert out.get_container("flask-app").plan == reference.get_container("flask-app").plan
    assert out.unit_status == reference.unit_status


@pytest.mark.parametrize("event_name", EVENTS)
def test_every_event_is_a_noop_once_settled(ctx, charm_dir, calls, event_name):
    settled = run(ctx, "pebble_ready", settled_state(charm_dir))
    calls.clear()

    out = run(ctx, event_name, settled)

    assert calls.log == []
    assert out.get_container("flask-app").plan == settled.get_container("flask-app").plan


def test_pebble_unreachable_waits_and_touches_nothing(ctx, charm_dir, calls):
    st = settled_state(charm_dir, containers={container(charm_dir, can_connect=False)})

    out = run(ctx, "config_changed", st)

    assert out.unit_status == testing.WaitingStatus(
        "waiting for Pebble in the flask-app container"
    )
    assert calls.log == []


def test_rock_without_flask_service_blocks(ctx, charm_dir):
    bare = testing.Container(
        "flask-app",
        can_connect=True,
        layers={"rock": ops.pebble.Layer({"services": {"other": {"command": "x"}}})},
    )

    out = run(ctx, "config_changed", settled_state(charm_dir, containers={bare}))

    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert "no `flask` Pebble service" in out.unit_status.message


@pytest.mark.parametrize("worker", ["sync", "gevent", "gthread"])
def test_config_worker_type_sets_gunicorn_worker_class(ctx, charm_dir, worker):
    out = run(ctx, "config_changed", settled_state(charm_dir, config={"worker-type": worker}))

    assert flask_service(out).command == (
        "/bin/python3 -m gunicorn -c /flask/charm/gunicorn.conf.py app:app"
    )
    assert rendered_setting(charm_dir, "worker_class") == worker
    assert out.unit_status == testing.ActiveStatus("")


def test_config_worker_type_unset_keeps_rock_default(ctx, charm_dir):
    gevent_rock = ROCK_COMMAND.replace("[ sync ]", "[ gevent ]")
    st = settled_state(charm_dir, containers={container(charm_dir, command=gevent_rock)})

    out = run(ctx, "config_changed", st)

    assert flask_service(out).command.endswith("app:app")
    assert rendered_setting(charm_dir, "worker_class") == "gevent"
    assert ctx.exec_history == {}


def test_rock_command_without_worker_group_still_works(ctx, charm_dir):
    command = "/bin/python3 -m gunicorn -c /flask/gunicorn.conf.py 'app:create_app()'"
    st = settled_state(charm_dir, containers={container(charm_dir, command=command)})

    unset = run(ctx, "config_changed", st)
    unset_class = rendered_setting(charm_dir, "worker_class")
    chosen = run(ctx, "config_changed", _with_config(unset, {"worker-type": "sync"}))

    expected = "/bin/python3 -m gunicorn -c /flask/charm/gunicorn.conf.py 'app:create_app()'"
    assert flask_service(unset).command == expected
    assert unset_class is None  # Gunicorn's own default (or the rock's config file) decides
    assert flask_service(chosen).command == expected
    assert rendered_setting(charm_dir, "worker_class") == "sync"


def test_config_gevent_without_gevent_in_rock_blocks(ctx, charm_dir):
    st = settled_state(
        charm_dir,
        config={"worker-type": "gevent"},
        containers={container(charm_dir, gevent=False)},
    )

    out = run(ctx, "config_changed", st)

    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert "add gevent to the rock's requirements.txt" in out.unit_status.message
    assert "flask" not in out.get_container("flask-app").service_statuses


def test_config_gevent_check_runs_once_per_container(ctx, charm_dir):
    st = settled_state(
        charm_dir,
        config={"worker-type": "gevent"},
        containers={container(charm_dir, gevent=False)},
    )

    out = run(ctx, "config_changed", st)
    out = run(ctx, "update_status", out)
    out = run(ctx, "config_changed", out)
    once = len(ctx.exec_history["flask-app"])
    run(ctx, "pebble_ready", out)  # a restarted container, maybe a new image: check again

    assert once == 1
    assert len(ctx.exec_history["flask-app"]) == 2
    check = ctx.exec_history["flask-app"][0]
    assert check.command == ["/bin/python3", "-c", "import gevent"]
    assert (check.user, check.working_dir) == ("_daemon_", "/flask/app")


def test_config_gthread_and_sync_need_no_check(ctx, charm_dir):
    out = run(ctx, "config_changed", settled_state(charm_dir, config={"worker-type": "gthread"}))
    run(ctx, "config_changed", _with_config(out, {"worker-type": "sync"}))

    assert ctx.exec_history == {}


def test_config_invalid_blocks_naming_every_option(ctx, charm_dir):
    config = {"worker-type": "eventlet", "webserver-workers": 0, "flask-application-root": "x"}

    out = run(ctx, "config_changed", settled_state(charm_dir, config=config))

    assert out.unit_status == testing.BlockedStatus(
        "invalid config: flask-application-root: must be a path starting with / and holding "
        "no spaces; webserver-workers: must be at least 1; worker-type: must be one of sync, "
        "gevent or gthread"
    )


def test_config_invalid_leaves_running_app_untouched(ctx, charm_dir, calls):
    settled = run(ctx, "pebble_ready", settled_state(charm_dir))
    calls.clear()

    out = run(ctx, "config_changed", _with_config(settled, {"webserver-timeout": -1}))

    assert calls.log == []
    assert out.get_container("flask-app").plan == settled.get_container("flask-app").plan


def _with_config(st: testing.State, config: dict[str, Any]) -> testing.State:
    return dataclasses.replace(st, config=config)


def test_config_flask_options_reach_environment(ctx, charm_dir):
    config = {
        "flask-env": "production",
        "flask-debug": False,
        "flask-permanent-session-lifetime": 3600,
        "flask-preferred-url-scheme": "http",
        "flask-application-root": "/shop",
        "flask-session-cookie-secure": True,
    }

    out = run(ctx, "config_changed", settled_state(charm_dir, config=config))

    assert flask_service(out).environment == {}  # a change to them is a reload, not a restart
    assert app_env(out) == {
        "FLASK_ENV": "production",
        "FLASK_DEBUG": "false",
        "FLASK_PERMANENT_SESSION_LIFETIME": "3600",
        "FLASK_PREFERRED_URL_SCHEME": "HTTP",
        "FLASK_APPLICATION_ROOT": "/shop",
        "FLASK_SESSION_COOKIE_SECURE": "true",
        "FLASK_SECRET_KEY": KEY,
        "FLASK_BASE_URL": "http://flask-k8s.shop:8000",
        "FLASK_PEER_FQDNS": "flask-k8s-0.flask-k8s-endpoints.shop.svc.cluster.local",
    }


def test_config_timeout_change_reloads_without_restart(ctx, charm_dir, calls):
    settled = run(ctx, "pebble_ready", settled_state(charm_dir))
    calls.clear()

    out = run(ctx, "config_changed", _with_config(settled, {"webserver-timeout": 120}))

    assert calls.log == ["push", "reload"]
    assert rendered_setting(charm_dir, "timeout") == 120
    assert out.get_container("flask-app").plan == settled.get_container("flask-app").plan


def test_config_worker_type_change_reloads_without_restart(ctx, charm_dir, calls):
    settled = run(ctx, "pebble_ready", settled_state(charm_dir))
    calls.clear()

    out = run(ctx, "config_changed", _with_config(settled, {"worker-type": "gthread"}))

    assert calls.log == ["push", "reload"]
    assert rendered_setting(charm_dir, "worker_class") == "gthread"
    assert out.get_container("flask-app").plan == settled.get_container("flask-app").plan


def test_config_worker_type_same_as_rock_default_touches_nothing(ctx, charm_dir, calls):
    settled = run(ctx, "pebble_ready", settled_state(charm_dir))  # the rock's `-k [ sync ]`
    calls.clear()

    out = run(ctx, "config_changed", _with_config(settled, {"worker-type": "sync"}))

    assert calls.log == []
    assert out.get_container("flask-app").plan == settled.get_container("flask-app").plan


def test_config_flask_option_change_reloads_without_restart(ctx, charm_dir, calls):
    settled = run(ctx, "pebble_ready", settled_state(charm_dir))
    calls.clear()

    out = run(ctx, "config_changed", _with_config(settled, {"flask-env": "staging"}))

    assert calls.log == ["push", "reload"]
    assert app_env(out)["FLASK_ENV"] == "staging"
    assert out.get_container("flask-app").plan == settled.get_container("flask-app").plan


def test_fresh_container_rereads_rock_command_and_starts(ctx, charm_dir, calls):
    settled = run(ctx, "pebble_ready", settled_state(charm_dir, config={"worker-type": "sync"}))
    new_command = "/bin/python3 -m gunicorn -c /flask/gunicorn.conf.py 'wsgi:app' -k [ sync ]"
    (charm_dir / "gunicorn.conf.py").unlink()  # a new pod has an empty /flask/charm
    fresh = container(charm_dir, command=new_command)
    calls.clear()

    out = run(ctx, "pebble_ready", dataclasses.replace(settled, containers={fresh}))

    assert flask_service(out).command.endswith("wsgi:app")
    assert rendered_setting(charm_dir, "worker_class") == "sync"
    assert calls.log == ["push", "start"]


def test_lost_charm_state_recovers_rock_command_from_container(ctx, charm_dir, calls):
    settled = run(ctx, "pebble_ready", settled_state(charm_dir, config={"worker-type": "gthread"}))
    forgetful = dataclasses.replace(settled, stored_states=set())
    calls.clear()

    out = run(ctx, "config_changed", _with_config(forgetful, {}))

    assert flask_service(out).command.endswith("-c /flask/charm/gunicorn.conf.py app:app")
    assert rendered_setting(charm_dir, "worker_class") == "sync"  # the rock's, from its layer
    assert calls.log == ["push", "reload"]


def test_storm_starts_once_and_reloads_for_timeout_and_worker(ctx, charm_dir, calls):
    peer = testing.PeerRelation("secret-storage")
    st = state(charm_dir, leader=False, relations={peer})
    st = dataclasses.replace(st, containers={container(charm_dir, can_connect=False)})

    per_step: list[list[str]] = []
    for event_name, config in STORM:
        calls.clear()
        st = run(ctx, event_name, before_storm_step(st, event_name, config))
        per_step.append(list(calls.log))

    assert per_step == [
        [],  # install: no Pebble yet
        [],  # leader-elected: generates the key, still no Pebble
        [],  # config-changed: no Pebble
        ["push", "start"],  # pebble-ready: the one start
        [],
        [],
        [],
        [],  # config-changed with nothing changed
        ["push", "reload"],  # webserver-timeout: graceful reload
        ["push", "reload"],  # worker-type: graceful reload too
    ]
    assert ctx.exec_history == {}
    assert st.unit_status == testing.ActiveStatus("")


def test_config_changed_app_failing_to_start_blocks(ctx, charm_dir, monkeypatch):
    def failing_replan(container: ops.Container) -> None:
        raise ops.pebble.ChangeError("cannot start service: exited quickly", None)  # type: ignore[arg-type]

    monkeypatch.setattr(pebble_io, "replan", failing_replan)

    out = run(ctx, "config_changed", settled_state(charm_dir))

    assert out.unit_status == testing.BlockedStatus(
        "the app exits at start: cannot start service: exited quickly (see `pebble logs flask`)"
    )


def test_update_status_starts_stopped_app(ctx, charm_dir, calls):
    settled = run(ctx, "pebble_ready", settled_state(charm_dir))
    stopped = dataclasses.replace(
        settled.get_container("flask-app"),
        service_statuses={"flask": ops.pebble.ServiceStatus.INACTIVE},
    )
    calls.clear()

    run(ctx, "update_status", dataclasses.replace(settled, containers={stopped}))

    assert calls.log == ["start"]


def test_config_changed_unparsable_rock_command_blocks(ctx, charm_dir):
    st = settled_state(charm_dir, containers={container(charm_dir, command="gunicorn 'app:app")})

    out = run(ctx, "config_changed", st)

    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert "cannot parse the rock's flask command" in out.unit_status.message


def test_config_changed_gunicorn_options_on_non_gunicorn_rock_block(ctx, charm_dir):
    rock = container(charm_dir, command="/bin/flask run -p 8000")
    st = settled_state(charm_dir, containers={rock}, config={"webserver-workers": 2})

    out = run(ctx, "config_changed", st)

    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert "the rock's flask command does not run it" in out.unit_status.message


def test_config_changed_gevent_check_that_cannot_run_waits_and_retries(
    ctx, charm_dir, monkeypatch
):
    def broken_run(container: ops.Container, argv: list[str], **kwargs: object) -> bool:
        raise ops.pebble.APIError({}, 500, "Internal Server Error", "exec failed")

    monkeypatch.setattr(pebble_io, "run", broken_run)

    out = run(ctx, "config_changed", settled_state(charm_dir, config={"worker-type": "gevent"}))

    assert isinstance(out.unit_status, testing.WaitingStatus)
    assert "could not check whether the rock has gevent" in out.unit_status.message


def test_reconcile_opens_the_app_port(ctx, charm_dir):
    out = run(ctx, "config_changed", state(charm_dir))

    assert out.opened_ports == {testing.TCPPort(8000)}


# -- what runs, and as whom, comes only from the rock ------------------------------------------


@pytest.fixture
def pebble_writes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, dict[str, Any]]]:
    """Record every file push and mkdir the charm asks the (testing) Pebble for, with owners.

    The testing Pebble writes files as the test's user, so ownership is checked on the request.
    """
    from ops._private.harness import _TestingPebbleClient

    record: list[tuple[str, str, dict[str, Any]]] = []
    push, make_dir = _TestingPebbleClient.push, _TestingPebbleClient.make_dir

    def spy_push(self: Any, path: str, source: Any, **kwargs: Any) -> None:
        record.append(("push", path, {k: v for k, v in kwargs.items() if v is not None}))
        push(self, path, source, **kwargs)

    def spy_make_dir(self: Any, path: str, **kwargs: Any) -> None:
        record.append(("make_dir", path, {k: v for k, v in kwargs.items() if v is not None}))
        make_dir(self, path, **kwargs)

    monkeypatch.setattr(_TestingPebbleClient, "push", spy_push)
    monkeypatch.setattr(_TestingPebbleClient, "make_dir", spy_make_dir)
    return record


TAMPERED = (
    '# rock-flask-service: {"command": "/bin/sh -c \'id > /pwned\'", "user": "root"}\n'
    "raw_env = ['FLASK_SECRET_KEY=stolen']\n"
)


def test_tampered_config_file_with_lost_state_never_changes_what_runs(ctx, charm_dir, calls):
    settled = run(ctx, "pebble_ready", settled_state(charm_dir))
    before = flask_service(settled).to_dict()
    (charm_dir / "gunicorn.conf.py").write_text(TAMPERED)  # the app's user rewrote it
    forgetful = dataclasses.replace(settled, stored_states=set())
    calls.clear()

    out = run(ctx, "config_changed", forgetful)

    assert flask_service(out).to_dict() == before
    assert flask_service(out).user == "_daemon_"
    content = (charm_dir / "gunicorn.conf.py").read_text()
    assert "pwned" not in content and "stolen" not in content
    assert calls.log == ["push", "reload"]  # the charm's own file again, nothing restarted
    assert out.unit_status == testing.ActiveStatus("")


def test_lost_state_rederives_the_rock_service_from_its_layer_files(ctx, charm_dir):
    settled = run(ctx, "pebble_ready", settled_state(charm_dir))
    layer_file = charm_dir.parent.parent / "rock-layers" / "001-rock.yaml"
    # Only the layer files say what the rock runs: a different (image) command is believed.
    layer_file.write_text(layer_file.read_text().replace("'app:app'", "'wsgi:app'"))
    forgetful = dataclasses.replace(settled, stored_states=set())

    out = run(ctx, "config_changed", forgetful)

    assert flask_service(out).command.endswith("gunicorn.conf.py wsgi:app")
    assert flask_service(out).user == "_daemon_"


@pytest.mark.parametrize("damage", ["missing", "app-writable"])
def test_lost_state_without_trustworthy_rock_layers_blocks_and_keeps_the_app(
    ctx, charm_dir, calls, damage
):
    settled = run(ctx, "pebble_ready", settled_state(charm_dir))
    layer_file = charm_dir.parent.parent / "rock-layers" / "001-rock.yaml"
    if damage == "missing":
        layer_file.unlink()
    else:
        layer_file.chmod(0o666)
    forgetful = dataclasses.replace(settled, stored_states=set())
    calls.clear()

    out = run(ctx, "config_changed", forgetful)

    assert out.unit_status == testing.BlockedStatus(
        "cannot recover the rock's flask service: the rock's layers define no flask service "
        "with a command"
    )
    assert calls.log == []
    assert flask_service(out) == flask_service(settled)


def test_pushed_config_file_is_roots_and_readable_by_the_app_group_only(
    ctx, charm_dir, pebble_writes
):
    charm_dir.rmdir()  # a fresh container: the charm creates /flask/charm itself

    run(ctx, "pebble_ready", settled_state(charm_dir))

    root_dir = {"make_parents": True, "permissions": 0o755, "user_id": 0, "group_id": 0}
    app_group_readable = {"permissions": 0o640, "user_id": 0, "group_id": 584792}
    assert pebble_writes == [
        ("make_dir", "/flask/charm", root_dir),
        (
            "push",
            "/flask/charm/gunicorn.conf.py",
            {"encoding": "utf-8", "make_dirs": False, **app_group_readable},
        ),
    ]
    assert charm_dir.stat().st_mode & 0o777 == 0o755
    assert (charm_dir / "gunicorn.conf.py").stat().st_mode & 0o777 == 0o640


def test_app_writable_charm_directory_is_replaced_by_roots(ctx, charm_dir, pebble_writes):
    charm_dir.chmod(0o777)  # e.g. made by the app's user, or by an older charm revision
    (charm_dir / "gunicorn.conf.py").write_text(TAMPERED)

    out = run(ctx, "pebble_ready", settled_state(charm_dir))

    assert [(kind, path) for kind, path, _ in pebble_writes] == [
        ("make_dir", "/flask/charm"),
        ("push", "/flask/charm/gunicorn.conf.py"),
    ]
    assert charm_dir.stat().st_mode & 0o777 == 0o755
    assert "pwned" not in (charm_dir / "gunicorn.conf.py").read_text()
    assert out.unit_status == testing.ActiveStatus("")


def test_app_writable_config_file_is_written_afresh(ctx, charm_dir, calls):
    settled = run(ctx, "pebble_ready", settled_state(charm_dir))
    # same content, but the app could change it (as left by an older revision)
    (charm_dir / "gunicorn.conf.py").chmod(0o666)
    calls.clear()

    run(ctx, "upgrade_charm", settled)

    assert calls.log == ["push", "reload"]
    assert (charm_dir / "gunicorn.conf.py").stat().st_mode & 0o777 == 0o640
