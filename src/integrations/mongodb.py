"""The `mongodb` endpoint (interface `mongodb_client`): a database named after the app.

MongoDB's URI lists every member of the replica set, so this reads all endpoints; when the
provider gives a full URI (`uris`, in the credentials secret or, from older providers, plain)
that URI is used as it is, since it carries the provider's own options (`replicaSet`,
`authSource`). Variables: `MONGODB_DB_*`, with `_HOSTNAME`/`_PORT` of the first member.
"""

from __future__ import annotations

from urllib.parse import quote

import ops

from charms.flask_k8s.v0 import database_requires
from charms.flask_k8s.v0.database_requires import BadDataError
from integrations import database

ENDPOINT = "mongodb"
ENV_PREFIX = "MONGODB_DB_"
SCHEMES = ("mongodb://", "mongodb+srv://")

request = database.request


def read(charm: ops.CharmBase, relation: ops.Relation) -> database.Database:
    """The database the provider created for us (NotReadyError/BadDataError until it is usable)."""
    data = database_requires.read_database(charm.model, relation, charm.app.name)
    if data.uris is not None and (
        not data.uris.startswith(SCHEMES) or any(c.isspace() for c in data.uris)
    ):
        raise BadDataError(
            f"the {relation.name} relation published a connection URI that is not a "
            f"mongodb:// URI: fix or replace the provider, or remove the relation"
        )
    query = f"replicaSet={quote(data.replset, safe='')}" if data.replset else ""
    return database.Database(
        "mongodb",
        data.endpoints,
        data.database,
        data.username,
        data.password,
        query=query,
        provided_uri=data.uris,
    )


def env(value: database.Database) -> dict[str, str]:
    """The `MONGODB_DB_*` variables."""
    return database.uri_env("MONGODB", value.uri())


def identity(variables: dict[str, str]) -> str:
    """Which database: scheme, first host, port and name."""
    return database.identity("MONGODB", variables)
