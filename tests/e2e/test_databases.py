"""Databases end to end: the sample deployed with the charm, related to real servers.

`juju-local integrate postgresql` (mysql, redis) runs Debian's PostgreSQL (MariaDB, redis-server)
as a non-root user under the deployment's state, acting as the provider charm. One deployment
serves the module; the tests run in order: PostgreSQL (migrate, write, upgrade, rotate, remove),
then MariaDB (the same), then Redis, then `remove` stops every server.
"""

import json
import urllib.request
from pathlib import Path

import pytest

from juju_local import databases, processes
from juju_local.deployment import Deployment
from tests.e2e import deployment_state, rock_runner

READY = 60.0
pytestmark = pytest.mark.skipif(
    not Path("/usr/lib/postgresql").is_dir(),
    reason="Debian's postgresql, mariadb-server and redis-server are needed (scripts/bootstrap)",
)


def _items() -> dict:
    assert rock_runner.wait_for_http_ok("/items", READY)
    status, body = rock_runner.get("/items")
    assert status == 200, body
    return json.loads(body)


def _add_item(name: str) -> None:
    request = urllib.request.Request(
        rock_runner.APP_URL + "/items",
        data=json.dumps({"name": name}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201


def _backend() -> str:
    """Which database /items uses, whether or not its table exists there."""
    assert rock_runner.wait_until(lambda: rock_runner.get_or_none("/items") in (200, 503), READY)
    return json.loads(rock_runner.get("/items")[1])["backend"]


def _names(items: dict) -> set[str]:
    return {item["name"] for item in items["items"]}


def _password(deployment: Deployment, endpoint: str) -> str:
    relation = deployment.model.relations(endpoint)[0]
    secret_id = relation.app_data[relation.remote_app]["secret-user"]
    return deployment.model.secret(secret_id).latest.content["password"]


def _assert_secret_kept(deployment: Deployment, password: str) -> None:
    logs = "\n".join(str(line) for line in deployment.model.log_lines())
    assert password not in logs
    assert password not in deployment_state.unit_status(deployment)[1]
    for relation in deployment.model.relations():
        assert password not in json.dumps(relation.app_data) + json.dumps(relation.unit_data)


@pytest.fixture(scope="class", params=["postgresql", "mysql"])
def endpoint(request) -> str:
    """Class-scoped, so that each database's scenarios run in order, one database at a time."""
    return request.param


class TestDatabase:
    """Scenarios 1-4 for PostgreSQL, then the same for MariaDB (scenario 5)."""

    def test_integrate_migrates_into_the_database_and_items_work(self, deployment, endpoint):
        assert _backend() == "sqlite"  # nothing related yet (or any more)

        databases.integrate(deployment, endpoint)

        assert deployment_state.unit_status(deployment) == ("active", "")
        env = deployment_state.service_env(deployment)
        prefix = endpoint.upper()
        assert env[f"{prefix}_DB_NAME"] == "flask-k8s"
        items = _items()
        # The table exists in the server only if migrate.py ran against it.
        assert items["backend"] == endpoint
        assert {"apple", "banana", "cherry"} <= _names(items)
        _assert_secret_kept(deployment, env[f"{prefix}_DB_PASSWORD"])

    def test_written_data_survives_upgrade(self, deployment, endpoint):
        _add_item(f"kept-in-{endpoint}")

        deployment.upgrade()  # a fresh pod

        items = _items()
        assert items["backend"] == endpoint
        assert f"kept-in-{endpoint}" in _names(items)

    def test_password_rotation_restarts_once_and_keeps_working(self, deployment, endpoint):
        before, starts = (
            _password(deployment, endpoint),
            deployment_state.service_starts(deployment),
        )

        databases.rotate_password(deployment, endpoint)

        after = _password(deployment, endpoint)
        assert after != before
        assert deployment_state.service_env(deployment)[f"{endpoint.upper()}_DB_PASSWORD"] == after
        assert deployment_state.service_starts(deployment) == starts + 1
        _add_item(f"after-rotation-{endpoint}")
        assert f"after-rotation-{endpoint}" in _names(_items())
        _assert_secret_kept(deployment, after)

    def test_remove_relation_drops_variables_with_one_restart(self, deployment, endpoint):
        starts = deployment_state.service_starts(deployment)

        databases.remove_relation(deployment, endpoint)

        assert not [
            key
            for key in deployment_state.service_env(deployment)
            if key.startswith(endpoint.upper())
        ]
        assert deployment_state.service_starts(deployment) == starts + 1
        # Back on the SQLite fallback, which lives in the pod's /tmp: after the upgrade above
        # (a fresh pod) it has no table until something migrates it again, hence "backend".
        assert _backend() == "sqlite"
        assert deployment_state.unit_status(deployment) == ("active", "")


def test_redis_counts_visits(deployment):
    assert rock_runner.get("/visits")[0] == 503  # no Redis yet

    databases.integrate(deployment, "redis")

    assert deployment_state.service_env(deployment)["REDIS_DB_CONNECT_STRING"].startswith(
        "redis://127.0.0.1:"
    )
    first = json.loads(rock_runner.get("/visits")[1])["visits"]
    second = json.loads(rock_runner.get("/visits")[1])["visits"]
    assert second == first + 1


def test_remove_stops_every_server(deployment):
    servers = [kind(deployment.state_dir) for kind in databases.SERVERS.values()]
    pids = [server.pid() for server in servers]
    assert all(pids)

    deployment.remove()

    assert not any(processes.alive(pid) for pid in pids if pid)
    assert not deployment.state_dir.exists()
