"""Any provider data on the rabbitmq, openfga, oauth and saml endpoints ends the hook cleanly.

The status is Active (the data happened to be usable) or names the relation (Waiting for what
is missing, Blocked on what is unusable); never an uncaught exception.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from ops import testing

from tests.unit.charm.test_relation_fuzz import FUZZ, _bag, _run

KEYS = {
    "rabbitmq": ["hostname", "password", "ingress-address"],
    "openfga": ["store_id", "token", "token_secret_id", "grpc_api_url", "http_api_url"],
    "oauth": [
        "issuer_url",
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_endpoint",
        "client_id",
        "client_secret_id",
    ],
    "saml": ["entity_id", "metadata_url", "x509certs", "single_sign_on_service_redirect_url"],
}


@settings(FUZZ, max_examples=60)  # four endpoints share the examples
@given(data=st.data(), endpoint=st.sampled_from(sorted(KEYS)), leader=st.booleans())
def test_any_provider_data_gives_a_status_naming_the_relation(data, endpoint, leader):
    app = data.draw(_bag(KEYS[endpoint]))
    unit = data.draw(_bag(KEYS[endpoint]))
    relation = testing.Relation(
        endpoint, remote_app_name="provider", remote_app_data=app, remote_units_data={0: unit}
    )

    out = _run(relation, leader=leader)

    status = out.unit_status
    assert isinstance(status, testing.ActiveStatus) or endpoint in status.message, status
