"""Requirer side of the data-platform `database` interface (v0 wire format), and of `redis`.

Why our own: the Data Platform team's packaged requirer (`dpcharmlibs-interfaces`) writes only
its v1 request (`version: v1`, a `requests` list), which the v0 providers in today's
postgresql-k8s, mysql-k8s and mongodb-k8s charms do not read; it also costs ~130 ms of imports
(pydantic, cryptography) on every hook that loads it.

Wire format, `postgresql_client` / `mysql_client` / `mongodb_client` (data_interfaces v0):
- our app databag (leader): `database` = the database name asked for; `requested-secrets` = a
  JSON list of the secret fields we can read (`["username", "password", "tls", "tls-ca",
  "uris"]`). A provider that sees `requested-secrets` puts the credentials in a Juju secret.
- the provider's app databag: `endpoints` = `host:port[,host:port…]`; optional
  `read-only-endpoints`, `version`, `database`, `replset` (MongoDB), `uris` (MongoDB, plain).
  Credentials: `secret-user` = the id of a secret (owned by the provider, granted to us) whose
  content holds `username`, `password` and, for MongoDB, `uris`; older providers instead write
  plain `username` and `password` fields.

Wire format, `redis` (the redis-k8s charm's library): each Redis unit's databag holds
`hostname` and `port`; newer providers also put the primary's address in their app databag as
`leader-host`. No credentials.

This library observes nothing and never sets status: the charm's leader calls `request()` from
its reconcile, and every unit calls `read_database()` / `read_redis()`, which raise
`NotReadyError` (the provider has not published yet) or `BadDataError` (it published something we
cannot use). Their messages name the relation and never hold a credential.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass

import ops

logger = logging.getLogger(__name__)

REQUESTED_SECRETS = ("username", "password", "tls", "tls-ca", "uris")
USER_SECRET_KEY = "secret-user"

# A host (DNS name, IPv4, or IPv6 in brackets) and a port: nothing that could break a URI.
_ENDPOINT = re.compile(r"^(?P<host>[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]):(?P<port>[0-9]{1,5})$")
_HOST = re.compile(r"^([A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])$")


class NotReadyError(Exception):
    """The provider has not published what we need yet (a transient state)."""


class BadDataError(Exception):
    """The provider published data we cannot use; the message says what to do."""


@dataclass(frozen=True)
class Endpoint:
    """One `host:port` the provider serves on."""

    host: str
    port: int


@dataclass(frozen=True)
class DatabaseData:
    """What a `database` provider gave us: where, which database, and as whom."""

    endpoints: tuple[Endpoint, ...]
    database: str
    username: str
    password: str
    uris: str | None = None
    replset: str | None = None


@dataclass(frozen=True)
class RedisData:
    """Where the related Redis serves."""

    host: str
    port: int
    password: str | None = None


def request(relation: ops.Relation, app: ops.Application, database: str) -> None:
    """Ask for `database`, with credentials in a secret; only the leader may call this."""
    wanted = {"database": database, "requested-secrets": json.dumps(list(REQUESTED_SECRETS))}
    databag = relation.data[app]
    for key, value in wanted.items():
        if databag.get(key) != value:
            databag[key] = value


def parse_endpoints(raw: str | None, relation_name: str) -> tuple[Endpoint, ...]:
    """Parse `host:port[,host:port…]`; NotReadyError when empty, BadDataError when malformed."""
    if not raw or not raw.strip():
        raise NotReadyError(f"waiting for the {relation_name} relation to publish its endpoints")
    endpoints = []
    for item in raw.split(","):
        match = _ENDPOINT.match(item.strip())
        if not match or not 0 < int(match["port"]) < 65536:
            raise BadDataError(
                f"the {relation_name} relation published an invalid endpoint "
                f"{item.strip()[:60]!r} (want host:port): fix or replace the provider, or "
                f"remove the relation"
            )
        endpoints.append(Endpoint(match["host"], int(match["port"])))
    return tuple(endpoints)


def secret_content(
    model: ops.Model, secret_id: str, relation_name: str, what: str = "credentials secret"
) -> dict[str, str]:
    """The newest content of a secret the provider owns and granted us (`what` names it).

    BadDataError if it does not exist, NotReadyError until it is granted; neither message holds
    the content. Any provider's secret, not only a database's, is read through here.
    """
    try:
        secret = model.get_secret(id=secret_id)
        # refresh: follow the provider's rotations (secret-changed), and read the newest now.
        return secret.get_content(refresh=True)
    except ops.SecretNotFoundError:
        raise BadDataError(
            f"the {what} of the {relation_name} relation does not exist: remove "
            f"the relation and integrate again"
        ) from None
    except ops.ModelError as exc:
        # Most often not granted to us yet: the provider grants it, then tells us again.
        logger.info("cannot read the %s %s yet: %s", relation_name, what, type(exc).__name__)
        raise NotReadyError(
            f"waiting for access to the {what} of the {relation_name} relation "
            f"(the provider must grant it)"
        ) from None


def provider_app_data(relation: ops.Relation) -> ops.RelationDataContent:
    """The provider's app databag; NotReadyError until its app has joined."""
    if relation.app is None:
        raise NotReadyError(f"waiting for the {relation.name} relation's provider to join")
    return relation.data[relation.app]


def read_database(model: ops.Model, relation: ops.Relation, default_name: str) -> DatabaseData:
    """Read the provider's answer; NotReadyError or BadDataError (never holding a credential)."""
    name = relation.name
    remote = provider_app_data(relation)
    endpoints = parse_endpoints(remote.get("endpoints"), name)
    secret_id = remote.get(USER_SECRET_KEY)
    if secret_id:
        credentials = secret_content(model, secret_id, name)
    else:
        credentials = {
            key: remote[key] for key in ("username", "password", "uris") if key in remote
        }
    username, password = credentials.get("username"), credentials.get("password")
    if not username and not password:
        raise NotReadyError(f"waiting for the {name} relation to publish its credentials")
    if not username or not password:
        missing = "username" if not username else "password"
        raise BadDataError(
            f"the {name} relation published credentials without a {missing}: ask the provider "
            f"to recreate the user, or remove the relation"
        )
    database = remote.get("database") or default_name
    if not database.strip() or any(c in database for c in "/?#@ \t\r\n"):
        raise BadDataError(
            f"the {name} relation published an invalid database name: remove the relation "
            f"and integrate again"
        )
    return DatabaseData(
        endpoints=endpoints,
        database=database,
        username=username,
        password=password,
        uris=credentials.get("uris") or None,
        replset=remote.get("replset") or None,
    )


def read_redis(relation: ops.Relation) -> RedisData:
    """Read where Redis serves: the app's `leader-host`, else a unit's `hostname`, and `port`."""
    name = relation.name
    units = sorted(relation.units, key=lambda unit: unit.name)
    app_data = relation.data[relation.app] if relation.app else {}
    unit_data = [relation.data[unit] for unit in units]
    host = app_data.get("leader-host") or next(
        (data["hostname"] for data in unit_data if data.get("hostname")), None
    )
    port = next((data["port"] for data in unit_data if data.get("port")), None)
    if not host or not port:
        raise NotReadyError(f"waiting for the {name} relation to publish its host and port")
    if not _HOST.match(host) or not port.isdigit() or not 0 < int(port) < 65536:
        raise BadDataError(
            f"the {name} relation published an invalid host or port: fix or replace the "
            f"provider, or remove the relation"
        )
    password = next((data["password"] for data in unit_data if data.get("password")), None)
    return RedisData(host, int(port), password)
