"""Tracing end to end: the sample deployed with the charm, related to a local OTLP/HTTP receiver.

`juju-local integrate tracing` runs our OTLP/HTTP receiver and publishes it on the tracing
relation as Tempo does; the charm gives the app OTEL_SERVICE_NAME and
OTEL_EXPORTER_OTLP_ENDPOINT; each Gunicorn worker of the sample (which has the OpenTelemetry
packages) starts a tracer and instruments Flask, so a request's spans reach the receiver, and
the access line carries the request's id and its trace id.
"""

from __future__ import annotations

import re
import urllib.request
import uuid

from juju_local import cli, otlp_receiver
from juju_local.deployment import Deployment
from tests.e2e import deployment_state, rock_runner

READY = 60.0
ROUTE = "/status/<int:code>"


def _otel_env(deployment: Deployment) -> dict[str, str]:
    env = deployment_state.service_env(deployment)
    return {key: value for key, value in env.items() if key.startswith("OTEL_")}


def _get(path: str, request_id: str) -> int:
    request = urllib.request.Request(
        rock_runner.APP_URL + path, headers={"X-Request-ID": request_id}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status


def _access_line(deployment: Deployment, marker: str) -> str | None:
    """The app's access line for the request carrying `marker`, once Pebble logged it."""
    log = deployment.container.log_path.read_text()
    return next((line for line in log.splitlines() if marker in line), None)


def _juju_local(deployment: Deployment, *args: str) -> int:
    return cli.main(["--state-dir", str(deployment.state_dir), *args])


def test_integrate_tracing_gives_the_app_the_receiver(deployment: Deployment, capsys):
    master = rock_runner.gunicorn_master_pid()

    assert _juju_local(deployment, "integrate", "tracing") == 0

    receiver = otlp_receiver.Receiver(deployment.state_dir)
    assert f"tracing:    {receiver.url}/v1/traces" in capsys.readouterr().out
    assert _otel_env(deployment) == {
        "OTEL_SERVICE_NAME": "flask-k8s",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
    }
    assert deployment_state.unit_status(deployment)[0] == "active"
    assert rock_runner.wait_until(lambda: rock_runner.gunicorn_master_pid() != master, READY)


def test_a_request_produces_spans_named_after_its_route_and_ids_in_the_access_line(
    deployment: Deployment,
):
    receiver = otlp_receiver.Receiver(deployment.state_dir)
    assert rock_runner.wait_for_http_ok("/", READY)
    marker, request_id = uuid.uuid4().hex, f"req-{uuid.uuid4().hex[:12]}"

    assert _get(f"/status/201?marker={marker}", request_id) == 201

    def ours() -> list[dict]:
        return [
            span
            for span in receiver.spans()
            if span["attributes"].get("http.route") == ROUTE
            and marker
            in str(span["attributes"].get("url.query", ""))
            + str(span["attributes"].get("http.target", ""))
        ]

    # The batch processor exports every 5 s by default.
    assert rock_runner.wait_until(lambda: bool(ours()), 30.0), receiver.spans()[-5:]
    (span,) = ours()
    assert span["service"] == "flask-k8s"
    assert ROUTE in span["name"]
    assert span["scope"].startswith("opentelemetry.instrumentation.flask")
    assert re.fullmatch(r"[0-9a-f]{32}", span["trace_id"])

    assert rock_runner.wait_until(lambda: _access_line(deployment, marker) is not None, 10.0)
    line = _access_line(deployment, marker) or ""
    assert f'"GET /status/201?marker={marker} HTTP/1.1" 201 ' in line
    assert line.endswith(f"request_id={request_id} trace_id={span['trace_id']}")


def test_integrating_twice_is_a_one_line_error(deployment: Deployment, capsys):
    assert _juju_local(deployment, "integrate", "tracing") == 1
    assert "tracing is already related (limit 1)" in capsys.readouterr().err


def test_removing_the_relation_drops_the_variables(deployment: Deployment):
    master = rock_runner.gunicorn_master_pid()

    assert _juju_local(deployment, "remove-relation", "tracing") == 0

    assert _otel_env(deployment) == {}
    assert deployment_state.unit_status(deployment)[0] == "active"
    assert rock_runner.wait_until(lambda: rock_runner.gunicorn_master_pid() != master, READY)
    assert rock_runner.wait_for_http_ok("/", READY)
    marker = uuid.uuid4().hex
    assert _get(f"/status/200?marker={marker}", "after") == 200
    assert rock_runner.wait_until(lambda: _access_line(deployment, marker) is not None, 10.0)
    assert (_access_line(deployment, marker) or "").endswith("request_id=after trace_id=-")
