"""The rabbitmq relation: request, environment, lifecycle, secrecy and bad provider data.

No packaged provider library exists for the `rabbitmq` interface (the provider charms ship
theirs as a Charmhub library), so the provider's side is written here from the wire format
that rabbitmq-k8s (app databag) and rabbitmq-server (unit databags) publish.
"""

from __future__ import annotations

import pytest
from ops import testing

from tests.unit.charm import integration_helpers as helpers
from tests.unit.charm.test_charm import settled_state

APP = "flask-k8s"
PASSWORD = "s3cr3t-Pa55/w:rd"  # characters a URI must encode


def rabbit_vars(out: testing.State) -> dict[str, str]:
    return helpers.app_vars(out, "RABBITMQ_")


def k8s_broker(**app_data: str) -> testing.Relation:
    """rabbitmq-k8s: the answer is in its app databag; its units publish no hostname."""
    data = {"hostname": "rabbitmq-k8s.shop.svc.cluster.local", "password": PASSWORD}
    data.update(app_data)
    return testing.Relation(
        "rabbitmq",
        remote_app_name="rabbitmq-k8s",
        remote_app_data={key: value for key, value in data.items() if value},
        remote_units_data={0: {"ingress-address": "10.1.0.7"}},
    )


def run_changed(ctx, charm_dir, relation: testing.Relation, **kwargs) -> testing.State:
    st = settled_state(charm_dir, relations={relation}, **kwargs)
    return ctx.run(ctx.on.relation_changed(relation, remote_unit=0), st)


# -- the request ------------------------------------------------------------------------------


def test_leader_asks_for_a_user_named_after_the_app_on_the_root_vhost(ctx, charm_dir):
    request = helpers.our_request(ctx, charm_dir, "rabbitmq")

    assert request == {"username": APP, "vhost": "/"}


def test_non_leader_writes_nothing(ctx, charm_dir):
    assert helpers.our_request(ctx, charm_dir, "rabbitmq", leader=False) == {}


# -- the environment --------------------------------------------------------------------------


def test_rabbitmq_k8s_answer_gives_paas_charm_variables(ctx, charm_dir):
    out = run_changed(ctx, charm_dir, k8s_broker())

    host = "rabbitmq-k8s.shop.svc.cluster.local"
    netloc = f"{APP}:s3cr3t-Pa55%2Fw%3Ard@{host}:5672"
    assert rabbit_vars(out) == {
        "RABBITMQ_CONNECT_STRING": f"amqp://{netloc}/%2F",
        "RABBITMQ_SCHEME": "amqp",
        "RABBITMQ_NETLOC": netloc,
        "RABBITMQ_PATH": "/%2F",
        "RABBITMQ_PARAMS": "",
        "RABBITMQ_QUERY": "",
        "RABBITMQ_FRAGMENT": "",
        "RABBITMQ_USERNAME": APP,
        "RABBITMQ_PASSWORD": PASSWORD,
        "RABBITMQ_HOSTNAME": host,
        "RABBITMQ_PORT": "5672",
        "RABBITMQ_VHOST": "/",
        "RABBITMQ_CONNECT_STRINGS": f"amqp://{netloc}/%2F",
    }
    assert out.unit_status == testing.ActiveStatus()


def test_rabbitmq_server_answer_in_unit_databags_lists_every_unit(ctx, charm_dir):
    relation = testing.Relation(
        "rabbitmq",
        remote_app_name="rabbitmq-server",
        remote_units_data={
            0: {"hostname": "10.0.0.10", "password": "pw"},
            1: {"hostname": "fd00::11", "password": "pw"},
        },
    )

    out = run_changed(ctx, charm_dir, relation)

    env = rabbit_vars(out)
    assert env["RABBITMQ_CONNECT_STRING"] == f"amqp://{APP}:pw@10.0.0.10:5672/%2F"
    assert env["RABBITMQ_CONNECT_STRINGS"] == (
        f"amqp://{APP}:pw@10.0.0.10:5672/%2F,amqp://{APP}:pw@[fd00::11]:5672/%2F"
    )
    assert env["RABBITMQ_HOSTNAME"] == "10.0.0.10"


# -- lifecycle --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "relation",
    [
        testing.Relation("rabbitmq"),  # nothing yet
        k8s_broker(password=""),  # a hostname, no password yet
        testing.Relation("rabbitmq", remote_units_data={0: {"hostname": "10.0.0.10"}}),
    ],
)
def test_incomplete_answer_waits_naming_the_relation_and_starts_without(
    ctx, charm_dir, calls, relation
):
    st = settled_state(charm_dir, relations={relation})

    out = ctx.run(ctx.on.pebble_ready(st.get_container("flask-app")), st)

    assert out.unit_status == testing.WaitingStatus(
        "waiting for the rabbitmq relation to publish its hostname and password"
    )
    assert rabbit_vars(out) == {}
    assert calls.count("start") == 1


def test_answer_withdrawn_keeps_serving_with_what_it_had(ctx, charm_dir, calls):
    before = run_changed(ctx, charm_dir, k8s_broker())
    calls.clear()
    st, relation = helpers.withdrawn(before, "rabbitmq")

    out = ctx.run(ctx.on.relation_changed(relation), st)

    assert rabbit_vars(out) == rabbit_vars(before)
    assert calls.log == []
    assert out.unit_status.name == "waiting"


def test_relation_removed_drops_variables_with_one_restart(ctx, charm_dir, calls):
    before = run_changed(ctx, charm_dir, k8s_broker())
    assert rabbit_vars(before)
    calls.clear()

    out = helpers.removed(ctx, before, "rabbitmq")

    assert rabbit_vars(out) == {}
    assert calls.count("restart") == 1
    assert out.unit_status == testing.ActiveStatus()


def test_password_appears_in_no_log_databag_or_status(ctx, charm_dir):
    out = run_changed(ctx, charm_dir, k8s_broker())
    assert rabbit_vars(out)["RABBITMQ_PASSWORD"] == PASSWORD  # the app has it

    assert not helpers.leaks(ctx, out, "s3cr3t")


# -- bad provider data ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("app_data", "says"),
    [
        ({"hostname": "host name with spaces"}, "invalid hostname"),
        ({"hostname": "h/../x@evil"}, "invalid hostname"),
        ({"password": "bad\npassword"}, "unusable password"),
        ({"password": "x" * 5000}, "unusable password"),
    ],
)
def test_malformed_answer_blocks_naming_relation_without_echoing_the_password(
    ctx, charm_dir, app_data, says
):
    out = run_changed(ctx, charm_dir, k8s_broker(**app_data))

    assert out.unit_status.name == "blocked"
    assert "the rabbitmq relation" in out.unit_status.message
    assert says in out.unit_status.message
    assert "password\n" not in out.unit_status.message and "s3cr3t" not in out.unit_status.message
    assert rabbit_vars(out) == {}
