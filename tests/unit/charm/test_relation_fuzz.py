"""Any relation data, on any endpoint, ends the hook without an uncaught exception.

Remote (and peer) values are drawn from plain text, JSON of every shape, JSON nested far deeper
than the interpreter's stack, oversized values, and well-formed values. When a value the charm
reads is malformed, the status names the relation; otherwise the app serves (Active).
"""

from __future__ import annotations

import json
import pathlib
import tempfile

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from ops import testing

import migrations
import secret_key
from charm import FlaskCharm
from charms.flask_k8s.v0 import databags
from tests.unit.charm.charm_state import container
from tests.unit.charm.test_charm import app_secret

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
).map(json.dumps)
_deep = st.integers(min_value=900, max_value=20_000).flatmap(
    lambda depth: st.sampled_from(
        ["[" * depth + "]" * depth, '{"url": ' * depth + "1" + "}" * depth, "[" * depth]
    )
)
_huge = st.integers(min_value=60_000, max_value=80_000).map(lambda n: json.dumps({"url": "a" * n}))
_urls = st.one_of(
    st.text(max_size=30).map(lambda tail: json.dumps({"url": "http://" + tail})),
    st.sampled_from(
        [
            json.dumps({"url": "http://loki:3100/loki/api/v1/push"}),
            json.dumps({"url": "https://ingress.example/shop-flask"}),
            json.dumps({"url": "http://x/\u202e\n"}),
            json.dumps({"url": "http://" + "a" * 5000}),
        ]
    ),
)
VALUES = st.one_of(st.text(max_size=40), _json, _deep, _huge, _urls)


def _bag(keys: list[str]) -> st.SearchStrategy[dict[str, str]]:
    return st.dictionaries(st.sampled_from(keys) | st.text(min_size=1, max_size=12), VALUES)


FUZZ = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example],
)


def _run(relation: testing.RelationBase, *, leader: bool = True, peer=None) -> testing.State:
    """Run relation-changed with `relation` next to a settled peer relation; return the state."""
    charm_dir = pathlib.Path(tempfile.mkdtemp())
    secret = app_secret()
    if peer is None:
        peer = testing.PeerRelation(
            secret_key.PEER, local_app_data={secret_key.SECRET_ID_KEY: secret.id}
        )
    relations = {peer} if relation is peer else {peer, relation}
    st_in = testing.State(
        leader=leader,
        relations=relations,
        containers={container(charm_dir)},
        secrets={secret},
        model=testing.Model(name="shop"),
    )
    ctx = testing.Context(FlaskCharm)
    if isinstance(relation, testing.PeerRelation):
        remote_unit = min(relation.peers_data, default=None)
    else:
        remote_unit = min(getattr(relation, "remote_units_data", {}), default=None)
    return ctx.run(ctx.on.relation_changed(relation, remote_unit=remote_unit), st_in)


def _assert_status(out: testing.State, endpoint: str, bad: bool) -> None:
    status = out.unit_status
    if bad:
        assert endpoint in status.message, status
    else:
        assert isinstance(status, testing.ActiveStatus), status


def _malformed_url(raw: str | None) -> bool:
    return bool(raw) and databags.url_field(raw) is None


@FUZZ
@given(units=st.lists(_bag(["endpoint"]), min_size=1, max_size=3), app=_bag(["endpoint"]))
def test_logging_any_unit_data(units, app):
    relation = testing.Relation(
        "logging",
        remote_app_name="loki",
        remote_app_data=app,
        remote_units_data=dict(enumerate(units)),
    )

    out = _run(relation)

    _assert_status(out, "logging", any(_malformed_url(unit.get("endpoint")) for unit in units))


@FUZZ
@given(app=_bag(["ingress"]), unit=_bag(["ingress", "url"]), leader=st.booleans())
def test_ingress_any_provider_data(app, unit, leader):
    relation = testing.Relation(
        "ingress", remote_app_name="traefik", remote_app_data=app, remote_units_data={0: unit}
    )

    out = _run(relation, leader=leader)

    _assert_status(out, "ingress", _malformed_url(app.get("ingress")))


@FUZZ
@given(
    endpoint=st.sampled_from(["metrics-endpoint", "grafana-dashboard"]),
    app=_bag(["scrape_jobs", "alert_rules", "dashboards", "uuid"]),
    unit=_bag(["prometheus_scrape_unit_address", "grafana_url"]),
)
def test_cos_endpoints_we_only_write_ignore_any_remote_data(endpoint, app, unit):
    relation = testing.Relation(
        endpoint, remote_app_name="cos", remote_app_data=app, remote_units_data={0: unit}
    )

    out = _run(relation)

    _assert_status(out, endpoint, bad=False)


def _bad_secret_data(data: dict[str, str]) -> bool:
    raw_id = data.get(secret_key.SECRET_ID_KEY)
    raw_generation = data.get(secret_key.GENERATION_KEY)
    bad_id = bool(raw_id) and secret_key._SECRET_ID.fullmatch(raw_id) is None  # noqa: SLF001
    bad_generation = bool(raw_generation) and secret_key._generation(data) is None  # noqa: SLF001
    return bad_id or bad_generation


SECRET_KEYS = [secret_key.SECRET_ID_KEY, secret_key.GENERATION_KEY]
MIGRATION_KEYS = [
    migrations.WANT_KEY,
    migrations.RESULT_KEY,
    migrations.LEASE_KEY,
    migrations.MIGRATED_KEY,
    migrations.SERIAL_KEY,
    migrations.RETRY_KEY,
]


@FUZZ
@given(app=_bag(SECRET_KEYS), peers=_bag(SECRET_KEYS), leader=st.booleans())
def test_secret_storage_any_secret_key_data(app, peers, leader):
    peer = testing.PeerRelation(secret_key.PEER, local_app_data=app, peers_data={1: peers})

    out = _run(peer, leader=leader, peer=peer)

    bad = _bad_secret_data(app)
    status = out.unit_status
    if bad:
        assert secret_key.PEER in status.message, status
    elif leader or app.get(secret_key.SECRET_ID_KEY):
        # A valid-looking id of a secret that does not exist: the leader makes a new one, and
        # the others wait for it.
        assert isinstance(status, (testing.ActiveStatus, testing.WaitingStatus)), status
    if leader:  # the leader repaired what it could: the counter is a number again
        generation = out.get_relation(peer.id).local_app_data.get(secret_key.GENERATION_KEY)
        assert not generation or generation.isdigit()  # "" is absent, as in Juju


@settings(FUZZ, phases=[Phase.generate])  # no shrinking: an expected failure needs no example
@given(app=_bag(SECRET_KEYS + MIGRATION_KEYS), unit=_bag(MIGRATION_KEYS), leader=st.booleans())
def test_secret_storage_any_migration_data_raises_nothing(app, unit, leader):
    peer = testing.PeerRelation(
        secret_key.PEER, local_app_data=app, local_unit_data=unit, peers_data={1: unit}
    )

    _run(peer, leader=leader, peer=peer)  # an uncaught exception fails the run


@pytest.mark.parametrize("counter", ["abc", "-1", "1e3", "9" * 40, "[" * 100_000])
def test_rotate_secret_key_repairs_a_corrupted_counter(counter):
    secret = app_secret()
    peer = testing.PeerRelation(
        secret_key.PEER,
        local_app_data={secret_key.SECRET_ID_KEY: secret.id, secret_key.GENERATION_KEY: counter},
    )
    ctx = testing.Context(FlaskCharm)
    box = container(pathlib.Path(tempfile.mkdtemp()))
    st_in = testing.State(leader=True, relations={peer}, secrets={secret}, containers={box})

    out = ctx.run(ctx.on.action("rotate-secret-key"), st_in)

    assert out.get_relation(peer.id).local_app_data[secret_key.GENERATION_KEY] == "1"
    assert ctx.action_results is not None and "rotated" in ctx.action_results["result"]


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("[" * 20_000 + "]" * 20_000, "too deeply"),
        ('"' + "x" * 70_000 + '"', "more than"),
        ("{", "not JSON"),
        ("", "not JSON"),
    ],
)
def test_parse_json_raises_only_malformed_data_saying_why(raw, why):
    with pytest.raises(databags.MalformedDataError, match=why):
        databags.parse_json(raw)


def test_parse_json_returns_well_formed_values():
    assert databags.parse_json('{"url": "http://x"}') == {"url": "http://x"}
