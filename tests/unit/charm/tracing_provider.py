"""The provider side of the `tracing` relation, played by the ecosystem's own provider library.

`tempo_answer` runs `charmlibs.interfaces.tracing.TracingEndpointProvider` (what Tempo and the
OpenTelemetry collector charms use) in a small provider charm under ops.testing: it reads what
our charm asked for and publishes receivers the way those charms do. Its app databag is then
handed to our charm as the remote side.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import ops
from charmlibs.interfaces.tracing import RawReceiver, TracingEndpointProvider
from ops import testing


class _Tempo(ops.CharmBase):
    """A tracing backend reduced to its relation handling: it serves what was requested."""

    urls: dict[str, str] = {}  # protocol -> URL

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.tracing = TracingEndpointProvider(self)
        framework.observe(self.tracing.on.request, self._on_request)

    def _on_request(self, _: ops.EventBase) -> None:
        requested = self.tracing.requested_protocols()
        served: list[RawReceiver] = [
            (protocol, url)  # type: ignore[misc]  # a protocol name from the request
            for protocol, url in self.urls.items()
            if protocol in requested
        ]
        self.tracing.publish_receivers(served)


def tempo_answer(
    request: Mapping[str, str], *, requirer: str = "flask-k8s", **urls: str
) -> dict[str, str]:
    """The provider's app databag after it read `request` (our app databag).

    `urls` maps each protocol the backend serves to its URL (`otlp_http="http://tempo:4318"`);
    it publishes those that were requested.
    """
    meta = {"name": "tempo", "provides": {"tracing": {"interface": "tracing"}}}
    provider = type("Tempo", (_Tempo,), {"urls": dict(urls)})
    ctx = testing.Context(provider, meta=meta)
    relation = testing.Relation("tracing", remote_app_name=requirer, remote_app_data=dict(request))
    with warnings.catch_warnings():  # the library uses pydantic attributes it deprecated
        warnings.simplefilter("ignore")
        out = ctx.run(
            ctx.on.relation_changed(relation, remote_unit=0),
            testing.State(leader=True, relations={relation}),
        )
    return dict(out.get_relation(relation.id).local_app_data)
