"""The `postgresql` endpoint (interface `postgresql_client`): a database named after the app.

Reads the data-platform `database` relation into a `database.Database` (the first endpoint,
as paas-charm does) and maps it to the `POSTGRESQL_DB_*` variables.
"""

from __future__ import annotations

import ops

from integrations import database

ENDPOINT = "postgresql"
ENV_PREFIX = "POSTGRESQL_DB_"
SCHEME = "postgresql"

request = database.request


def read(charm: ops.CharmBase, relation: ops.Relation) -> database.Database:
    """The database the provider created for us (NotReadyError/BadDataError until it is usable)."""
    return database.read(charm, relation, SCHEME)


def env(value: database.Database) -> dict[str, str]:
    """The `POSTGRESQL_DB_*` variables."""
    return database.uri_env("POSTGRESQL", value.uri())


def identity(variables: dict[str, str]) -> str:
    """Which database: scheme, host, port and name."""
    return database.identity("POSTGRESQL", variables)
