"""The saml relation: environment, lifecycle and bad provider data.

No packaged provider library exists for the `saml` interface (saml-integrator ships its own as
a Charmhub library), so the provider's databag is written here from that wire format. The
relation carries nothing secret (the IdP publishes all of it in its metadata), and we write
nothing to it.
"""

from __future__ import annotations

import pytest
from ops import testing

from tests.unit.charm import integration_helpers as helpers

BINDING = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-"
CERT = "MIIDdzCCAl+gAwIBAgIEbySuqTANBgkqhkiG9w0BAQsFADBsMRAwDgYDVQQGEwdVbmtub3du"
IDP = {  # what saml-integrator publishes for an IdP with a redirect and a post SSO endpoint
    "entity_id": "https://login.example.com",
    "metadata_url": "https://login.example.com/saml/metadata",
    "x509certs": f"{CERT},MIIsecondcert==",
    "single_sign_on_service_redirect_url": "https://login.example.com/saml/sso/redirect",
    "single_sign_on_service_redirect_binding": f"{BINDING}Redirect",
    "single_sign_on_service_post_url": "https://login.example.com/saml/sso/post",
    "single_sign_on_service_post_binding": f"{BINDING}POST",
}


def saml_vars(out: testing.State) -> dict[str, str]:
    return helpers.app_vars(out, "SAML_")


def run_changed(ctx, charm_dir, app_data: dict[str, str], **kwargs) -> testing.State:
    st = helpers.related(charm_dir, "saml", "saml-integrator", app_data, **kwargs)
    return helpers.changed(ctx, st, "saml")


def test_idp_details_give_app_paas_charm_variables(ctx, charm_dir):
    out = run_changed(ctx, charm_dir, IDP)

    assert saml_vars(out) == {
        "SAML_ENTITY_ID": "https://login.example.com",
        "SAML_METADATA_URL": "https://login.example.com/saml/metadata",
        "SAML_SINGLE_SIGN_ON_REDIRECT_URL": "https://login.example.com/saml/sso/redirect",
        "SAML_SIGNING_CERTIFICATE": CERT,
    }
    assert out.unit_status == testing.ActiveStatus()
    assert dict(out.get_relations("saml")[0].local_app_data) == {}


def test_optional_urls_absent_leave_their_variables_out(ctx, charm_dir):
    minimal = {"entity_id": "idp", "x509certs": CERT}

    out = run_changed(ctx, charm_dir, minimal)

    assert saml_vars(out) == {"SAML_ENTITY_ID": "idp", "SAML_SIGNING_CERTIFICATE": CERT}


@pytest.mark.parametrize("missing", ["entity_id", "x509certs"])
def test_incomplete_data_waits_naming_the_relation(ctx, charm_dir, calls, missing):
    data = {key: value for key, value in IDP.items() if key != missing}

    out = run_changed(ctx, charm_dir, data)

    assert out.unit_status == testing.WaitingStatus(
        f"waiting for the saml relation to publish {missing}"
    )
    assert saml_vars(out) == {}


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"metadata_url": "file:///etc/passwd"}, "invalid metadata_url"),
        ({"single_sign_on_service_redirect_url": "not a url"}, "unusable"),
        ({"x509certs": "<script>"}, "unusable x509certs"),
        ({"entity_id": "two\nlines"}, "unusable entity_id"),
    ],
)
def test_malformed_data_blocks_naming_the_relation(ctx, charm_dir, changes, says):
    out = run_changed(ctx, charm_dir, {**IDP, **changes})

    assert out.unit_status.name == "blocked"
    assert "the saml relation" in out.unit_status.message
    assert says in out.unit_status.message
    assert saml_vars(out) == {}


def test_relation_removed_drops_variables_with_one_restart(ctx, charm_dir, calls):
    before = run_changed(ctx, charm_dir, IDP)
    calls.clear()

    out = helpers.removed(ctx, before, "saml")

    assert saml_vars(out) == {}
    assert calls.count("restart") == 1
    assert out.unit_status == testing.ActiveStatus()
