"""Finding and ending the processes a local deployment leaves running between commands."""

import contextlib
import os
import signal
import socket
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stored_port(path: Path) -> int:
    """The port kept in `path`: a free one, chosen and written there the first time."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(str(free_port()))
    return int(path.read_text())


def running_pid(pid_path: Path) -> int | None:
    """The pid written first in `pid_path`, if that process runs."""
    try:
        pid = int(pid_path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if alive(pid) else None


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, ended but not yet reaped, does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def wait_gone(pid: int, timeout: float) -> bool:
    """Poll until `pid` has ended; False if it still runs after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.1)
    return False


def children(pid: int) -> list[int]:
    """The direct children of `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if parent == pid:
                found.append(int(entry.name))
    return found


def tree(pid: int) -> list[int]:
    """`pid` and every process under it."""
    found, pending = [pid], [pid]
    while pending:
        below = children(pending.pop())
        found += below
        pending += below
    return found


def descendant(pid: int, program: str) -> int | None:
    """The first process under `pid` started as `program`."""
    pending = children(pid)
    while pending:
        child = pending.pop(0)
        try:
            argv0 = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")[0].decode()
        except OSError:
            continue
        if argv0 == program:
            return child
        pending += children(child)
    return None


def listening(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on `host:port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        return probe.connect_ex((host, port)) == 0


def wait_closed(ports: list[int], timeout: float) -> list[int]:
    """Poll until nothing listens on `ports`; the ones still listening after `timeout`."""
    deadline = time.monotonic() + timeout
    busy = [port for port in ports if listening(port)]
    while busy and time.monotonic() < deadline:
        time.sleep(0.1)
        busy = [port for port in busy if listening(port)]
    return busy


def terminate(pid: int, timeout: float) -> None:
    """SIGTERM `pid`, then SIGKILL it if it has not ended after `timeout` seconds."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if not wait_gone(pid, timeout):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        wait_gone(pid, timeout)
