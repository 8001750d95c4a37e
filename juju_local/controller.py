"""The deployment's controller: a long-lived process that runs `config` and `status` for the CLI.

Juju's CLI is a thin client of a controller that is always up; ours started a Python process
per command that imported all of juju_local (about 0.1 s here) before doing anything. So a
deployment made with `juju-local deploy` also starts this process, with those imports done:
the CLI (`__main__`, through `controller_client`) hands it `config` and `status` over a Unix
socket in the state directory and prints what it answers. Hooks still run exactly as before:
a new sandboxed process per event, with a ToolServer per hook. Every other command runs in the
CLI's own process.

The controller runs one command at a time and takes the deployment's lock for each, as the
CLI does, so commands from both stay serial. It answers "stale" and exits, so that the CLI runs
the command itself (and starts a fresh controller after), when juju_local's code or the
environment that matters to a command (`ENV_KEYS`) changed since it started. It exits on its
own once idle for `IDLE_SECONDS` or when its state directory is gone; `remove` stops it.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

from juju_local import processes
from juju_local.controller_client import MAX_REQUEST, SOCKET_NAME, relevant_env, socket_path

IDLE_SECONDS = 30 * 60
POLL_SECONDS = 2.0  # how often an idle controller checks that its state is still there
PID_NAME = "controller.pid"
LOG_NAME = "controller.log"
_CODE_DIRS = (Path(__file__).resolve().parent, Path(__file__).resolve().parents[1] / "rock")


def code_fingerprint() -> tuple[tuple[str, int, int], ...]:
    """Every Python file of juju_local and the rock code, with its size and mtime."""
    files = []
    for directory in _CODE_DIRS:
        for path in sorted(directory.rglob("*.py")):
            with contextlib.suppress(OSError):
                info = path.stat()
                files.append((str(path), info.st_size, info.st_mtime_ns))
    return tuple(files)


def running_pid(state_dir: Path) -> int | None:
    """The pid of this deployment's controller, if one is alive (and that pid is still it)."""
    state_dir = state_dir.absolute()
    pid = processes.running_pid(state_dir / PID_NAME)
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes() if pid else b""
    except OSError:
        return None
    return pid if f"juju_local.controller\0{state_dir}".encode() in command else None


def start(state_dir: Path) -> None:
    """Start the deployment's controller in the background, unless one runs (no wait)."""
    state_dir = state_dir.absolute()
    if running_pid(state_dir) is not None or len(str(socket_path(state_dir))) > 100:
        return  # a Unix socket path holds at most 107 bytes: then the CLI does the work
    log = (state_dir / LOG_NAME).open("ab")
    with log:
        subprocess.Popen(
            [sys.executable, "-m", "juju_local.controller", str(state_dir)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # not the caller's terminal's: Ctrl-C there stops no hook
            close_fds=True,
            cwd=_CODE_DIRS[0].parent,  # where PYTHONPATH's relative entries point
        )


def stop(state_dir: Path, timeout: float = 10.0) -> None:
    """Stop the deployment's controller (between commands: `remove` holds the lock)."""
    pid = running_pid(state_dir)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and running_pid(state_dir) == pid:
            time.sleep(0.05)
    for name in (SOCKET_NAME, PID_NAME):
        with contextlib.suppress(OSError):
            (state_dir / name).unlink()


def serve(state_dir: Path) -> None:
    """Answer the CLI until idle, stale or the state is gone; one controller per deployment."""
    with (state_dir / "controller.lock").open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # another controller of this deployment won the start
        path = socket_path(state_dir)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)  # the socket: its owner only
        try:
            listener.bind(str(path))
        finally:
            os.umask(old_umask)
        listener.listen(16)
        (state_dir / PID_NAME).write_text(str(os.getpid()))
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            _answer_until_done(listener, state_dir)
        finally:
            listener.close()
            for name in (SOCKET_NAME, PID_NAME):
                with contextlib.suppress(OSError):
                    if name != PID_NAME or (state_dir / name).read_text() == str(os.getpid()):
                        (state_dir / name).unlink()


def _answer_until_done(listener: socket.socket, state_dir: Path) -> None:
    from juju_local import cli  # the imports every command needs, done once

    fingerprint = code_fingerprint()
    env = relevant_env(os.environ)
    listener.settimeout(POLL_SECONDS)
    idle_since = time.monotonic()
    while time.monotonic() - idle_since < IDLE_SECONDS:
        if not (state_dir / "deployment.json").exists() or not socket_path(state_dir).exists():
            return  # removed under us
        try:
            connection, _ = listener.accept()
        except TimeoutError:
            continue
        with connection:
            request = _request(connection)
            if request is None:
                continue
            if request["env"] != env or code_fingerprint() != fingerprint:
                _send(connection, {"stale": True})
                return
            _send(connection, _run(cli.main, request["argv"]))
        idle_since = time.monotonic()


def _request(connection: socket.socket) -> dict | None:
    """The CLI's request, from a process of our own user only; None for anything else."""
    connection.settimeout(30)
    credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    _, uid, _ = struct.unpack("3i", credentials)
    if uid != os.getuid():
        return None
    data = bytearray()
    try:
        while chunk := connection.recv(65536):
            data += chunk
            if len(data) > MAX_REQUEST:
                return None
        request = json.loads(data)
    except (OSError, ValueError):
        return None
    valid = (
        isinstance(request, dict)
        and isinstance(request.get("argv"), list)
        and all(isinstance(arg, str) for arg in request["argv"])
        and isinstance(request.get("env"), dict)
    )
    return request if valid else None


def _run(main, argv: list[str]) -> dict:
    out, err = io.StringIO(), io.StringIO()
    start = time.monotonic()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit:  # argparse's own exits: the CLI's exit code, not ours
            code = exit.code if isinstance(exit.code, int) else 1
    command = next((arg for arg in argv[2:] if not arg.startswith("-")), "?")
    print(f"{command}: exit {code} in {time.monotonic() - start:.3f} s", flush=True)  # our log
    return {"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()}


def _send(connection: socket.socket, answer: dict) -> None:
    with contextlib.suppress(OSError):  # the CLI was interrupted: the command still ran
        connection.sendall(json.dumps(answer).encode())


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
