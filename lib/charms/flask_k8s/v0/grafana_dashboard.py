"""Provider side of the `grafana_dashboard` interface, written from its wire format.

Wire format: our app databag (leader only) holds one key, `dashboards`, JSON:

    {"templates": {"file:<stem>": {"charm": <charm name>,
                                   "content": <base64(lzma(dashboard JSON))>,
                                   "juju_topology": {model, model_uuid, application, unit},
                                   "inject_dropdowns": true,
                                   "dashboard_alt_uid": <16 hex, stable per dashboard>}},
     "uuid": <a fresh uuid4 on every write>}

Grafana re-reads the dashboards when `uuid` changes. Like the other flask_k8s libraries this one
observes nothing and never sets status: the charm calls `publish()` from its reconcile. A write
costs an LZMA pass (and cosl's import), so `publish()` writes only when the dashboard files or
the topology changed since this unit last wrote that relation, or after `mark_stale()`, which
the charm calls on relation-created, leader-elected and upgrade-charm.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ops

logger = logging.getLogger(__name__)


def alt_uid(topology: dict[str, str], stem: str) -> str:
    """A 16-hex id, stable for one dashboard of one application in one model."""
    key = f"{topology['model_uuid']}/{topology['application']}/{stem}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def templates(
    files: dict[str, str], charm_name: str, topology: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """The `templates` object for dashboards given as {stem: JSON text}."""
    from cosl import LZMABase64  # only a write needs it: ~0.1 s of hook start-up

    return {
        f"file:{stem}": {
            "charm": charm_name,
            "content": LZMABase64.compress(text),
            "juju_topology": topology,
            "inject_dropdowns": True,
            "dashboard_alt_uid": alt_uid(topology, stem),
        }
        for stem, text in sorted(files.items())
    }


class GrafanaDashboardProvider(ops.Object):
    """Publish the JSON dashboards of a directory to Grafana."""

    _stored = ops.StoredState()

    def __init__(
        self,
        charm: ops.CharmBase,
        relation_name: str = "grafana-dashboard",
        *,
        directory: Path,
        extra: Callable[[], dict[str, str]] = dict,
    ):
        super().__init__(charm, relation_name)
        self._charm = charm
        self._relation_name = relation_name
        self._directory = directory
        self._extra = extra  # more dashboards, {stem: JSON text}: read only when writing
        # relation id (str) -> fingerprint of what this unit last wrote there
        self._stored.set_default(written={})

    def topology(self) -> dict[str, str]:
        """The topology Grafana shows for our dashboards."""
        return {
            "model": self._charm.model.name,
            "model_uuid": self._charm.model.uuid,
            "application": self._charm.app.name,
            "unit": self._charm.unit.name,
        }

    def dashboard_files(self) -> dict[str, str]:
        """Every `*.json` dashboard in the directory, then the extra ones: {file stem: text}."""
        files = {path.stem: path.read_text() for path in sorted(self._directory.glob("*.json"))}
        return {**self._extra(), **files}

    def mark_stale(self) -> None:
        """Make the next `publish()` write every relation, with a fresh uuid."""
        self._stored.written = {}

    def publish(self) -> None:
        """Write `dashboards` (leader only) on each relation whose content is out of date."""
        if not self._charm.unit.is_leader():  # first: is-leader is cached, relation-ids not
            return
        relations = self._charm.model.relations[self._relation_name]
        if not relations:
            return
        files = self.dashboard_files()
        topology = self.topology()
        fingerprint = hashlib.sha256(
            json.dumps([files, topology, self._charm.meta.name], sort_keys=True).encode()
        ).hexdigest()
        written = dict(self._stored.written)
        stale = [rel for rel in relations if written.get(str(rel.id)) != fingerprint]
        if not stale:
            return
        content = templates(files, self._charm.meta.name, topology)
        for relation in stale:
            data = {"templates": content, "uuid": str(uuid.uuid4())}
            relation.data[self._charm.app]["dashboards"] = json.dumps(data)
            written[str(relation.id)] = fingerprint
            logger.info("published %d dashboard(s) on %s", len(content), relation.name)
        live = {str(rel.id) for rel in relations}
        self._stored.written = {key: value for key, value in written.items() if key in live}
