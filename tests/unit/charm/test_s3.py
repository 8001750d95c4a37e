"""The `s3` relation: request, environment, lifecycle, secrecy and bad provider data.

No packaged provider library exists for the `s3` interface (the data-platform `s3` library is a
Charmhub lib, not on PyPI): the provider's side is written here from the interface's documented
format (charm-relation-interfaces `s3` v0/v1, and what s3-integrator publishes).
"""

from __future__ import annotations

import json
import pathlib

import pytest
from ops import testing

from tests.unit.charm import integration_helpers as helpers

APP = "flask-k8s"
ACCESS_KEY = "AKIAEXAMPLEACCESS"
SECRET_KEY = "s3cr3t/Key+Example=="
CA = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t"
SETTINGS = {  # what s3-integrator publishes besides the keys (lists JSON-encoded)
    "bucket": APP,
    "endpoint": "https://s3.example.com",
    "region": "eu-west-1",
    "path": "uploads/",
    "storage-class": "STANDARD",
    "s3-api-version": "4",
    "s3-uri-style": "path",
    "attributes": json.dumps(["Cache-Control=max-age=90000"]),
    "tls-ca-chain": json.dumps([CA]),
}


def keys_secret() -> testing.Secret:
    """The v1 provider's secret, granted to us."""
    return testing.Secret(
        {"access-key": ACCESS_KEY, "secret-key": SECRET_KEY}, owner=None, label="s3-keys"
    )


def related(charm_dir: pathlib.Path, app_data: dict[str, str], *secrets, **kwargs):
    return helpers.related(charm_dir, "s3", "s3-integrator", app_data, *secrets, **kwargs)


def v1_answer(**changes: str) -> tuple[dict[str, str], testing.Secret]:
    secret = keys_secret()
    return {**SETTINGS, "secret-extra": secret.id, **changes}, secret


def s3_vars(out: testing.State) -> dict[str, str]:
    return helpers.app_vars(out, "S3_")


def changed(ctx, st: testing.State) -> testing.State:
    return helpers.changed(ctx, st, "s3")


# -- the request ------------------------------------------------------------------------------


def test_leader_asks_for_bucket_named_after_app_with_keys_in_a_secret(ctx, charm_dir):
    assert helpers.our_request(ctx, charm_dir, "s3") == {
        "bucket": APP,
        "requested-secrets": '["access-key", "secret-key"]',
    }


def test_non_leader_asks_nothing(ctx, charm_dir):
    assert helpers.our_request(ctx, charm_dir, "s3", leader=False) == {}


# -- the environment --------------------------------------------------------------------------


def test_v1_provider_keys_in_secret_give_every_paas_charm_variable(ctx, charm_dir):
    app_data, secret = v1_answer()
    st = related(charm_dir, app_data, secret)

    out = changed(ctx, st)

    assert s3_vars(out) == {
        "S3_ACCESS_KEY": ACCESS_KEY,
        "S3_SECRET_KEY": SECRET_KEY,
        "S3_BUCKET": APP,
        "S3_ENDPOINT": "https://s3.example.com",
        "S3_REGION": "eu-west-1",
        "S3_PATH": "uploads/",
        "S3_STORAGE_CLASS": "STANDARD",
        "S3_API_VERSION": "4",
        "S3_URI_STYLE": "path",
        "S3_ADDRESSING_STYLE": "path",
        "S3_ATTRIBUTES": '["Cache-Control=max-age=90000"]',
        "S3_TLS_CA_CHAIN": f'["{CA}"]',
    }
    assert out.unit_status == testing.ActiveStatus()


def test_v0_provider_plain_keys_and_host_style_minimal(ctx, charm_dir):
    app_data = {
        "bucket": "shared-bucket",  # the provider may ignore our request
        "access-key": ACCESS_KEY,
        "secret-key": SECRET_KEY,
        "s3-uri-style": "host",
    }
    st = related(charm_dir, app_data)

    out = changed(ctx, st)

    assert s3_vars(out) == {
        "S3_ACCESS_KEY": ACCESS_KEY,
        "S3_SECRET_KEY": SECRET_KEY,
        "S3_BUCKET": "shared-bucket",
        "S3_URI_STYLE": "host",
        "S3_ADDRESSING_STYLE": "virtual",
    }


def test_key_rotation_restarts_once_with_the_new_keys(ctx, charm_dir, calls):
    app_data, secret = v1_answer()
    st = related(charm_dir, app_data, secret)
    before = changed(ctx, st)
    calls.clear()
    new_keys = {"access-key": ACCESS_KEY, "secret-key": "rotated-key"}
    st, rotated = helpers.rotated(before, secret, new_keys)

    out = ctx.run(ctx.on.secret_changed(rotated), st)

    assert s3_vars(out)["S3_SECRET_KEY"] == "rotated-key"
    assert calls.log.count("restart") == 1


# -- lifecycle --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("app_data", "says"),
    [
        ({}, "bucket and keys"),
        ({"bucket": APP, "endpoint": "https://s3.example.com"}, "keys"),
        ({"access-key": ACCESS_KEY, "secret-key": SECRET_KEY}, "bucket"),
    ],
)
def test_partial_data_waits_naming_the_relation_and_starts_without(
    ctx, charm_dir, calls, app_data, says
):
    st = related(charm_dir, app_data)

    out = ctx.run(ctx.on.pebble_ready(st.get_container("flask-app")), st)

    assert out.unit_status == testing.WaitingStatus(
        f"waiting for the s3 relation to publish its {says}"
    )
    assert s3_vars(out) == {}
    assert calls.log.count("start") == 1


def test_keys_secret_not_granted_yet_waits(ctx, charm_dir, monkeypatch):
    app_data, secret = v1_answer()
    st = related(charm_dir, app_data, secret)
    helpers.secret_not_granted(monkeypatch)

    out = changed(ctx, st)

    assert out.unit_status.name == "waiting"
    assert "credentials secret of the s3 relation" in out.unit_status.message
    assert s3_vars(out) == {}


def test_relation_removed_drops_the_variables_with_one_restart(ctx, charm_dir, calls):
    app_data, secret = v1_answer()
    st = related(charm_dir, app_data, secret)
    before = changed(ctx, st)
    assert s3_vars(before)
    calls.clear()

    out = helpers.removed(ctx, before, "s3")

    assert s3_vars(out) == {}
    assert calls.log.count("restart") == 1
    assert out.unit_status == testing.ActiveStatus()


def test_data_withdrawn_keeps_serving_with_what_it_had(ctx, charm_dir, calls):
    app_data, secret = v1_answer()
    st = related(charm_dir, app_data, secret)
    before = changed(ctx, st)
    calls.clear()
    st, emptied = helpers.withdrawn(before, "s3")

    out = ctx.run(ctx.on.relation_changed(emptied), st)

    assert s3_vars(out) == s3_vars(before)
    assert calls.log == []
    assert out.unit_status.name == "waiting"


# -- bad provider data ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"s3-uri-style": "sideways"}, "invalid s3-uri-style (want path or host)"),
        ({"endpoint": "ftp://s3.example.com"}, "invalid endpoint (want an http(s) URL)"),
        ({"endpoint": "http://[::1"}, "invalid endpoint"),
        ({"attributes": "Cache-Control=1"}, "invalid attributes (want a JSON list of strings)"),
        ({"tls-ca-chain": "[1, 2]"}, "invalid tls-ca-chain (want a JSON list of strings)"),
        ({"tls-ca-chain": "[" * 100_000}, "invalid tls-ca-chain"),
        ({"bucket": "a\nb"}, "invalid bucket"),
        ({"secret-extra": "secret:nosuchsecret0000000"}, "credentials secret of the s3"),
    ],
)
def test_malformed_data_blocks_naming_relation_and_field(ctx, charm_dir, changes, says):
    app_data, secret = v1_answer(**changes)
    st = related(charm_dir, app_data, secret)

    out = changed(ctx, st)

    assert out.unit_status.name == "blocked"
    assert "the s3 relation" in out.unit_status.message
    assert says in out.unit_status.message
    assert s3_vars(out) == {}


@pytest.mark.parametrize("content", [{"access-key": ACCESS_KEY}, {"secret-key": SECRET_KEY}])
def test_secret_missing_a_key_blocks(ctx, charm_dir, content):
    secret = testing.Secret(content, owner=None)
    st = related(charm_dir, {**SETTINGS, "secret-extra": secret.id}, secret)

    out = changed(ctx, st)

    assert out.unit_status.name == "blocked"
    assert "s3 relation published credentials without its" in out.unit_status.message


# -- secrecy ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [{}, {"s3-uri-style": "sideways"}],
)
def test_keys_appear_in_no_log_databag_or_status(ctx, charm_dir, changes):
    app_data, secret = v1_answer(**changes)
    st = related(charm_dir, app_data, secret)

    out = changed(ctx, st)

    assert not helpers.leaks(ctx, out, SECRET_KEY, ACCESS_KEY)


def test_invalid_secret_key_is_not_echoed_in_status(ctx, charm_dir):
    bad_key = "visible\x07key"
    st = related(charm_dir, {"bucket": APP, "access-key": ACCESS_KEY, "secret-key": bad_key})

    out = changed(ctx, st)

    assert out.unit_status.name == "blocked"
    assert "invalid secret-key" in out.unit_status.message
    assert "visible" not in out.unit_status.message
