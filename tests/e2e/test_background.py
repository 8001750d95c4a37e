"""Background services end to end: the sample's Celery worker and beat, run by the charm.

The sample deployed with `juju-local` (real Pebble running the rock's services), then related to
a real Redis (`juju-local integrate redis`, Debian's redis-server). One deployment serves the
module; the tests run in order: without Redis, with it, then a config change. A worker that
cannot start: test_background_failing.py.
"""

import json
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from juju_local import databases
from juju_local.deployment import Deployment
from tests.e2e import deployment_state, rock_runner

WORKER, SCHEDULER = "celery-worker", "celery-scheduler"
READY = 60.0
pytestmark = pytest.mark.skipif(
    not Path("/usr/bin/redis-server").is_file(),
    reason="Debian's redis-server is needed (scripts/bootstrap)",
)


def _services(deployment: Deployment) -> dict[str, tuple[str, str]]:
    """`pebble services`: name -> (startup, current)."""
    output = deployment.container.pebble("services").stdout
    rows = (line.split() for line in output.splitlines()[1:])
    return {row[0]: (row[1], row[2]) for row in rows if len(row) >= 3}


def _starts(deployment: Deployment, service: str) -> int:
    return deployment.container.log_path.read_text().count(f'Service "{service}" starting')


def _post(path: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        rock_runner.APP_URL + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _json(path: str) -> tuple[int, dict]:
    status, body = rock_runner.get(path)
    return status, json.loads(body)


def _ticks() -> int:
    status, body = _json("/ticks")
    assert status == 200, body
    return body["ticks"]


def test_without_redis_the_app_serves_and_workers_wait_quietly(deployment):
    services = _services(deployment)

    assert rock_runner.get("/")[0] == 200
    assert services[WORKER] == ("enabled", "active")
    assert services[SCHEDULER] == ("enabled", "active")  # the only unit: named by the leader
    assert _post("/tasks", {"text": "x"})[0] == 503
    assert _json("/ticks")[0] == 503
    assert deployment_state.unit_status(deployment) == ("active", "")
    assert _starts(deployment, WORKER) == 1  # idle, not failing and restarting
    worker_env = deployment_state.service_env(deployment, WORKER)
    assert worker_env["FLASK_SECRET_KEY"] and "FLASK_BASE_URL" in worker_env


def test_worker_runs_the_task_the_app_enqueues_on_redis(deployment):
    databases.integrate(deployment, "redis")
    url = deployment_state.service_env(deployment, "flask")["REDIS_DB_CONNECT_STRING"]
    assert deployment_state.service_env(deployment, WORKER)["REDIS_DB_CONNECT_STRING"] == url
    assert deployment_state.service_env(deployment, SCHEDULER)["REDIS_DB_CONNECT_STRING"] == url

    status, body = _post("/tasks", {"text": "hello"})
    assert status == 202, body
    done = {}

    def finished() -> bool:
        done.update(_json(f"/tasks/{body['id']}")[1])
        return done.get("state") == "SUCCESS"

    assert rock_runner.wait_until(finished, READY), done
    assert done["result"]["shouted"] == "HELLO!"
    assert deployment_state.unit_status(deployment) == ("active", "")


def test_beat_enqueues_ticks_that_the_worker_counts(deployment):
    first = _ticks()

    assert rock_runner.wait_until(lambda: _ticks() >= first + 2, 30.0)
    logs = deployment.container.pebble("logs", SCHEDULER, "-n", "50").stdout
    assert re.search(r"Sending due task tick", logs), logs


def test_flask_option_restarts_the_workers_not_the_app(deployment):
    before = {name: _starts(deployment, name) for name in ("flask", WORKER, SCHEDULER)}

    deployment.config({"flask-env": "staging"})

    after = {name: _starts(deployment, name) for name in ("flask", WORKER, SCHEDULER)}
    assert after == {
        "flask": before["flask"],  # a reload: its FLASK_* come through its config file
        WORKER: before[WORKER] + 1,
        SCHEDULER: before[SCHEDULER] + 1,
    }
    assert deployment_state.service_env(deployment, WORKER)["FLASK_ENV"] == "staging"
    assert _services(deployment)[WORKER] == ("enabled", "active")
    first = _ticks()
    assert rock_runner.wait_until(lambda: _ticks() > first, 30.0)  # back at work

    deployment.config({"webserver-timeout": "60"})  # no environment: the workers untouched

    assert _starts(deployment, WORKER) == after[WORKER]
