"""The `tracing` endpoint (interface `tracing`, v2): where the app sends its spans.

Wire format (the ecosystem's `charmlibs-interfaces-tracing` models, which we use for it):
- our app databag (leader): `receivers` = a JSON list of the protocols we want, `["otlp_http"]`
  (written only when it differs);
- the provider's app databag: `receivers` = a JSON list of `{"protocol": {"name": "otlp_http",
  "type": "http"}, "url": "http://tempo:4318"}`, one per protocol it serves.

The variables are the ones paas-charm gives, so apps move over unchanged:
`OTEL_SERVICE_NAME` (the application's name) and `OTEL_EXPORTER_OTLP_ENDPOINT` (the provider's
OTLP/HTTP URL; OpenTelemetry's exporter appends `/v1/traces`). Gunicorn starts a tracer per
worker from them when the rock has the OpenTelemetry packages (`workload.WORKER_HOOKS`).

The library (and pydantic under it) is imported inside the functions below: only hooks on a
charm with a tracing relation pay for it. The provider's JSON is decoded by our bounded
`databags.parse_json` first (the library's own decoding lets a deeply nested value escape as
RecursionError and logs the whole databag), then validated by the library's model.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass

import ops

from charms.flask_k8s.v0 import databags
from charms.flask_k8s.v0.database_requires import BadDataError, NotReadyError

ENDPOINT = "tracing"
ENV_PREFIX = "OTEL_"
PROTOCOL = "otlp_http"
RECEIVERS_KEY = "receivers"


@dataclass(frozen=True)
class Tracing:
    """Where the app's spans go, and the name they are recorded under."""

    service_name: str
    endpoint: str


def request(charm: ops.CharmBase, relation: ops.Relation) -> None:
    """Ask the provider for an OTLP/HTTP receiver (only the leader may write our databag)."""
    # The library's `TracingRequirerAppData` in its wire form (its `dump` warns under pydantic
    # 2.11+); the tests have the library's provider read it.
    databags.update(relation.data[charm.app], {RECEIVERS_KEY: json.dumps([PROTOCOL])})


def read(charm: ops.CharmBase, relation: ops.Relation) -> Tracing:
    """The provider's OTLP/HTTP URL (NotReadyError/BadDataError until it is usable)."""
    name = relation.name
    raw = relation.data[relation.app].get(RECEIVERS_KEY) if relation.app else None
    if not raw:
        raise NotReadyError(f"waiting for the {name} relation to publish its receivers")
    url = _otlp_http_url(raw, name)
    if url is None:
        # A relay (an OpenTelemetry collector, grafana-agent) offers it once it has a backend.
        raise NotReadyError(f"waiting for the {name} relation to offer OTLP over HTTP")
    return Tracing(charm.app.name, _checked_url(url, name))


def env(value: Tracing) -> dict[str, str]:
    """The `OTEL_*` variables."""
    return {"OTEL_SERVICE_NAME": value.service_name, "OTEL_EXPORTER_OTLP_ENDPOINT": value.endpoint}


def _malformed(name: str, why: str) -> BadDataError:
    return BadDataError(
        f"the {name} relation published malformed receivers ({why}): fix or replace the "
        f"provider, or remove the relation"
    )


def _otlp_http_url(raw: str, name: str) -> str | None:
    """The URL of the first `otlp_http` receiver, None if there is none."""
    import pydantic
    from charmlibs.interfaces.tracing import TracingProviderAppData

    try:
        receivers = databags.parse_json(raw)
    except databags.MalformedDataError as exc:
        raise _malformed(name, str(exc)) from None
    try:
        data = TracingProviderAppData.model_validate({RECEIVERS_KEY: receivers})
    except pydantic.ValidationError as exc:
        raise _malformed(name, f"{exc.error_count()} invalid field(s)") from None
    urls = [receiver.url for receiver in data.receivers if receiver.protocol.name == PROTOCOL]
    return urls[0] if urls else None


def _checked_url(url: str, name: str) -> str:
    """`url` if it is an http(s) URL with a host that fits in a variable, else BadDataError."""
    invalid = BadDataError(
        # The URL is not echoed: its user-info part may hold a token.
        f"the {name} relation published an invalid OTLP/HTTP URL (want "
        f"http(s)://host[:port][/path]): fix or replace the provider, or remove the relation"
    )
    if len(url) > databags.MAX_URL_CHARS or not url.isprintable() or " " in url:
        raise invalid
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port out of range)
    except ValueError:
        raise invalid from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise invalid
    return url
