"""The `redis` endpoint (interface `redis`, as the redis-k8s charm provides it).

The provider publishes where Redis serves (no database is requested); the variables are
`REDIS_DB_*` with `REDIS_DB_CONNECT_STRING` = `redis://[:password@]host:port`, as paas-charm
gives them.
"""

from __future__ import annotations

import ops

from charms.flask_k8s.v0 import database_requires
from charms.flask_k8s.v0.database_requires import Endpoint
from integrations import database

ENDPOINT = "redis"
ENV_PREFIX = "REDIS_DB_"


def read(_charm: ops.CharmBase, relation: ops.Relation) -> database.Database:
    """Where Redis serves (NotReadyError/BadDataError until the provider says so)."""
    data = database_requires.read_redis(relation)
    return database.Database("redis", (Endpoint(data.host, data.port),), "", None, data.password)


def env(value: database.Database) -> dict[str, str]:
    """The `REDIS_DB_*` variables."""
    return database.uri_env("REDIS", value.uri())


def identity(variables: dict[str, str]) -> str:
    """Which Redis: host and port."""
    return database.identity("REDIS", variables)
