"""The oauth relation: client request, ingress, options, environment, lifecycle, secrecy.

The provider side is the identity team's `OAuthProvider` (tests/unit/charm/oauth_provider.py):
it checks our request against the interface's JSON schema before registering a client.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

import pytest
from ops import testing

from tests.unit.charm import integration_helpers as helpers
from tests.unit.charm.oauth_provider import ENDPOINTS, ISSUER, Answer, oauth_provider
from tests.unit.charm.test_charm import settled_state

INGRESS_URL = "http://ingress/shop-flask-k8s"
CLIENT_SECRET = "cl1ent-s3cr3t"


def ingress(url: str | None = INGRESS_URL) -> testing.Relation:
    data = {"ingress": json.dumps({"url": url})} if url else {}
    return testing.Relation("ingress", remote_app_data=data, remote_units_data={0: {}})


def oauth_vars(out: testing.State) -> dict[str, str]:
    return helpers.app_vars(out, "FLASK_OAUTH_")


def our_request(ctx, charm_dir: pathlib.Path, **kwargs) -> dict[str, str]:
    relation = testing.Relation("oauth")
    relations = {relation, *kwargs.pop("relations", {ingress()})}
    st = settled_state(charm_dir, relations=relations, **kwargs)
    out = ctx.run(ctx.on.relation_created(relation), st)
    return dict(out.get_relation(relation.id).local_app_data)


def related(charm_dir: pathlib.Path, answer: Answer, **kwargs) -> testing.State:
    relation = testing.Relation("oauth", remote_app_name="hydra", remote_app_data=answer.app_data)
    relations = {relation, *kwargs.pop("relations", {ingress()})}
    st = settled_state(charm_dir, relations=relations, **kwargs)
    secrets = {answer.secret} if answer.secret else set()
    return dataclasses.replace(st, secrets={*st.secrets, *secrets})


def served(ctx, charm_dir: pathlib.Path, **kwargs) -> testing.State:
    answer = oauth_provider(our_request(ctx, charm_dir), client_secret=CLIENT_SECRET)
    st = related(charm_dir, answer, **kwargs)
    return ctx.run(ctx.on.relation_changed(st.get_relations("oauth")[0]), st)


# -- the client request -----------------------------------------------------------------------


def test_request_registers_a_client_the_provider_accepts(ctx, charm_dir):
    request = our_request(ctx, charm_dir)

    answer = oauth_provider(request)

    assert answer.client == {
        "redirect_uri": f"{INGRESS_URL}/callback",
        "scope": "openid profile email",
        "grant_types": ["authorization_code"],
        "audience": [],
        "token_endpoint_auth_method": "client_secret_basic",
    }
    assert answer.app_data["client_id"] == "client-1234"


def test_options_shape_the_redirect_uri_and_scopes(ctx, charm_dir):
    config = {"oauth-redirect-path": "/auth/oidc", "oauth-scopes": "openid  email groups"}

    request = our_request(ctx, charm_dir, config=config)

    assert request["redirect_uri"] == f"{INGRESS_URL}/auth/oidc"
    assert request["scope"] == "openid email groups"


# -- the environment --------------------------------------------------------------------------


def test_registered_client_gives_app_paas_charm_variables(ctx, charm_dir):
    out = served(ctx, charm_dir)

    assert oauth_vars(out) == {
        "FLASK_OAUTH_CLIENT_ID": "client-1234",
        "FLASK_OAUTH_CLIENT_SECRET": CLIENT_SECRET,
        "FLASK_OAUTH_API_BASE_URL": ISSUER,
        "FLASK_OAUTH_AUTHORIZE_URL": ENDPOINTS["authorization_endpoint"],
        "FLASK_OAUTH_ACCESS_TOKEN_URL": ENDPOINTS["token_endpoint"],
        "FLASK_OAUTH_USER_URL": ENDPOINTS["userinfo_endpoint"],
        "FLASK_OAUTH_CLIENT_KWARGS": '{"scope": "openid profile email"}',
        "FLASK_OAUTH_JWKS_URL": ENDPOINTS["jwks_endpoint"],
    }
    assert out.unit_status == testing.ActiveStatus(f"serving at {INGRESS_URL}")


# -- ingress and options ----------------------------------------------------------------------


def test_without_ingress_blocks_naming_ingress_and_asks_for_nothing(ctx, charm_dir):
    relation = testing.Relation("oauth", remote_app_name="hydra", remote_app_data=ENDPOINTS)
    st = settled_state(charm_dir, relations={relation})

    out = ctx.run(ctx.on.relation_created(relation), st)

    assert out.unit_status.name == "blocked"
    assert "the oauth relation needs ingress" in out.unit_status.message
    assert dict(out.get_relation(relation.id).local_app_data) == {}


def test_ingress_without_url_yet_waits_naming_ingress(ctx, charm_dir):
    request = our_request(ctx, charm_dir, relations={ingress(None)})
    relation = testing.Relation("oauth", remote_app_name="hydra", remote_app_data=ENDPOINTS)
    st = settled_state(charm_dir, relations={relation, ingress(None)})

    out = ctx.run(ctx.on.relation_changed(relation), st)

    assert request == {}
    assert out.unit_status == testing.WaitingStatus(
        "waiting for the ingress URL (the oauth relation's redirect URI needs it)"
    )


@pytest.mark.parametrize(
    ("config", "says"),
    [
        ({"oauth-redirect-path": "callback"}, "invalid oauth-redirect-path"),
        ({"oauth-redirect-path": "/a b"}, "invalid oauth-redirect-path"),
        ({"oauth-redirect-path": "/" + "x" * 600}, "invalid oauth-redirect-path"),
        ({"oauth-scopes": "profile email"}, "oauth-scopes must include openid"),
        ({"oauth-scopes": 'openid "x'}, "invalid oauth-scopes"),
    ],
)
def test_invalid_options_block_naming_the_option(ctx, charm_dir, config, says):
    out = served(ctx, charm_dir, config=config)

    assert out.unit_status.name == "blocked"
    assert says in out.unit_status.message


def test_provider_endpoints_without_our_client_yet_wait_naming_the_relation(ctx, charm_dir):
    st = related(charm_dir, Answer(dict(ENDPOINTS), None, {}))

    out = ctx.run(ctx.on.relation_changed(st.get_relations("oauth")[0]), st)

    assert out.unit_status == testing.WaitingStatus(
        "waiting for the oauth relation to publish client_id, client_secret_id"
    )
    assert oauth_vars(out) == {}


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("token_endpoint", "javascript:alert(1)", "invalid token_endpoint"),
        ("issuer_url", "https://iam example", "unusable issuer_url"),
        ("client_id", "a\nb", "unusable client_id"),
    ],
)
def test_malformed_provider_data_blocks_naming_the_relation(ctx, charm_dir, key, value, says):
    answer = oauth_provider(our_request(ctx, charm_dir))
    bad = Answer({**answer.app_data, key: value}, answer.secret, {})
    st = related(charm_dir, bad)

    out = ctx.run(ctx.on.relation_changed(st.get_relations("oauth")[0]), st)

    assert out.unit_status.name == "blocked"
    assert "the oauth relation" in out.unit_status.message
    assert says in out.unit_status.message
    assert oauth_vars(out) == {}


# -- lifecycle and secrecy --------------------------------------------------------------------


def test_relation_removed_drops_variables_with_one_restart(ctx, charm_dir, calls):
    before = served(ctx, charm_dir)
    assert oauth_vars(before)
    calls.clear()

    out = ctx.run(ctx.on.relation_broken(before.get_relations("oauth")[0]), before)

    assert oauth_vars(out) == {}
    assert calls.count("restart") == 1
    assert out.unit_status == testing.ActiveStatus(f"serving at {INGRESS_URL}")


def test_scopes_change_restarts_once_with_new_client_kwargs(ctx, charm_dir, calls):
    before = served(ctx, charm_dir)
    calls.clear()

    out = ctx.run(
        ctx.on.config_changed(),
        dataclasses.replace(before, config={"oauth-scopes": "openid email"}),
    )

    assert oauth_vars(out)["FLASK_OAUTH_CLIENT_KWARGS"] == '{"scope": "openid email"}'
    assert out.get_relations("oauth")[0].local_app_data["scope"] == "openid email"
    assert calls.count("restart") == 1


def test_client_secret_appears_in_no_log_databag_or_status(ctx, charm_dir):
    out = served(ctx, charm_dir)
    assert oauth_vars(out)["FLASK_OAUTH_CLIENT_SECRET"] == CLIENT_SECRET

    assert not helpers.leaks(ctx, out, "s3cr3t")
