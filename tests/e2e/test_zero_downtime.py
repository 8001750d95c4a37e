"""Every `juju config` change under load drops no request: the charm reloads, never restarts.

The sample rock is deployed with the charm (juju_local: real hooks, Pebble, gunicorn), and each
kind of change is applied through config-changed, as `juju config` does, while a few client
threads keep requests in flight over keep-alive connections (fast and slow routes). Each load is
bounded: it runs until the hook has returned and one more second has passed, and never more than
`MAX_SECONDS` (a request cap would end the load before a slow hook applies the change).
"""

from __future__ import annotations

import hashlib
import http.client
import re
import threading
import time
from typing import Any

import pytest

from juju_local.deployment import Deployment
from tests.e2e import deployment_state, rock_runner

FAST_THREADS, SLOW_THREADS = 6, 2
SLOW_PATH = "/slow?seconds=0.3"
AFTER_CHANGE = 1.0  # seconds of load once the hook has returned
MAX_SECONDS = 120.0


class Load:
    """Client threads on keep-alive connections, counting requests that failed.

    A failed request is one that got no response (refused, reset, closed mid-way) or a status
    other than 200. Nothing is retried.
    """

    def __init__(self) -> None:
        self.sent = 0
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        paths = ["/"] * FAST_THREADS + [SLOW_PATH] * SLOW_THREADS
        self._threads = [threading.Thread(target=self._run, args=(p,)) for p in paths]

    def _run(self, path: str) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", 8000, timeout=30)
        deadline = time.monotonic() + MAX_SECONDS
        while not self._stop.is_set() and time.monotonic() < deadline:
            failure = None
            try:
                connection.request("GET", path)
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    failure = f"HTTP {response.status}"
                if response.will_close:
                    connection.close()  # the next request opens a new connection
            except (OSError, http.client.HTTPException) as error:
                failure = repr(error)
                connection.close()
            with self._lock:
                self.sent += 1
                if failure:
                    self.failures.append(failure)
        connection.close()

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    """The sample rock (default worker: gevent) deployed with the charm; removed after."""
    deployed = Deployment(tmp_path_factory.mktemp("zero-downtime") / "default")
    deployed.deploy()
    assert rock_runner.wait_for_http_ok("/")
    yield deployed
    deployed.remove()


def _under_load(deployment: Deployment, config: dict[str, Any]) -> Load:
    with Load() as load:
        time.sleep(0.3)  # requests in flight before the change
        deployment.config(config)
        time.sleep(AFTER_CHANGE)
    return load


def _worker_class_in_use(deployment: Deployment, expected: str) -> bool:
    def using() -> bool:
        found = re.findall(r"Using worker: (\S+)", deployment.container.log_path.read_text())
        return bool(found) and found[-1] == expected

    return rock_runner.wait_until(using, timeout=30)


def _change(kind: str, config: dict[str, Any], worker_class: str, *marks: Any) -> Any:
    return pytest.param(kind, config, worker_class, marks=marks, id=kind)


CHANGES = [
    _change("worker-type sync", {"worker-type": "sync"}, "sync"),
    _change("worker-type gevent", {"worker-type": "gevent"}, "gevent"),
    _change("worker-type gthread", {"worker-type": "gthread"}, "gthread"),
    _change("worker-type unset", {"worker-type": None}, "gevent"),
    _change("webserver-workers", {"webserver-workers": 3}, "gevent"),
    _change("webserver-timeout", {"webserver-timeout": 42}, "gevent"),
    _change("flask-env", {"flask-env": "staging"}, "gevent"),
]


@pytest.mark.parametrize(("kind", "config", "worker_class"), CHANGES)
def test_config_change_under_load_drops_no_request(
    deployment: Deployment, kind: str, config: dict[str, Any], worker_class: str
):
    starts = deployment_state.service_starts(deployment)
    master = rock_runner.gunicorn_master_pid()

    load = _under_load(deployment, config)

    print(f"{kind}: {load.sent} requests, {len(load.failures)} failed")
    assert load.sent > 0 and load.failures == [], load.failures[:5]
    assert _worker_class_in_use(deployment, worker_class)
    assert rock_runner.gunicorn_master_pid() == master  # reloaded, never restarted
    assert deployment_state.service_starts(deployment) == starts


def test_flask_secret_key_change_reaches_the_app_without_a_request_dropped(
    deployment: Deployment,
):
    master = rock_runner.gunicorn_master_pid()

    load = _under_load(deployment, {"flask-secret-key": "a-new-key-from-config"})

    assert load.sent > 0 and load.failures == [], load.failures[:5]
    expected = hashlib.sha256(b"a-new-key-from-config").hexdigest()[:16]

    def served() -> bool:
        return expected in rock_runner.get("/secret-key-id")[1]

    assert rock_runner.wait_until(served, timeout=30), rock_runner.get("/secret-key-id")
    assert rock_runner.gunicorn_master_pid() == master


def test_worker_type_equal_to_the_rock_default_touches_nothing(deployment: Deployment):
    deployment.config({"worker-type": None})
    log_size = len(deployment.container.log_path.read_text())
    master = rock_runner.gunicorn_master_pid()

    deployment.config({"worker-type": "gevent"})  # the sample rock's own default

    new_log = deployment.container.log_path.read_text()[log_size:]
    assert "Handling signal: hup" not in new_log and 'Service "flask" starting' not in new_log
    assert rock_runner.gunicorn_master_pid() == master
