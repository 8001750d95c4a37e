"""The `oauth` endpoint (interface `oauth`): the app as an OpenID Connect client.

Wire format (as hydra / identity-platform charms and `charmlibs-interfaces-oauth` speak it):
- our app databag (leader): `redirect_uri` (the ingress URL + `oauth-redirect-path`), `scope`
  (`oauth-scopes`), `grant_types` (JSON `["authorization_code"]`), `audience` (JSON `[]`) and
  `token_endpoint_auth_method` (`client_secret_basic`);
- the provider's app databag: `issuer_url`, `authorization_endpoint`, `token_endpoint`,
  `introspection_endpoint`, `userinfo_endpoint`, `jwks_endpoint`, `scope`, then, once our
  client exists, `client_id` and `client_secret_id`: a secret granted to us whose `secret` field
  is the client secret.

The redirect URI needs the app's public URL, so the relation needs ingress: without an ingress
relation the unit is Blocked, and Waiting while ingress has no URL yet. The options
`oauth-redirect-path` (default `/callback`) and `oauth-scopes` (default
`openid profile email`, which must include `openid`) are the charm's own.

Variables, as paas-charm gives them for Flask and this endpoint's name: `FLASK_OAUTH_CLIENT_ID`,
`_CLIENT_SECRET`, `_API_BASE_URL` (the issuer URL), `_AUTHORIZE_URL`, `_ACCESS_TOKEN_URL`,
`_USER_URL`, `_JWKS_URL`, and `_CLIENT_KWARGS`: JSON `{"scope": "<oauth-scopes>"}`, ready
for Authlib's `oauth.register(...)`.

Why not `charmlibs-interfaces-oauth` itself: its requirer observes events from the charm's
constructor, so every hook would import it and jsonschema (~56 ms), and it reports a
provider's malformed data by raising from its event handlers. The unit tests play the provider
with that library's `OAuthProvider`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import ops

from charms.flask_k8s.v0 import databags
from charms.flask_k8s.v0.database_requires import BadDataError, NotReadyError, provider_app_data
from integrations import provider_values

ENDPOINT = "oauth"
ENV_PREFIX = "FLASK_OAUTH_"
PATH_OPTION = f"{ENDPOINT}-redirect-path"
SCOPES_OPTION = f"{ENDPOINT}-scopes"
DEFAULT_PATH = "/callback"
DEFAULT_SCOPES = "openid profile email"
MAX_PATH_CHARS = 512
MAX_SCOPES_CHARS = 1024
INGRESS = "ingress"
PROVIDER_URLS = (
    "issuer_url",
    "authorization_endpoint",
    "token_endpoint",
    "userinfo_endpoint",
    "jwks_endpoint",
)


@dataclass(frozen=True)
class Client:
    """The app's OAuth client: its credentials, the provider's endpoints, the scopes."""

    client_id: str
    client_secret: str
    issuer_url: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str
    jwks_endpoint: str
    scopes: str


def _options(charm: ops.CharmBase) -> tuple[str, str]:
    """The redirect path and the scopes; BadDataError naming the option when invalid."""
    path = charm.config.get(PATH_OPTION, DEFAULT_PATH)
    scopes = charm.config.get(SCOPES_OPTION, DEFAULT_SCOPES)
    if (
        not isinstance(path, str)
        or not path.startswith("/")
        or len(path) > MAX_PATH_CHARS
        or not path.isprintable()
        or any(c.isspace() or c in "#?" for c in path)
    ):
        raise BadDataError(
            f"invalid {PATH_OPTION}: want a path starting with / (at most {MAX_PATH_CHARS} "
            f"characters, no spaces, ? or #), e.g. {DEFAULT_PATH}"
        )
    words = scopes.split() if isinstance(scopes, str) else []
    if (
        not isinstance(scopes, str)
        or len(scopes) > MAX_SCOPES_CHARS
        or not all(word.isascii() and word.isprintable() and '"' not in word for word in words)
    ):
        raise BadDataError(
            f"invalid {SCOPES_OPTION}: want space-separated scopes (at most "
            f"{MAX_SCOPES_CHARS} characters), e.g. {DEFAULT_SCOPES!r}"
        )
    if "openid" not in words:
        raise BadDataError(f"{SCOPES_OPTION} must include openid (OpenID Connect needs it)")
    return path, " ".join(words)


def _ingress_url(charm: ops.CharmBase) -> str:
    """The app's public URL from ingress; Blocked without ingress, Waiting without a URL."""
    if not charm.model.relations.get(INGRESS):
        raise BadDataError(
            f"the {ENDPOINT} relation needs ingress for its redirect URI: integrate an "
            f"ingress provider (juju integrate {charm.app.name} traefik-k8s)"
        )
    ingress = getattr(charm, "ingress", None)
    url = getattr(ingress, "url", None)
    if not url:
        raise NotReadyError(
            f"waiting for the ingress URL (the {ENDPOINT} relation's redirect URI needs it)"
        )
    return url


def redirect_uri(charm: ops.CharmBase) -> str:
    """Where the provider sends users back: the ingress URL + `oauth-redirect-path`."""
    path, _ = _options(charm)
    return f"{_ingress_url(charm).rstrip('/')}/{path.lstrip('/')}"


def request(charm: ops.CharmBase, relation: ops.Relation) -> None:
    """Register (or update) our client; nothing while the options or ingress are not ready."""
    try:
        uri, (_, scopes) = redirect_uri(charm), _options(charm)
    except (BadDataError, NotReadyError):
        return  # `read` reports why, in status
    wanted = {
        "redirect_uri": uri,
        "scope": scopes,
        "grant_types": json.dumps(["authorization_code"]),
        "audience": json.dumps([]),
        "token_endpoint_auth_method": "client_secret_basic",
    }
    databags.update(relation.data[charm.app], wanted)


def read(charm: ops.CharmBase, relation: ops.Relation) -> Client:
    """Our client as the provider registered it (NotReadyError/BadDataError until usable)."""
    name = relation.name
    _, scopes = _options(charm)
    redirect_uri(charm)  # ingress first: without it the provider can never answer
    data = provider_app_data(relation)
    provider_values.required(data, (*PROVIDER_URLS, "client_id", "client_secret_id"), name)
    urls = {
        key: provider_values.url(data[key], key, name, ("http", "https")) for key in PROVIDER_URLS
    }
    client_id = provider_values.word(data["client_id"], "client_id", name, max_chars=1024)
    secret = provider_values.secret_field(charm.model, data["client_secret_id"], "secret", name)
    provider_values.word(secret, "client secret", name)
    return Client(client_id=client_id, client_secret=secret, scopes=scopes, **urls)


def env(value: Client) -> dict[str, str]:
    """The `FLASK_OAUTH_*` variables."""
    return {
        "FLASK_OAUTH_CLIENT_ID": value.client_id,
        "FLASK_OAUTH_CLIENT_SECRET": value.client_secret,
        "FLASK_OAUTH_API_BASE_URL": value.issuer_url,
        "FLASK_OAUTH_AUTHORIZE_URL": value.authorization_endpoint,
        "FLASK_OAUTH_ACCESS_TOKEN_URL": value.token_endpoint,
        "FLASK_OAUTH_USER_URL": value.userinfo_endpoint,
        "FLASK_OAUTH_CLIENT_KWARGS": json.dumps({"scope": value.scopes}),
        "FLASK_OAUTH_JWKS_URL": value.jwks_endpoint,
    }
