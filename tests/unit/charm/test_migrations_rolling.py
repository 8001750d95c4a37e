"""A 3-unit application under a Kubernetes rolling upgrade, one ops.testing run per hook.

Each unit has its own container, stored state and unit databag; the peer app databag and every
unit databag are carried from run to run, and a changed databag wakes the other units with
relation-changed, as Juju does. Pods are replaced highest ordinal first, the leader (unit 0) last.
"""

from __future__ import annotations

import collections
import dataclasses
import pathlib
from typing import Any

import ops
import pytest
from ops import testing

import migrations
import pebble_io
from charm import FlaskCharm
from tests.unit.charm.charm_state import container

KEY = "the-generated-key"
MIGRATE_PY = tuple(
    pebble_io.supervised("/bin/python3", ["/bin/python3", "/flask/app/migrate.py"], 300)
)
UNITS = (0, 1, 2)
LEADER = 0
DEFAULT_KEYS = {"egress-subnets", "ingress-address", "private-address"}


@dataclasses.dataclass
class Unit:
    """One unit's own view: its pod's container and its charm's stored state."""

    box: testing.Container
    code: str  # which image the pod runs: "v1", "v2"
    stored: frozenset[testing.StoredState] = frozenset()
    status: Any = dataclasses.field(default_factory=lambda: testing.UnknownStatus())


class Cluster:
    """Three units sharing the `secret-storage` relation."""

    def __init__(self, root: pathlib.Path, migrate_return_code: int = 0):
        self.root = root
        self.return_code = migrate_return_code
        self.secret = testing.Secret(tracked_content={"value": KEY}, owner="app")
        self.app_data: dict[str, str] = {"secret-key-id": self.secret.id}
        self.unit_data: dict[int, dict[str, str]] = {n: {} for n in UNITS}
        self.units: dict[int, Unit] = {}
        self.pending: collections.deque[tuple[int, int]] = collections.deque()
        self.runs: list[tuple[int, str]] = []  # (unit, image) of every migration run
        # Timeline: (unit, event, image, flask running after); runs appear as "migrate".
        self.events: list[tuple[int, str, str, bool]] = []
        self._running_unit: int | None = None
        self.pods = 0
        self.leader = LEADER

    def image(self, code: str) -> pathlib.Path:
        """The app's files in image `code`: each image has its own migrate.py."""
        path = self.root / "images" / code
        if not path.exists():
            path.mkdir(parents=True)
            (path / "app.py").write_text(f"app = {code!r}\n")
            (path / "migrate.py").write_text(f"print('migrating to {code}')\n")
        return path

    def new_pod(self, n: int, code: str) -> None:
        """A fresh pod for unit n running image `code` (the charm's stored state survives)."""
        self.pods += 1
        charm_dir = self.root / f"pod-{self.pods}" / "flask" / "charm"
        state_dir = self.root / f"pod-{self.pods}" / "state"
        charm_dir.mkdir(parents=True)
        state_dir.mkdir()
        execs = (testing.Exec(MIGRATE_PY, return_code=self.return_code, stderr="boom\n"),)
        box = container(charm_dir, app_dir=self.image(code), execs=execs)
        # The charm's own files in the workload container last as long as the pod does.
        mount = testing.Mount(location=migrations.STATE_DIR, source=state_dir)
        box = dataclasses.replace(box, mounts={**box.mounts, "state": mount})
        old = self.units.get(n)
        self.units[n] = Unit(box, code, old.stored if old else frozenset())

    def _state(self, n: int) -> testing.State:
        peer = testing.PeerRelation(
            "secret-storage",
            id=7,
            local_app_data=dict(self.app_data),
            local_unit_data=dict(self.unit_data[n]),
            peers_data={m: dict(self.unit_data[m]) for m in UNITS if m != n and m in self.units},
        )
        unit = self.units[n]
        return testing.State(
            leader=n == self.leader,
            relations={peer},
            containers={unit.box},
            secrets={self.secret},
            stored_states=set(unit.stored),
            unit_status=unit.status,  # Juju keeps a unit's status between hooks
            model=testing.Model(name="shop"),
        )

    def run(self, n: int, event: str, remote: int | None = None, *, fail: bool = False) -> None:
        """Run one hook on unit n; queue relation-changed for the units whose view changed.

        `fail`: the hook fails after its work (or Juju rejects its commit): its databag and
        stored-state changes are lost, what it did to the workload stays.
        """
        ctx = testing.Context(FlaskCharm, unit_id=n)
        st = self._state(n)
        if event == "pebble_ready":
            ops_event = ctx.on.pebble_ready(st.get_container("flask-app"))
        elif event == "relation_changed":
            ops_event = ctx.on.relation_changed(
                st.get_relation(7), remote_unit=remote if remote is not None else None
            )
        else:
            ops_event = getattr(ctx.on, event)()
        self._running_unit = n
        out = ctx.run(ops_event, st)
        self._commit(n, out, fail=fail)
        self.events.append((n, event, self.units[n].code, self.running(n)))

    def action(self, n: int) -> tuple[dict[str, Any] | None, str | None]:
        """Run run-migrations on unit n: (its results, its failure message or None)."""
        ctx = testing.Context(FlaskCharm, unit_id=n)
        self._running_unit = n
        try:
            out = ctx.run(ctx.on.action("run-migrations"), self._state(n))
        except testing.ActionFailed as failed:
            state = failed.state  # an action's failure does not undo its writes
            assert isinstance(state, testing.State)
            self._commit(n, state, fail=False)
            return ctx.action_results, failed.message
        self._commit(n, out, fail=False)
        return ctx.action_results, None

    def _commit(self, n: int, out: testing.State, *, fail: bool) -> None:
        unit = self.units[n]
        unit.box, unit.status = out.get_container("flask-app"), out.unit_status
        if fail:
            return
        relation = out.get_relation(7)
        assert isinstance(relation, testing.PeerRelation)
        unit_data = {k: v for k, v in relation.local_unit_data.items() if k not in DEFAULT_KEYS}
        app_data = dict(relation.local_app_data)
        if unit_data != self.unit_data[n]:
            self._wake(n, remote=n)
        if app_data != self.app_data:
            assert n == self.leader, "only the leader writes the app databag"
            self._wake(n, remote=None)
        self.unit_data[n], self.app_data = unit_data, app_data
        unit.stored = frozenset(out.stored_states)

    def script_exits(self, n: int, return_code: int) -> None:
        """Unit n's migrate script exits with `return_code` from now on."""
        box = self.units[n].box
        run = testing.Exec(MIGRATE_PY, return_code=return_code, stderr="boom\n")
        self.units[n].box = dataclasses.replace(box, execs={run})

    def _wake(self, writer: int, remote: int | None) -> None:
        for m in self.units:
            if m != writer and (m, writer) not in self.pending:
                self.pending.append((m, writer))

    def settle(self, limit: int = 50) -> None:
        """Deliver relation-changed until no databag changes any more."""
        for _ in range(limit):
            if not self.pending:
                return
            m, writer = self.pending.popleft()
            self.run(m, "relation_changed", remote=writer)
        raise AssertionError("the units did not settle")

    def running(self, n: int) -> bool:
        statuses = self.units[n].box.service_statuses
        return statuses.get("flask") == ops.pebble.ServiceStatus.ACTIVE

    def deploy_pod(self, n: int, code: str, events: tuple[str, ...]) -> None:
        self.new_pod(n, code)
        for event in events:
            self.run(n, event)
        self.settle()


DEPLOY = ("install", "leader_elected", "config_changed", "start", "pebble_ready")
UPGRADE = ("upgrade_charm", "config_changed", "start", "pebble_ready")


@pytest.fixture
def cluster(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> Cluster:
    """Three units deployed on image v1 and settled, recording every migration run."""
    return deployed_cluster(tmp_path, monkeypatch)


def deployed_cluster(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> Cluster:
    """Three units deployed on image v1 and settled, recording every migration run."""
    made = Cluster(tmp_path)
    real = pebble_io.run_script

    def spy(box: ops.Container, argv: list[str], **kwargs: Any) -> pebble_io.ScriptRun:
        n = made._running_unit
        assert n is not None
        made.runs.append((n, made.units[n].code))
        run = real(box, argv, **kwargs)
        made.events.append((n, "migrate", made.units[n].code, run.exit_code == 0))
        return run

    monkeypatch.setattr(pebble_io, "run_script", spy)
    for n in (LEADER, 1, 2):
        events = DEPLOY if n == LEADER else tuple(e for e in DEPLOY if e != "leader_elected")
        made.deploy_pod(n, "v1", events)
    return made


def test_fresh_deployment_migrates_once_and_all_units_serve(cluster: Cluster):
    assert cluster.runs == [(0, "v1")]
    assert all(cluster.running(n) for n in UNITS)
    assert all(cluster.units[n].status == testing.ActiveStatus("") for n in UNITS)


def test_rolling_upgrade_migrates_once_before_any_unit_serves_new_code(cluster: Cluster):
    cluster.runs.clear()
    cluster.events.clear()

    for n in (2, 1, 0):  # Kubernetes' order: highest ordinal first, the leader's pod last
        cluster.deploy_pod(n, "v2", UPGRADE)

    assert cluster.runs == [(2, "v2")]  # exactly one run, by the first unit with new code
    timeline = cluster.events
    migrated = timeline.index((2, "migrate", "v2", True))
    first_v2_serving = next(
        i
        for i, (_, event, image, up) in enumerate(timeline)
        if event != "migrate" and image == "v2" and up
    )
    assert migrated < first_v2_serving  # no unit serves v2 before its migration succeeded
    assert all(cluster.running(n) and cluster.units[n].code == "v2" for n in UNITS)
    assert all(cluster.units[n].status == testing.ActiveStatus("") for n in UNITS)
    assert "migration-lease" not in cluster.app_data


def test_rolling_upgrade_unit_waits_for_the_holder_with_its_name(cluster: Cluster):
    cluster.new_pod(2, "v2")
    cluster.run(2, "upgrade_charm")  # asks the leader for the lease
    cluster.run(LEADER, "relation_changed", remote=2)  # grants it to unit 2
    cluster.pending.clear()
    cluster.new_pod(1, "v2")  # as if Kubernetes went on before unit 2 got its lease

    cluster.run(1, "upgrade_charm")

    assert cluster.units[1].status == testing.WaitingStatus("waiting for migration on flask-k8s/2")
    assert not cluster.running(1) and cluster.runs == [(0, "v1")]
    cluster.run(2, "relation_changed", remote=LEADER)  # unit 2 sees its lease: runs
    cluster.settle()
    assert cluster.runs == [(0, "v1"), (2, "v2")]
    assert cluster.running(1) and cluster.running(2)


def test_rolling_upgrade_failure_blocks_first_unit_others_wait_then_action_recovers(
    cluster: Cluster,
):
    cluster.return_code = 3
    cluster.runs.clear()
    for n in (2, 1):
        cluster.deploy_pod(n, "v2", UPGRADE)

    assert cluster.runs == [(2, "v2")]
    assert cluster.units[2].status == testing.BlockedStatus(
        "migration migrate.py failed (exit 3): boom; fix it and run "
        "`juju run flask-k8s/leader run-migrations`"
    )
    # The others cannot go on without the operator either: they say so, naming the action.
    assert cluster.units[1].status == testing.BlockedStatus(
        "migration migrate.py failed on flask-k8s/2 (see juju debug-log); fix it and run "
        "`juju run flask-k8s/leader run-migrations`"
    )
    assert not cluster.running(2) and not cluster.running(1)
    assert cluster.running(0)  # the leader's pod still runs v1, untouched

    for n in UNITS:  # the operator fixes the cause and runs the action on the leader
        cluster.script_exits(n, 0)
    cluster.action(LEADER)
    cluster.settle()

    # The leader re-ran its own (v1) script and cleared the failure; v2 was retried once,
    # under a lease, by a unit waiting for it.
    assert cluster.runs[:2] == [(2, "v2"), (0, "v1")]
    assert cluster.runs[2:] in ([(1, "v2")], [(2, "v2")])
    assert cluster.running(1) and cluster.running(2)
    assert cluster.units[1].status == testing.ActiveStatus("")
    assert cluster.units[2].status == testing.ActiveStatus("")


def test_update_status_everywhere_after_a_failure_reruns_nothing(cluster: Cluster):
    cluster.return_code = 3
    cluster.deploy_pod(2, "v2", UPGRADE)
    cluster.runs.clear()

    for n in UNITS:
        cluster.run(n, "update_status")
    cluster.settle()

    assert cluster.runs == []
    assert isinstance(cluster.units[2].status, testing.BlockedStatus)
