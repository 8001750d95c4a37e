"""Provider side of the `prometheus_scrape` interface, written from its wire format.

Wire format (JSON-encoded values):
- our app databag (leader only): `scrape_metadata` (the Juju topology: model, model_uuid,
  application, unit, charm_name), `scrape_jobs` (a list of Prometheus scrape configs; `*` in a
  target means "each unit's address"), `alert_rules` (`{"groups": [...]}`, every rule labelled
  with juju_model, juju_model_uuid and juju_application so Prometheus scopes its `expr`);
- each of our unit databags: `prometheus_scrape_unit_address`, `prometheus_scrape_unit_name`.

Like the other flask_k8s libraries it observes nothing and never sets status: the charm calls
`publish()` from its reconcile, which re-publishes the unit address (a recreated pod has a new
IP) and writes only what changed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import ops

from charms.flask_k8s.v0 import databags

RULE_TOPOLOGY = ("juju_model", "juju_model_uuid", "juju_application")


def topology(charm: ops.CharmBase) -> dict[str, str]:
    """The Juju topology of this unit, as `scrape_metadata` carries it."""
    return {
        "model": charm.model.name,
        "model_uuid": charm.model.uuid,
        "application": charm.app.name,
        "unit": charm.unit.name,
        "charm_name": charm.meta.name,
    }


def label_rules(rules: dict[str, Any], topology: dict[str, str]) -> dict[str, Any]:
    """Return `rules` with every rule carrying the topology labels (and never juju_unit)."""
    labels = {
        "juju_model": topology["model"],
        "juju_model_uuid": topology["model_uuid"],
        "juju_application": topology["application"],
    }
    groups = []
    for group in rules.get("groups", []):
        labelled = []
        for rule in group.get("rules", []):
            rule_labels = {k: v for k, v in rule.get("labels", {}).items() if k != "juju_unit"}
            labelled.append({**rule, "labels": {**rule_labels, **labels}})
        groups.append({**group, "rules": labelled})
    return {"groups": groups}


class MetricsEndpointProvider(ops.Object):
    """Tell Prometheus what to scrape on every unit, and which alert rules to evaluate."""

    def __init__(
        self,
        charm: ops.CharmBase,
        relation_name: str = "metrics-endpoint",
        *,
        jobs: list[dict[str, Any]],
        alert_rules: Callable[[], dict[str, Any]] = lambda: {"groups": []},
    ):
        super().__init__(charm, relation_name)
        self._charm = charm
        self._relation_name = relation_name
        self._jobs = jobs
        self._alert_rules = alert_rules  # called only when a leader has a relation to write

    def app_data(self) -> dict[str, str]:
        """What the leader publishes in our app databag."""
        meta = topology(self._charm)
        return {
            "scrape_metadata": json.dumps(meta),
            "scrape_jobs": json.dumps(self._jobs),
            "alert_rules": json.dumps(label_rules(self._alert_rules(), meta)),
        }

    def unit_data(self, relation: ops.Relation) -> dict[str, str]:
        """What each unit publishes: where Prometheus reaches it, and its name."""
        data = {"prometheus_scrape_unit_name": self._charm.unit.name}
        address = databags.bind_address(self._charm, relation)
        if address is not None:
            data["prometheus_scrape_unit_address"] = address
        return data

    def publish(self) -> None:
        """Write unit data (every unit) and app data (leader) on every relation."""
        relations = self._charm.model.relations[self._relation_name]
        app_data = self.app_data() if relations and self._charm.unit.is_leader() else None
        for relation in relations:
            databags.update(relation.data[self._charm.unit], self.unit_data(relation))
            if app_data is not None:
                databags.update(relation.data[self._charm.app], app_data)
