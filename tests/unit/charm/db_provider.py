"""The provider side of the database relations, played by implementations that are not ours.

`data_platform_provider` runs the Data Platform team's own provider handler
(`dpcharmlibs.interfaces.ResourceProviderEventHandler`, the packaged successor of the
data_interfaces library that postgresql-k8s, mysql-k8s and mongodb-k8s use) in a small provider
charm under ops.testing: it reads what our charm wrote into the relation and answers the way
those charms do. What it writes (its app databag, and the credentials secret granted to us) is
then handed to our charm as the remote side.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping

import ops
from ops import testing

from tests.unit.charm.provider_answer import granted_secret

with warnings.catch_warnings():  # pydantic warns about the library's own field declarations
    warnings.simplefilter("ignore")
    from dpcharmlibs.interfaces import (
        RequirerCommonModel,
        ResourceProviderEventHandler,
        ResourceProviderModel,
        ResourceRequestedEvent,
    )


@dataclasses.dataclass(frozen=True)
class Answer:
    """What the provider publishes: its app databag and (if any) the credentials secret."""

    app_data: dict[str, str]
    secret: testing.Secret | None


class _Provider(ops.CharmBase):
    """A database charm reduced to its relation handling: it answers every request."""

    response: dict[str, str] = {}

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.database = ResourceProviderEventHandler(self, "database", RequirerCommonModel)
        framework.observe(self.database.on.resource_requested, self._on_requested)

    def _on_requested(self, event: ResourceRequestedEvent) -> None:
        request = event.request
        response = ResourceProviderModel(
            salt=request.salt,
            request_id=request.request_id,
            resource=request.resource,
            **self.response,  # type: ignore[arg-type]
        )
        self.database.set_response(event.relation.id, response)


def data_platform_provider(
    interface: str,
    request: Mapping[str, str],
    *,
    requirer: str = "flask-k8s",
    **response: str,
) -> Answer:
    """Let the Data Platform provider answer `request` (our app databag) with `response`.

    `response` holds the provider's fields (`endpoints`, `username`, `password`, `uris`, …).
    The secret comes back as our charm sees it: granted to us, its content current.
    """
    meta = {"name": "database-k8s", "provides": {"database": {"interface": interface}}}
    provider = type("Provider", (_Provider,), {"response": dict(response)})
    ctx = testing.Context(provider, meta=meta)
    relation = testing.Relation(
        "database", remote_app_name=requirer, remote_app_data=dict(request)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = ctx.run(
            ctx.on.relation_changed(relation, remote_unit=0),
            testing.State(leader=True, relations={relation}),
        )
    app_data = dict(out.get_relation(relation.id).local_app_data)
    secret = granted_secret(out, app_data.get("secret-user"))
    return Answer(app_data, secret)
