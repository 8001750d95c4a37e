"""The `smtp` relation: environment, lifecycle, secrecy and bad provider data.

No packaged provider library exists for the `smtp` interface (smtp-integrator's library is a
Charmhub lib, not on PyPI): the provider's side is written here from the interface's documented
format (charm-relation-interfaces `smtp` v0, and what smtp-integrator publishes).
"""

from __future__ import annotations

import pathlib

import pytest
from ops import testing

from tests.unit.charm import integration_helpers as helpers

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
    return helpers.related(charm_dir, "smtp", "smtp-integrator", app_data, *secrets, **kwargs)


def answer(**changes: str) -> tuple[dict[str, str], testing.Secret]:
    secret = password_secret()
    return {**SETTINGS, "password_id": secret.id, **changes}, secret


def smtp_vars(out: testing.State) -> dict[str, str]:
    return helpers.app_vars(out, "SMTP_")


def changed(ctx, st: testing.State) -> testing.State:
    return helpers.changed(ctx, st, "smtp")


# -- the environment --------------------------------------------------------------------------


def test_password_in_secret_gives_every_paas_charm_variable(ctx, charm_dir):
    app_data, secret = answer()
    st = related(charm_dir, app_data, secret)

    out = changed(ctx, st)

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
    assert dict(out.get_relations("smtp")[0].local_app_data) == {}  # a requirer asks nothing


def test_provider_without_secrets_and_no_auth_leaves_none_values_out(ctx, charm_dir):
    app_data = {
        "host": "10.1.2.3",
        "port": "25",
        "auth_type": "none",
        "transport_security": "none",
        "skip_ssl_verify": "True",
    }
    st = related(charm_dir, app_data)

    out = changed(ctx, st)

    assert smtp_vars(out) == {
        "SMTP_HOST": "10.1.2.3",
        "SMTP_PORT": "25",
        "SMTP_SKIP_SSL_VERIFY": "True",
    }


def test_plain_password_field_of_older_providers_is_used(ctx, charm_dir):
    st = related(charm_dir, {**SETTINGS, "password": PASSWORD})

    out = changed(ctx, st)

    assert smtp_vars(out)["SMTP_PASSWORD"] == PASSWORD


def test_password_rotation_restarts_once(ctx, charm_dir, calls):
    app_data, secret = answer()
    st = related(charm_dir, app_data, secret)
    before = changed(ctx, st)
    calls.clear()
    st, rotated = helpers.rotated(before, secret, {"password": "new-password"})

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
    st = related(charm_dir, app_data)

    out = ctx.run(ctx.on.pebble_ready(st.get_container("flask-app")), st)

    assert out.unit_status == testing.WaitingStatus(
        f"waiting for the smtp relation to publish its {says}"
    )
    assert smtp_vars(out) == {}
    assert calls.log.count("start") == 1


def test_password_secret_not_granted_yet_waits(ctx, charm_dir, monkeypatch):
    app_data, secret = answer()
    st = related(charm_dir, app_data, secret)
    helpers.secret_not_granted(monkeypatch)

    out = changed(ctx, st)

    assert out.unit_status.name == "waiting"
    assert "credentials secret of the smtp relation" in out.unit_status.message


def test_relation_removed_drops_the_variables_with_one_restart(ctx, charm_dir, calls):
    app_data, secret = answer()
    st = related(charm_dir, app_data, secret)
    before = changed(ctx, st)
    assert smtp_vars(before)
    calls.clear()

    out = helpers.removed(ctx, before, "smtp")

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
    st = related(charm_dir, app_data, secret)

    out = changed(ctx, st)

    assert out.unit_status.name == "blocked"
    assert "the smtp relation" in out.unit_status.message
    assert says in out.unit_status.message
    assert smtp_vars(out) == {}


def test_secret_without_password_field_blocks(ctx, charm_dir):
    secret = testing.Secret({"pass": PASSWORD}, owner=None)
    st = related(charm_dir, {**SETTINGS, "password_id": secret.id}, secret)

    out = changed(ctx, st)

    assert out.unit_status.name == "blocked"
    assert "invalid password secret" in out.unit_status.message


# -- secrecy ----------------------------------------------------------------------------------


@pytest.mark.parametrize("changes", [{}, {"auth_type": "kerberos"}, {"port": "x"}])
def test_password_appears_in_no_log_databag_or_status(ctx, charm_dir, changes):
    app_data, secret = answer(**changes)
    st = related(charm_dir, app_data, secret)

    out = changed(ctx, st)

    assert not helpers.leaks(ctx, out, PASSWORD)


def test_invalid_plain_password_is_not_echoed_in_status(ctx, charm_dir):
    st = related(charm_dir, {**SETTINGS, "password": "shown\x00password"})

    out = changed(ctx, st)

    assert out.unit_status.name == "blocked"
    assert "invalid password" in out.unit_status.message
    assert "shown" not in out.unit_status.message
