"""The charm's COS wiring: metrics, dashboards, logs and their alert rules.

The rock's statsd_exporter turns Gunicorn's StatsD metrics into Prometheus metrics on :9102;
every unit is scraped there. The workload's Pebble pushes the app's logs to Loki through log
targets the charm puts in its layer. Dashboards and alert rules live as files in `src/cos/`;
the charm author's own, in `cos_custom/` of the charm, are checked and sent with them
(`cos_custom`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ops

import cos_custom
import workload
from charms.flask_k8s.v0.grafana_dashboard import GrafanaDashboardProvider
from charms.flask_k8s.v0.loki_push_api import LokiPushApiConsumer
from charms.flask_k8s.v0.prometheus_scrape import MetricsEndpointProvider

METRICS_RELATION = "metrics-endpoint"
DASHBOARD_RELATION = "grafana-dashboard"
LOGGING_RELATION = "logging"
SCRAPE_JOBS = [
    {
        "job_name": "flask",
        "metrics_path": "/metrics",
        "static_configs": [{"targets": [f"*:{workload.METRICS_PORT}"]}],
    }
]
COS_DIR = Path(__file__).parent / "cos"
PROMETHEUS_RULES_DIR = COS_DIR / "prometheus_alert_rules"
LOKI_RULES_DIR = COS_DIR / "loki_alert_rules"
DASHBOARDS_DIR = COS_DIR / "grafana_dashboards"


def load_rule_files(directory: Path) -> dict[str, Any]:
    """All rule groups of the `*.rules`/`*.yaml` files in `directory`, in file-name order."""
    import yaml  # only the leader, with a relation to write, reads rule files

    groups: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.rules")) + sorted(directory.glob("*.yaml")):
        groups += (yaml.safe_load(path.read_text()) or {}).get("groups", [])
    return {"groups": groups}


def with_custom_rules(ours: Path, charm_dir: Path, kind: str) -> dict[str, Any]:
    """Our rule groups of `ours`, then the valid custom ones of `kind` (`cos_custom`)."""
    rules = load_rule_files(ours)
    names = [group.get("name") for group in rules["groups"] if isinstance(group, dict)]
    custom = cos_custom.rule_groups(charm_dir, kind, [str(name) for name in names])
    return {"groups": rules["groups"] + custom}


class Observability:
    """Publishes what COS needs on every reconcile; renders the layer's log targets."""

    def __init__(self, charm: ops.CharmBase):
        charm_dir = Path(charm.charm_dir)
        self.metrics = MetricsEndpointProvider(
            charm,
            METRICS_RELATION,
            jobs=SCRAPE_JOBS,
            alert_rules=lambda: with_custom_rules(
                PROMETHEUS_RULES_DIR, charm_dir, cos_custom.PROMETHEUS_RULES
            ),
        )
        self.dashboards = GrafanaDashboardProvider(
            charm,
            DASHBOARD_RELATION,
            directory=DASHBOARDS_DIR,
            extra=lambda: cos_custom.dashboards(charm_dir),
        )
        self.logging = LokiPushApiConsumer(
            charm,
            LOGGING_RELATION,
            alert_rules=lambda: with_custom_rules(
                LOKI_RULES_DIR, charm_dir, cos_custom.LOKI_RULES
            ),
        )

    def publish(self) -> None:
        """Bring every COS relation's data up to date (writes only what changed)."""
        self.metrics.publish()
        self.dashboards.publish()
        self.logging.publish()

    def refresh_dashboards(self) -> None:
        """Re-send the dashboards on the next publish (new relation, leader or charm)."""
        self.dashboards.mark_stale()

    def problems(self) -> list[str]:
        """Remote data ignored as malformed, naming the relation (only Loki sends us any)."""
        return self.logging.problems()

    def log_targets(self, current: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
        """The layer's `log-targets`, given the plan's current ones."""
        return self.logging.log_targets(current)
