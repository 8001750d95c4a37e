"""The provider side of the openfga relation, played by the OpenFGA team's packaged library.

`openfga_provider` runs `charmlibs.interfaces.openfga.OpenFGAProvider` in a small provider
charm under ops.testing: fed what our charm wrote, it answers as openfga-k8s does (a store id,
the server's URLs, and the token in a secret granted over the relation). What it writes is then
handed to our charm as the remote side.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import ops
from charmlibs.interfaces.openfga import (
    OpenFGAProvider,
    OpenfgaProviderAppData,
    OpenFGAStoreRequestEvent,
)
from ops import testing

from tests.unit.charm.provider_answer import granted_secret

GRPC_URL = "http://10.1.0.9:8081"
HTTP_URL = "http://10.1.0.9:8080"


@dataclasses.dataclass(frozen=True)
class Answer:
    """What the provider publishes: its app databag and the token secret (as granted to us)."""

    app_data: dict[str, str]
    secret: testing.Secret | None
    store_name: str | None


class _OpenFGA(ops.CharmBase):
    """openfga-k8s reduced to its relation handling: it creates every store asked for."""

    token = ""
    answer = True
    seen: dict[str, str] = {}  # replaced per run: what the provider read from our request

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.openfga = OpenFGAProvider(self)
        framework.observe(self.openfga.on.openfga_store_requested, self._on_requested)

    def _on_requested(self, event: OpenFGAStoreRequestEvent) -> None:
        self.seen["store_name"] = event.store_name
        if not self.answer:
            return
        secret = self.app.add_secret({"token": self.token})
        data = OpenfgaProviderAppData(
            store_id="01HSTORE0000000000000000",
            token_secret_id=secret.id,
            grpc_api_url=GRPC_URL,
            http_api_url=HTTP_URL,
        )
        self.openfga.update_relation_app_data(data, event.relation.id)


def openfga_provider(
    request: Mapping[str, str], *, token: str = "fga-token", answer: bool = True
) -> Answer:
    """Let OpenFGAProvider answer `request` (our app databag); `answer=False`: not yet."""
    meta = {"name": "openfga-k8s", "provides": {"openfga": {"interface": "openfga"}}}
    seen: dict[str, str] = {}
    charm = type("OpenFGA", (_OpenFGA,), {"token": token, "answer": answer, "seen": seen})
    ctx = testing.Context(charm, meta=meta)
    relation = testing.Relation("openfga", remote_app_name="flask-k8s", remote_app_data=request)
    out = ctx.run(
        ctx.on.relation_changed(relation, remote_unit=0),
        testing.State(leader=True, relations={relation}),
    )
    app_data = dict(out.get_relation(relation.id).local_app_data)
    secret = granted_secret(out, app_data.get("token_secret_id"))
    return Answer(app_data, secret, seen.get("store_name"))
