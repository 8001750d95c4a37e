"""The `saml` endpoint (interface `saml`, as saml-integrator provides it): the IdP's details.

Wire format: the provider's app databag holds `entity_id`, optionally `metadata_url`,
`x509certs` (the IdP's certificates, comma-separated; the first one signs), and per endpoint
and binding `<endpoint>_<method>_url`, `_binding` and maybe `_response_url`, the endpoint's
name in snake case and the method from its binding: the single sign-on endpoint with the
HTTP-Redirect binding is `single_sign_on_service_redirect_url`. We write nothing.

Variables, as paas-charm gives them: `SAML_ENTITY_ID`, `SAML_METADATA_URL` (when published),
`SAML_SINGLE_SIGN_ON_REDIRECT_URL` (when published) and `SAML_SIGNING_CERTIFICATE` (the
first certificate). Nothing here is secret: the IdP publishes all of it in its metadata.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import ops

from charms.flask_k8s.v0.database_requires import BadDataError, provider_app_data
from integrations import provider_values

ENDPOINT = "saml"
ENV_PREFIX = "SAML_"
SSO_REDIRECT_KEY = "single_sign_on_service_redirect_url"
MAX_ENTITY_ID_CHARS = 1024
MAX_CERTIFICATES_CHARS = 64 * 1024
# Base64 DER, as saml-integrator publishes them, or PEM (its header lines, line breaks).
_CERTIFICATE = re.compile(r"^[A-Za-z0-9+/=\s-]+$")


@dataclass(frozen=True)
class IdentityProvider:
    """What the app needs to trust and reach the SAML identity provider."""

    entity_id: str
    signing_certificate: str
    metadata_url: str | None = None
    sso_redirect_url: str | None = None


def read(_charm: ops.CharmBase, relation: ops.Relation) -> IdentityProvider:
    """The identity provider's details (NotReadyError/BadDataError until usable)."""
    name = relation.name
    data = provider_app_data(relation)
    provider_values.required(data, ("entity_id", "x509certs"), name)
    entity_id = data["entity_id"]
    if len(entity_id) > MAX_ENTITY_ID_CHARS or not entity_id.isprintable():
        raise BadDataError(
            f"the {name} relation published an unusable entity_id: {provider_values.FIX}"
        )
    certificates = data["x509certs"]
    first = certificates.split(",")[0].strip()
    if len(certificates) > MAX_CERTIFICATES_CHARS or not _CERTIFICATE.match(first):
        raise BadDataError(
            f"the {name} relation published an unusable x509certs (want base64 certificates, "
            f"comma-separated): {provider_values.FIX}"
        )
    urls = {}
    for key in ("metadata_url", SSO_REDIRECT_KEY):
        if data.get(key):
            urls[key] = provider_values.url(data[key], key, name, ("http", "https"))
    return IdentityProvider(
        entity_id=entity_id,
        signing_certificate=first,
        metadata_url=urls.get("metadata_url"),
        sso_redirect_url=urls.get(SSO_REDIRECT_KEY),
    )


def env(value: IdentityProvider) -> dict[str, str]:
    """The `SAML_*` variables (the optional URLs only when published)."""
    variables = {
        "SAML_ENTITY_ID": value.entity_id,
        "SAML_METADATA_URL": value.metadata_url,
        "SAML_SINGLE_SIGN_ON_REDIRECT_URL": value.sso_redirect_url,
        "SAML_SIGNING_CERTIFICATE": value.signing_certificate,
    }
    return {key: text for key, text in variables.items() if text}
