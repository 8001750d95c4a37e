"""The hook tools, answered by the process that dispatches the hook: one cheap client per call.

Juju's hook tools are small clients of the unit agent, which holds the model. Ours are too:
each tool on the hook's PATH is a small C program (`hooktool.c`, built once with the machine's
C compiler; without one, the bash script `CLIENT`) that sends its name, arguments and input
over loopback TCP to the `ToolServer` the dispatching process runs for the hook's duration, and
prints the answer. A call costs about 1 ms (the bash client: 3-4 ms, a bash start and a `cat`)
instead of a Python interpreter importing the store (about 100 ms here), and the charm, which
may run as a non-root user, never needs to write the store's files.

The server listens on 127.0.0.1 on a free port; every request must carry the hook's random
token, which only the hook's own environment holds, so other local processes (the workload
shares the host's network) cannot call the tools.

Wire format (bash cannot half-close a socket, so both directions carry their own lengths):
NUL-terminated fields. Request: token, tool, argument count, each argument, input length, then
the input bytes. Response: exit code, stderr length, then stderr, then stdout until the server
closes.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

from flask_rock import toolchain

from .hooktools import TOOLS, Context, run_tool
from .model import Model

PORT_ENV = "LOCALJUJU_TOOLS_PORT"
TOKEN_ENV = "LOCALJUJU_TOOLS_TOKEN"
MAX_FIELD = 1 << 20  # one argument, or the token, at most 1 MiB
MAX_INPUT = 16 << 20  # relation/secret content piped in, at most 16 MiB

# `--file PATH` and `key#file=PATH` name files in the hook's sandbox, which the server cannot
# see: the client sends their content instead (as input, or as `key#base64=…`).
CLIENT = r"""#!/bin/bash
# A Juju hook tool of juju_local: the process that dispatched this hook answers it.
export LC_ALL=C
tool=${0##*/}
args=() input="" previous=""
read_input() {  # $1: a file in this sandbox, or - for our stdin
    if [ "$1" = "-" ]; then
        input=$(cat && printf x) || return 1
    else
        input=$(cat -- "$1" && printf x) || return 1
    fi
    input=${input%x}
}
for arg in "$@"; do
    if [ "$previous" = "--file" ]; then
        read_input "$arg" || exit 1; arg="-"
    elif [[ "$arg" == --file=* ]]; then
        read_input "${arg#--file=}" || exit 1; arg="--file=-"
    elif [[ "${arg%%=*}" == *"#file" ]]; then
        encoded=$(base64 -w0 -- "${arg#*=}") || exit 1
        arg="${arg%%#file=*}#base64=$encoded"
    fi
    args+=("$arg") previous=$arg
done
exec 3<>"/dev/tcp/127.0.0.1/${LOCALJUJU_TOOLS_PORT:?not in a juju-local hook}" || exit 1
printf '%s\0' "${LOCALJUJU_TOOLS_TOKEN:-}" "$tool" "${#args[@]}" "${args[@]}" "${#input}" >&3
printf '%s' "$input" >&3
if ! IFS= read -r -d '' code <&3 || ! IFS= read -r -d '' errors <&3; then
    echo "ERROR $tool: no answer from juju-local" >&2
    exit 1
fi
if [ "$errors" -gt 0 ]; then
    IFS= read -r -d '' -N "$errors" message <&3
    printf '%s' "$message" >&2
fi
cat <&3
exit "$code"
"""


C_CLIENT = Path(__file__).with_name("hooktool.c")


def write_client(directory: Path, client: bytes | None = None) -> Path:
    """Create `directory/bin`: the client (default: `client_program()`), a symlink per tool.

    A `bin` that already holds exactly that is kept: each hook's dispatch calls this. The
    client is a copy, not a link into our cache: the hook's sandbox sees only this directory.
    """
    program = client_program() if client is None else client
    bin_dir = directory / "bin"
    if _client_current(bin_dir, program):
        return bin_dir
    if bin_dir.exists():
        shutil.rmtree(bin_dir)
    bin_dir.mkdir(parents=True)
    bin_dir.chmod(0o755)  # the charm may run as another user
    entry = bin_dir / "hooktool"
    entry.write_bytes(program)
    entry.chmod(0o755)
    for name in TOOLS:
        (bin_dir / name).symlink_to(entry.name)
    return bin_dir


def _client_current(bin_dir: Path, program: bytes) -> bool:
    try:
        if (bin_dir / "hooktool").read_bytes() != program:
            return False
        return all(os.readlink(bin_dir / name) == "hooktool" for name in TOOLS)
    except OSError:
        return False


def client_program() -> bytes:
    """The C client, built for this machine and cached by its source; else the bash CLIENT."""
    source = C_CLIENT.read_bytes()
    binary = toolchain.cache_dir() / "bin" / f"hooktool-{hashlib.sha256(source).hexdigest()[:16]}"
    if not binary.is_file() and not _compile(binary):
        return CLIENT.encode()
    return binary.read_bytes()


def _compile(binary: Path) -> bool:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return False  # the bash client works anywhere bash does, a few ms slower per call
    binary.parent.mkdir(parents=True, exist_ok=True)
    building = binary.with_name(f"{binary.name}.{os.getpid()}")
    argv = [compiler, "-O2", "-Wall", "-o", str(building), str(C_CLIENT)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(f"juju-local: hook tools fall back to bash: {done.stderr[-500:]}", file=sys.stderr)
        building.unlink(missing_ok=True)
        return False
    building.replace(binary)  # atomic: a concurrent command sees the whole binary or none
    return True


class ToolServer:
    """Answers one hook's tool calls, from a thread, until the block using it ends."""

    def __init__(self, model: Model, unit: str, env: Mapping[str, str]):
        self.model = model
        self.unit = unit
        self.env = dict(env)
        self.token = secrets.token_hex(16)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def client_env(self) -> dict[str, str]:
        """What the hook's environment needs for its tools to reach this server."""
        return {PORT_ENV: str(self.port), TOKEN_ENV: self.token}

    def __enter__(self) -> ToolServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        # close() alone does not wake a thread blocked in accept(); shutdown() does (EINVAL).
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(timeout=5)

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            # A charm may run tools from several processes at once: one thread each.
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    def _answer(self, connection: socket.socket) -> None:
        with connection:
            connection.settimeout(60)
            try:
                stream = connection.makefile("rb")
                argv, stdin = self._request(stream)
            except (OSError, ValueError):
                return  # a stranger or a broken client: nothing to answer
            ctx = Context(self.model, self.unit, {**self.env}, io.StringIO(stdin))
            code, out, err = run_tool(ctx, argv)
            errors = err.encode()
            header = f"{code}\0{len(errors)}\0".encode()
            try:
                connection.sendall(header + errors + out.encode())
            except OSError:
                return

    def _request(self, stream: BinaryIO) -> tuple[list[str], str]:
        if not secrets.compare_digest(_field(stream), self.token):
            raise ValueError("bad token")
        tool = _field(stream)
        argv = [tool, *(_field(stream) for _ in range(_count(stream, MAX_FIELD)))]
        size = _count(stream, MAX_INPUT)
        data = stream.read(size)
        if len(data) != size:
            raise ValueError("short input")
        return argv, data.decode(errors="replace")


def _field(stream: BinaryIO) -> str:
    """One NUL-terminated field."""
    data = bytearray()
    while True:
        byte = stream.read(1)
        if not byte:
            raise ValueError("truncated request")
        if byte == b"\0":
            return data.decode(errors="replace")
        data += byte
        if len(data) > MAX_FIELD:
            raise ValueError("field too long")


def _count(stream: BinaryIO, limit: int) -> int:
    value = int(_field(stream))
    if not 0 <= value <= limit:
        raise ValueError("count out of range")
    return value
