"""The `rabbitmq` endpoint (interface `rabbitmq`): a user named after the app on vhost `/`.

Wire format (the same for both charms that provide it):
- our app databag (leader): `username` = the application's name, `vhost` = `/`;
- rabbitmq-k8s answers in its app databag: `hostname` and `password`;
- rabbitmq-server (machine charm) leaves its app databag empty and answers in each unit's
  databag: `hostname` (that unit's address) and `password` (the same in every unit).
The broker listens on AMQP's port 5672: the interface carries no port.

Variables, as paas-charm gives them: `RABBITMQ_CONNECT_STRING`
(`amqp://user:password@host:5672/%2F`, the vhost percent-encoded as the AMQP URI spec asks),
its parts `RABBITMQ_SCHEME`, `_NETLOC`, `_PATH`, `_PARAMS`, `_QUERY`, `_FRAGMENT`,
`_USERNAME`, `_PASSWORD`, `_HOSTNAME`, `_PORT`, then `RABBITMQ_VHOST` and
`RABBITMQ_CONNECT_STRINGS` (one URI per broker unit, comma-separated). Our user and password
are percent-encoded in the URIs (paas-charm leaves them as they are; the broker's own
passwords are alphanumeric, so both agree on them).

The password travels in the provider's plain databag (the interface has no secret); we never
write, log or show it.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import quote

import ops

from charms.flask_k8s.v0 import databags
from charms.flask_k8s.v0.database_requires import BadDataError, NotReadyError, provider_app_data
from integrations import database

ENDPOINT = "rabbitmq"
ENV_PREFIX = "RABBITMQ_"
VHOST = "/"
PORT = 5672
MAX_PASSWORD_CHARS = 1024
# A DNS name (Kubernetes service names, FQDNs); IP addresses are checked by `ipaddress`.
_DNS_NAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*\.?$")


@dataclass(frozen=True)
class Broker:
    """Where the broker is (its first unit, and every unit), and the app's credentials."""

    hostname: str
    username: str
    password: str
    vhost: str = VHOST
    hostnames: tuple[str, ...] = ()

    def uri(self, hostname: str | None = None) -> str:
        """The AMQP URI of one broker host (the first by default)."""
        host = hostname or self.hostname
        if ":" in host:  # IPv6
            host = f"[{host}]"
        userinfo = f"{quote(self.username, safe='')}:{quote(self.password, safe='')}"
        return f"amqp://{userinfo}@{host}:{PORT}/{quote(self.vhost, safe='')}"


def request(charm: ops.CharmBase, relation: ops.Relation) -> None:
    """Ask for a user named after the application on vhost `/`."""
    databags.update(relation.data[charm.app], {"username": charm.app.name, "vhost": VHOST})


def _host(raw: str, relation_name: str) -> str:
    host = raw.strip().removeprefix("[").removesuffix("]")
    if _DNS_NAME.match(host):
        return host
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        raise BadDataError(
            f"the {relation_name} relation published an invalid hostname "
            f"{databags.describe(raw, 60)}: fix or replace the provider, or remove the relation"
        ) from None


def read(charm: ops.CharmBase, relation: ops.Relation) -> Broker:
    """The broker's answer: the app databag (rabbitmq-k8s), else the units' (rabbitmq-server)."""
    name = relation.name
    app_data = provider_app_data(relation)
    units = sorted(relation.units, key=lambda unit: unit.name)
    unit_data = [relation.data[unit] for unit in units]
    hostname, password = app_data.get("hostname"), app_data.get("password")
    if not (hostname and password):
        answered = [data for data in unit_data if data.get("hostname") and data.get("password")]
        if answered:
            hostname, password = answered[0]["hostname"], answered[0]["password"]
    if not hostname or not password:
        raise NotReadyError(
            f"waiting for the {name} relation to publish its hostname and password"
        )
    if len(password) > MAX_PASSWORD_CHARS or not password.isprintable():
        raise BadDataError(
            f"the {name} relation published an unusable password: fix or replace the provider, "
            f"or remove the relation"
        )
    unit_hosts = [data["hostname"] for data in unit_data if data.get("hostname")]
    return Broker(
        hostname=_host(hostname, name),
        username=charm.app.name,
        password=password,
        hostnames=tuple(_host(host, name) for host in unit_hosts or [hostname]),
    )


def env(value: Broker) -> dict[str, str]:
    """The `RABBITMQ_*` variables."""
    variables = database.url_env("RABBITMQ", value.uri())
    variables["RABBITMQ_VHOST"] = value.vhost
    variables["RABBITMQ_CONNECT_STRINGS"] = ",".join(value.uri(host) for host in value.hostnames)
    return variables
