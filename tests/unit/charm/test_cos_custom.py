"""The charm author's own dashboards and alert rules (`cos_custom/`), valid and broken."""

from __future__ import annotations

import json
import logging
import pathlib

import pytest
import yaml
from cosl import LZMABase64
from ops import testing

import cos_custom
import observability
from charm import FlaskCharm
from tests.unit.charm.test_charm import run
from tests.unit.charm.test_observability import (
    cos_state,
    logging_relation,
    rule_file_groups,
    with_topology_labels,
)

DASHBOARD = {"title": "Orders", "panels": [{"type": "timeseries", "title": "orders/s"}]}
PROMETHEUS_RULES = {
    "groups": [
        {
            "name": "orders",
            "rules": [{"alert": "NoOrders", "expr": "rate(orders_total[10m]) == 0"}],
        },
        {"name": "orders-recorded", "rules": [{"record": "orders:rate", "expr": "rate(o[5m])"}]},
    ]
}
LOKI_RULES = {
    "groups": [
        {
            "name": "payments",
            "rules": [{"alert": "PaymentErrors", "expr": 'count_over_time({a="b"}[5m]) > 1'}],
        }
    ]
}


def write(path: pathlib.Path, content: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = content if isinstance(content, str) else json.dumps(content)
    path.write_text(text)


@pytest.fixture
def charm_root(tmp_path) -> pathlib.Path:
    """A charm directory with cos_custom/: valid files and broken ones."""
    root = tmp_path / "charm-root"
    custom = root / "cos_custom"
    write(custom / "grafana_dashboards" / "orders.json", DASHBOARD)
    write(custom / "grafana_dashboards" / "truncated.json", '{"panels": [')
    write(custom / "grafana_dashboards" / "no-panels.json", {"title": "x"})
    write(custom / "prometheus_alert_rules" / "orders.rules", yaml.safe_dump(PROMETHEUS_RULES))
    write(
        custom / "prometheus_alert_rules" / "no-expr.yaml",
        "groups: [{name: a, rules: [{alert: A}]}]",
    )
    write(custom / "prometheus_alert_rules" / "not-yaml.rules", "groups: [\n")
    write(
        custom / "prometheus_alert_rules" / "ours.yml",
        "groups: [{name: flask-availability, rules: [{alert: B, expr: up == 0}]}]",
    )
    write(custom / "prometheus_alert_rules" / "README.md", "not a rule file")
    write(custom / "loki_alert_rules" / "payments.rules", yaml.safe_dump(LOKI_RULES))
    write(custom / "loki_alert_rules" / "empty.rules", "")
    return root


@pytest.fixture
def custom_ctx(charm_root) -> testing.Context[FlaskCharm]:
    return testing.Context(FlaskCharm, charm_root=charm_root)


def test_valid_dashboards_ship_beside_ours_broken_ones_are_logged(custom_ctx, charm_dir, caplog):
    relation = testing.Relation("grafana-dashboard", remote_app_name="grafana")

    with caplog.at_level(logging.WARNING):
        out = custom_ctx.run(
            custom_ctx.on.relation_created(relation), cos_state(charm_dir, relation)
        )

    data = json.loads(out.get_relation(relation.id).local_app_data["dashboards"])
    assert sorted(data["templates"]) == ["file:custom-orders", "file:flask"]
    content = data["templates"]["file:custom-orders"]["content"]
    assert json.loads(LZMABase64.decompress(content)) == DASHBOARD
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        m.startswith("not shipping cos_custom/grafana_dashboards/truncated.json: not JSON")
        for m in warnings
    )
    assert (
        "not shipping cos_custom/grafana_dashboards/no-panels.json: has no `panels` list"
        in warnings
    )


def test_valid_prometheus_rules_ship_labelled_beside_ours(custom_ctx, charm_dir, caplog):
    relation = testing.Relation("metrics-endpoint", remote_app_name="prometheus")

    with caplog.at_level(logging.WARNING):
        out = run(custom_ctx, "config_changed", cos_state(charm_dir, relation))

    rules = json.loads(out.get_relation(relation.id).local_app_data["alert_rules"])
    ours = rule_file_groups(observability.PROMETHEUS_RULES_DIR)
    assert rules == {"groups": with_topology_labels(ours + PROMETHEUS_RULES["groups"])}
    warnings = {r.getMessage() for r in caplog.records if r.levelno == logging.WARNING}
    assert (
        "not shipping cos_custom/prometheus_alert_rules/no-expr.yaml: group 'a': rule 0 needs "
        "an `alert` name and an `expr` string" in warnings
    )
    assert (
        "not shipping cos_custom/prometheus_alert_rules/ours.yml: group name "
        "'flask-availability' is taken" in warnings
    )
    assert any(
        m.startswith("not shipping cos_custom/prometheus_alert_rules/not-yaml.rules: not YAML")
        for m in warnings
    )
    assert not any("README.md" in m for m in warnings)  # not a rule file: not read at all


def test_valid_loki_rules_ship_beside_ours(custom_ctx, charm_dir, caplog):
    relation = logging_relation("http://loki:3100/loki/api/v1/push")

    with caplog.at_level(logging.WARNING):
        out = run(custom_ctx, "config_changed", cos_state(charm_dir, relation))

    rules = json.loads(out.get_relation(relation.id).local_app_data["alert_rules"])
    names = [group["name"] for group in rules["groups"]]
    assert names == ["flask-logs", "payments"]
    assert rules["groups"][1]["rules"][0]["alert"] == "PaymentErrors"
    assert "not shipping cos_custom/loki_alert_rules/empty.rules: has no `groups` list" in {
        r.getMessage() for r in caplog.records
    }


def test_quiet_hook_reads_no_custom_file(custom_ctx, charm_dir, caplog):
    relation = testing.Relation("metrics-endpoint", remote_app_name="prometheus")
    out = run(custom_ctx, "config_changed", cos_state(charm_dir, relation))
    caplog.clear()

    with caplog.at_level(logging.WARNING):
        run(custom_ctx, "update_status", out)

    assert not [r for r in caplog.records if r.name == "cos_custom"]


def test_no_cos_custom_dir_ships_ours_only(tmp_path):
    assert cos_custom.dashboards(tmp_path) == {}
    assert cos_custom.rule_groups(tmp_path, cos_custom.PROMETHEUS_RULES) == []


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("[]", "has no `groups` list"),
        ("groups: [{rules: []}]", "group 0 has no `name`"),
        ("groups: [{name: a, rules: []}, {name: a, rules: []}]", "group 'a' appears twice"),
        ("groups: [{name: a}]", "group 'a' has no `rules` list"),
        ("groups: [{name: a, rules: [oops]}]", "group 'a': rule 0 is not a mapping"),
        ("groups: [{name: a, rules: [{alert: A, expr: 1}]}]", "group 'a': rule 0 needs"),
    ],
)
def test_rule_file_checks(text, why):
    with pytest.raises(cos_custom.InvalidFileError, match=why):
        cos_custom.check_rules(text)


def test_oversized_and_symlinked_files_are_skipped(tmp_path, caplog):
    rules = tmp_path / "cos_custom" / "prometheus_alert_rules"
    rules.mkdir(parents=True)
    (rules / "big.rules").write_text("#" * (cos_custom.MAX_FILE_BYTES + 1))
    (rules / "link.rules").symlink_to("/etc/passwd")

    with caplog.at_level(logging.WARNING):
        groups = cos_custom.rule_groups(tmp_path, cos_custom.PROMETHEUS_RULES)

    assert groups == []
    messages = {r.getMessage() for r in caplog.records}
    assert (
        "not shipping cos_custom/prometheus_alert_rules/link.rules: not a regular file" in messages
    )
    assert any("big.rules: larger than" in m for m in messages)
