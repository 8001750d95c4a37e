"""The interleavings of issue 15, each through the real charm in a 3-unit application.

Each test plays one scenario hook by hook (see `Cluster`); a hook's writes reach the others
only when it ends, and a failed hook (or one whose commit Juju rejects) loses them all while
what it did to its workload stays. In the scenarios, the old protocol ran a migration twice,
ran an older code's migration after a newer one, or left every unit waiting forever.
"""

from __future__ import annotations

import json
import pathlib
import time
from typing import Any

import pytest
from ops import testing

from tests.unit.charm.test_migrations_rolling import (
    LEADER,
    UNITS,
    UPGRADE,
    Cluster,
    deployed_cluster,
)


@pytest.fixture
def cluster(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> Cluster:
    """Three units deployed on image v1 and settled, recording every migration run."""
    return deployed_cluster(tmp_path, monkeypatch)


FIX = "fix it and run `juju run flask-k8s/leader run-migrations`"


def lease(cluster: Cluster) -> dict[str, Any]:
    raw = cluster.app_data.get("migration-lease")
    return json.loads(raw) if raw else {}


def upgrade_until_granted(cluster: Cluster, n: int, code: str = "v2") -> None:
    """Unit n gets a pod on `code` and asks; the leader grants it the lease; n has not run."""
    cluster.new_pod(n, code)
    cluster.run(n, "upgrade_charm")
    cluster.run(LEADER, "relation_changed", remote=n)
    cluster.pending.clear()
    assert lease(cluster).get("unit") == f"flask-k8s/{n}"


def all_serve(cluster: Cluster, code: str) -> bool:
    return all(cluster.running(n) and cluster.units[n].code == code for n in UNITS)


@pytest.mark.parametrize("hours", [0, 1, 24 * 30])
def test_item1_holder_slow_to_commit_keeps_its_lease_however_long(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch, hours: int
):
    cluster.runs.clear()
    upgrade_until_granted(cluster, 2)
    cluster.new_pod(1, "v2")
    cluster.run(1, "upgrade_charm")  # unit 1 wants v2 as well
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + hours * 3600)

    for _ in range(3):  # the holder's hook runs long; the leader keeps waking up meanwhile
        cluster.run(LEADER, "update_status")
        cluster.run(LEADER, "relation_changed", remote=1)

    assert lease(cluster)["unit"] == "flask-k8s/2"
    cluster.run(2, "relation_changed", remote=LEADER)
    cluster.settle()
    assert cluster.runs == [(2, "v2")]
    assert cluster.running(1) and cluster.running(2)


@pytest.mark.parametrize("holder_behind", [30, 119, 3600])
def test_item2_holder_clock_behind_the_leaders_changes_nothing(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch, holder_behind: int
):
    real = time.time
    clock = {"offset": 0.0}
    monkeypatch.setattr(time, "time", lambda: real() + clock["offset"])
    cluster.runs.clear()
    upgrade_until_granted(cluster, 2)
    cluster.new_pod(1, "v2")

    clock["offset"] = -holder_behind  # the holder's view of time
    cluster.run(2, "relation_changed", remote=LEADER)
    clock["offset"] = 0  # the leader's, and unit 1's
    cluster.run(1, "upgrade_charm")
    cluster.settle()

    assert cluster.runs == [(2, "v2")]
    assert all(cluster.running(n) for n in (1, 2))


def test_item3_success_lost_with_its_hook_is_not_run_again(cluster: Cluster):
    cluster.runs.clear()
    upgrade_until_granted(cluster, 2)

    cluster.run(2, "relation_changed", remote=LEADER, fail=True)  # ran, app up, hook failed
    assert cluster.running(2) and "migration-result" not in cluster.unit_data[2]
    cluster.script_exits(2, 1)  # the script is not idempotent: a second run would fail
    cluster.run(2, "relation_changed", remote=LEADER)  # Juju retries the hook
    cluster.settle()
    for n in (1, 0):
        cluster.deploy_pod(n, "v2", UPGRADE)

    assert cluster.runs == [(2, "v2")]
    assert all_serve(cluster, "v2")
    assert all(cluster.units[n].status == testing.ActiveStatus("") for n in UNITS)


def test_item4_action_on_a_new_leader_arbitrates_first_and_never_loses_a_success(
    cluster: Cluster,
):
    cluster.runs.clear()
    upgrade_until_granted(cluster, 2)
    cluster.run(2, "relation_changed", remote=LEADER)  # unit 2 migrates v2, commits "ok"
    cluster.pending.clear()  # the old leader does not fold it in before leadership moves
    cluster.leader = 2

    _, refused = cluster.action(2)  # before any coordinating hook on the new leader

    assert refused is not None and "leadership just changed" in refused
    assert cluster.runs == [(2, "v2")]
    cluster.run(0, "update_status")  # the old leader acknowledges
    cluster.settle()
    cluster.script_exits(2, 1)
    results, failure = cluster.action(2)  # the re-run fails...
    assert results is not None and results["exit-code"] == 1 and failure
    cluster.settle()
    for n in (1, 0):  # ...but the success of v2 stands: the rollout goes on
        cluster.deploy_pod(n, "v2", UPGRADE)
    assert cluster.runs == [(2, "v2"), (2, "v2")]
    assert all_serve(cluster, "v2")
    assert all(cluster.units[n].status == testing.ActiveStatus("") for n in (0, 1))


def test_item4_failure_blocks_every_waiting_unit_naming_the_action(cluster: Cluster):
    cluster.return_code = 3
    for n in (2, 1):
        cluster.deploy_pod(n, "v2", UPGRADE)

    assert cluster.units[2].status == testing.BlockedStatus(
        f"migration migrate.py failed (exit 3): boom; {FIX}"
    )
    assert cluster.units[1].status == testing.BlockedStatus(
        f"migration migrate.py failed on flask-k8s/2 (see juju debug-log); {FIX}"
    )


def test_item5_leader_losing_leadership_mid_run_is_fenced_not_doubled(cluster: Cluster):
    cluster.runs.clear()
    cluster.new_pod(LEADER, "v2")  # the leader is first on new code: it runs without a lease

    # Leadership moves while the leader's script runs: its commit is rejected, and the new
    # leader's hooks run on what was committed before.
    cluster.run(LEADER, "upgrade_charm", fail=True)
    cluster.leader = 1
    cluster.new_pod(1, "v2")
    for event in ("leader_elected", *UPGRADE):
        cluster.run(1, event)
    assert cluster.runs == [(0, "v2")] and not lease(cluster)  # fenced: no grant, no run
    assert not cluster.running(1)

    cluster.run(0, "update_status")  # the old leader's next hook: ack, and its marked success
    cluster.settle()

    assert cluster.runs == [(0, "v2")]
    assert cluster.running(0) and cluster.running(1)


def test_item7_lease_of_a_replaced_pod_ends_at_once(cluster: Cluster):
    cluster.runs.clear()
    upgrade_until_granted(cluster, 2)
    old = lease(cluster)

    cluster.new_pod(2, "v3")  # a second refresh replaces the holder before it ran
    cluster.run(2, "upgrade_charm")
    cluster.run(LEADER, "relation_changed", remote=2)

    now = lease(cluster)
    assert now["code"] != old["code"] and now["pod"] != old["pod"]
    cluster.run(2, "relation_changed", remote=LEADER)
    cluster.settle()
    assert cluster.runs == [(2, "v3")] and cluster.running(2)


def test_item8_older_code_never_migrates_after_a_newer_one(cluster: Cluster):
    cluster.runs.clear()
    upgrade_until_granted(cluster, 2)  # first rollout: unit 2 has the lease for v2...
    cluster.new_pod(1, "v2")
    cluster.run(1, "upgrade_charm")
    cluster.new_pod(LEADER, "v2")
    cluster.run(LEADER, "upgrade_charm")  # ...the leader waits on it
    cluster.pending.clear()

    cluster.new_pod(2, "v3")  # second rollout: unit 2 moves on to v3 before running v2
    cluster.run(2, "upgrade_charm")
    cluster.settle()

    assert cluster.runs == [(2, "v3")]  # v2's migration never runs after v3's
    assert cluster.running(LEADER) and cluster.running(1)  # v2 pods serve until replaced
