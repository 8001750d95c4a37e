"""The CLI's side of the controller (`controller.py`): hand it a command, print its answer.

Imported by `__main__` before anything else, so it imports only what a socket client needs.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Mapping
from pathlib import Path

FORWARDED = ("config", "status")  # quick commands that start no long-lived process
SOCKET_NAME = "controller.sock"
MAX_REQUEST = 1 << 20
# What a command's outcome depends on besides its arguments: a controller started with other
# values answers "stale", and the CLI runs the command itself.
ENV_KEYS = ("PATH", "PYTHONPATH", "FLASK_ROCK_BIN", "FLASK_ROCK_CACHE", "JUJU_LOCAL_DEBUG")
DEFAULT_STATE = Path(__file__).resolve().parents[1] / ".cache" / "local-juju" / "default"
STATE_ENV = "JUJU_LOCAL_STATE"


def socket_path(state_dir: Path) -> Path:
    """Where the deployment's controller listens."""
    return state_dir / SOCKET_NAME


def relevant_env(environ: Mapping[str, str]) -> dict[str, str | None]:
    """The part of an environment a command's outcome depends on."""
    return {key: environ.get(key) for key in ENV_KEYS}


def state_and_command(argv: list[str]) -> tuple[Path, str | None, list[str]]:
    """The state directory (absolute), the command, and argv with the state made absolute.

    Only the plain forms are understood (`--state-dir DIR` or `--state-dir=DIR` before the
    command); for anything else the command is None and the CLI parses it itself.
    """
    state = Path(os.environ.get(STATE_ENV, DEFAULT_STATE))
    rest = list(argv)
    if rest[:1] == ["--state-dir"] and len(rest) >= 2:
        state, rest = Path(rest[1]), rest[2:]
    elif rest[:1] and rest[0].startswith("--state-dir="):
        state, rest = Path(rest[0].split("=", 1)[1]), rest[1:]
    command = rest[0] if rest and not rest[0].startswith("-") else None
    if any(arg in ("-h", "--help") for arg in rest):
        command = None
    state = state.absolute()
    return state, command, ["--state-dir", str(state), *rest]


def forward(argv: list[str]) -> int | None:
    """Run `argv` in the deployment's controller: the exit code; None to run it here."""
    state, command, request_argv = state_and_command(argv)
    if command not in FORWARDED:
        return None
    request = {"argv": request_argv, "env": relevant_env(os.environ)}
    answer = bytearray()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.connect(str(socket_path(state)))
            connection.sendall(json.dumps(request).encode())
            connection.shutdown(socket.SHUT_WR)
            while chunk := connection.recv(65536):
                answer += chunk
    except KeyboardInterrupt:
        print(f"juju-local {command}: interrupted (the controller finishes it)", file=sys.stderr)
        return 130
    except OSError:
        return None  # no controller (or it went away before reading): run it here
    try:
        reply = json.loads(answer)
    except ValueError:
        print(
            f"juju-local {command}: error: the controller stopped during the command; "
            f"see {state / 'controller.log'}",
            file=sys.stderr,
        )
        return 1
    if reply.get("stale"):
        return None
    sys.stdout.write(reply["stdout"])
    sys.stderr.write(reply["stderr"])
    return int(reply["code"])
