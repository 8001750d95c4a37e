"""`juju-local integrate s3|smtp`: servers from PyPI, and the provider charm's side of each.

Like `databases` (PostgreSQL, MariaDB, Redis): `integrate` starts the server (once per
deployment), adds the relation and answers as the provider charm does; `remove-relation` fires
the departed and broken hooks (the server runs on until `remove`, which stops it).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from juju_local import mail_relay, object_storage, provider_relations
from juju_local.databases import DatabaseError, Server

if TYPE_CHECKING:
    from juju_local.deployment import Deployment

SERVERS: dict[str, type[Server]] = {
    "s3": object_storage.S3Server,
    "smtp": mail_relay.SmtpServer,
}


def integrate(deployment: Deployment, endpoint: str) -> int:
    """`juju integrate app <endpoint>`: start the server, run the handshake; the relation id."""
    server = SERVERS[endpoint](deployment.state_dir)
    provider_relations.require_unrelated(deployment.model, endpoint, DatabaseError)
    server.start()
    relation_id, unit = provider_relations.relate(
        deployment, endpoint, server.app, server.interface, [f"{server.app}/0"]
    )
    if isinstance(server, object_storage.S3Server):
        object_storage.answer(deployment, server, relation_id)
    elif isinstance(server, mail_relay.SmtpServer):
        mail_relay.answer(deployment, server, relation_id)
    deployment.fire(f"{endpoint}-relation-changed", relation_id=relation_id, remote_unit=unit)
    return relation_id


def remove_relation(deployment: Deployment, endpoint: str) -> None:
    """`juju remove-relation app <endpoint>` (the server keeps running until `remove`)."""
    relation = provider_relations.the_relation(deployment.model, endpoint, DatabaseError)
    deployment.remove_relation(relation.id)


def stop_all(state_dir: Path) -> None:
    """Stop every server `integrate` started here."""
    for kind in SERVERS.values():
        kind(state_dir).stop()


def describe(state_dir: Path) -> list[str]:
    """One line per running server, for `status`."""
    lines = []
    for kind in SERVERS.values():
        server = kind(state_dir)
        if server.pid() is not None:
            lines.append(f"  {server.kind + ':':<11} 127.0.0.1:{server.port}   (in: {server.dir})")
    return lines
