"""A local deployment of the flask-k8s charm and a flask-framework rock: Juju's job, locally.

Everything below Juju is real: the charm is staged as packing stages it and dispatched as the
unit agent dispatches it (`juju_local.dispatch`), against a real Pebble running the rock's files
(`WorkloadContainer`), and Prometheus is Debian's. The deployment outlives the command that made
it; its state lives in one directory, so each command (`deploy`, `config`, …) finds it again.

Each unit has its own pod and its own copy of the charm: unit 0 at the top of the state
directory (`charm/`, `pod/`) on the host's network, every further unit under `units/<n>/` in
a network namespace of its own (`units`, `network`). Events fire on every unit in turn.
"""

import contextlib
import fcntl
import json
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from juju_local import charm_stage, pebble_status, processes
from juju_local.dispatch import DEPLOY_EVENTS, HookResult, Runner, prepare
from juju_local.model import Model, Status
from juju_local.network import PodNetwork, collect_leftovers
from juju_local.prometheus import PORT as PROMETHEUS_PORT
from juju_local.prometheus import LocalPrometheus
from juju_local.workload_container import WorkloadContainer

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "rock" / "sample"
CONTAINER = "flask-app"
PROMETHEUS_APP = "prometheus"
LOKI_APP = "loki"
APP_PORT = 8000
METRICS_PORT = 9102
POD_DOWN = (
    "agent lost: the workload container's Pebble exited and the pod with it; "
    "`juju-local upgrade` starts a fresh pod"
)


class DeploymentError(Exception):
    """A step failed; the message says which and shows what the charm said."""


def unit_number(unit: str) -> int:
    """`app/3` → 3."""
    return int(unit.rsplit("/", 1)[1])


@dataclass
class Deployment:
    """One application and its units, found again from `state_dir`."""

    state_dir: Path

    @property
    def _meta_path(self) -> Path:
        return self.state_dir / "deployment.json"

    @property
    def meta(self) -> dict[str, Any]:
        """What `deploy` recorded: the rock directory and the application name."""
        return json.loads(self._meta_path.read_text())

    @property
    def exists(self) -> bool:
        """Whether something is deployed here."""
        return self._meta_path.is_file()

    @property
    def container(self) -> WorkloadContainer:
        """Unit 0's workload container (on the host's network)."""
        return self.pod(0)

    def unit_dir(self, number: int) -> Path:
        """Where unit `number` keeps its charm and its pod (unit 0 at the top, as ever)."""
        return self.state_dir if number == 0 else self.state_dir / "units" / str(number)

    def pod(self, number: int) -> WorkloadContainer:
        """Unit `number`'s workload container: in its own network namespace after unit 0."""
        rock = Path(self.meta["rock"]) if self.exists else SAMPLE
        enter = self.network.enter_argv(number) if number else []
        return WorkloadContainer(rock, self.unit_dir(number) / "pod", enter=enter)

    @property
    def network(self) -> PodNetwork:
        """The network namespaces of the units after the first."""
        return PodNetwork(self.state_dir)

    def unit_names(self) -> list[str]:
        """The application's units, in order."""
        return [unit.name for unit in self.model.units()]

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the deployment for one command: Juju runs one hook at a time per unit.

        The lock file sits beside the state directory, so `remove` deleting the state does not
        let a waiting command lock a different file.
        """
        self.state_dir.parent.mkdir(parents=True, exist_ok=True)
        path = self.state_dir.with_name(f".{self.state_dir.name}.lock")
        with path.open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print("waiting for another juju-local command to finish…", file=sys.stderr)
                fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def charm_uid(self) -> int:
        """The uid the staged charm runs as (from its `charm-user`)."""
        return charm_stage.CHARM_USERS[charm_stage.load(self.charm_dir(self.leader)).charm_user]

    @property
    def leader(self) -> str:
        """The leader unit's name."""
        return self.model.leader()

    def charm_dir(self, unit: str) -> Path:
        """The unit's own copy of the staged charm (its `.unit-state.db` beside it)."""
        return self.unit_dir(unit_number(unit)) / "charm"

    @property
    def model(self) -> Model:
        """The model store the hook tools read and write."""
        return Model(self.state_dir / "model" / "model.json")

    @property
    def prometheus(self) -> LocalPrometheus:
        """The local Prometheus that `integrate prometheus` starts."""
        return LocalPrometheus(self.state_dir / "prometheus")

    def runner(self, unit: str | None = None) -> Runner:
        """Dispatches hooks and actions to `unit`'s charm (default: the leader's)."""
        unit = unit or self.leader
        containers = {CONTAINER: self.pod(unit_number(unit)).charm_container_dir}
        return Runner(
            self.charm_dir(unit),
            self.model,
            containers,
            python=charm_stage.default_python(),
            charm_uid=self.meta.get("charm_uid"),  # None (an older deployment): read metadata
            unit=unit,
        )

    def _record(self, **values: Any) -> None:
        """Add `values` to what `deploy` recorded in deployment.json."""
        meta = self.meta if self.exists else {}
        self._meta_path.write_text(json.dumps({**meta, **values}))

    # -- commands ---------------------------------------------------------------------------

    @property
    def charm_project(self) -> Path:
        """The charm project deployed (this repository unless `deploy --charm` said otherwise)."""
        return Path(self.meta.get("charm") or REPO) if self.exists else REPO

    def deploy(
        self,
        rock_dir: Path = SAMPLE,
        config: dict[str, Any] | None = None,
        charm: Path = REPO,
        num_units: int = 1,
    ) -> None:
        """`juju deploy -n N`: unit 0 leads, in a fresh pod: install → … → pebble-ready.

        Each further unit then comes as `units.add_unit` adds it.
        """
        if num_units < 1:
            raise DeploymentError(f"--num-units must be at least 1, got {num_units}")
        if self.exists:
            raise DeploymentError(f"already deployed in {self.state_dir}: `remove` it first")
        if not (rock_dir / "rockcraft.yaml").is_file():
            raise DeploymentError(
                f"{rock_dir} is not a rock project (no rockcraft.yaml there): pass the "
                "directory of a flask-framework rock, e.g. rock/sample"
            )
        collect_leftovers()  # pod networks a killed run left behind
        self.state_dir.mkdir(parents=True, exist_ok=True)
        pod = WorkloadContainer(rock_dir, self.state_dir / "pod")
        runner = prepare(
            charm, self.state_dir, containers={CONTAINER: pod.charm_container_dir}, config=config
        )
        pod.start(runner.uid)
        self._record(
            rock=str(rock_dir.resolve()), charm=str(charm.resolve()), charm_uid=runner.uid
        )
        runner = self.runner()
        for event in (*DEPLOY_EVENTS, f"{CONTAINER}-pebble-ready"):
            self._check(runner.fire(event))
        from juju_local import units  # (it imports this module)

        for _ in range(num_units - 1):
            units.add_unit(self)

    def config(self, values: dict[str, Any]) -> None:
        """`juju config app k=v` (None resets the option): config-changed on each unit."""
        self.require_pod()
        self.model.set_config(values)
        self.fire("config-changed")

    def run_action(self, name: str, params: dict[str, Any] | None = None, unit: str | None = None):
        """`juju run UNIT NAME k=v…` (default: the leader): returns the action's result."""
        self.require_pod()
        return self.runner(unit).run_action(name, params)

    def fire(self, event: str, *, unit: str | None = None, **context: Any) -> HookResult:
        """Fire one event as the unit agents would (e.g. `update-status`).

        On `unit`, or on every unit in turn; returns the last result. A relation is removed
        once every unit has seen it break.
        """
        names = [unit] if unit else self.unit_names()
        result: HookResult | None = None
        for index, name in enumerate(names):
            if event.endswith("-relation-broken") and index < len(names) - 1:
                context = {**context, "keep_relation": True}
            elif event.endswith("-relation-broken"):
                context = {k: v for k, v in context.items() if k != "keep_relation"}
            result = self._check(self.runner(name).fire(event, **context))
        assert result is not None
        return result

    def integrate_prometheus(self) -> None:
        """`juju integrate app prometheus`: relation hooks, then Prometheus fed what we publish."""
        self.require_pod()
        relation_id = self.model.add_relation(
            "metrics-endpoint", PROMETHEUS_APP, [f"{PROMETHEUS_APP}/0"], "prometheus_scrape"
        )
        self.fire("metrics-endpoint-relation-created", relation_id=relation_id)
        for event in ("joined", "changed"):
            self.fire(
                f"metrics-endpoint-relation-{event}",
                relation_id=relation_id,
                remote_unit=f"{PROMETHEUS_APP}/0",
            )
        self.prometheus.start(self.model.state().app, self.model.relation_data(relation_id))

    def integrate_loki(self, url: str) -> int:
        """`juju integrate app loki`: a Loki unit whose push endpoint is `url`; its relation id."""
        self.require_pod()
        unit = f"{LOKI_APP}/0"
        relation_id = self.model.add_relation("logging", LOKI_APP, [], "loki_push_api")
        self.fire("logging-relation-created", relation_id=relation_id)
        self.fire("logging-relation-joined", relation_id=relation_id, remote_unit=unit)
        self.model.set_remote_unit_data(relation_id, unit, {"endpoint": json.dumps({"url": url})})
        self.fire("logging-relation-changed", relation_id=relation_id, remote_unit=unit)
        return relation_id

    def remove_relation(self, relation_id: int) -> None:
        """`juju remove-relation`: each remote unit departs, then relation-broken (every unit)."""
        relation = self.model.relation(relation_id)
        for unit in list(relation.remote_units):
            self.fire(
                f"{relation.endpoint}-relation-departed", relation_id=relation_id, remote_unit=unit
            )
        self.fire(f"{relation.endpoint}-relation-broken", relation_id=relation_id)

    def upgrade(self) -> None:
        """`juju refresh`: new code and options, a fresh pod per unit, then their hooks."""
        names = self.unit_names()
        for name in names:
            staged = charm_stage.stage(self.charm_project, self.charm_dir(name))
            self.model.refresh_charm(staged.config_options)  # options added to charmcraft.yaml
        self._record(charm_uid=self.charm_uid())  # the new charm may run as another user
        for name in names:
            self.pod(unit_number(name)).start(self.charm_uid())
        for name in names:
            runner = self.runner(name)
            for event in ("upgrade-charm", "config-changed", "start", f"{CONTAINER}-pebble-ready"):
                self._check(runner.fire(event))

    def require_pod(self) -> None:
        """Refuse to fire hooks at units whose pod is gone: no agent would run them."""
        for name in self.unit_names():
            if self.pod(unit_number(name)).died:
                raise DeploymentError(f"{name}: {POD_DOWN}, or `remove` it")

    def status(self) -> str:
        """`juju status`, plus what Pebble runs and where to reach it.

        A pod whose Pebble died shows as lost, never with the charm's last (stale) status.
        """
        status = self.model.status()
        pods = {name: self.pod(unit_number(name)) for name in status.units}
        lost = Status("unknown", POD_DOWN)
        for name, pod in pods.items():
            if pod.died:
                status.units[name].status = lost
                status.app_status = lost
        lines = [status.describe()]
        for name, pod in pods.items():
            if pod.running:
                heading = [f"{name}:"] if len(pods) > 1 else []
                lines += ["", *heading, pebble_status.tables(pod.socket)]
        return "\n".join(lines)

    def describe(self) -> str:
        """Everything a developer needs when something fails."""
        parts = [self.status(), "--- charm log (tail) ---"]
        parts += [str(line) for line in self.model.log_lines()[-30:]]
        for name in self.unit_names():
            pod = self.pod(unit_number(name))
            if pod.running:
                parts += [f"--- {name}: pebble logs ---", pod.pebble("logs", "-n", "40").stdout]
        return "\n".join(parts)

    def remove(self) -> None:
        """`juju remove-application`: stop, remove, then the pod and everything we started.

        Then checks that nothing listens on the deployment's ports any more.
        """
        from juju_local import controller

        controller.stop(self.state_dir)
        names = self.unit_names() if self.exists else []
        for name in names:
            if self.pod(unit_number(name)).running:
                runner = self.runner(name)
                for event in ("stop", "remove"):
                    runner.fire(event)
        ports = [APP_PORT, METRICS_PORT]
        if self.prometheus.pid_path.exists():
            ports.append(PROMETHEUS_PORT)
        # Every pod, also those a deploy or add-unit that failed half-way left.
        extra = (self.state_dir / "units").glob("*")
        for number in [0, *(int(path.name) for path in extra if path.name.isdigit())]:
            self.pod(number).stop()
        self.network.delete_all()
        self.prometheus.stop()
        # Imported here: most commands need no servers.
        from juju_local import databases, otlp_receiver, providers, rabbitmq

        databases.stop_all(self.state_dir)  # PostgreSQL, MariaDB, Redis from `integrate`
        providers.stop_all(self.state_dir)  # S3 and SMTP servers from `integrate`
        rabbitmq.stop(self.state_dir)
        otlp_receiver.Receiver(self.state_dir).stop()  # from `integrate tracing`
        shutil.rmtree(self.state_dir, ignore_errors=True)
        busy = processes.wait_closed(ports, timeout=10)
        if busy:
            listed = ", ".join(f"127.0.0.1:{port}" for port in busy)
            raise DeploymentError(
                f"removed, but something still listens on {listed}: not a process this "
                "deployment started (they have all ended); see `ss -ltnp`"
            )

    def _check(self, result: HookResult) -> HookResult:
        if not result.ok:
            raise DeploymentError(
                f'hook "{result.name}" failed (exit {result.returncode}); what the charm said:\n'
                f"{result.describe()}\n{self.describe()}"
            )
        return result
