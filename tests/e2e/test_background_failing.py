"""A background service that cannot start, end to end: the unit says so, the app serves on.

A copy of the sample whose worker names a Celery app that does not exist, deployed with
`juju-local` (real Pebble). Its own module: a deployment binds the app's fixed ports.
"""

import shutil
import time
from pathlib import Path

import pytest
import yaml

from juju_local.deployment import Deployment
from tests.e2e import deployment_state, rock_runner
from tests.e2e.test_background import SCHEDULER, WORKER, _services

LOOKS = 20  # update-status hooks, a second apart: Pebble shows it down (backoff) at most of them


@pytest.fixture(scope="module")
def broken_worker_rock(tmp_path_factory) -> Path:
    """The sample, but its worker names a Celery app that does not exist: it exits at once."""
    project = tmp_path_factory.mktemp("broken") / "sample"
    shutil.copytree(rock_runner.SAMPLE, project)
    document = yaml.safe_load((project / "rockcraft.yaml").read_text())
    worker = document["services"][WORKER]
    worker["command"] = worker["command"].replace("app:celery_app", "app:no_such_app")
    (project / "rockcraft.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return project


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, broken_worker_rock):
    """The broken copy deployed with the charm; removed after the module."""
    deployed = Deployment(tmp_path_factory.mktemp("local-juju") / "default")
    deployed.deploy(broken_worker_rock)
    yield deployed
    deployed.remove()


def test_failing_worker_blocks_naming_it_while_the_app_serves(deployment):
    # It dies within Pebble's okay-delay (Blocked at once), or later: then the unit is Active or
    # Maintenance (Pebble restarting it) until a second look finds it down again.
    status, message = deployment_state.unit_status(deployment)
    for _ in range(LOOKS):
        if status == "blocked":
            break
        time.sleep(1)
        deployment.fire("update-status")
        status, message = deployment_state.unit_status(deployment)

    assert status == "blocked", message
    assert message == (
        f"background service {WORKER} keeps failing: Error: Unable to load celery application. "
        f"The module app:no_such_app was not found. (see `pebble logs {WORKER}`)"
    )
    assert rock_runner.get("/")[0] == 200
    assert _services(deployment)[SCHEDULER] == ("enabled", "active")
