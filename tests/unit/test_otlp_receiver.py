"""juju-local's OTLP/HTTP receiver: its protobuf reading, and what it answers.

The bodies are encoded here by hand from the OTLP field numbers; the real exporter's bodies are
read in tests/e2e/test_tracing.py.
"""

from __future__ import annotations

import http.client
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from juju_local import otlp_receiver
from juju_local.otlp_receiver import WireError, decode_spans
from juju_local.processes import free_port


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def field(number: int, value: bytes | int, fixed: bool = False) -> bytes:
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    if fixed:
        return varint(number << 3 | 1) + value
    return varint(number << 3 | 2) + varint(len(value)) + value


def attribute(key: str, value: str | int | bool) -> bytes:
    if isinstance(value, bool):
        any_value = field(2, int(value))
    elif isinstance(value, int):
        any_value = field(3, value & (1 << 64) - 1)
    else:
        any_value = field(1, value.encode())
    return field(1, key.encode()) + field(2, any_value)


TRACE_ID = bytes(range(16))
SPAN = b"".join(
    [
        field(1, TRACE_ID),
        field(2, bytes(range(8))),
        field(5, b"GET /status/<int:code>"),
        field(6, 2),  # SERVER
        field(7, struct.pack("<Q", 1_000), fixed=True),
        field(8, struct.pack("<Q", 2_500), fixed=True),
        field(9, attribute("http.route", "/status/<int:code>")),
        field(9, attribute("http.status_code", 201)),
        field(9, attribute("negative", -3)),
        field(9, attribute("flag", True)),
    ]
)
RESOURCE = field(1, attribute("service.name", "flask-k8s"))
SCOPE_SPANS = field(1, field(1, b"opentelemetry.instrumentation.flask")) + field(2, SPAN)
BODY = field(1, field(1, RESOURCE) + field(2, SCOPE_SPANS))


def test_a_request_body_decodes_into_its_spans():
    assert decode_spans(BODY) == [
        {
            "service": "flask-k8s",
            "scope": "opentelemetry.instrumentation.flask",
            "trace_id": TRACE_ID.hex(),
            "span_id": bytes(range(8)).hex(),
            "parent_span_id": "",
            "name": "GET /status/<int:code>",
            "kind": 2,
            "start_ns": 1_000,
            "end_ns": 2_500,
            "attributes": {
                "http.route": "/status/<int:code>",
                "http.status_code": 201,
                "negative": -3,
                "flag": True,
            },
        }
    ]


@pytest.mark.parametrize(
    "body",
    [
        BODY[:-3],  # truncated
        field(1, 7),  # a varint where a message belongs
        b"\x0b",  # wire type 3 (groups): not OTLP
        b"\xff" * 12,  # an endless varint
    ],
)
def test_a_malformed_body_is_a_wire_error(body):
    with pytest.raises(WireError):
        decode_spans(body)


@given(st.binary(max_size=200))
def test_any_bytes_decode_or_raise_wire_error_only(body):
    try:
        decode_spans(body)
    except WireError:
        pass


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    port, spans_file = free_port(), tmp_path / "spans.jsonl"
    running = otlp_receiver.make_server(port, spans_file)
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    yield port, spans_file
    running.shutdown()
    running.server_close()


def post(port: int, path: str, body: bytes, content_type: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("POST", path, body, {"Content-Type": content_type})
    status = connection.getresponse().status
    connection.close()
    return status


def test_the_server_records_spans_and_refuses_what_is_not_otlp_protobuf(server):
    port, spans_file = server

    statuses = [
        post(port, "/v1/traces", BODY, "application/x-protobuf"),
        post(port, "/v1/traces", b"{}", "application/json"),
        post(port, "/v1/logs", BODY, "application/x-protobuf"),
        post(port, "/v1/traces", b"\xff" * 12, "application/x-protobuf"),
    ]

    assert statuses == [200, 415, 404, 400]
    (span,) = otlp_receiver.read_spans(spans_file)
    assert span["name"] == "GET /status/<int:code>"
