"""Requirer side of the `loki_push_api` interface (logs pushed by Pebble), from its wire format.

Wire format:
- each Loki unit's databag: `endpoint` = `{"url": "http://…:3100/loki/api/v1/push"}`;
- our app databag (leader only): `metadata` (the Juju topology, as `scrape_metadata`) and
  `alert_rules` (`{"groups": [...]}` of LogQL rules, labelled with the topology).

The logs themselves are pushed by the workload's Pebble (Juju >= 3.4): the charm adds one Loki
log target per push URL to its layer (`log_targets()`). Pebble keeps the first `location` of a
target name, so a target's name is derived from its URL: a changed URL is a new target. A layer
cannot delete a target, so a URL that went away (relation departed or broken, URL changed)
leaves its target in the plan, disabled with `services: [-all]`; our targets are the plan's
targets whose name carries `TARGET_PREFIX`, so nothing needs remembering across pod restarts.

Like the other flask_k8s libraries this one observes nothing and never sets status. Malformed
remote data is logged and skipped (`problems()` lists it); it never raises.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import ops

from charms.flask_k8s.v0 import databags
from charms.flask_k8s.v0.prometheus_scrape import label_rules, topology

logger = logging.getLogger(__name__)

TARGET_PREFIX = "logging-"
TOPOLOGY_PLACEHOLDER = "%%juju_topology%%"


def push_url(raw: str | None) -> str | None:
    """The push URL in a Loki unit's `endpoint` value, or None when absent or malformed."""
    if not raw:
        return None
    url = databags.url_field(raw)
    if url is None:
        logger.warning("logging: ignoring malformed Loki endpoint %s", databags.describe(raw))
    return url


def target_name(url: str) -> str:
    """A Pebble log target name derived from the push URL: a new URL is a new target."""
    return TARGET_PREFIX + hashlib.sha256(url.encode()).hexdigest()[:12]


def target_labels(charm: ops.CharmBase) -> dict[str, str]:
    """The labels every forwarded line carries (Pebble adds `pebble_service`)."""
    meta = topology(charm)
    return {
        "juju_model": meta["model"],
        "juju_model_uuid": meta["model_uuid"],
        "juju_application": meta["application"],
        "juju_unit": meta["unit"],
        "charm": meta["charm_name"],
    }


def log_targets(
    urls: Iterable[str], labels: Mapping[str, str], current: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The `log-targets` section: one enabled target per URL, and ours that went away disabled.

    Args:
        urls: the Loki push URLs to forward to.
        labels: labels for every line (no `pebble_` prefix: Pebble reserves it).
        current: the plan's log targets as dicts ({name: target}), to find ours to disable.
    """
    wanted = {
        target_name(url): {
            "override": "replace",
            "type": "loki",
            "location": url,
            "services": ["all"],
            "labels": dict(labels),
        }
        for url in urls
    }
    gone = {
        name: {
            "override": "replace",
            "type": "loki",
            "location": target.get("location", ""),
            "services": ["-all"],
        }
        for name, target in current.items()
        if name.startswith(TARGET_PREFIX) and name not in wanted
    }
    return {**gone, **wanted}


def scope_logql(rules: dict[str, Any], topology: Mapping[str, str]) -> dict[str, Any]:
    """Replace the topology placeholder in each `expr` with this application's matchers."""
    matchers = ", ".join(
        f'{label}="{topology[key]}"'
        for label, key in (
            ("juju_model", "model"),
            ("juju_model_uuid", "model_uuid"),
            ("juju_application", "application"),
        )
    )
    return {
        "groups": [
            {
                **group,
                "rules": [
                    {
                        **rule,
                        "expr": str(rule.get("expr", "")).replace(TOPOLOGY_PLACEHOLDER, matchers),
                    }
                    for rule in group.get("rules", [])
                ],
            }
            for group in rules.get("groups", [])
        ]
    }


class LokiPushApiConsumer(ops.Object):
    """Find Loki's push URLs; publish our topology and LogQL alert rules."""

    def __init__(
        self,
        charm: ops.CharmBase,
        relation_name: str = "logging",
        *,
        alert_rules: Callable[[], dict[str, Any]] = lambda: {"groups": []},
    ):
        super().__init__(charm, relation_name)
        self._charm = charm
        self._relation_name = relation_name
        self._alert_rules = alert_rules  # called only when a leader has a relation to write

    def push_urls(self) -> list[str]:
        """Every valid push URL of every Loki unit now related, sorted, without duplicates."""
        return sorted({url for url, _ in self._endpoints() if url is not None})

    def problems(self) -> list[str]:
        """The Loki units whose `endpoint` is being ignored as malformed."""
        return [
            f"{self._relation_name}: malformed `endpoint` from {unit}"
            for url, unit in self._endpoints()
            if url is None
        ]

    def _endpoints(self) -> list[tuple[str | None, str]]:
        """(push URL or None when malformed, unit name) for each Loki unit with an endpoint."""
        found: list[tuple[str | None, str]] = []
        for relation in self._charm.model.relations[self._relation_name]:
            for unit in sorted(relation.units, key=lambda unit: unit.name):
                try:
                    raw = relation.data[unit].get("endpoint")
                except ops.ModelError as exc:  # the unit left between relation-list and -get
                    logger.info("logging: cannot read %s: %s", unit.name, exc)
                    continue
                if raw:
                    found.append((push_url(raw), unit.name))
        return found

    def app_data(self) -> dict[str, str]:
        """What the leader publishes in our app databag."""
        meta = topology(self._charm)
        rules = label_rules(scope_logql(self._alert_rules(), meta), meta)
        return {"metadata": json.dumps(meta), "alert_rules": json.dumps(rules)}

    def publish(self) -> None:
        """Write app data (leader only) on every relation, touching only what changed."""
        if not self._charm.unit.is_leader():  # first: is-leader is cached, relation-ids not
            return
        relations = self._charm.model.relations[self._relation_name]
        if not relations:
            return
        wanted = self.app_data()
        for relation in relations:
            databags.update(relation.data[self._charm.app], wanted)

    def log_targets(self, current: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
        """The layer's `log-targets` given the plan's current targets (see `log_targets`)."""
        return log_targets(self.push_urls(), target_labels(self._charm), current)
