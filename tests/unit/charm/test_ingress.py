"""The ingress v2 requirer: exact databags, the URL in env and status, bad provider data."""

from __future__ import annotations

import dataclasses
import json

import pytest
from ops import testing

from tests.unit.charm.charm_state import app_env, state

URL = "http://ingress.example/shop-flask-k8s"
JUJU_KEYS = {"egress-subnets", "ingress-address", "private-address"}


def ours(databag: dict[str, str]) -> dict[str, str]:
    """Return the databag without the keys Juju itself writes."""
    return {key: value for key, value in databag.items() if key not in JUJU_KEYS}


def ingress(url_data: str | None = None) -> testing.Relation:
    remote = {"ingress": url_data} if url_data is not None else {}
    return testing.Relation("ingress", remote_app_name="traefik", remote_app_data=remote)


def test_ingress_joined_leader_publishes_app_and_unit_data(ctx, charm_dir):
    rel = ingress()

    out = ctx.run(ctx.on.relation_joined(rel, remote_unit=0), state(charm_dir, relations={rel}))

    published = out.get_relation(rel.id)
    assert published.local_app_data == {
        "model": '"shop"',
        "name": '"flask-k8s"',
        "port": "8000",
        "strip-prefix": "true",
    }
    assert ours(dict(published.local_unit_data)) == {
        "host": '"flask-k8s-0.flask-k8s-endpoints.shop.svc.cluster.local"',
        "ip": '"192.0.2.0"',
    }


def test_ingress_non_leader_publishes_only_unit_data(ctx, charm_dir):
    rel = ingress()

    out = ctx.run(ctx.on.relation_changed(rel), state(charm_dir, leader=False, relations={rel}))

    published = out.get_relation(rel.id)
    assert published.local_app_data == {}
    assert set(ours(dict(published.local_unit_data))) == {"host", "ip"}


def test_update_status_republishes_changed_pod_ip(ctx, charm_dir):
    rel = ingress()
    st = state(charm_dir, relations={rel})
    first = ctx.run(ctx.on.relation_changed(rel), st)
    moved = testing.Network(
        "ingress", bind_addresses=[testing.BindAddress([testing.Address("10.1.2.3")])]
    )

    out = ctx.run(ctx.on.update_status(), dataclasses.replace(first, networks={moved}))

    assert out.get_relation(rel.id).local_unit_data["ip"] == '"10.1.2.3"'


def test_ingress_url_reaches_env_and_status(ctx, charm_dir):
    rel = ingress(json.dumps({"url": URL}))

    out = ctx.run(ctx.on.relation_changed(rel), state(charm_dir, relations={rel}))

    env = app_env(out)
    assert env["FLASK_BASE_URL"] == URL
    assert out.unit_status == testing.ActiveStatus(f"serving at {URL}")


def test_ingress_broken_forgets_url(ctx, charm_dir):
    rel = ingress(json.dumps({"url": URL}))
    served = ctx.run(ctx.on.relation_changed(rel), state(charm_dir, relations={rel}))

    out = ctx.run(ctx.on.relation_broken(served.get_relation(rel.id)), served)

    env = app_env(out)
    assert env["FLASK_BASE_URL"] == "http://flask-k8s.shop:8000"
    assert out.unit_status == testing.ActiveStatus("")


@pytest.mark.parametrize(
    "data",
    ["not json", json.dumps(["a"]), json.dumps({"url": 3}), json.dumps({"url": "ftp://x"}), "{}"],
)
def test_ingress_malformed_provider_data_means_no_url(ctx, charm_dir, data):
    rel = ingress(data)

    out = ctx.run(ctx.on.relation_changed(rel), state(charm_dir, relations={rel}))

    assert out.unit_status == testing.ActiveStatus("")
