"""A stand-in for Loki's push API: records what Pebble's Loki client posts, in this process.

Pebble (v1.32.1, `internals/overlord/logstate/loki`) posts JSON, never protobuf:
`{"streams": [{"stream": {<labels>, "pebble_service": <svc>}, "values": [[<ns>, <line>], …]}]}`
with `Content-Type: application/json; charset=utf-8`, at most 100 entries a request, flushed
about every second. The receiver answers 204 as Loki does.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PORT = 3100
PUSH_PATH = "/loki/api/v1/push"
URL = f"http://127.0.0.1:{PORT}{PUSH_PATH}"
MAX_PUSHES = 10_000  # bounded: a runaway client cannot eat the test's memory
MAX_BODY = 8 * 1024 * 1024


@dataclass(frozen=True)
class LogLine:
    """One pushed entry with the labels of its stream."""

    labels: dict[str, str]
    timestamp_ns: int
    line: str


class LokiReceiver:
    """An HTTP server on 127.0.0.1:PORT recording every push; use as a context manager."""

    def __init__(self, port: int = PORT):
        self.pushes: list[dict[str, Any]] = []
        self.rejected: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(min(length, MAX_BODY))
                receiver._record(self.path, self.headers.get("Content-Type", ""), body)
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def _record(self, path: str, content_type: str, body: bytes) -> None:
        with self._lock:
            if path != PUSH_PATH or not content_type.startswith("application/json"):
                self.rejected.append(f"{path} {content_type}")
                return
            if len(self.pushes) < MAX_PUSHES:
                self.pushes.append(json.loads(body))

    def lines(self) -> list[LogLine]:
        """Every entry received so far, in arrival order."""
        with self._lock:
            pushes = list(self.pushes)
        return [
            LogLine(dict(stream["stream"]), int(ns), line)
            for push in pushes
            for stream in push["streams"]
            for ns, line in stream["values"]
        ]

    def push_count(self) -> int:
        """How many pushes arrived."""
        with self._lock:
            return len(self.pushes)

    def wait_for_line(self, text: str, timeout: float = 30.0) -> LogLine | None:
        """Poll until an entry containing `text` arrived; None on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [line for line in self.lines() if text in line.line]
            if found:
                return found[0]
            time.sleep(0.2)
        return None

    def __enter__(self) -> LokiReceiver:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
