"""The `openfga` endpoint (interface `openfga`): an authorization store named after the app.

Wire format (as the openfga-k8s charm and `charmlibs-interfaces-openfga` speak it):
- our app databag (leader): `store_name` = the application's name;
- the provider's app databag: `grpc_api_url`, `http_api_url`, then, once the store exists,
  `store_id` and `token_secret_id`: the id of a secret granted to us whose content holds the
  API `token` (older providers wrote a plain `token` instead).

Variables, as paas-charm gives them: `FGA_STORE_ID`, `FGA_TOKEN`, `FGA_GRPC_API_URL`,
`FGA_HTTP_API_URL`. Until the store id and the token are there the unit waits: an app given
the URLs alone could not make a single check.

Why not `charmlibs-interfaces-openfga` itself: it imports pydantic (~85 ms more on every hook
that loads it), reports a provider's malformed data and "nothing yet" alike (None), so no
named status could tell them apart, and reads the token without following its rotations. The
unit tests play the provider with that library's `OpenFGAProvider`.
"""

from __future__ import annotations

from dataclasses import dataclass

import ops

from charms.flask_k8s.v0 import databags
from charms.flask_k8s.v0.database_requires import NotReadyError, provider_app_data
from integrations import provider_values

ENDPOINT = "openfga"
ENV_PREFIX = "FGA_"


@dataclass(frozen=True)
class Store:
    """The app's OpenFGA store, where the server answers, and the API token."""

    store_id: str
    token: str
    grpc_api_url: str
    http_api_url: str


def request(charm: ops.CharmBase, relation: ops.Relation) -> None:
    """Ask for a store named after the application."""
    databags.update(relation.data[charm.app], {"store_name": charm.app.name})


def read(charm: ops.CharmBase, relation: ops.Relation) -> Store:
    """The store the provider created for us (NotReadyError/BadDataError until it is usable)."""
    name = relation.name
    data = provider_app_data(relation)
    provider_values.required(data, ("grpc_api_url", "http_api_url", "store_id"), name)
    if not data.get("token_secret_id") and not data.get("token"):
        raise NotReadyError(f"waiting for the {name} relation to publish its token")
    grpc = provider_values.url(data["grpc_api_url"], "grpc_api_url", name)
    http = provider_values.url(data["http_api_url"], "http_api_url", name, ("http", "https"))
    store_id = provider_values.word(data["store_id"], "store_id", name, max_chars=256)
    secret_id = data.get("token_secret_id")
    if secret_id:
        token = provider_values.secret_field(charm.model, secret_id, "token", name)
    else:
        token = data["token"]
    return Store(store_id, provider_values.word(token, "token", name), grpc, http)


def env(value: Store) -> dict[str, str]:
    """The `FGA_*` variables."""
    return {
        "FGA_STORE_ID": value.store_id,
        "FGA_TOKEN": value.token,
        "FGA_GRPC_API_URL": value.grpc_api_url,
        "FGA_HTTP_API_URL": value.http_api_url,
    }
