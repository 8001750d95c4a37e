"""COS end to end: what the charm publishes, against real receivers.

The scrape job, rules and dashboard go to a real Prometheus; the Pebble log targets to a Loki
push receiver in this process.

One deployment serves the module; the tests run in order (traffic, then queries, then alerts;
then logs).
"""

import json
import re
import time
import uuid

import pytest

from juju_local.deployment import Deployment
from juju_local.loki_receiver import URL as LOKI_URL
from juju_local.loki_receiver import LokiReceiver
from juju_local.prometheus import LocalPrometheus
from tests.e2e import rock_runner

DASHBOARD = rock_runner.REPO / "src" / "cos" / "grafana_dashboards" / "flask.json"
TIMEOUT = 30.0
# Grafana's variables, as Grafana would expand them for a one-unit deployment.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$juju_model": ".*",
    "$juju_model_uuid": ".*",
    "$juju_application": ".*",
    "$juju_unit": ".*",
}


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    """The sample rock deployed with the charm and integrated with Prometheus."""
    deployed = Deployment(tmp_path_factory.mktemp("local-juju") / "cos")
    try:
        deployed.deploy()
        deployed.integrate_prometheus()
        yield deployed
    finally:
        deployed.remove()


@pytest.fixture(scope="module")
def loki():
    """A Loki push receiver on 127.0.0.1, for the module."""
    with LokiReceiver() as receiver:
        yield receiver


def _wait(predicate, timeout: float = TIMEOUT) -> bool:
    return rock_runner.wait_until(predicate, timeout)


def _value(prometheus: LocalPrometheus, expression: str) -> float:
    result = prometheus.query(expression)
    return float(result[0]["value"][1]) if result else 0.0


def _exporter_values() -> dict[str, float]:
    return {
        "flask_requests": rock_runner.settled_metric("flask_requests"),
        'flask_response_code{status="200"}': rock_runner.metric(
            "flask_response_code", 'status="200"'
        ),
        'flask_response_code{status="500"}': rock_runner.metric(
            "flask_response_code", 'status="500"'
        ),
        "flask_request_duration_count": rock_runner.metric("flask_request_duration_count"),
    }


def _published_rules(deployment: Deployment) -> list[dict]:
    (relation,) = deployment.model.relations("metrics-endpoint")
    data = deployment.model.relation_data(relation.id)[deployment.model.state().app]
    return [rule for group in json.loads(data["alert_rules"])["groups"] for rule in group["rules"]]


def _probe_requests(deployment: Deployment) -> int:
    """Requests of the charm's health probe (`GET /` every 10 s), from the access log."""
    log = deployment.container.log_path.read_text()
    return sum(
        '"GET / HTTP/1.0" 200' in line and '"flask-k8s"' in line for line in log.splitlines()
    )


def test_prometheus_holds_exact_request_counts(deployment: Deployment):
    prometheus = deployment.prometheus
    rock_runner.get("/status/500")  # each series exists only once gunicorn has counted it
    rock_runner.get("/")
    assert _wait(lambda: len(prometheus.query("flask_response_code")) >= 2)
    before, probes_before = _exporter_values(), _probe_requests(deployment)
    ok, errors = 7, 4

    for _ in range(ok):
        assert rock_runner.get("/")[0] == 200
    for _ in range(errors):
        assert rock_runner.get("/status/500")[0] == 500

    def expected() -> dict[str, float]:
        probes = _probe_requests(deployment) - probes_before  # the health check's own requests
        return {
            "flask_requests": before["flask_requests"] + ok + errors + probes,
            'flask_response_code{status="200"}': before['flask_response_code{status="200"}']
            + ok
            + probes,
            'flask_response_code{status="500"}': before['flask_response_code{status="500"}']
            + errors,
            "flask_request_duration_count": before["flask_request_duration_count"]
            + ok
            + errors
            + probes,
        }

    assert _wait(lambda: all(_value(prometheus, q) == v for q, v in expected().items())), {
        q: (_value(prometheus, q), v) for q, v in expected().items()
    }
    assert _value(prometheus, 'flask_request_duration{quantile="0.99"}') > 0


def _dashboard_expressions(datasource: str) -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        target["expr"]
        for panel in dashboard["panels"]
        if panel["datasource"]["type"] == datasource
        for target in panel["targets"]
    ]


def _expand(expression: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expression = expression.replace(variable, value)
    assert "$" not in expression.replace("${1}", ""), expression
    return expression


def test_every_dashboard_expression_evaluates(deployment: Deployment):
    for expression in _dashboard_expressions("prometheus"):
        result = deployment.prometheus.query(_expand(expression))  # raises on a PromQL error
        # Gunicorn has logged no error, so its error counter does not exist yet.
        assert result or "gunicorn_log_error" in expression, f"no data for: {expression}"


def test_every_alert_rule_expression_evaluates_and_rules_are_healthy(deployment: Deployment):
    rules = _published_rules(deployment)
    for rule in rules:
        deployment.prometheus.query(rule["expr"])  # raises on a PromQL error
    health = deployment.prometheus.rule_health()
    assert _wait(lambda: all(h == "ok" for h, _ in deployment.prometheus.rule_health().values()))
    assert set(health) == {rule["alert"] for rule in rules}


def test_5xx_burst_makes_the_5xx_alert_pending(deployment: Deployment):
    prometheus = deployment.prometheus
    for _ in range(30):
        assert rock_runner.get("/status/500")[0] == 500

    def pending() -> list[dict]:
        return [
            alert
            for alert in prometheus.alerts()
            if alert["labels"]["alertname"] == "FlaskHigh5xxRatio"
        ]

    assert _wait(pending, timeout=60), prometheus.alerts()
    (alert,) = pending()
    assert alert["state"] == "pending"  # production `for: 5m`: not firing yet
    assert alert["labels"]["juju_application"] == "flask-k8s"
    assert alert["labels"]["severity"] == "critical"


def _plan_targets(deployment: Deployment) -> dict:
    import yaml

    plan = yaml.safe_load(deployment.container.pebble("plan").stdout)
    return plan.get("log-targets", {})


def test_integrate_loki_forwards_access_log_with_our_labels(deployment: Deployment, loki):
    master = rock_runner.gunicorn_master_pid()

    relation_id = deployment.integrate_loki(LOKI_URL)
    marker = uuid.uuid4().hex
    assert rock_runner.get(f"/status/200?marker={marker}")[0] == 200

    line = loki.wait_for_line(marker)
    assert line is not None, f"no pushed line has {marker}; rejected: {loki.rejected}"
    assert re.search(rf'"GET /status/200\?marker={marker} HTTP/1\.1" 200 ', line.line)
    model = deployment.model.state()
    assert line.labels == {
        "juju_model": model.model_name,
        "juju_model_uuid": model.model_uuid,
        "juju_application": "flask-k8s",
        "juju_unit": "flask-k8s/0",
        "charm": "flask-k8s",
        "pebble_service": "flask",
    }
    assert rock_runner.gunicorn_master_pid() == master  # a log target restarts nothing
    assert [r.id for r in deployment.model.relations("logging")] == [relation_id]


def test_remove_loki_relation_stops_pushes(deployment: Deployment, loki):
    (relation,) = deployment.model.relations("logging")

    deployment.remove_relation(relation.id)

    (target,) = _plan_targets(deployment).values()
    assert target["services"] == ["-all"]
    sent_ns = time.time_ns()
    marker = uuid.uuid4().hex
    assert rock_runner.get(f"/status/200?marker={marker}")[0] == 200
    # Pebble flushes every second: four flush periods without our line prove the target off.
    assert loki.wait_for_line(marker, timeout=4.0) is None
    assert [line.line for line in loki.lines() if line.timestamp_ns >= sent_ns] == []
