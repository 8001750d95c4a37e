"""RabbitMQ end to end: the sample deployed with the charm, related to a real broker.

`juju-local integrate rabbitmq` runs Debian's rabbitmq-server as a non-root user under the
deployment's state, acting as rabbitmq-k8s. The tests run in order on one deployment:
integrate (the app publishes and gets a message), remove-relation, then `remove`.
"""

import json
import shutil
from pathlib import Path

import pytest

from juju_local import processes, rabbitmq
from tests.e2e import deployment_state, rock_runner

READY = 60.0
pytestmark = pytest.mark.skipif(
    not Path("/usr/lib/rabbitmq/bin/rabbitmq-server").exists() or not shutil.which("epmd"),
    reason="Debian's rabbitmq-server is needed (scripts/bootstrap)",
)


def _round_trip() -> tuple[int, dict]:
    assert rock_runner.wait_for_http_ok("/", READY)
    status, body = rock_runner.get("/rabbitmq")
    return status, json.loads(body)


def test_integrate_gives_the_app_a_broker_it_can_use(deployment):
    assert _round_trip()[0] == 503  # nothing related yet

    rabbitmq.integrate(deployment)

    assert deployment_state.unit_status(deployment) == ("active", "")
    env = deployment_state.service_env(deployment)
    broker = rabbitmq.RabbitServer(deployment.state_dir)
    assert env["RABBITMQ_CONNECT_STRING"].startswith("amqp://flask-k8s:")
    assert env["RABBITMQ_CONNECT_STRING"].endswith(f"@{broker.address}:5672/%2F")
    assert (env["RABBITMQ_USERNAME"], env["RABBITMQ_VHOST"]) == ("flask-k8s", "/")
    status, answer = _round_trip()
    assert status == 200, answer
    assert answer["received"] == answer["sent"]
    assert answer["vhost"] == "/"


def test_password_is_in_no_log_status_or_databag_of_ours(deployment):
    password = deployment_state.service_env(deployment)["RABBITMQ_PASSWORD"]

    logs = "\n".join(str(line) for line in deployment.model.log_lines())
    ours = deployment.model.state().app
    assert password not in logs
    assert password not in deployment_state.unit_status(deployment)[1]
    for relation in deployment.model.relations():
        assert password not in json.dumps(relation.app_data.get(ours, {}))
        assert password not in json.dumps(relation.unit_data.get("flask-k8s/0", {}))


def test_guest_user_is_gone_and_the_broker_runs_as_nobody(deployment):
    broker = rabbitmq.RabbitServer(deployment.state_dir)

    assert "guest" not in broker.users()
    pid = broker.pid()
    assert pid is not None
    assert Path(f"/proc/{pid}").stat().st_uid != 0


def test_remove_relation_drops_variables_with_one_restart_and_the_user(deployment):
    starts = deployment_state.service_starts(deployment)

    rabbitmq.remove_relation(deployment)

    assert not [
        key for key in deployment_state.service_env(deployment) if key.startswith("RABBITMQ_")
    ]
    assert deployment_state.service_starts(deployment) == starts + 1
    assert _round_trip()[0] == 503
    assert "flask-k8s" not in rabbitmq.RabbitServer(deployment.state_dir).users()
    assert deployment_state.unit_status(deployment) == ("active", "")


def test_remove_stops_the_broker_and_its_port_mapper(deployment):
    broker = rabbitmq.RabbitServer(deployment.state_dir)
    pid, epmd_port = broker.pid(), int(broker.settings["epmd"])
    assert pid

    deployment.remove()

    assert not processes.alive(pid)
    assert not processes.wait_closed([epmd_port], timeout=10)
    assert not deployment.state_dir.exists()
