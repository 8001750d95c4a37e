"""What the database integrations share: the typed value, its URI, and the paas-charm names.

The variables are the ones paas-charm gives, so apps move over unchanged. For a prefix `P`
(`POSTGRESQL`, `MYSQL`, `MONGODB`, `REDIS`):
`P_DB_CONNECT_STRING` (the full URI, credentials included), and its parts `P_DB_SCHEME`,
`P_DB_NETLOC`, `P_DB_PATH`, `P_DB_PARAMS`, `P_DB_QUERY`, `P_DB_FRAGMENT` (always set, maybe
empty), `P_DB_USERNAME`, `P_DB_PASSWORD` (decoded), `P_DB_HOSTNAME`, `P_DB_PORT` (of the first
host) and `P_DB_NAME` (the path without its `/`), each set only when the URI has it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote, urlparse

import ops

from charms.flask_k8s.v0 import database_requires
from charms.flask_k8s.v0.database_requires import Endpoint

PARTS = ("SCHEME", "NETLOC", "PATH", "PARAMS", "QUERY", "FRAGMENT")
IDENTITY_PARTS = ("SCHEME", "HOSTNAME", "PORT", "NAME")


@dataclass(frozen=True)
class Database:
    """A database the app may use: where it is, its name, and the app's credentials."""

    scheme: str
    hosts: tuple[Endpoint, ...]
    name: str
    username: str | None = None
    password: str | None = None
    query: str = ""
    provided_uri: str | None = None  # a full URI the provider gave (MongoDB's `uris`)

    def uri(self) -> str:
        """The connection URI (user and password percent-encoded), or the provider's own."""
        if self.provided_uri:
            return self.provided_uri
        userinfo = ""
        if self.username is not None:
            userinfo = quote(self.username, safe="")
            if self.password is not None:
                userinfo += ":" + quote(self.password, safe="")
            userinfo += "@"
        elif self.password is not None:
            userinfo = ":" + quote(self.password, safe="") + "@"
        hosts = ",".join(f"{host.host}:{host.port}" for host in self.hosts)
        path = "/" + quote(self.name, safe="") if self.name else ""
        return f"{self.scheme}://{userinfo}{hosts}{path}" + (
            f"?{self.query}" if self.query else ""
        )


def request(charm: ops.CharmBase, relation: ops.Relation) -> None:
    """Ask for a database named after the application."""
    database_requires.request(relation, charm.app, charm.app.name)


def read(charm: ops.CharmBase, relation: ops.Relation, scheme: str) -> Database:
    """Read a data-platform `database` relation; its first endpoint, as paas-charm does."""
    data = database_requires.read_database(charm.model, relation, charm.app.name)
    return Database(scheme, data.endpoints[:1], data.database, data.username, data.password)


def _host_port(hostinfo: str) -> tuple[str, str]:
    first = hostinfo.split(",")[0]
    if first.startswith("["):  # [v6]:port
        host, _, rest = first[1:].partition("]")
        return host, rest.removeprefix(":")
    host, _, port = first.rpartition(":") if ":" in first else (first, "", "")
    return host, port


def url_env(prefix: str, uri: str) -> dict[str, str]:
    """`<prefix>_CONNECT_STRING` and its parts, the way paas-charm splits any URL.

    `_SCHEME`, `_NETLOC`, `_PATH`, `_PARAMS`, `_QUERY`, `_FRAGMENT` always (maybe empty);
    `_USERNAME`, `_PASSWORD` (decoded), `_HOSTNAME`, `_PORT` (first host) when present.
    """
    parsed = urlparse(uri)
    env = {f"{prefix}_CONNECT_STRING": uri}
    env.update({f"{prefix}_{part}": getattr(parsed, part.lower()) for part in PARTS})
    userinfo, at, hostinfo = parsed.netloc.rpartition("@")
    username, colon, password = userinfo.partition(":")
    host, port = _host_port(hostinfo)
    optional = {
        "USERNAME": unquote(username) if at else "",
        "PASSWORD": unquote(password) if colon else "",
        "HOSTNAME": host,
        "PORT": port,
    }
    env.update({f"{prefix}_{key}": value for key, value in optional.items() if value})
    return env


def uri_env(prefix: str, uri: str) -> dict[str, str]:
    """The paas-charm variables for one database URI (see the module docstring)."""
    env = url_env(f"{prefix}_DB", uri)
    name = unquote(urlparse(uri).path.removeprefix("/"))
    if name:
        env[f"{prefix}_DB_NAME"] = name
    return env


def identity(prefix: str, env: dict[str, str]) -> str:
    """Which database the variables point at (no credential): scheme, first host, port, name."""
    return prefix + ":" + "|".join(env.get(f"{prefix}_DB_{part}", "") for part in IDENTITY_PARTS)
