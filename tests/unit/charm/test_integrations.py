"""Pure tests of the integrations: the typed value's URI, its variables, the identity."""

from __future__ import annotations

import integrations
from charms.flask_k8s.v0.database_requires import Endpoint
from integrations import database, postgresql, redis


def pg(password: str = "pw", host: str = "10.0.0.5", name: str = "shop") -> database.Database:
    return database.Database("postgresql", (Endpoint(host, 5432),), name, "user", password)


def test_env_has_every_paas_charm_name_for_a_database():
    env = postgresql.env(pg())

    assert sorted(env) == sorted(
        f"POSTGRESQL_DB_{part}"
        for part in (
            "CONNECT_STRING", "SCHEME", "NETLOC", "PATH", "PARAMS", "QUERY", "FRAGMENT",
            "USERNAME", "PASSWORD", "HOSTNAME", "PORT", "NAME",
        )
    )  # fmt: skip
    assert env["POSTGRESQL_DB_CONNECT_STRING"] == "postgresql://user:pw@10.0.0.5:5432/shop"


def test_env_round_trips_awkward_credentials():
    env = postgresql.env(pg(password="a:b/c@d%e f"))

    assert env["POSTGRESQL_DB_PASSWORD"] == "a:b/c@d%e f"
    assert "a:b/c@d%e f" not in env["POSTGRESQL_DB_CONNECT_STRING"]


def test_env_ipv6_host():
    env = postgresql.env(pg(host="[fd00::5]"))

    assert (env["POSTGRESQL_DB_HOSTNAME"], env["POSTGRESQL_DB_PORT"]) == ("fd00::5", "5432")


def test_redis_without_password_has_no_credentials():
    value = database.Database("redis", (Endpoint("r", 6379),), "")

    env = redis.env(value)

    assert env["REDIS_DB_CONNECT_STRING"] == "redis://r:6379"
    assert not {"REDIS_DB_USERNAME", "REDIS_DB_PASSWORD", "REDIS_DB_NAME"} & set(env)


def test_identity_ignores_credentials_but_not_endpoint_or_name():
    same = postgresql.identity(postgresql.env(pg(password="rotated")))

    assert same == postgresql.identity(postgresql.env(pg()))
    assert postgresql.identity(postgresql.env(pg(host="10.0.0.6"))) != same
    assert postgresql.identity(postgresql.env(pg(name="other"))) != same


def test_found_status_prefers_blocked():
    import ops

    found = integrations.Found(
        {}, (ops.WaitingStatus("waiting for a"), ops.BlockedStatus("b is broken"))
    )

    assert found.status == ops.BlockedStatus("b is broken")
    assert integrations.Found({}).status is None


def test_identity_of_env_without_integrations_is_empty():
    assert integrations.identity_of({"FLASK_ENV": "production"}) == ""
    assert integrations.identity_of(postgresql.env(pg())) != ""
