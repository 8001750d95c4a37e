"""The charm's layer, applied to a real Pebble running the sample rock's files.

The workload container is started as Juju starts it (`--hold`, the rock's layer copied in), and
the layer, environment and Gunicorn config file come from the charm's own pure builders
(`workload`, `config`), pushed and replanned through ops' real Pebble client.
"""

import re
import time

import ops
import pytest

import workload
from config import load
from juju_local.workload_container import WorkloadContainer
from tests.e2e import rock_runner
from tests.e2e.rock_runner import SAMPLE


@pytest.fixture(scope="module")
def container(tmp_path_factory):
    """A fresh sample-rock workload container; stopped after the module."""
    pod = WorkloadContainer(SAMPLE, tmp_path_factory.mktemp("pod"))
    pod.start()
    yield pod
    pod.stop()


@pytest.fixture(scope="module")
def rock_service(container: WorkloadContainer) -> dict:
    """The rock's own `flask` service, as the charm reads it before adding its layer."""
    client = ops.pebble.Client(socket_path=str(container.socket))
    return dict(client.get_plan().services[workload.APP_SERVICE].to_dict())


def _apply_charm_layer(container: WorkloadContainer, rock_service: dict, options: dict) -> None:
    """Apply what the charm computes, as `WorkloadApplier.apply` does: only what differs."""
    client = ops.pebble.Client(socket_path=str(container.socket))
    app = workload.FlaskApp(rock_service, load(options), "s3cret", "http://flask-k8s.m:8000")
    layer = workload.pebble_layer(app)
    layer_changed = not workload.plan_has(client.get_plan().to_dict(), layer)
    try:
        conf_changed = client.pull(workload.CHARM_GUNICORN_CONFIG).read() != app.gunicorn_config()
    except ops.pebble.PathError:
        conf_changed = True
    if conf_changed:
        directory = workload.CHARM_GUNICORN_CONFIG.rsplit("/", 1)[0]
        client.make_dir(directory, make_parents=True, permissions=0o755, user_id=0, group_id=0)
        client.push(
            workload.CHARM_GUNICORN_CONFIG,
            app.gunicorn_config(),
            permissions=0o640,
            user_id=0,
            group_id=workload.DAEMON_UID,
        )
    running = client.get_services([workload.APP_SERVICE])[0].is_running()
    if layer_changed:
        client.add_layer("flask-k8s", layer, combine=True)
    if layer_changed or not running:
        client.replan_services(timeout=60)
    elif conf_changed:
        client.send_signal("SIGHUP", [workload.APP_SERVICE])


def _wait_for_master(expected_flag: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    masters: list[str] = []
    while time.monotonic() < deadline:
        masters = rock_runner.gunicorn_master_cmdlines()
        if len(masters) == 1 and masters[0].endswith(expected_flag):
            return masters[0]
        time.sleep(0.2)
    raise AssertionError(f"no single gunicorn master ending in {expected_flag!r}: {masters}")


def test_rock_layer_is_in_the_plan_before_the_charm_adds_one(rock_service: dict):
    assert rock_service["command"].endswith("'app:app' -k [ gevent ]")
    assert rock_service["user"] == "_daemon_"


def _worker_class_in_use(container: WorkloadContainer, expected: str, timeout: float = 30) -> str:
    """The worker class gunicorn last reported ("Using worker: …"), once it is `expected`."""
    found: list[str] = []

    def using() -> bool:
        found[:] = re.findall(r"Using worker: (\S+)", container.log_path.read_text())
        return bool(found) and found[-1] == expected

    rock_runner.wait_until(using, timeout)
    return found[-1] if found else ""


@pytest.mark.parametrize(
    ("worker_type", "expected"),
    [(None, "gevent"), ("sync", "sync"), ("gthread", "gthread"), ("gevent", "gevent")],
)
def test_charm_layer_runs_gunicorn_with_the_configured_worker_class(
    container: WorkloadContainer, rock_service: dict, worker_type: str | None, expected: str
):
    options = {"worker-type": worker_type} if worker_type else {}

    _apply_charm_layer(container, rock_service, options)

    master = _wait_for_master("app:app")
    assert f"-c {workload.CHARM_GUNICORN_CONFIG}" in master and " -k " not in master
    assert rock_runner.wait_for_http_ok("/", timeout=30)
    assert _worker_class_in_use(container, expected) == expected


def test_worker_class_changes_keep_the_master(container: WorkloadContainer, rock_service: dict):
    _apply_charm_layer(container, rock_service, {})
    master = rock_runner.gunicorn_master_pid()

    for worker_type in ("sync", "gevent", "gthread"):
        _apply_charm_layer(container, rock_service, {"worker-type": worker_type})
        assert _worker_class_in_use(container, worker_type) == worker_type

    assert rock_runner.gunicorn_master_pid() == master


def test_charm_settings_and_environment_reach_the_app(
    container: WorkloadContainer, rock_service: dict
):
    _apply_charm_layer(container, rock_service, {"worker-type": "sync", "webserver-workers": 3})

    master_pid = rock_runner.gunicorn_master_pid()
    assert rock_runner.wait_for_http_ok("/", timeout=30)
    assert rock_runner.wait_for_worker_count(master_pid, 3)
    status, body = rock_runner.get("/secret-key-id")
    assert status == 200 and '"sha256":null' not in body.replace(" ", "")


def test_charm_config_file_is_roots_and_not_world_readable(container: WorkloadContainer):
    client = ops.pebble.Client(socket_path=str(container.socket))

    (conf,) = client.list_files(workload.CHARM_GUNICORN_CONFIG, itself=True)
    (directory,) = client.list_files("/flask/charm", itself=True)

    assert (conf.user_id, conf.group_id, conf.permissions) == (0, workload.DAEMON_UID, 0o640)
    assert (directory.user_id, directory.permissions) == (0, 0o755)
