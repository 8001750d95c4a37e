"""A stand-in for Tempo's OTLP/HTTP receiver: records the spans an app exports, one JSON a line.

`juju-local integrate tracing` runs it (`python -m juju_local.otlp_receiver PORT SPANS_FILE`) as
a process of its own on a free port of 127.0.0.1, until `remove`; its files live under the
deployment's state (`<state>/tracing/`).

OpenTelemetry's OTLP/HTTP exporter posts `POST /v1/traces` with
`Content-Type: application/x-protobuf`: an `ExportTraceServiceRequest`. The receiver decodes the
fields below with a small protobuf wire-format reader (no protobuf package needed), writes one
line per span to SPANS_FILE, and answers 200 with an empty `ExportTraceServiceResponse`.
Anything else gets 404, 415 or 400.

Field numbers (opentelemetry-proto, trace/v1): ExportTraceServiceRequest.resource_spans = 1;
ResourceSpans: resource 1, scope_spans 2; Resource.attributes 1; ScopeSpans: scope 1, spans 2;
InstrumentationScope.name 1; Span: trace_id 1, span_id 2, parent_span_id 4, name 5, kind 6,
start_time_unix_nano 7, end_time_unix_nano 8, attributes 9; KeyValue: key 1, value 2;
AnyValue: string 1, bool 2, int 3, double 4, bytes 7.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from juju_local import processes, provider_relations

if TYPE_CHECKING:
    from juju_local.deployment import Deployment

TRACES_PATH = "/v1/traces"
MAX_BODY = 8 * 1024 * 1024
MAX_SPANS_FILE = 64 * 1024 * 1024  # bounded: a runaway exporter cannot fill the disk
START_TIMEOUT = 30.0


ENDPOINT = "tracing"
PROVIDER_APP = "tempo"
PROTOCOL = "otlp_http"


class ReceiverError(Exception):
    """The receiver did not start, or the relation cannot be made; the message says which."""


class WireError(ValueError):
    """The body is not a well-formed protobuf message."""


# -- protobuf wire format ---------------------------------------------------------------------


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise WireError("truncated or overlong varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) for each field of one message: ints for varints, else bytes."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, pos = _varint(data, pos)
            yield number, value
            continue
        if wire_type == 2:
            length, pos = _varint(data, pos)
        elif wire_type in (1, 5):  # fixed64, fixed32
            length = 8 if wire_type == 1 else 4
        else:
            raise WireError(f"unsupported wire type {wire_type}")
        if pos + length > len(data):
            raise WireError("truncated field")
        yield number, data[pos : pos + length]
        pos += length


def _all(data: bytes, number: int) -> list[bytes]:
    """Every length-delimited (or fixed-size) value of field `number`; a varint there is wrong."""
    found = []
    for n, value in fields(data):
        if n == number:
            if not isinstance(value, bytes):
                raise WireError(f"field {number} is a varint where bytes belong")
            found.append(value)
    return found


def _bytes(data: bytes, number: int, default: bytes = b"") -> bytes:
    found = _all(data, number)
    return found[-1] if found else default


def _text(data: bytes, number: int) -> str:
    return _bytes(data, number).decode("utf-8", "replace")


def _int(data: bytes, number: int) -> int:
    found = [value for n, value in fields(data) if n == number and isinstance(value, int)]
    return found[-1] if found else 0


def _fixed64(data: bytes, number: int) -> int:
    value = _bytes(data, number, bytes(8))
    if len(value) != 8:
        raise WireError(f"field {number} is not a fixed64")
    return struct.unpack("<Q", value)[0]


def _any_value(data: bytes) -> Any:
    for number, value in fields(data):
        if number == 1 and isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        if number == 2 and isinstance(value, int):
            return bool(value)
        if number == 3 and isinstance(value, int):
            return value - (1 << 64) if value >= 1 << 63 else value  # int64
        if number == 4 and isinstance(value, bytes) and len(value) == 8:
            return struct.unpack("<d", value)[0]
        if number == 7 and isinstance(value, bytes):
            return value.hex()
    return None  # arrays and maps: not needed here


def _attributes(data: bytes, number: int) -> dict[str, Any]:
    return {_text(pair, 1): _any_value(_bytes(pair, 2)) for pair in _all(data, number)}


def decode_spans(body: bytes) -> list[dict[str, Any]]:
    """Every span of an `ExportTraceServiceRequest`, with its resource's and scope's names.

    Raises WireError for a body that is not such a message.
    """
    spans = []
    for resource_spans in _all(body, 1):
        resource = _attributes(_bytes(resource_spans, 1), 1)
        for scope_spans in _all(resource_spans, 2):
            scope = _text(_bytes(scope_spans, 1), 1)
            for span in _all(scope_spans, 2):
                spans.append(
                    {
                        "service": resource.get("service.name"),
                        "scope": scope,
                        "trace_id": _bytes(span, 1).hex(),
                        "span_id": _bytes(span, 2).hex(),
                        "parent_span_id": _bytes(span, 4).hex(),
                        "name": _text(span, 5),
                        "kind": _int(span, 6),
                        "start_ns": _fixed64(span, 7),
                        "end_ns": _fixed64(span, 8),
                        "attributes": _attributes(span, 9),
                    }
                )
    return spans


# -- the HTTP server --------------------------------------------------------------------------


def make_server(port: int, spans_file: Path) -> ThreadingHTTPServer:
    """A server for 127.0.0.1:port appending each span it receives to `spans_file`."""
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._answer(413)
                return
            body = self.rfile.read(length)
            content_type = self.headers.get("Content-Type", "").split(";")[0].strip()
            if self.path != TRACES_PATH:
                self._answer(404)
            elif content_type != "application/x-protobuf":
                self._answer(415)
            else:
                try:
                    spans = decode_spans(body)
                except WireError as exc:
                    self._answer(400, str(exc).encode())
                    return
                with lock:
                    _append(spans_file, spans)
                self._answer(200, content_type="application/x-protobuf")

        def _answer(self, code: int, body: bytes = b"", content_type: str = "text/plain") -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


def _append(spans_file: Path, spans: list[dict[str, Any]]) -> None:
    size = spans_file.stat().st_size if spans_file.exists() else 0
    lines = "".join(json.dumps(span, sort_keys=True) + "\n" for span in spans)
    if size + len(lines) <= MAX_SPANS_FILE:
        with spans_file.open("a", encoding="utf-8") as out:
            out.write(lines)


def read_spans(spans_file: Path) -> list[dict[str, Any]]:
    """The spans recorded so far, in arrival order."""
    if not spans_file.exists():
        return []
    return [json.loads(line) for line in spans_file.read_text().splitlines() if line]


# -- the receiver process ---------------------------------------------------------------------


class Receiver:
    """The receiver process of one deployment, found again from its directory."""

    def __init__(self, state_dir: Path):
        self.dir = state_dir / "tracing"
        self.spans_file = self.dir / "spans.jsonl"
        self.pid_path = self.dir / "receiver.pid"

    @property
    def port(self) -> int:
        """Its port, chosen once."""
        return processes.stored_port(self.dir / "port")

    @property
    def url(self) -> str:
        """What the provider publishes: the exporter appends /v1/traces."""
        return f"http://127.0.0.1:{self.port}"

    def pid(self) -> int | None:
        """The running receiver's pid, if it runs."""
        return processes.running_pid(self.pid_path)

    def start(self) -> None:
        """Start it unless it runs; wait until it listens."""
        if self.pid() is not None:
            return
        port = self.port
        repo = Path(__file__).resolve().parents[1]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo), str(repo / "rock")])}
        argv = [sys.executable, "-m", "juju_local.otlp_receiver", str(port), str(self.spans_file)]
        with (self.dir / "receiver.log").open("ab") as log:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # outlives this command, until `remove`
            )
        self.pid_path.write_text(str(process.pid))
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if processes.listening(port):
                return
            if process.poll() is not None:
                break
            time.sleep(0.1)
        tail = (self.dir / "receiver.log").read_text(errors="replace")[-1500:]
        raise ReceiverError(f"the OTLP receiver did not start on 127.0.0.1:{port}:\n{tail}")

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL)."""
        pid = self.pid()
        if pid is not None:
            processes.terminate(pid, 10.0)

    def spans(self) -> list[dict[str, Any]]:
        """The spans it recorded."""
        return read_spans(self.spans_file)


# -- the provider's side of the relation ------------------------------------------------------


def integrate(deployment: Deployment) -> int:
    """`juju integrate app tempo`: start the receiver, run the handshake; the relation id.

    As Tempo does, the provider publishes a receiver for each protocol our app asked for that
    it serves (here only OTLP/HTTP), once the request is there.
    """
    model = deployment.model
    provider_relations.require_unrelated(model, ENDPOINT, ReceiverError)
    receiver = Receiver(deployment.state_dir)
    receiver.start()
    relation_id, unit = provider_relations.relate(
        deployment, ENDPOINT, PROVIDER_APP, "tracing", []
    )
    request = model.relation(relation_id).app_data.get(model.state().app, {})
    try:
        requested = json.loads(request.get("receivers") or "[]")
    except ValueError:
        requested = []
    if isinstance(requested, list) and PROTOCOL in requested:
        served = [{"protocol": {"name": PROTOCOL, "type": "http"}, "url": receiver.url}]
        model.set_remote_app_data(relation_id, {"receivers": json.dumps(served)})
    deployment.fire(f"{ENDPOINT}-relation-changed", relation_id=relation_id, remote_unit=unit)
    return relation_id


def remove_relation(deployment: Deployment) -> None:
    """`juju remove-relation app tempo` (the receiver keeps running until `remove`)."""
    relation = provider_relations.the_relation(deployment.model, ENDPOINT, ReceiverError)
    deployment.remove_relation(relation.id)


def describe(state_dir: Path) -> list[str]:
    """A line for `status` while the receiver runs."""
    receiver = Receiver(state_dir)
    if receiver.pid() is None:
        return []
    return [f"  tracing:    {receiver.url}/v1/traces   (spans: {receiver.spans_file})"]


def main(argv: list[str]) -> int:
    """`python -m juju_local.otlp_receiver PORT SPANS_FILE`."""
    server = make_server(int(argv[0]), Path(argv[1]))
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
