"""A local deployment of the flask-k8s charm and a flask-framework rock: Juju's job, locally.

Everything below Juju is real: the charm is staged as packing stages it and dispatched as the
unit agent dispatches it (`juju_local.dispatch`), against a real Pebble running the rock's files
(`WorkloadContainer`), and Prometheus is Debian's. The deployment outlives the command that made
it; its state lives in one directory, so each command (`deploy`, `config`, …) finds it again.
"""

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from juju_local import charm_stage, databases
from juju_local.dispatch import DEPLOY_EVENTS, HookResult, Runner, prepare
from juju_local.model import Model
from juju_local.prometheus import LocalPrometheus
from juju_local.workload_container import WorkloadContainer

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "rock" / "sample"
CONTAINER = "flask-app"
PROMETHEUS_APP = "prometheus"
LOKI_APP = "loki"


class DeploymentError(Exception):
    """A step failed; the message says which and shows what the charm said."""


@dataclass
class Deployment:
    """One application with one unit, found again from `state_dir`."""

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
        """The unit's workload container."""
        return WorkloadContainer(Path(self.meta["rock"]), self.state_dir / "pod")

    @property
    def model(self) -> Model:
        """The model store the hook tools read and write."""
        return Model(self.state_dir / "model" / "model.json")

    @property
    def prometheus(self) -> LocalPrometheus:
        """The local Prometheus that `integrate prometheus` starts."""
        return LocalPrometheus(self.state_dir / "prometheus")

    def runner(self) -> Runner:
        """Dispatches hooks and actions to the staged charm."""
        staged = charm_stage.load(self.state_dir / "charm")
        containers = {CONTAINER: self.container.charm_container_dir}
        return Runner(staged.path, self.model, containers, python=staged.python)

    # -- commands ---------------------------------------------------------------------------

    def deploy(self, rock_dir: Path = SAMPLE, config: dict[str, Any] | None = None) -> None:
        """`juju deploy`: a fresh pod, then install → … → start → pebble-ready."""
        if self.exists:
            raise DeploymentError(f"already deployed in {self.state_dir}: `remove` it first")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        pod = WorkloadContainer(rock_dir, self.state_dir / "pod")
        pod.start()
        prepare(
            REPO, self.state_dir, containers={CONTAINER: pod.charm_container_dir}, config=config
        )
        self._meta_path.write_text(json.dumps({"rock": str(rock_dir.resolve())}))
        runner = self.runner()
        for event in (*DEPLOY_EVENTS, f"{CONTAINER}-pebble-ready"):
            self._check(runner.fire(event))

    def config(self, values: dict[str, Any]) -> None:
        """`juju config app k=v` (a value of None resets the option): fires config-changed."""
        self.model.set_config(values)
        self._check(self.runner().fire("config-changed"))

    def run_action(self, name: str, params: dict[str, Any] | None = None):
        """`juju run app/0 NAME k=v…`: returns the action's result."""
        return self.runner().run_action(name, params)

    def fire(self, event: str, **context: Any) -> HookResult:
        """Fire one event as the unit agent would (e.g. `update-status`)."""
        return self._check(self.runner().fire(event, **context))

    def integrate_prometheus(self) -> None:
        """`juju integrate app prometheus`: relation hooks, then Prometheus fed what we publish."""
        runner = self.runner()
        relation_id = self.model.add_relation(
            "metrics-endpoint", PROMETHEUS_APP, [f"{PROMETHEUS_APP}/0"], "prometheus_scrape"
        )
        self._check(runner.fire("metrics-endpoint-relation-created", relation_id=relation_id))
        for event in ("joined", "changed"):
            self._check(
                runner.fire(
                    f"metrics-endpoint-relation-{event}",
                    relation_id=relation_id,
                    remote_unit=f"{PROMETHEUS_APP}/0",
                )
            )
        self.prometheus.start(self.model.state().app, self.model.relation_data(relation_id))

    def integrate_loki(self, url: str) -> int:
        """`juju integrate app loki`: a Loki unit whose push endpoint is `url`; its relation id."""
        runner = self.runner()
        unit = f"{LOKI_APP}/0"
        relation_id = self.model.add_relation("logging", LOKI_APP, [], "loki_push_api")
        self._check(runner.fire("logging-relation-created", relation_id=relation_id))
        self._check(
            runner.fire("logging-relation-joined", relation_id=relation_id, remote_unit=unit)
        )
        self.model.set_remote_unit_data(relation_id, unit, {"endpoint": json.dumps({"url": url})})
        self._check(
            runner.fire("logging-relation-changed", relation_id=relation_id, remote_unit=unit)
        )
        return relation_id

    def remove_relation(self, relation_id: int) -> None:
        """`juju remove-relation`: each remote unit departs, then relation-broken."""
        runner = self.runner()
        relation = self.model.relation(relation_id)
        for unit in list(relation.remote_units):
            self._check(
                runner.fire(
                    f"{relation.endpoint}-relation-departed",
                    relation_id=relation_id,
                    remote_unit=unit,
                )
            )
        self._check(runner.fire(f"{relation.endpoint}-relation-broken", relation_id=relation_id))

    def upgrade(self) -> None:
        """`juju refresh`: new charm code and a fresh pod, then upgrade-charm and pebble-ready."""
        charm_stage.stage(REPO, self.state_dir / "charm")
        self.container.start()
        runner = self.runner()
        for event in ("upgrade-charm", "config-changed", "start", f"{CONTAINER}-pebble-ready"):
            self._check(runner.fire(event))

    def status(self) -> str:
        """`juju status`, plus what Pebble runs and where to reach it."""
        lines = [self.model.status().describe()]
        if self.container.running:
            lines += ["", self.container.pebble("services").stdout.rstrip()]
            lines += [self.container.pebble("checks").stdout.rstrip()]
        return "\n".join(lines)

    def describe(self) -> str:
        """Everything a developer needs when something fails."""
        parts = [self.status(), "--- charm log (tail) ---"]
        parts += [str(line) for line in self.model.log_lines()[-30:]]
        if self.container.running:
            parts += ["--- pebble logs ---", self.container.pebble("logs", "-n", "40").stdout]
        return "\n".join(parts)

    def remove(self) -> None:
        """`juju remove-application`: stop, remove, then the pod and everything we started."""
        if self.exists and self.container.running:
            runner = self.runner()
            for event in ("stop", "remove"):
                runner.fire(event)
        if self.exists:
            self.container.stop()
        self.prometheus.stop()
        databases.stop_all(self.state_dir)  # PostgreSQL, MariaDB, Redis from `integrate`
        shutil.rmtree(self.state_dir, ignore_errors=True)

    def _check(self, result: HookResult) -> HookResult:
        if not result.ok:
            raise DeploymentError(f"{result.describe()}\n{self.describe()}")
        return result
