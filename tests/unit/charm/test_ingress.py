"""The ingress v2 requirer: exact databags, the URL in env and status, bad provider data."""

from __future__ import annotations

import dataclasses
import json

import ops
import pytest
from ops import testing

from charms.flask_k8s.v0.ingress import IngressRequirer
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
        "is_port_open": "true",  # the reconcile opened 8000/tcp earlier in this same hook
    }
    assert out.opened_ports == {testing.TCPPort(8000)}
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

    env = app_env(out)
    assert env["FLASK_BASE_URL"] == "http://flask-k8s.shop:8000"
    assert out.unit_status == testing.BlockedStatus(
        "ignoring ingress: malformed `ingress` from traefik (see juju debug-log)"
    )


class BareRequirer(ops.CharmBase):
    """Only the library: publishes on relation-changed and never opens a port itself."""

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.ingress = IngressRequirer(self, port=8000)
        framework.observe(self.on["ingress"].relation_changed, self._on_changed)

    def _on_changed(self, _: ops.EventBase) -> None:
        self.ingress.publish()


BARE_META = {"name": "bare", "requires": {"ingress": {"interface": "ingress", "limit": 1}}}
BARE_APP_DATA = {"model": '"shop"', "name": '"bare"', "port": "8000", "strip-prefix": "true"}


@pytest.mark.parametrize(
    "ports",
    [
        pytest.param(frozenset(), id="none"),
        pytest.param({testing.UDPPort(8000)}, id="8000-udp"),
        pytest.param({testing.TCPPort(8001)}, id="another-tcp-port"),
    ],
)
def test_is_port_open_left_out_while_the_port_is_not_open(ports):
    ctx = testing.Context(BareRequirer, meta=BARE_META)
    # a stale `true` from when the port was open must go, not stay or turn into `false`
    rel = testing.Relation("ingress", local_app_data={"is_port_open": "true"})
    st = testing.State(
        leader=True, relations={rel}, opened_ports=ports, model=testing.Model("shop")
    )

    out = ctx.run(ctx.on.relation_changed(rel), st)

    assert out.get_relation(rel.id).local_app_data == BARE_APP_DATA


def test_is_port_open_true_once_the_port_is_open():
    ctx = testing.Context(BareRequirer, meta=BARE_META)
    rel = testing.Relation("ingress")
    opened = {testing.TCPPort(8000), testing.TCPPort(9102)}
    st = testing.State(
        leader=True, relations={rel}, opened_ports=opened, model=testing.Model("shop")
    )

    out = ctx.run(ctx.on.relation_changed(rel), st)

    assert out.get_relation(rel.id).local_app_data == {**BARE_APP_DATA, "is_port_open": "true"}
