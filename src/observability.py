"""The charm's COS wiring: what Prometheus scrapes and which alert rules it evaluates.

The rock's statsd_exporter turns Gunicorn's StatsD metrics into Prometheus metrics on :9102;
every unit is scraped there. Alert rules live as files in `src/cos/`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ops

import workload
from charms.flask_k8s.v0.prometheus_scrape import MetricsEndpointProvider

METRICS_RELATION = "metrics-endpoint"
SCRAPE_JOBS = [
    {
        "job_name": "flask",
        "metrics_path": "/metrics",
        "static_configs": [{"targets": [f"*:{workload.METRICS_PORT}"]}],
    }
]
PROMETHEUS_RULES_DIR = Path(__file__).parent / "cos" / "prometheus_alert_rules"


def load_rule_files(directory: Path) -> dict[str, Any]:
    """All rule groups of the `*.rules`/`*.yaml` files in `directory`, in file-name order."""
    import yaml  # only the leader, with a relation to write, reads rule files

    groups: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.rules")) + sorted(directory.glob("*.yaml")):
        groups += (yaml.safe_load(path.read_text()) or {}).get("groups", [])
    return {"groups": groups}


class Observability:
    """Publishes the scrape job, unit addresses and alert rules on every reconcile."""

    def __init__(self, charm: ops.CharmBase):
        self.metrics = MetricsEndpointProvider(
            charm,
            METRICS_RELATION,
            jobs=SCRAPE_JOBS,
            alert_rules=lambda: load_rule_files(PROMETHEUS_RULES_DIR),
        )

    def publish(self) -> None:
        """Bring every COS relation's data up to date (writes only what changed)."""
        self.metrics.publish()
