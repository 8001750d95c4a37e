"""The Grafana dashboard shipped in src/cos/: what Grafana and an on-call engineer need."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

import observability

DASHBOARDS = sorted(observability.DASHBOARDS_DIR.glob("*.json"))
COUNTERS = ("flask_requests", "flask_response_code", "gunicorn_log_error")
COUNTER_PARTS = ("flask_request_duration_sum", "flask_request_duration_count")


def _dashboard() -> dict[str, Any]:
    (path,) = DASHBOARDS
    return json.loads(path.read_text())


def _targets(dashboard: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(panel, target) for panel in dashboard["panels"] for target in panel["targets"]]


def test_dashboard_has_uid_and_integer_version():
    dashboard = _dashboard()

    assert isinstance(dashboard["uid"], str) and 0 < len(dashboard["uid"]) <= 40
    assert isinstance(dashboard["version"], int)


def test_panels_use_the_template_datasources():
    for panel, target in _targets(_dashboard()):
        kind = panel["datasource"]["type"]
        expected = {"prometheus": "${prometheusds}", "loki": "${lokids}"}[kind]
        assert panel["datasource"]["uid"] == expected, panel["title"]
        assert target["datasource"] == panel["datasource"], panel["title"]


def test_dashboard_has_the_panels_on_call_needs():
    titles = {panel["title"]: panel for panel in _dashboard()["panels"]}

    assert set(titles) >= {
        "Requests per second",
        "Responses per second by status class",
        "5xx error ratio",
        "Request latency",
        "Gunicorn workers",
        "Application logs",
    }
    assert titles["Application logs"]["type"] == "logs"
    assert titles["Application logs"]["datasource"]["type"] == "loki"


@pytest.mark.parametrize("counter", COUNTERS + COUNTER_PARTS)
def test_every_counter_is_read_through_a_rate_window(counter):
    exprs = [
        target["expr"]
        for panel, target in _targets(_dashboard())
        if panel["datasource"]["type"] == "prometheus"
    ]
    uses = [match for expr in exprs for match in re.finditer(rf"\b{counter}\b", expr)]

    assert uses, f"no panel shows {counter}"
    for match in uses:
        before = match.string[: match.start()]
        assert re.search(r"\b(rate|increase)\($", before), (
            f"{counter} read as a lifetime counter in: {match.string}"
        )
        after = match.string[match.end() :]
        assert re.match(r"(\{[^}]*\})?\[\$__rate_interval\]", after), match.string


def test_latency_quantiles_are_the_exporters():
    exprs = " ".join(target["expr"] for _, target in _targets(_dashboard()))

    assert 'flask_request_duration{quantile=~"0.5|0.9|0.99"}' in exprs
