"""The app's health, end to end: a crash on import and a frozen Gunicorn, with the charm deployed.

Each test deploys its own copy of the sample rock with the charm (`juju_local`), over real
Pebble and Gunicorn.
"""

import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from juju_local.deployment import SAMPLE, Deployment
from tests.e2e import deployment_state, rock_runner


def _deploy(request: pytest.FixtureRequest, state_dir: Path, rock_dir: Path) -> Deployment:
    deployed = Deployment(state_dir)
    request.node.deployment = deployed  # the report hook shows its state on failure
    request.addfinalizer(deployed.remove)
    deployed.deploy(rock_dir)
    return deployed


def test_app_crashing_on_import_is_a_steady_blocked_naming_the_error(request, tmp_path):
    rock_dir = tmp_path / "crashing"
    shutil.copytree(SAMPLE, rock_dir)
    with (rock_dir / "app.py").open("a", encoding="utf-8") as app:
        app.write('\nraise RuntimeError("boom")\n')
    # The sample's migrate.py imports app.py: it would fail first, and that is another status.
    (rock_dir / "migrate.py").write_text("print('nothing to migrate')\n")

    deployment = _deploy(request, tmp_path / "model", rock_dir)

    expected = (
        "blocked",
        "the app exits at start: RuntimeError: boom (see `pebble logs flask`)",
    )
    assert deployment_state.unit_status(deployment) == expected
    # Later hooks meet the service in backoff or briefly starting again: the same status.
    seen = set()
    for _ in range(6):
        time.sleep(1.5)
        deployment.fire("update-status")
        seen.add(deployment_state.unit_status(deployment))
    assert seen == {expected}


def _gunicorn_workers(master: int) -> list[int]:
    return [
        pid for pid, (parent, _) in rock_runner.gunicorn_processes().items() if parent == master
    ]


def test_frozen_gunicorn_master_fails_its_check_and_pebble_restarts_it(request, tmp_path):
    deployment = _deploy(request, tmp_path / "model", SAMPLE)
    assert deployment_state.unit_status(deployment) == ("active", "")
    master = rock_runner.gunicorn_master_pid()

    # Frozen: the master stopped, its workers gone. The listening socket stays open, so a TCP
    # connection still succeeds, but no request is ever answered.
    os.kill(master, signal.SIGSTOP)
    for worker in _gunicorn_workers(master):
        os.kill(worker, signal.SIGKILL)

    def not_active() -> bool:
        deployment.fire("update-status")
        return deployment_state.unit_status(deployment)[0] != "active"

    assert rock_runner.wait_until(not_active, timeout=60, interval=3.0)
    status, message = deployment_state.unit_status(deployment)
    assert "does not answer HTTP on port 8000" in message, (status, message)

    def restarted_and_serving() -> bool:
        masters = rock_runner.gunicorn_master_pids()
        return (
            masters != [master] and master not in masters and (rock_runner.get_or_none("/") == 200)
        )

    # Pebble restarts the app after 3 failed checks, 10 s apart (SIGTERM waits on a stopped
    # process, so Pebble's kill-delay passes before SIGKILL).
    assert rock_runner.wait_until(restarted_and_serving, timeout=120, interval=1.0)

    def active() -> bool:
        deployment.fire("update-status")
        return deployment_state.unit_status(deployment) == ("active", "")

    assert rock_runner.wait_until(active, timeout=30, interval=2.0)
