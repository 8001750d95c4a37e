"""The few calls that change the workload, in one place.

The charm changes the running workload only through these functions, so that tests and
benchmarks can count starts, restarts, reloads, pushes and execs by wrapping them (the
`ops.testing` Pebble records neither restarts on replan nor signals).
"""

from __future__ import annotations

import dataclasses
import io
import logging
from collections.abc import Mapping

import ops

logger = logging.getLogger(__name__)


def replan(container: ops.Container) -> None:
    """Start services that are not running and restart those whose definition changed."""
    logger.info("replanning %s", container.name)
    container.replan()


def reload(container: ops.Container, service: str) -> None:
    """Ask a service to reload its configuration (SIGHUP)."""
    logger.info("sending SIGHUP to %s", service)
    container.send_signal("SIGHUP", service)


def push(container: ops.Container, path: str, content: str, owner: int) -> None:
    """Write a file readable by the workload user, creating its directory."""
    logger.info("writing %s", path)
    container.push(path, content, make_dirs=True, permissions=0o644, user_id=owner, group_id=owner)


def run(container: ops.Container, argv: list[str], *, user: str | None, working_dir: str) -> bool:
    """Run a short command; True when it exits 0, False when it exits non-zero.

    Raises ops.pebble.APIError/ChangeError/TimeoutError when it cannot be run at all.
    """
    logger.info("running %s", argv)
    process = container.exec(argv, user=user, working_dir=working_dir, timeout=60)
    try:
        process.wait_output()
    except ops.pebble.ExecError as exc:
        logger.info("%s exited %s: %s", argv, exc.exit_code, exc.stderr)
        return False
    return True


# Pebble's exec timeout kills only the process it started, not that process's children (a
# shell script's `sleep`, a migration tool's workers). So the script runs in its own session
# under this supervisor, in the rock's Python, which kills the whole session at the timeout.
# The script must not outlive the supervisor either (Pebble kills only the supervisor when the
# charm container restarts mid-run, and a retried hook would start the script again): a
# guardian, in a session of its own so that no group kill reaches it first, watches the
# supervisor and kills the script's session as soon as the supervisor is gone, however it died.
# It polls getppid() rather than using prctl, which needs ctypes the rock may not have.
KILLED_MARKER = "flask-k8s: migration killed at its timeout"
KILLED_EXIT = 124
BACKSTOP = 10  # seconds Pebble waits beyond the supervisor's timeout before killing it
GUARD_PERIOD = 0.2  # seconds between the guardian's checks
_SUPERVISOR = f"""
import os, signal, subprocess, sys, time
child = subprocess.Popen(sys.argv[2:], start_new_session=True)
boss = os.getpid()
if os.fork() == 0:
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    while True:
        time.sleep({GUARD_PERIOD})
        try:
            if os.getppid() != boss:
                os.killpg(child.pid, signal.SIGKILL)
            else:
                os.killpg(child.pid, 0)
                continue
        except ProcessLookupError:
            pass
        os._exit(0)
try:
    sys.exit(child.wait(timeout=float(sys.argv[1])))
except subprocess.TimeoutExpired:
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    print({KILLED_MARKER!r}, file=sys.stderr)
    sys.exit({KILLED_EXIT})
"""


@dataclasses.dataclass(frozen=True)
class ScriptRun:
    """How a script run ended: `exit_code` is None when it was killed at its timeout."""

    exit_code: int | None
    stdout: str
    stderr: str


def supervised(python: str, argv: list[str], timeout: float) -> list[str]:
    """The command that runs `argv` and kills it, children included, after `timeout` s."""
    return [python, "-c", _SUPERVISOR, str(timeout), *argv]


def run_script(
    container: ops.Container,
    argv: list[str],
    *,
    python: str,
    user: str | None,
    group: str | None,
    working_dir: str,
    environment: Mapping[str, str],
    timeout: float,
) -> ScriptRun:
    """Run a script to its end, or kill it and its children after `timeout` seconds.

    `python` is the rock's interpreter, which supervises the run. Raises
    ops.pebble.APIError/ChangeError when the script cannot be started at all.
    """
    logger.info("running %s as %s in %s (timeout %ss)", argv, user, working_dir, timeout)
    stdout, stderr = io.StringIO(), io.StringIO()
    process = container.exec(
        supervised(python, argv, timeout),
        user=user,
        group=group,
        working_dir=working_dir,
        environment=dict(environment),
        timeout=timeout + BACKSTOP,
        stdout=stdout,
        stderr=stderr,
    )
    try:
        process.wait()
    except ops.pebble.ExecError as exc:
        err = stderr.getvalue()
        if exc.exit_code == KILLED_EXIT and err.rstrip().endswith(KILLED_MARKER):
            return ScriptRun(None, stdout.getvalue(), err.rstrip()[: -len(KILLED_MARKER)])
        return ScriptRun(exc.exit_code, stdout.getvalue(), err)
    except ops.pebble.TimeoutError:  # the client gave up waiting: Pebble's timeout has passed
        return ScriptRun(None, stdout.getvalue(), stderr.getvalue())
    except ops.pebble.ChangeError as exc:
        if "timed out" not in exc.err and "timeout" not in exc.err:
            raise
        return ScriptRun(None, stdout.getvalue(), stderr.getvalue())
    return ScriptRun(0, stdout.getvalue(), stderr.getvalue())
