"""The openfga relation: request, environment, lifecycle, secrecy and bad provider data.

The provider side is the OpenFGA team's `OpenFGAProvider` (tests/unit/charm/openfga_provider.py),
fed what our charm wrote, so these tests prove that the two ends understand each other.
"""

from __future__ import annotations

import dataclasses
import pathlib

import ops
import pytest
from ops import testing

from tests.unit.charm import integration_helpers as helpers
from tests.unit.charm.openfga_provider import GRPC_URL, HTTP_URL, Answer, openfga_provider

APP = "flask-k8s"
TOKEN = "fga-T0ken-s3cr3t"


def fga_vars(out: testing.State) -> dict[str, str]:
    return helpers.app_vars(out, "FGA_")


def our_request(ctx, charm_dir: pathlib.Path) -> dict[str, str]:
    return helpers.our_request(ctx, charm_dir, "openfga")


def answered(ctx, charm_dir: pathlib.Path, **kwargs) -> Answer:
    return openfga_provider(our_request(ctx, charm_dir), token=TOKEN, **kwargs)


def related(charm_dir: pathlib.Path, answer: Answer, **kwargs) -> testing.State:
    return helpers.related(
        charm_dir, "openfga", "openfga-k8s", answer.app_data, answer.secret, **kwargs
    )


def changed(ctx, st: testing.State) -> testing.State:
    return helpers.changed(ctx, st, "openfga")


def test_leader_asks_for_a_store_named_after_the_app_which_the_provider_reads(ctx, charm_dir):
    answer = answered(ctx, charm_dir)

    assert our_request(ctx, charm_dir) == {"store_name": APP}
    assert answer.store_name == APP


def test_provider_answer_gives_app_paas_charm_variables(ctx, charm_dir):
    out = changed(ctx, related(charm_dir, answered(ctx, charm_dir)))

    assert fga_vars(out) == {
        "FGA_STORE_ID": "01HSTORE0000000000000000",
        "FGA_TOKEN": TOKEN,
        "FGA_GRPC_API_URL": GRPC_URL,
        "FGA_HTTP_API_URL": HTTP_URL,
    }
    assert out.unit_status == testing.ActiveStatus()


def test_older_provider_plain_token_is_accepted(ctx, charm_dir):
    plain = {
        "store_id": "s1",
        "token": "plain-token",
        "grpc_api_url": "openfga:8081",  # host:port, as some providers publish it
        "http_api_url": "https://openfga.example",
    }
    out = changed(ctx, related(charm_dir, Answer(plain, None, None)))

    assert fga_vars(out)["FGA_TOKEN"] == "plain-token"
    assert fga_vars(out)["FGA_GRPC_API_URL"] == "openfga:8081"


def test_server_info_without_a_store_yet_waits_naming_the_relation(ctx, charm_dir, calls):
    # openfga-k8s publishes its URLs to every relation before it has created the store.
    urls = {"grpc_api_url": GRPC_URL, "http_api_url": HTTP_URL}
    st = related(charm_dir, Answer(urls, None, None))

    out = ctx.run(ctx.on.pebble_ready(st.get_container("flask-app")), st)

    assert out.unit_status == testing.WaitingStatus(
        "waiting for the openfga relation to publish store_id"
    )
    assert fga_vars(out) == {}
    assert calls.count("start") == 1


def test_nothing_published_yet_waits(ctx, charm_dir):
    answer = answered(ctx, charm_dir, answer=False)

    out = changed(ctx, related(charm_dir, answer))

    assert out.unit_status.name == "waiting"
    assert "openfga" in out.unit_status.message


def test_token_secret_not_granted_yet_waits(ctx, charm_dir, monkeypatch):
    st = related(charm_dir, answered(ctx, charm_dir))

    def not_granted(*_: object, **__: object) -> dict[str, str]:
        raise ops.ModelError("ERROR permission denied")

    monkeypatch.setattr(ops.Secret, "get_content", not_granted)
    out = changed(ctx, st)

    assert out.unit_status == testing.WaitingStatus(
        "waiting for access to the secret of the openfga relation (the provider must grant it)"
    )


def test_token_rotation_restarts_once_with_the_new_token(ctx, charm_dir, calls):
    answer = answered(ctx, charm_dir)
    before = changed(ctx, related(charm_dir, answer))
    calls.clear()
    assert answer.secret is not None
    rotated = dataclasses.replace(answer.secret, latest_content={"token": "rotated-token"})
    st = dataclasses.replace(
        before, secrets={*(s for s in before.secrets if s.id != rotated.id), rotated}
    )

    out = ctx.run(ctx.on.secret_changed(rotated), st)

    assert fga_vars(out)["FGA_TOKEN"] == "rotated-token"
    assert calls.count("restart") == 1


def test_relation_removed_drops_variables_with_one_restart(ctx, charm_dir, calls):
    before = changed(ctx, related(charm_dir, answered(ctx, charm_dir)))
    calls.clear()

    out = helpers.removed(ctx, before, "openfga")

    assert fga_vars(out) == {}
    assert calls.count("restart") == 1
    assert out.unit_status == testing.ActiveStatus()


def test_token_appears_in_no_log_databag_or_status(ctx, charm_dir):
    out = changed(ctx, related(charm_dir, answered(ctx, charm_dir)))
    assert fga_vars(out)["FGA_TOKEN"] == TOKEN

    assert not helpers.leaks(ctx, out, "s3cr3t")


@pytest.mark.parametrize(
    ("app_data", "says"),
    [
        ({"http_api_url": "ftp://openfga:8080"}, "invalid http_api_url"),
        ({"grpc_api_url": "http://"}, "invalid grpc_api_url"),
        ({"store_id": "a store"}, "unusable store_id"),
        ({"token": "two\nlines", "token_secret_id": ""}, "unusable token"),
        ({"token_secret_id": "secret:nosuchsecret0000000"}, "does not exist"),
    ],
)
def test_malformed_answer_blocks_naming_the_relation(ctx, charm_dir, app_data, says):
    good = {"store_id": "s1", "token": "t", "grpc_api_url": GRPC_URL, "http_api_url": HTTP_URL}
    data = {key: value for key, value in {**good, **app_data}.items() if value}

    out = changed(ctx, related(charm_dir, Answer(data, None, None)))

    assert out.unit_status.name == "blocked"
    assert "openfga relation" in out.unit_status.message
    assert says in out.unit_status.message
    assert "two\nlines" not in out.unit_status.message
    assert fga_vars(out) == {}
