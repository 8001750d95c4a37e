"""More than one unit, end to end: each unit a pod of its own, leadership, peers, removal.

One deployment serves the module and the tests run in order: two units, Redis (the sample's
Celery worker on both, its beat scheduler on one), then the leader goes and the scheduler
moves, then a unit is added, then everything is removed. Units after the first live in network
namespaces, which needs root.
"""

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from juju_local import processes
from juju_local.deployment import Deployment, unit_number
from juju_local.network import PodNetwork, collect_leftovers
from tests.e2e import rock_runner

REPO = Path(__file__).resolve().parents[2]
APP = "flask-k8s"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="pod network namespaces need root")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    """The sample rock deployed with two units; removed after the module (if a test failed)."""
    deployed = Deployment(tmp_path_factory.mktemp("local-juju") / "default")
    done = _cli(deployed, "deploy", "--num-units", "2")
    assert done.returncode == 0, done.stderr
    yield deployed
    if deployed.exists:
        deployed.remove()


def _cli(deployment: Deployment, *args: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "juju_local", "--state-dir", str(deployment.state_dir), *args]
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=900)


def _get(address: str, path: str) -> tuple[int, str]:
    with urllib.request.urlopen(f"http://{address}:8000{path}", timeout=10) as response:
        return response.status, response.read().decode()


def _units(deployment: Deployment) -> dict[str, tuple[str, str, bool]]:
    """Each unit's (workload status, address, leader) as `juju status` shows them."""
    shown = deployment.model.status().units
    return {name: (unit.status.status, unit.address, unit.leader) for name, unit in shown.items()}


def _pod_processes(deployment: Deployment, unit: str) -> list[int]:
    return processes.tree(int(deployment.pod(unit_number(unit)).pid_path.read_text()))


def test_two_units_are_active_and_each_serves_on_its_own_address(deployment):
    units = _units(deployment)

    assert sorted(units) == [f"{APP}/0", f"{APP}/1"]
    assert units[f"{APP}/0"] == ("active", "127.0.0.1", True)
    status, address, leader = units[f"{APP}/1"]
    assert status == "active" and not leader
    assert address == deployment.network.address(1) and address != "127.0.0.1"
    for address in ("127.0.0.1", address):
        assert _get(address, "/")[0] == 200


def test_both_units_use_the_secret_key_the_leader_shared(deployment):
    """Sessions signed on one unit are valid on the other: one key, from the peer relation."""
    fingerprints = {
        name: json.loads(_get(address, "/secret-key-id")[1])["sha256"]
        for name, (_, address, _) in _units(deployment).items()
    }
    assert None not in fingerprints.values()
    assert len(set(fingerprints.values())) == 1, fingerprints


def test_each_unit_has_its_own_charm_state_and_peer_databag(deployment):
    for unit in (f"{APP}/0", f"{APP}/1"):
        assert (deployment.charm_dir(unit) / ".unit-state.db").is_file()
    (peer,) = [relation for relation in deployment.model.relations() if relation.peer]
    assert set(peer.unit_data) >= {f"{APP}/0", f"{APP}/1"}
    assert deployment.pod(0).pebble_pid != deployment.pod(1).pebble_pid


def test_status_shows_every_unit_with_its_address(deployment):
    done = _cli(deployment, "status")

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert f"Unit {APP}/0* active 127.0.0.1 8000/tcp" in lines
    assert f"Unit {APP}/1 active {deployment.network.address(1)} 8000/tcp" in lines


def test_a_related_redis_is_reached_from_every_pod(deployment):
    """Servers listen on the pod network too and publish that address: every unit counts."""
    done = _cli(deployment, "integrate", "redis")

    assert done.returncode == 0, done.stderr
    addresses = ["127.0.0.1", deployment.network.address(1)]
    counts = [json.loads(_get(address, "/visits")[1])["visits"] for address in addresses]
    assert counts[1] == counts[0] + 1  # one counter, in the one Redis
    assert f"redis:      {deployment.network.host_address}:" in done.stdout


def _services(deployment: Deployment, unit: str) -> dict[str, tuple[str, str]]:
    """The unit's `pebble services`: name -> (startup, current)."""
    output = deployment.pod(unit_number(unit)).pebble("services").stdout
    rows = (line.split() for line in output.splitlines()[1:])
    return {row[0]: (row[1], row[2]) for row in rows if len(row) >= 3}


def _scheduler_unit(deployment: Deployment) -> str | None:
    (peer,) = [relation for relation in deployment.model.relations() if relation.peer]
    return peer.app_data.get(APP, {}).get("scheduler-unit")


def _wait_for_services(
    deployment: Deployment, expected: dict[str, dict[str, str]], timeout: float = 60.0
) -> dict[str, dict[str, str]]:
    """Poll each unit's Pebble until its background services are as expected; what was seen."""
    deadline = time.monotonic() + timeout
    while True:
        seen = {
            unit: {name: _services(deployment, unit).get(name, ("", ""))[1] for name in wanted}
            for unit, wanted in expected.items()
        }
        if seen == expected or time.monotonic() > deadline:
            return seen
        time.sleep(1)


def _ticks(address: str) -> int:
    return json.loads(_get(address, "/ticks")[1])["ticks"]


def test_the_scheduler_runs_on_exactly_one_unit_and_the_worker_on_every_unit(deployment):
    """With Redis related, both pods run the Celery worker; only the named unit runs beat."""
    expected = {
        f"{APP}/0": {"celery-worker": "active", "celery-scheduler": "active"},
        f"{APP}/1": {"celery-worker": "active", "celery-scheduler": "inactive"},
    }
    assert _wait_for_services(deployment, expected) == expected
    assert _services(deployment, f"{APP}/1")["celery-scheduler"][0] == "disabled"
    assert _scheduler_unit(deployment) == f"{APP}/0"

    # One beat in the whole application: the shared counter grows by one tick per period,
    # not two (each unit's beat would add its own).
    first, start = _ticks("127.0.0.1"), time.monotonic()
    time.sleep(10)
    grown, elapsed = _ticks(deployment.network.address(1)) - first, time.monotonic() - start
    assert 1 <= grown <= elapsed / 2.0 + 1, (grown, elapsed)  # the sample ticks every 2 s


def test_removing_the_leader_elects_another_and_ends_its_pod(deployment):
    old_pod = _pod_processes(deployment, f"{APP}/0")

    done = _cli(deployment, "remove-unit", f"{APP}/0")

    assert done.returncode == 0, done.stderr
    assert _units(deployment) == {f"{APP}/1": ("active", deployment.network.address(1), True)}
    assert not any(processes.alive(pid) for pid in old_pod)
    assert processes.wait_closed([8000, 9102], timeout=10) == []  # unit 0's host ports
    assert _get(deployment.network.address(1), "/")[0] == 200
    log = "\n".join(deployment.model.log_lines())
    assert "leader_elected" in log and "secret_storage_relation_departed" in log


def test_the_scheduler_moves_to_a_remaining_unit_when_its_unit_goes(deployment):
    expected = {f"{APP}/1": {"celery-worker": "active", "celery-scheduler": "active"}}

    assert _wait_for_services(deployment, expected) == expected
    assert _scheduler_unit(deployment) == f"{APP}/1"
    first = _ticks(deployment.network.address(1))
    time.sleep(5)
    assert _ticks(deployment.network.address(1)) > first


def test_an_added_unit_gets_a_new_number_its_own_pod_and_the_shared_key(deployment):
    leader_key = _get(deployment.network.address(1), "/secret-key-id")[1]

    done = _cli(deployment, "add-unit")

    assert done.returncode == 0, done.stderr
    units = _units(deployment)
    assert units[f"{APP}/2"] == ("active", deployment.network.address(2), False)
    assert _get(deployment.network.address(2), "/secret-key-id")[1] == leader_key
    # A unit added later runs the worker, never a second beat: the scheduler stays put.
    expected = {f"{APP}/2": {"celery-worker": "active", "celery-scheduler": "inactive"}}
    assert _wait_for_services(deployment, expected) == expected
    assert _scheduler_unit(deployment) == f"{APP}/1"


def test_remove_leaves_no_pod_namespace_or_process(deployment):
    pods = [pid for unit in (f"{APP}/1", f"{APP}/2") for pid in _pod_processes(deployment, unit)]
    network = deployment.network
    assert network.leftovers()  # there was something to remove

    done = _cli(deployment, "remove")

    assert done.returncode == 0 and done.stdout.strip() == "removed", done.stderr
    assert not any(processes.alive(pid) for pid in pods)
    assert network.leftovers() == []
    assert not deployment.state_dir.exists()
    assert rock_runner.get_or_none("/") is None


def test_a_killed_runs_pod_network_is_collected_by_the_next_deploy(tmp_path):
    """A run killed before `remove` leaves namespaces behind; `collect_leftovers` finds them."""
    network = PodNetwork(tmp_path / "gone")  # no deployment.json there: nothing deployed
    network.create(1)
    assert network.leftovers()

    assert str(network.state_dir) in collect_leftovers()
    assert network.leftovers() == []
