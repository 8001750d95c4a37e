"""The `smtp` relation: environment, lifecycle, secrecy and bad provider data.

No packaged provider library exists for the `smtp` interface (smtp-integrator's library is a
Charmhub lib, not on PyPI): the provider's side is written here from the interface's documented
format (charm-relation-interfaces `smtp` v0, and what smtp-integrator publishes).
"""

from __future__ import annotations

import dataclasses
import pathlib

import ops
import pytest
from ops import testing

from tests.unit.charm.test_charm import flask_service, settled_state

PASSWORD = "m@il-Pa55word"
SETTINGS = {  # what smtp-integrator publishes (its library writes every value as a string)
    "host": "smtp.example.com",
    "port": "587",
    "user": "mailer",
    "auth_type": "plain",
    "transport_security": "starttls",
    "domain": "example.com",
    "skip_ssl_verify": "False",
}


def password_secret() -> testing.Secret:
    return testing.Secret({"password": PASSWORD}, owner=None, label="smtp-password")


def related(charm_dir: pathlib.Path, app_data: dict[str, str], *secrets, **kwargs):
    relation = testing.Relation(
        "smtp", remote_app_name="smtp-integrator", remote_app_data=app_data
    )
    st = settled_state(charm_dir, relations={relation}, **kwargs)
    return dataclasses.replace(st, secrets={*st.secrets, *secrets}), relation


def answer(**changes: str) -> tuple[dict[str, str], testing.Secret]:
    secret = password_secret()
    return {**SETTINGS, "password_id": secret.id, **changes}, secret


def smtp_vars(out: testing.State) -> dict[str, str]:
    env = flask_service(out).environment
    return {key: value for key, value in env.items() if key.startswith("SMTP_")}


def changed(ctx, st: testing.State, relation: testing.Relation) -> testing.State:
    return ctx.run(ctx.on.relation_changed(st.get_relation(relation.id)), st)


# -- the environment --------------------------------------------------------------------------


def test_password_in_secret_gives_every_paas_charm_variable(ctx, charm_dir):
    app_data, secret = answer()
    st, relation = related(charm_dir, app_data, secret)

    out = changed(ctx, st, relation)

    assert smtp_vars(out) == {
        "SMTP_HOST": "smtp.example.com",
        "SMTP_PORT": "587",
        "SMTP_USER": "mailer",
        "SMTP_PASSWORD": PASSWORD,
        "SMTP_AUTH_TYPE": "plain",
        "SMTP_TRANSPORT_SECURITY": "starttls",
        "SMTP_DOMAIN": "example.com",
        "SMTP_SKIP_SSL_VERIFY": "False",
    }
    assert out.unit_status == testing.ActiveStatus()
    assert dict(out.get_relation(relation.id).local_app_data) == {}  # a requirer asks nothing


def test_provider_without_secrets_and_no_auth_leaves_none_values_out(ctx, charm_dir):
    app_data = {
        "host": "10.1.2.3",
        "port": "25",
        "auth_type": "none",
        "transport_security": "none",
        "skip_ssl_verify": "True",
    }
    st, relation = related(charm_dir, app_data)

    out = changed(ctx, st, relation)

    assert smtp_vars(out) == {
        "SMTP_HOST": "10.1.2.3",
        "SMTP_PORT": "25",
        "SMTP_SKIP_SSL_VERIFY": "True",
    }


def test_plain_password_field_of_older_providers_is_used(ctx, charm_dir):
    st, relation = related(charm_dir, {**SETTINGS, "password": PASSWORD})

    out = changed(ctx, st, relation)

    assert smtp_vars(out)["SMTP_PASSWORD"] == PASSWORD


def test_password_rotation_restarts_once(ctx, charm_dir, calls):
    app_data, secret = answer()
    st, relation = related(charm_dir, app_data, secret)
    before = changed(ctx, st, relation)
    calls.clear()
    rotated = dataclasses.replace(secret, latest_content={"password": "new-password"})
    st = dataclasses.replace(
        before, secrets={*(s for s in before.secrets if s.id != secret.id), rotated}
    )

    out = ctx.run(ctx.on.secret_changed(rotated), st)

    assert smtp_vars(out)["SMTP_PASSWORD"] == "new-password"
    assert calls.log.count("restart") == 1


# -- lifecycle --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("app_data", "says"),
    [
        ({}, "host, port, auth_type, transport_security"),
        ({"host": "smtp.example.com", "port": "25"}, "auth_type, transport_security"),
    ],
)
def test_partial_data_waits_naming_the_relation_and_starts_without(
    ctx, charm_dir, calls, app_data, says
):
    st, _ = related(charm_dir, app_data)

    out = ctx.run(ctx.on.pebble_ready(st.get_container("flask-app")), st)

    assert out.unit_status == testing.WaitingStatus(
        f"waiting for the smtp relation to publish its {says}"
    )
    assert smtp_vars(out) == {}
    assert calls.log.count("start") == 1


def test_password_secret_not_granted_yet_waits(ctx, charm_dir, monkeypatch):
    app_data, secret = answer()
    st, relation = related(charm_dir, app_data, secret)

    def not_granted(*_: object, **__: object) -> dict[str, str]:
        raise ops.ModelError("ERROR permission denied")

    monkeypatch.setattr(ops.Secret, "get_content", not_granted)
    out = changed(ctx, st, relation)

    assert out.unit_status.name == "waiting"
    assert "credentials secret of the smtp relation" in out.unit_status.message


def test_relation_removed_drops_the_variables_with_one_restart(ctx, charm_dir, calls):
    app_data, secret = answer()
    st, relation = related(charm_dir, app_data, secret)
    before = changed(ctx, st, relation)
    assert smtp_vars(before)
    calls.clear()

    out = ctx.run(ctx.on.relation_broken(before.get_relation(relation.id)), before)

    assert smtp_vars(out) == {}
    assert calls.log.count("restart") == 1
    assert out.unit_status == testing.ActiveStatus()


# -- bad provider data ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"port": "0"}, "invalid host or port"),
        ({"port": "smtp"}, "invalid host or port"),
        ({"host": "mail.example.com; rm -rf"}, "invalid host or port"),
        ({"auth_type": "kerberos"}, "invalid auth_type (want one of none, not_provided, plain)"),
        ({"transport_security": "ssl"}, "invalid transport_security (want one of none, starttls"),
        ({"skip_ssl_verify": "maybe"}, "invalid skip_ssl_verify (want True or False)"),
        ({"user": ""}, "invalid login (auth_type plain needs a user and a password)"),
        ({"domain": "a\tb"}, "invalid domain"),
        ({"password_id": "secret:nosuchsecret0000000"}, "credentials secret of the smtp"),
    ],
)
def test_malformed_data_blocks_naming_relation_and_field(ctx, charm_dir, changes, says):
    app_data, secret = answer(**changes)
    st, relation = related(charm_dir, app_data, secret)

    out = changed(ctx, st, relation)

    assert out.unit_status.name == "blocked"
    assert "the smtp relation" in out.unit_status.message
    assert says in out.unit_status.message
    assert smtp_vars(out) == {}


def test_secret_without_password_field_blocks(ctx, charm_dir):
    secret = testing.Secret({"pass": PASSWORD}, owner=None)
    st, relation = related(charm_dir, {**SETTINGS, "password_id": secret.id}, secret)

    out = changed(ctx, st, relation)

    assert out.unit_status.name == "blocked"
    assert "invalid password secret" in out.unit_status.message


# -- secrecy ----------------------------------------------------------------------------------


@pytest.mark.parametrize("changes", [{}, {"auth_type": "kerberos"}, {"port": "x"}])
def test_password_appears_in_no_log_databag_or_status(ctx, charm_dir, changes):
    app_data, secret = answer(**changes)
    st, relation = related(charm_dir, app_data, secret)

    out = changed(ctx, st, relation)

    bags = [dict(rel.local_app_data) for rel in out.relations]
    bags += [dict(rel.local_unit_data) for rel in out.relations]
    texts = [line.message for line in ctx.juju_log] + [str(bag) for bag in bags]
    texts.append(out.unit_status.message)
    assert not [text for text in texts if PASSWORD in text]


def test_invalid_plain_password_is_not_echoed_in_status(ctx, charm_dir):
    st, relation = related(charm_dir, {**SETTINGS, "password": "shown\x00password"})

    out = changed(ctx, st, relation)

    assert out.unit_status.name == "blocked"
    assert "invalid password" in out.unit_status.message
    assert "shown" not in out.unit_status.message
