"""Migrations end to end: real scripts run by a real Pebble exec, through the local deployment.

Each test deploys its own copy of the sample rock (the app's ports are fixed, so one at a time)
and removes it afterwards. The sample's `/items` route reads the table `migrate.py` creates.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import ops
import pytest
import yaml

import pebble_io
from flask_rock.expand import expand_project
from juju_local.deployment import SAMPLE, Deployment
from tests.e2e import deployment_state, rock_runner

VENDORED_CONFIG = "flask-framework-config"
FIX = "fix it and run `juju run flask-k8s/leader run-migrations`"
FAILING_MIGRATE = """\
import sys

print("connecting to the database")
print("cannot reach the database: connection refused", file=sys.stderr)
sys.exit(3)
"""
HANGING_MIGRATE = """\
echo "taking the schema lock"
echo "waiting for the schema lock" >&2
sleep 600
"""


def _rock(tmp_path: Path, **scripts: str) -> Path:
    """A copy of the sample rock whose /flask/app holds `scripts` (name -> content).

    The pack-ready rockcraft.yaml is generated again, as a rebuild would, so that the new files
    are in the image.
    """
    rock = tmp_path / "rock"
    shutil.copytree(SAMPLE, rock)
    for name, content in scripts.items():
        (rock / name.replace("_", ".")).write_text(content)
    document = expand_project(rock, "rockcraft.short.yaml", VENDORED_CONFIG)
    (rock / "rockcraft.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return rock


@pytest.fixture
def deploy(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator:
    """Deploy a rock (config optional) in this test's own deployment; removed afterwards."""
    made: list[Deployment] = []

    def _deploy(rock_dir: Path = SAMPLE, config: dict | None = None) -> Deployment:
        deployment = Deployment(tmp_path / "local-juju")
        made.append(deployment)
        request.node.deployment = deployment  # the report hook shows its state on failure
        deployment.deploy(rock_dir=rock_dir, config=config)
        return deployment

    yield _deploy
    for deployment in made:
        deployment.remove()


def _migration_runs(deployment: Deployment) -> int:
    return sum("running ['" in line and "migrate" in line for line in deployment.model.log_lines())


def _app_file(deployment: Deployment, name: str) -> Path:
    """A file of the rock's app as the workload container sees it, at /flask/app/<name>."""
    return deployment.container.state_dir / "image" / "root" / "flask" / "app" / name


class _Poller:
    """GET a path in a loop on another thread, recording every answer (None: no answer)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.seen: list[int | None] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.seen.append(rock_runner.get_or_none(self.path))
            time.sleep(0.05)

    def __enter__(self) -> _Poller:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def test_deploy_runs_migration_before_the_app_serves(deploy):
    with _Poller("/items") as poller:
        deployment = deploy()
        assert rock_runner.wait_for_http_ok("/items")

    # The app never answered before its table existed: no 503 from /items, ever.
    assert 503 not in poller.seen and 200 in poller.seen
    status, body = rock_runner.get("/items")
    assert status == 200 and '"apple"' in body and '"cherry"' in body
    assert deployment_state.unit_status(deployment) == ("active", "")
    assert _migration_runs(deployment) == 1
    log = "\n".join(deployment.model.log_lines())
    assert log.index("migration migrate.py") < log.rindex("replanning flask-app")
    # Without the table the route does answer 503: the app depends on the migration.
    dropped = deployment.container.pebble(
        "exec", "--user", "_daemon_", "-w", "/tmp", "--", "rm", "/tmp/flask-sample.sqlite3"
    )
    assert dropped.returncode == 0, dropped.stderr
    assert rock_runner.get("/items")[0] == 503
    result = deployment.run_action("run-migrations")
    assert result.status == "completed", result.describe()
    assert rock_runner.get("/items")[0] == 200


def test_failed_migration_blocks_until_fixed_and_rerun(deploy, tmp_path):
    deployment = deploy(_rock(tmp_path, migrate_py=FAILING_MIGRATE))

    assert deployment_state.unit_status(deployment) == (
        "blocked",
        "migration migrate.py failed (exit 3): cannot reach the database: connection refused; "
        + FIX,
    )
    assert rock_runner.get_or_none("/") is None  # the new code is not started
    log = "\n".join(deployment.model.log_lines())
    assert "connecting to the database" in log  # the full output is in the charm log
    deployment.fire("update-status")
    assert _migration_runs(deployment) == 1  # no retry by itself
    assert deployment_state.unit_status(deployment)[0] == "blocked"

    _app_file(deployment, "migrate.py").write_text((SAMPLE / "migrate.py").read_text())
    result = deployment.run_action("run-migrations")

    assert result.status == "completed", result.describe()
    assert result.results["exit-code"] in (0, "0")
    assert "migrated" in result.results["output"]
    assert deployment_state.unit_status(deployment) == ("active", "")
    assert rock_runner.wait_for_http_ok("/items")


def test_hanging_migration_is_killed_at_the_timeout(deploy, tmp_path):
    rock = _rock(tmp_path, migrate_sh=HANGING_MIGRATE)
    started = time.monotonic()

    deployment = deploy(rock, config={"migration-timeout": 3})

    assert time.monotonic() - started < 60
    assert deployment_state.unit_status(deployment) == (
        "blocked",
        f"migration migrate.sh failed (killed after 3s): waiting for the schema lock; {FIX}",
    )
    assert rock_runner.get_or_none("/") is None
    assert _wait_gone("sleep 600", timeout=10), "the hanging script was left running"


def test_script_dies_with_its_supervisor_under_a_real_pebble(deploy):
    # When the charm container restarts mid-run, Pebble ends the exec'd supervisor only (here
    # at Pebble's own exec timeout, shorter than the supervisor's); the script went on running
    # in its own session, and a retried hook started it a second time.
    deployment = deploy()
    client = ops.pebble.Client(socket_path=str(deployment.container.socket))
    script = "sleep 7391 & wait"  # a distinctive command line to look for
    argv = pebble_io.supervised("/bin/python3", ["/bin/bash", "-c", script], 600)

    process = client.exec(argv, user="_daemon_", working_dir="/flask/app", timeout=3)

    assert _wait_running("sleep 7391", timeout=10), "the script did not start"
    with pytest.raises((ops.pebble.ChangeError, ops.pebble.ExecError, ops.pebble.TimeoutError)):
        process.wait()
    assert _wait_gone("sleep 7391", timeout=10), "the script outlived its supervisor"


def _wait_running(command: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if subprocess.run(["pgrep", "-f", command], capture_output=True).returncode == 0:
            return True
        time.sleep(0.2)
    return False


def _wait_gone(command: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = subprocess.run(["pgrep", "-f", command], capture_output=True, text=True)
        if found.returncode != 0:
            return True
        time.sleep(0.2)
    return False


def test_run_migrations_twice_is_idempotent(deploy):
    deployment = deploy()
    assert rock_runner.wait_for_http_ok("/items")
    _, before = rock_runner.get("/items")

    results = [deployment.run_action("run-migrations") for _ in range(2)]

    assert [r.status for r in results] == ["completed", "completed"], results[-1].describe()
    assert all(r.results["exit-code"] in (0, "0") for r in results)
    assert deployment_state.unit_status(deployment) == ("active", "")
    status, after = rock_runner.get("/items")
    assert status == 200 and after == before
