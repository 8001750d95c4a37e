"""What `pebble services` and `pebble checks` show, read from Pebble's API over its socket.

`status` (and so `config`) shows both tables for every unit; starting the Pebble CLI twice per
unit cost about 25 ms of each command, this a few. The columns are the CLI's.
"""

from __future__ import annotations

import datetime
import http.client
import json
import socket
from pathlib import Path
from typing import Any

SERVICE_COLUMNS = ("Service", "Startup", "Current", "Since")
CHECK_COLUMNS = ("Check", "Level", "Startup", "Status", "Successes", "Failures", "Change")


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self._path = str(path)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def _get(socket_path: Path, endpoint: str, timeout: float) -> list[dict[str, Any]]:
    connection = _UnixConnection(socket_path, timeout)
    try:
        connection.request("GET", endpoint)
        response = connection.getresponse()
        body = json.loads(response.read())
    finally:
        connection.close()
    if response.status != 200 or not isinstance(body.get("result"), list):
        raise ValueError(f"{endpoint}: {body.get('result', body)}")
    return body["result"]


def _since(timestamp: str | None, today: datetime.date) -> str:
    """Pebble's wording: `today at 10:23 UTC`, else the date."""
    if not timestamp or timestamp.startswith("0001-"):
        return "-"
    day, _, clock = timestamp.partition("T")
    when = "today" if day == today.isoformat() else day
    return f"{when} at {clock[:5]} UTC"


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def tables(socket_path: Path, timeout: float = 10.0) -> str:
    """Both tables; one line naming the error if Pebble does not answer."""
    try:
        services = _get(socket_path, "/v1/services", timeout)
        checks = _get(socket_path, "/v1/checks", timeout)
    except (OSError, ValueError, http.client.HTTPException) as error:
        return f"(Pebble did not answer: {error})"
    today = datetime.datetime.now(datetime.timezone.utc).date()
    service_rows = [SERVICE_COLUMNS] + [
        (s["name"], s["startup"], s["current"], _since(s.get("current-since"), today))
        for s in services
    ]
    check_rows = [CHECK_COLUMNS] + [
        (
            c["name"],
            c.get("level") or "-",
            c.get("startup", "-"),
            c["status"],
            str(c.get("successes", 0)),
            f"{c.get('failures', 0)}/{c.get('threshold', 0)}",
            c.get("change-id") or "-",
        )
        for c in checks
    ]
    return f"{_table(service_rows)}\n{_table(check_rows)}"
