"""Pure tests of workload.py and config.py: no ops model, no Pebble."""

from __future__ import annotations

import concurrent.futures
import functools
import json
import os
import runpy
import selectors
import socket
import sys
import types
from typing import Any

import pytest
import yaml

import config
import workload
from workload import FlaskApp, RockCommand

EXTENSION = "/bin/python3 -m gunicorn -c /flask/gunicorn.conf.py 'app:app' -k [ sync ]"
ROCK_SERVICE = {
    "override": "replace",
    "startup": "enabled",
    "after": ["statsd-exporter"],
    "user": "_daemon_",
    "command": EXTENSION,
}


def app(raw: dict[str, object] | None = None, **service: object) -> FlaskApp:
    return FlaskApp({**ROCK_SERVICE, **service}, config.load(raw or {}), "k", "http://a.m:8000")


@pytest.mark.parametrize(
    ("command", "config_path", "worker"),
    [
        (EXTENSION, "/flask/gunicorn.conf.py", "sync"),
        (EXTENSION.replace("sync", "gevent"), "/flask/gunicorn.conf.py", "gevent"),
        ("/bin/python3 -m gunicorn -c /c.py 'app:create_app()'", "/c.py", None),
        ("gunicorn --config=/c.py --worker-class gthread app:app", "/c.py", "gthread"),
        ("gunicorn -kgevent app:app [ --bind 0.0.0.0:8000 ]", None, "gevent"),
    ],
)
def test_rock_command_parse_finds_config_and_default_worker(command, config_path, worker):
    rock = RockCommand.parse(command)

    assert (rock.config_path, rock.default_worker) == (config_path, worker)


def test_rock_command_render_drops_the_worker_group_for_the_config_file():
    rendered = RockCommand.parse(EXTENSION).render()

    assert rendered == "/bin/python3 -m gunicorn -c /flask/charm/gunicorn.conf.py app:app"


def test_rock_command_render_keeps_entrypoint_quoted():
    rock = RockCommand.parse(
        "/bin/python3 -m gunicorn -c /c.py 'pkg.wsgi:create_app(\"x\")' -k sync"
    )

    assert rock.render().split(" -c ")[1] == (
        "/flask/charm/gunicorn.conf.py 'pkg.wsgi:create_app(\"x\")'"
    )


def test_rock_command_render_drops_glued_worker_and_keeps_other_defaults():
    rock = RockCommand.parse("gunicorn -kgevent app:app [ --bind 0.0.0.0:8000 ]")

    assert rock.render() == (
        "gunicorn app:app -c /flask/charm/gunicorn.conf.py [ --bind 0.0.0.0:8000 ]"
    )


@pytest.mark.parametrize(
    ("worker_type", "expected"), [(None, "sync"), ("sync", "sync"), ("gevent", "gevent")]
)
def test_flask_app_worker_class_is_the_operators_else_the_rocks(worker_type, expected):
    raw = {"worker-type": worker_type} if worker_type else {}

    assert app(raw).settings()["worker_class"] == expected


def test_flask_app_same_effective_worker_class_renders_the_same_file_and_service():
    unset, same = app(), app({"worker-type": "sync"})  # the rock's default is sync

    assert unset.gunicorn_config() == same.gunicorn_config()
    assert unset.service() == same.service()


@pytest.mark.parametrize("command", ["", "gunicorn 'unterminated"])
def test_rock_command_parse_rejects_unparsable(command):
    with pytest.raises(workload.CommandError):
        RockCommand.parse(command)


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (True, "true"),
        (False, "false"),
        (3600, "3600"),
        ("production", "production"),
        ("42", '"42"'),
        ("true", '"true"'),
        ('"quoted"', '"quoted"'),
        ("{not json", "{not json"),
    ],
)
def test_env_value_survives_flask_from_prefixed_env(value, encoded):
    assert workload.env_value(value) == encoded


def test_env_value_round_trips_through_json_loads_like_flask():
    for value in [True, 7, "42", "null", "[1]", "plain"]:
        raw = workload.env_value(value)
        try:
            decoded = json.loads(raw)
        except ValueError:
            decoded = raw
        assert decoded == value


def test_environment_leaves_unset_options_out():
    env = workload.environment(config.load({}), "k", "http://a.m:8000")

    assert env == {
        "FLASK_PREFERRED_URL_SCHEME": "HTTPS",
        "FLASK_SECRET_KEY": "k",
        "FLASK_BASE_URL": "http://a.m:8000",
    }


def test_flask_app_environment_merges_rock_environment_under_ours():
    flask = app(environment={"LANG": "C.UTF-8", "FLASK_SECRET_KEY": "rock"})

    assert flask.environment()["LANG"] == "C.UTF-8"
    assert flask.environment()["FLASK_SECRET_KEY"] == "k"
    # The service keeps only the rock's: ours go through the config file (a reload).
    assert flask.service().get("environment") == {"LANG": "C.UTF-8", "FLASK_SECRET_KEY": "rock"}


def test_flask_app_non_gunicorn_command_gets_env_through_pebble():
    service = app(command="/bin/flask run -p 8000").service()

    assert service.get("environment", {})["FLASK_SECRET_KEY"] == "k"


def test_gunicorn_config_sets_app_env_and_removes_unset_charm_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("FLASK_DEBUG", "true")  # left by an earlier load of the file
    monkeypatch.setenv("LANG", "C.UTF-8")
    rock_conf = tmp_path / "rock.conf.py"
    rock_conf.write_text("timeout = 30\n")
    content = app({"flask-env": "prod"}).gunicorn_config()
    ours = tmp_path / "charm.conf.py"
    ours.write_text(content.replace("/flask/gunicorn.conf.py", str(rock_conf)))

    runpy.run_path(str(ours))

    assert os.environ["FLASK_ENV"] == "prod"
    assert os.environ["FLASK_SECRET_KEY"] == "k"
    assert "FLASK_DEBUG" not in os.environ
    assert os.environ["LANG"] == "C.UTF-8"  # not the charm's to remove


def test_flask_app_non_gunicorn_command_is_kept_verbatim():
    assert app(command="/bin/flask run -p 8000").command() == "/bin/flask run -p 8000"


def test_pebble_layer_restarts_app_on_failed_ready_check():
    layer = workload.pebble_layer(app())

    assert layer.get("services", {})["flask"].get("on-check-failure") == {"flask-ready": "restart"}
    checks = layer.get("checks", {})
    assert checks["flask-ready"].get("level") == "ready"
    assert "level" not in checks["statsd-exporter-up"]
    assert set(layer.get("services", {})) == {"flask"}  # the exporter stays the rock's


def test_gunicorn_config_execs_rock_config_then_sets_chosen_settings(tmp_path):
    rock_conf = tmp_path / "rock.conf.py"
    rock_conf.write_text('bind = ["0.0.0.0:8000"]\nworkers = 1\ntimeout = 30\n')
    content = workload.gunicorn_config(str(rock_conf), {"workers": 4})
    ours = tmp_path / "charm.conf.py"
    ours.write_text(content)

    settings = runpy.run_path(str(ours))

    assert (settings["bind"], settings["workers"], settings["timeout"]) == (
        ["0.0.0.0:8000"],
        4,
        30,
    )


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [("200000 100000", 5), ("50000 100000", 3), ("1600000 100000", 9)],
)
def test_gunicorn_config_defaults_workers_from_the_cpu_quota(tmp_path, cpu_max, expected):
    quota = tmp_path / "cpu.max"
    quota.write_text(cpu_max + "\n")
    rock_conf = tmp_path / "rock.conf.py"
    rock_conf.write_text("timeout = 30\n")
    content = workload.gunicorn_config(str(rock_conf), {})
    ours = tmp_path / "charm.conf.py"
    ours.write_text(content.replace("/sys/fs/cgroup/cpu.max", str(quota)))

    assert runpy.run_path(str(ours))["workers"] == expected


def test_gunicorn_config_without_quota_uses_the_cpus_it_may_run_on(tmp_path):
    content = workload.gunicorn_config(None, {})
    ours = tmp_path / "charm.conf.py"
    ours.write_text(content.replace("/sys/fs/cgroup/cpu.max", str(tmp_path / "missing")))

    expected = min(2 * len(os.sched_getaffinity(0)) + 1, 9)
    assert runpy.run_path(str(ours))["workers"] == expected


def test_gunicorn_config_keeps_the_rocks_own_worker_count(tmp_path):
    rock_conf = tmp_path / "rock.conf.py"
    rock_conf.write_text("workers = 2\n")
    ours = tmp_path / "charm.conf.py"
    ours.write_text(workload.gunicorn_config(str(rock_conf), {}))

    assert runpy.run_path(str(ours))["workers"] == 2


def test_rock_service_from_layers_combines_layer_files_in_order():
    base = {"services": {"flask": ROCK_SERVICE, "other": {"command": "x"}}}
    extra = {"services": {"flask": {"override": "merge", "environment": {"A": "1"}}}}
    layers = {"002-extra.yaml": yaml.safe_dump(extra), "001-rock.yaml": yaml.safe_dump(base)}

    service = workload.rock_service_from_layers(layers)

    assert service == {**ROCK_SERVICE, "environment": {"A": "1"}}


def test_rock_service_from_layers_replace_starts_over():
    first = {"services": {"flask": {**ROCK_SERVICE, "environment": {"A": "1"}}}}
    second = {"services": {"flask": {"override": "replace", "command": "gunicorn app:app"}}}
    layers = {"001-a.yaml": yaml.safe_dump(first), "002-b.yaml": yaml.safe_dump(second)}

    assert workload.rock_service_from_layers(layers) == second["services"]["flask"]


@pytest.mark.parametrize(
    "layers",
    [{}, {"001-a.yaml": "services: {other: {command: x}}"}, {"001-a.yaml": "services: ["}],
)
def test_rock_service_from_layers_without_flask_service_raises(layers):
    with pytest.raises(workload.RockLayerError):
        workload.rock_service_from_layers(layers)


def test_config_load_maps_gunicorn_settings_to_gunicorn_names():
    cfg = config.load({"webserver-workers": 2, "webserver-keepalive": 0})

    assert cfg.gunicorn_settings() == {"workers": 2, "keepalive": 0}


def test_config_load_lists_every_invalid_option_once():
    with pytest.raises(config.InvalidConfigError) as failure:
        config.load({"webserver-threads": "4", "flask-debug": 1, "worker-type": None})

    assert failure.value.problems == {
        "webserver-threads": "must be an integer",
        "flask-debug": "must be true or false",
    }


def test_config_load_empty_strings_mean_unset():
    cfg = config.load({"flask-env": "", "flask-secret-key": "", "flask-application-root": ""})

    assert (cfg.flask_env, cfg.flask_secret_key, cfg.flask_application_root) == (None,) * 3


# -- per-worker hooks: the gevent yield, the rock's own hooks ----------------------------------


class _Log:
    def info(self, *_: object) -> None:
        pass


class _Cfg:
    worker_class_str = "test"
    keepalive = 1
    graceful_timeout = 1


def _worker(module: str) -> Any:
    """A stand-in worker whose class lives in `module`, as Gunicorn's worker classes do."""
    cls = type("Worker", (), {"__module__": module, "log": _Log(), "cfg": _Cfg()})
    worker: Any = cls()
    # What gthread workers have, and the exit hook uses.
    worker.poller, worker.futures, worker.alive = selectors.DefaultSelector(), [], True
    worker.finish_request = worker.notify = lambda *_: None
    return worker


def _load_hooks(tmp_path, rock_conf_text: str, timer_yield: bool = True) -> dict[str, object]:
    """Load the charm's config file as Gunicorn does, over a rock config file."""
    rock_conf = tmp_path / "rock.conf.py"
    rock_conf.write_text(rock_conf_text)
    ours = tmp_path / "charm.conf.py"
    ours.write_text(workload.gunicorn_config(str(rock_conf), {}, timer_yield=timer_yield))
    return runpy.run_path(str(ours))


ROCK_HOOKS = """
calls = []

def post_worker_init(worker):
    calls.append("post_worker_init")

def post_request(worker, req):
    calls.append(("post_request", req))
"""


@pytest.fixture
def gevent_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record gevent.sleep calls (a stand-in module: the hooks import it at worker start)."""
    sleeps: list[float] = []
    fake = types.ModuleType("gevent")
    fake.sleep = sleeps.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "gevent", fake)
    return sleeps


def test_gevent_worker_yields_after_each_request_after_the_rocks_hook(tmp_path, gevent_sleeps):
    hooks = _load_hooks(tmp_path, ROCK_HOOKS)
    worker = _worker("gunicorn.workers.ggevent")

    hooks["post_worker_init"](worker)  # type: ignore[operator]
    for req in ("a", "b"):
        hooks["post_request"](worker, req, {}, None)  # type: ignore[operator]

    assert hooks["calls"] == ["post_worker_init", ("post_request", "a"), ("post_request", "b")]
    assert gevent_sleeps == [1e-6, 1e-6]


@pytest.mark.parametrize("module", ["gunicorn.workers.sync", "gunicorn.workers.gthread"])
def test_sync_and_gthread_workers_never_yield(tmp_path, gevent_sleeps, module):
    hooks = _load_hooks(tmp_path, ROCK_HOOKS)
    worker = _worker(module)

    hooks["post_worker_init"](worker)  # type: ignore[operator]
    hooks["post_request"](worker, "a", {}, None)  # type: ignore[operator]

    assert hooks["calls"] == ["post_worker_init", ("post_request", "a")]
    assert gevent_sleeps == []


def test_reloaded_config_file_runs_the_rocks_post_request_once(tmp_path, gevent_sleeps):
    first = _load_hooks(tmp_path, ROCK_HOOKS)
    reloaded = runpy.run_path(str(tmp_path / "charm.conf.py"))  # what SIGHUP does: a fresh load
    worker = _worker("gunicorn.workers.ggevent")

    reloaded["post_worker_init"](worker)  # type: ignore[operator]
    reloaded["post_request"](worker, "a", {}, None)  # type: ignore[operator]

    assert reloaded["calls"] == ["post_worker_init", ("post_request", "a")]
    assert first["calls"] == []
    assert gevent_sleeps == [1e-6]


def test_gevent_yield_off_for_the_bench(tmp_path, gevent_sleeps):
    hooks = _load_hooks(tmp_path, "", timer_yield=False)
    worker = _worker("gunicorn.workers.ggevent")

    hooks["post_worker_init"](worker)  # type: ignore[operator]
    hooks["post_request"](worker, "a", {}, None)  # type: ignore[operator]

    assert gevent_sleeps == []


class _Connection:
    """Gunicorn's gthread connection, as far as the exit hook uses it."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.closed = False

    def init(self) -> None:
        self.sock.setblocking(True)

    def close(self) -> None:
        self.closed = True
        self.sock.close()


def on_client_socket_readable(connection: _Connection, client: object) -> None:
    """Named as the gthread worker's poller callback for a client connection."""


def test_stopping_gthread_worker_answers_a_request_already_sent_on_an_idle_connection(tmp_path):
    hooks = _load_hooks(tmp_path, "")
    worker = _worker("gunicorn.workers.gthread")
    answered: list[bytes] = []
    worker.handle = lambda connection: answered.append(connection.sock.recv(100))
    hooks["post_worker_init"](worker)  # type: ignore[operator]
    (busy, busy_client), (idle, _idle_client) = socket.socketpair(), socket.socketpair()
    connections = [_Connection(busy), _Connection(idle)]
    for connection in connections:
        callback = functools.partial(on_client_socket_readable, connection)
        worker.poller.register(connection.sock, selectors.EVENT_READ, callback)
    busy_client.sendall(b"GET / HTTP/1.1\r\n\r\n")  # the next request, already on its way

    worker.poller.close()  # what the worker does when it stops

    assert answered == [b"GET / HTTP/1.1\r\n\r\n"]
    assert all(connection.closed for connection in connections)


# -- comparing our layer with Pebble's plan ----------------------------------------------------

LAYER: Any = {
    "services": {"flask": {"override": "replace", "command": "gunicorn app:app"}},
    "checks": {"flask-ready": {"override": "replace", "level": "ready", "exec": {"command": "x"}}},
}


def test_plan_with_keys_pebble_fills_in_still_has_the_layer():
    plan = {
        "services": {"flask": {"override": "replace", "command": "gunicorn app:app"}},
        "checks": {
            "flask-ready": {
                "override": "replace",
                "level": "ready",
                "exec": {"command": "x"},
                "startup": "enabled",  # Pebble's default, in its plan but not in our layer
            }
        },
    }

    assert workload.plan_has(plan, LAYER)


def test_plan_keeping_an_environment_the_layer_dropped_lacks_the_layer():
    service = {"override": "replace", "command": "gunicorn app:app", "environment": {"A": "1"}}
    plan = {"services": {"flask": service}, "checks": LAYER["checks"]}

    assert not workload.plan_has(plan, LAYER)


def test_stopping_gthread_worker_answers_the_next_request_of_a_connection_it_just_answered(
    tmp_path,
):
    hooks = _load_hooks(tmp_path, "")
    worker = _worker("gunicorn.workers.gthread")
    answered: list[bytes] = []
    worker.handle = lambda connection: answered.append(connection.sock.recv(100))
    closed_by_gunicorn: list[object] = []
    worker.finish_request = closed_by_gunicorn.append
    hooks["post_worker_init"](worker)  # type: ignore[operator]
    server, client = socket.socketpair()
    connection = _Connection(server)
    # The answer went out with keep-alive; then the worker was told to stop.
    future: concurrent.futures.Future = concurrent.futures.Future()
    future.set_result((True, connection))
    worker.alive = False
    worker.finish_request(future)
    client.sendall(b"GET /next HTTP/1.1\r\n\r\n")

    worker.poller.close()

    assert closed_by_gunicorn == []  # not closed unanswered
    assert answered == [b"GET /next HTTP/1.1\r\n\r\n"]
    assert connection.closed
