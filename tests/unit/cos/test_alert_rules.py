"""The alert rules shipped in src/cos/: valid for Prometheus, and proven by promtool tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import observability
from charms.flask_k8s.v0.loki_push_api import scope_logql

REPO = Path(__file__).resolve().parents[3]
PROMTOOL_TESTS = sorted((REPO / "tests" / "promtool").glob("*.yaml"))
RULE_FILES = sorted(observability.PROMETHEUS_RULES_DIR.glob("*.rules"))
TOPOLOGY = {"model": "shop", "model_uuid": "1234", "application": "flask-k8s"}

needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool (Debian's prometheus) is not installed"
)


def _promtool(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["promtool", *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


@needs_promtool
def test_prometheus_rules_pass_promtool_check():
    result = _promtool("check", "rules", *map(str, RULE_FILES))

    assert RULE_FILES
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
@pytest.mark.parametrize("test_file", PROMTOOL_TESTS, ids=lambda path: path.name)
def test_promtool_unit_tests_pass(test_file: Path):
    result = _promtool("test", "rules", test_file.name, cwd=test_file.parent)

    assert result.returncode == 0, result.stdout + result.stderr


def test_every_prometheus_alert_has_a_promtool_test():
    alerts = {
        rule["alert"]
        for group in observability.load_rule_files(observability.PROMETHEUS_RULES_DIR)["groups"]
        for rule in group["rules"]
    }
    tested = "".join(path.read_text() for path in PROMTOOL_TESTS)

    assert alerts == {
        "FlaskUnitTargetDown",
        "FlaskMetricsAbsent",
        "FlaskHigh5xxRatio",
        "FlaskHighLatencyP90",
        "FlaskHighLatencyP99",
    }
    assert all(f"alertname: {alert}" in tested for alert in alerts)


def test_prometheus_rates_use_windows_not_lifetime_counters():
    rules = observability.load_rule_files(observability.PROMETHEUS_RULES_DIR)["groups"]
    exprs = [rule["expr"] for group in rules for rule in group["rules"]]

    for expr in exprs:
        if "flask_requests" in expr or "flask_response_code" in expr:
            assert "increase(flask_requests[5m])" in expr
            assert 'increase(flask_response_code{status=~"5.."}[5m])' in expr


def test_loki_rules_scope_logql_to_the_application():
    rules = observability.load_rule_files(observability.LOKI_RULES_DIR)

    scoped = scope_logql(rules, TOPOLOGY)

    (expr,) = [rule["expr"] for group in scoped["groups"] for rule in group["rules"]]
    assert "%%" not in expr
    assert (
        '{juju_model="shop", juju_model_uuid="1234", juju_application="flask-k8s", '
        'pebble_service="flask"} |= "[ERROR]" [5m]'
    ) in expr
    assert "count_over_time(" in expr
