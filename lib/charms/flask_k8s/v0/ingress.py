"""Requirer side of the `ingress` interface, version 2, written from its wire format.

Wire format (every value JSON-encoded):
- our app databag (leader only): `model`, `name`, `port`, optional `strip-prefix`, and
  `is_port_open` = `true` while this unit has `port`/tcp open (`open-port`); the key is left
  out, not `false`, while it is closed, as the reference requirer does;
- each of our unit databags: `host` (the pod's FQDN) and `ip` (the relation's bind address);
- the provider's app databag: `ingress` = `{"url": "http://…/<model>-<app>"}`.

This library observes nothing and never sets status. The charm calls `publish()` from its
reconcile (a pod's IP changes when it is recreated, so publish on pebble-ready, relation-changed
and update-status) and reads `url`. Malformed provider data reads as "no URL", is logged, and
is listed by `problems()` for the charm's status.

Usage:

    self.ingress = IngressRequirer(self, port=8000, strip_prefix=True)
    ...
    self.unit.set_ports(8000)  # before publish(), so this hook already sends is_port_open
    self.ingress.publish()
    url = self.ingress.url
"""

from __future__ import annotations

import json
import logging
from typing import Any

import ops

from charms.flask_k8s.v0 import databags

logger = logging.getLogger(__name__)

PORT_OPEN_KEY = "is_port_open"  # spelt with underscores on the wire, unlike `strip-prefix`


class IngressRequirer(ops.Object):
    """Ask an ingress provider to route to this app; read back the URL it gives."""

    def __init__(
        self,
        charm: ops.CharmBase,
        relation_name: str = "ingress",
        *,
        port: int,
        strip_prefix: bool = True,
    ):
        super().__init__(charm, relation_name)
        self._charm = charm
        self._relation_name = relation_name
        self._port = port
        self._strip_prefix = strip_prefix

    @property
    def relation(self) -> ops.Relation | None:
        """The ingress relation, unless it is absent or being broken."""
        # During relation-broken ops already leaves the broken relation out of `relations`.
        return self._charm.model.get_relation(self._relation_name)

    def app_data(self) -> dict[str, str]:
        """Return what the leader publishes in our app databag.

        Integrators read `is_port_open` to know whether the app's port is open yet. It comes
        from Juju (`opened-ports` counts an `open-port` made earlier in the same hook), not
        from the caller.
        """
        data: dict[str, Any] = {
            "model": self._charm.model.name,
            "name": self._charm.app.name,
            "port": self._port,
            "strip-prefix": self._strip_prefix,
        }
        if self._port_is_open():
            data[PORT_OPEN_KEY] = True
        return {key: json.dumps(value) for key, value in data.items()}

    def _port_is_open(self) -> bool:
        opened = self._charm.unit.opened_ports()
        return any(p.protocol == "tcp" and p.port == self._port for p in opened)

    def unit_data(self, relation: ops.Relation) -> dict[str, str]:
        """Return what each unit publishes in its own databag: pod FQDN and bind address."""
        unit_host = self._charm.unit.name.replace("/", "-")
        app, model = self._charm.app.name, self._charm.model.name
        data = {"host": json.dumps(f"{unit_host}.{app}-endpoints.{model}.svc.cluster.local")}
        address = databags.bind_address(self._charm, relation)
        if address is not None:
            data["ip"] = json.dumps(address)
        return data

    def publish(self, *, app: bool = True) -> None:
        """Write our app (leader) and unit data, touching only keys whose value differs.

        `app=False` writes the unit data alone (the pod's address), reading less.
        """
        relation = self.relation
        if relation is None:
            return
        databags.update(relation.data[self._charm.unit], self.unit_data(relation))
        if app and self._charm.unit.is_leader():
            app_databag, wanted = relation.data[self._charm.app], self.app_data()
            databags.update(app_databag, wanted)
            if PORT_OPEN_KEY not in wanted and PORT_OPEN_KEY in app_databag:
                del app_databag[PORT_OPEN_KEY]  # closed again: absent, never `false`

    @property
    def url(self) -> str | None:
        """The URL the provider routes to this app, or None (none yet, malformed, or gone)."""
        return self._read()[0]

    def problems(self) -> list[str]:
        """Why the provider's data is being ignored (empty when it is fine or absent)."""
        problem = self._read()[1]
        return [problem] if problem else []

    def _read(self) -> tuple[str | None, str | None]:
        relation = self.relation
        if relation is None or relation.app is None:
            return None, None
        raw = relation.data[relation.app].get("ingress")
        if not raw:
            return None, None
        url = databags.url_field(raw)
        if url is None:
            logger.warning("ingress: ignoring malformed provider data %s", databags.describe(raw))
            return None, f"{self._relation_name}: malformed `ingress` from {relation.app.name}"
        return url, None
