"""The `mysql` endpoint (interface `mysql_client`): a database named after the app.

Reads the data-platform `database` relation into a `database.Database` (the first endpoint,
as paas-charm does) and maps it to the `MYSQL_DB_*` variables.
"""

from __future__ import annotations

import ops

from integrations import database

ENDPOINT = "mysql"
ENV_PREFIX = "MYSQL_DB_"
SCHEME = "mysql"

request = database.request


def read(charm: ops.CharmBase, relation: ops.Relation) -> database.Database:
    """The database the provider created for us (NotReadyError/BadDataError until it is usable)."""
    return database.read(charm, relation, SCHEME)


def env(value: database.Database) -> dict[str, str]:
    """The `MYSQL_DB_*` variables."""
    return database.uri_env("MYSQL", value.uri())


def identity(variables: dict[str, str]) -> str:
    """Which database: scheme, host, port and name."""
    return database.identity("MYSQL", variables)
