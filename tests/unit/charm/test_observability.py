"""COS relations with ops.testing: the exact databags, and the log targets in the plan."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Mapping
from typing import Any

import pytest
import yaml
from cosl import LZMABase64
from ops import testing

import observability
from tests.unit.charm.charm_state import MODEL
from tests.unit.charm.test_charm import run, settled_state

MODEL_UUID = "12345678-aaaa-bbbb-cccc-1234567890ab"
URL_0 = "http://loki-0.loki-endpoints.cos.svc.cluster.local:3100/loki/api/v1/push"
URL_1 = "http://loki-1.loki-endpoints.cos.svc.cluster.local:3100/loki/api/v1/push"
TOPOLOGY = {
    "model": MODEL,
    "model_uuid": MODEL_UUID,
    "application": "flask-k8s",
    "unit": "flask-k8s/0",
    "charm_name": "flask-k8s",
}
RULE_LABELS = {"juju_model": MODEL, "juju_model_uuid": MODEL_UUID, "juju_application": "flask-k8s"}
TARGET_LABELS = {
    "juju_model": MODEL,
    "juju_model_uuid": MODEL_UUID,
    "juju_application": "flask-k8s",
    "juju_unit": "flask-k8s/0",
    "charm": "flask-k8s",
}
DASHBOARD_ALT_UID = "b76b185eea5a10a4"  # sha256("<model uuid>/flask-k8s/flask")[:16]
JUJU_UNIT_KEYS = {"egress-subnets", "ingress-address", "private-address"}  # Juju's own


def charm_keys(databag: Mapping[str, str]) -> dict[str, str]:
    """A unit databag without the keys Juju itself writes."""
    return {key: value for key, value in databag.items() if key not in JUJU_UNIT_KEYS}


def cos_state(charm_dir, *relations: testing.RelationBase, **kwargs: Any) -> testing.State:
    """A settled leader in a model with a known uuid, with the given COS relations."""
    model = testing.Model(name=MODEL, uuid=MODEL_UUID)
    return settled_state(charm_dir, relations=relations, model=model, **kwargs)


def endpoint(url: str) -> dict[str, str]:
    return {"endpoint": json.dumps({"url": url})}


def logging_relation(*urls: str, **kwargs: Any) -> testing.Relation:
    units = {index: endpoint(url) for index, url in enumerate(urls)}
    return testing.Relation("logging", remote_app_name="loki", remote_units_data=units, **kwargs)


def rule_file_groups(directory) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.rules")):
        groups += yaml.safe_load(path.read_text())["groups"]
    return groups


def with_topology_labels(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            **group,
            "rules": [
                {**rule, "labels": {**rule.get("labels", {}), **RULE_LABELS}}
                for rule in group["rules"]
            ],
        }
        for group in groups
    ]


def plan_targets(out: testing.State) -> dict[str, dict[str, Any]]:
    plan: dict[str, Any] = dict(out.get_container("flask-app").plan.to_dict())
    return plan.get("log-targets", {})


def target_name(out: testing.State, url: str) -> str:
    (name,) = [name for name, t in plan_targets(out).items() if t["location"] == url]
    return name


# -- metrics-endpoint ------------------------------------------------------------------------


def test_metrics_endpoint_exact_app_and_unit_data(ctx, charm_dir):
    relation = testing.Relation("metrics-endpoint", remote_app_name="prometheus")

    out = run(ctx, "config_changed", cos_state(charm_dir, relation))

    published = out.get_relation(relation.id)
    assert published.local_app_data == {
        "scrape_metadata": json.dumps(TOPOLOGY),
        "scrape_jobs": json.dumps(
            [
                {
                    "job_name": "flask",
                    "metrics_path": "/metrics",
                    "static_configs": [{"targets": ["*:9102"]}],
                }
            ]
        ),
        "alert_rules": json.dumps(
            {"groups": with_topology_labels(rule_file_groups(observability.PROMETHEUS_RULES_DIR))}
        ),
    }
    assert charm_keys(published.local_unit_data) == {
        "prometheus_scrape_unit_name": "flask-k8s/0",
        "prometheus_scrape_unit_address": "192.0.2.0",
    }


def test_metrics_endpoint_alert_rules_carry_topology_never_juju_unit(ctx, charm_dir):
    relation = testing.Relation("metrics-endpoint", remote_app_name="prometheus")

    out = run(ctx, "config_changed", cos_state(charm_dir, relation))

    rules = json.loads(out.get_relation(relation.id).local_app_data["alert_rules"])
    labels = [rule["labels"] for group in rules["groups"] for rule in group["rules"]]
    assert len(labels) == 5
    assert all(
        RULE_LABELS.items() <= label.items() and "juju_unit" not in label for label in labels
    )


# -- grafana-dashboard -----------------------------------------------------------------------


def test_grafana_dashboard_exact_app_data(ctx, charm_dir):
    relation = testing.Relation("grafana-dashboard", remote_app_name="grafana")

    out = ctx.run(ctx.on.relation_created(relation), cos_state(charm_dir, relation))

    data = json.loads(out.get_relation(relation.id).local_app_data["dashboards"])
    assert uuid.UUID(data.pop("uuid")).version == 4
    (template,) = data["templates"].values()
    content = template.pop("content")
    assert data == {
        "templates": {
            "file:flask": {
                "charm": "flask-k8s",
                "juju_topology": {k: v for k, v in TOPOLOGY.items() if k != "charm_name"},
                "inject_dropdowns": True,
                "dashboard_alt_uid": DASHBOARD_ALT_UID,
            }
        }
    }
    shipped = (observability.DASHBOARDS_DIR / "flask.json").read_text()
    assert LZMABase64.decompress(content) == shipped


def test_grafana_dashboard_not_rewritten_on_noop_events(ctx, charm_dir):
    relation = testing.Relation("grafana-dashboard", remote_app_name="grafana")
    first = ctx.run(ctx.on.relation_created(relation), cos_state(charm_dir, relation))
    written = first.get_relation(relation.id).local_app_data["dashboards"]

    out = run(ctx, "update_status", first)
    out = run(ctx, "config_changed", out)
    out = ctx.run(ctx.on.relation_changed(out.get_relation(relation.id)), out)

    assert out.get_relation(relation.id).local_app_data["dashboards"] == written


@pytest.mark.parametrize("event_name", ["upgrade_charm", "leader_elected", "relation_created"])
def test_grafana_dashboard_rewritten_with_new_uuid(ctx, charm_dir, event_name):
    relation = testing.Relation("grafana-dashboard", remote_app_name="grafana")
    first = ctx.run(ctx.on.relation_created(relation), cos_state(charm_dir, relation))
    before = json.loads(first.get_relation(relation.id).local_app_data["dashboards"])

    if event_name == "relation_created":
        out = ctx.run(ctx.on.relation_created(first.get_relation(relation.id)), first)
    else:
        out = run(ctx, event_name, first)

    after = json.loads(out.get_relation(relation.id).local_app_data["dashboards"])
    assert after["uuid"] != before["uuid"]
    assert after["templates"] == before["templates"]


# -- logging ---------------------------------------------------------------------------------


def test_logging_exact_app_data(ctx, charm_dir):
    relation = logging_relation(URL_0)

    out = run(ctx, "config_changed", cos_state(charm_dir, relation))

    loki_groups = rule_file_groups(observability.LOKI_RULES_DIR)
    scope = f'juju_model="{MODEL}", juju_model_uuid="{MODEL_UUID}", juju_application="flask-k8s"'
    for group in loki_groups:
        for rule in group["rules"]:
            rule["expr"] = rule["expr"].replace("%%juju_topology%%", scope)
    assert out.get_relation(relation.id).local_app_data == {
        "metadata": json.dumps(TOPOLOGY),
        "alert_rules": json.dumps({"groups": with_topology_labels(loki_groups)}),
    }
    assert charm_keys(out.get_relation(relation.id).local_unit_data) == {}


def test_logging_adds_one_target_per_url_with_topology_labels(ctx, charm_dir, calls):
    settled = run(ctx, "pebble_ready", cos_state(charm_dir))
    calls.clear()
    relation = logging_relation(URL_0, URL_1)

    out = ctx.run(
        ctx.on.relation_changed(relation, remote_unit=1), settled_with(settled, relation)
    )

    targets = plan_targets(out)
    assert sorted(t["location"] for t in targets.values()) == [URL_0, URL_1]
    for name, target in targets.items():
        assert name.startswith("logging-")
        assert target == {
            "override": "replace",
            "type": "loki",
            "location": target["location"],
            "services": ["all"],
            "labels": TARGET_LABELS,
        }
    assert calls.log == []  # a log target is not part of any service: no restart, no reload


def settled_with(st: testing.State, *relations: testing.RelationBase) -> testing.State:
    """`st` with relations added or replaced (same id)."""
    ids = {relation.id for relation in relations}
    kept = {relation for relation in st.relations if relation.id not in ids}
    return dataclasses.replace(st, relations=kept | set(relations))


def test_logging_changed_url_gets_new_target_and_disables_old(ctx, charm_dir, calls):
    relation = logging_relation(URL_0)
    first = run(ctx, "pebble_ready", cos_state(charm_dir, relation))
    old_name = target_name(first, URL_0)
    moved = dataclasses.replace(relation, remote_units_data={0: endpoint(URL_1)})
    calls.clear()

    out = ctx.run(ctx.on.relation_changed(moved, remote_unit=0), settled_with(first, moved))

    targets = plan_targets(out)
    new_name = target_name(out, URL_1)
    assert new_name != old_name
    assert targets[old_name] == {
        "override": "replace",
        "type": "loki",
        "location": URL_0,
        "services": ["-all"],
    }
    assert targets[new_name]["services"] == ["all"]
    assert calls.log == []


def test_logging_departed_unit_disables_its_target(ctx, charm_dir):
    relation = logging_relation(URL_0, URL_1)
    first = run(ctx, "pebble_ready", cos_state(charm_dir, relation))
    departed = dataclasses.replace(relation, remote_units_data={0: endpoint(URL_0)})

    out = ctx.run(
        ctx.on.relation_departed(departed, remote_unit=1, departing_unit=1),
        settled_with(first, departed),
    )

    targets = plan_targets(out)
    assert targets[target_name(out, URL_0)]["services"] == ["all"]
    assert targets[target_name(out, URL_1)]["services"] == ["-all"]


def test_logging_broken_disables_every_target_and_keeps_other_relations(ctx, charm_dir, calls):
    logging = logging_relation(URL_0)
    metrics = testing.Relation("metrics-endpoint", remote_app_name="prometheus")
    first = run(ctx, "pebble_ready", cos_state(charm_dir, logging, metrics))
    calls.clear()

    out = ctx.run(ctx.on.relation_broken(first.get_relation(logging.id)), first)

    assert plan_targets(out)[target_name(out, URL_0)]["services"] == ["-all"]
    assert (
        out.get_relation(metrics.id).local_app_data
        == first.get_relation(metrics.id).local_app_data
    )
    assert calls.log == []
    assert out.unit_status == testing.ActiveStatus("")


def test_logging_broken_disables_targets_even_while_blocked(ctx, charm_dir):
    logging = logging_relation(URL_0)
    first = run(ctx, "pebble_ready", cos_state(charm_dir, logging))
    blocked = dataclasses.replace(first, config={"webserver-workers": 0})

    out = ctx.run(ctx.on.relation_broken(blocked.get_relation(logging.id)), blocked)

    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert plan_targets(out)[target_name(out, URL_0)]["services"] == ["-all"]


def test_logging_targets_survive_noop_events_untouched(ctx, charm_dir, calls):
    first = run(ctx, "pebble_ready", cos_state(charm_dir, logging_relation(URL_0)))
    calls.clear()

    out = run(ctx, "update_status", first)

    assert out.get_container("flask-app").layers == first.get_container("flask-app").layers
    assert calls.log == []


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        json.dumps(["http://x"]),
        json.dumps({"url": 42}),
        json.dumps({"url": "ftp://loki:3100/push"}),
        json.dumps({}),
        "",
    ],
)
def test_logging_malformed_endpoint_skipped_others_still_served(ctx, charm_dir, raw):
    relation = testing.Relation(
        "logging",
        remote_app_name="loki",
        remote_units_data={0: {"endpoint": raw}, 1: endpoint(URL_1)},
    )
    metrics = testing.Relation("metrics-endpoint", remote_app_name="prometheus")

    out = ctx.run(
        ctx.on.relation_changed(relation, remote_unit=0), cos_state(charm_dir, relation, metrics)
    )

    assert [t["location"] for t in plan_targets(out).values()] == [URL_1]
    assert out.get_relation(relation.id).local_app_data.keys() == {"metadata", "alert_rules"}
    assert "scrape_jobs" in out.get_relation(metrics.id).local_app_data
    assert out.unit_status == (
        testing.BlockedStatus(
            "ignoring logging: malformed `endpoint` from loki/0 (see juju debug-log)"
        )
        if raw
        else testing.ActiveStatus("")  # no endpoint yet is not malformed
    )


# -- non-leader ------------------------------------------------------------------------------


def test_non_leader_writes_unit_data_only(ctx, charm_dir):
    relations = (
        testing.Relation("metrics-endpoint", remote_app_name="prometheus"),
        testing.Relation("grafana-dashboard", remote_app_name="grafana"),
        logging_relation(URL_0),
    )
    st = cos_state(charm_dir, *relations, leader=False)

    out = run(ctx, "pebble_ready", st)
    out = ctx.run(ctx.on.relation_created(relations[1]), out)

    for relation in relations:
        assert out.get_relation(relation.id).local_app_data == {}, relation.endpoint
    assert charm_keys(out.get_relation(relations[0].id).local_unit_data) == {
        "prometheus_scrape_unit_name": "flask-k8s/0",
        "prometheus_scrape_unit_address": "192.0.2.0",
    }
    assert target_name(out, URL_0).startswith("logging-")  # every unit forwards its logs
