"""The few calls that change the workload, in one place.

The charm changes the running workload only through these functions, so that tests and
benchmarks can count starts, restarts, reloads, pushes and execs by wrapping them (the
`ops.testing` Pebble records neither restarts on replan nor signals). It also holds the reads
that decide whether a file in the container can be trusted: the workload (the app's user) can
write much of the container's filesystem, so the charm never takes what runs, or as whom, from a
file the app could have changed.
"""

from __future__ import annotations

import dataclasses
import io
import logging
from collections.abc import Iterable, Mapping

import ops

logger = logging.getLogger(__name__)


def replan(container: ops.Container) -> None:
    """Start services that are not running and restart those whose definition changed."""
    logger.info("replanning %s", container.name)
    container.replan()


def stop(container: ops.Container, services: Iterable[str]) -> None:
    """Stop services (a replan never stops one that is no longer `startup: enabled`)."""
    names = list(services)
    logger.info("stopping %s", ", ".join(names))
    container.stop(*names)


# Pebble's refusals for a service whose process is gone: in backoff, or exited a moment ago and
# not yet noticed (the kill found no such process).
_GONE = ("not running", "no such process")


def reload(container: ops.Container, service: str) -> bool:
    """Ask a service to reload its configuration (SIGHUP); False if it is not running.

    A service Pebble is restarting (e.g. Gunicorn's master died) reads its config when it
    starts again, so there is nothing to signal, and no reason to fail the hook.
    """
    logger.info("sending SIGHUP to %s", service)
    try:
        container.send_signal("SIGHUP", service)
    except ops.pebble.APIError as exc:
        if not any(reason in exc.message for reason in _GONE):
            raise
        logger.info("%s is not running: it reads the new config when Pebble starts it", service)
        return False
    return True


def _app_can_write(info: ops.pebble.FileInfo, app_uid: int) -> bool:
    """Whether the app's user could change this file or directory (owner, or g/o write bit).

    A symlink's own mode is always 0777 and means nothing. Pebble stats the target of a path
    it lists by itself, so only a test double reports a symlink there.
    """
    writable_mode = info.type != ops.pebble.FileType.SYMLINK and bool(info.permissions & 0o022)
    return info.user_id == app_uid or writable_mode


def _info(container: ops.Container, path: str) -> ops.pebble.FileInfo | None:
    try:
        return container.list_files(path, itself=True)[0]
    except (ops.pebble.APIError, ops.pebble.PathError):
        return None


def push(container: ops.Container, path: str, content: str, app_id: int) -> None:
    """Write a root-owned file that the app's group may read and nobody but root may change.

    `app_id` is the app's user and group id (the rock's `_daemon_`: 584792 for both).

    Its directory is made root's too: an older charm revision (or the app, before the charm
    ran) may have created it as the app's user, who could then replace the file. The file can
    hold the secret key, so it is not world-readable.
    """
    logger.info("writing %s", path)
    directory = path.rsplit("/", 1)[0] or "/"
    found = _info(container, directory)
    if found is not None and (
        found.type != ops.pebble.FileType.DIRECTORY or _app_can_write(found, app_id)
    ):
        logger.info("replacing %s: the app's user could write it", directory)
        container.remove_path(directory, recursive=True)
        found = None
    if found is None:
        container.make_dir(directory, make_parents=True, permissions=0o755, user_id=0, group_id=0)
    container.push(path, content, permissions=0o640, user_id=0, group_id=app_id)


def pushed_content(container: ops.Container, path: str, app_uid: int) -> str | None:
    """The content of a file `push` wrote, or None if it is missing or the app could change it.

    The content is only compared with what the charm would write, never taken as input: a
    file (or directory) the app could have touched counts as missing, so it is written afresh.
    """
    directory = path.rsplit("/", 1)[0] or "/"
    for checked in (directory, path):
        info = _info(container, checked)
        if info is None or _app_can_write(info, app_uid):
            return None
    try:
        return container.pull(path).read()
    except (ops.pebble.PathError, ops.pebble.APIError):
        return None


def read_rock_layers(container: ops.Container, directory: str, app_uid: int) -> dict[str, str]:
    """The rock's own layer files in the image ({name: YAML}); {} when there are none.

    A file (or the directory) the app's user could change is skipped: the rock's layers are
    the image's files, so in a sound image none is.
    """
    listed = _info(container, directory)
    if listed is None or _app_can_write(listed, app_uid):
        return {}
    try:
        infos = container.list_files(directory, pattern="*.yaml")
    except (ops.pebble.APIError, ops.pebble.PathError):
        return {}
    return {
        info.name: container.pull(info.path).read()
        for info in infos
        if info.type == ops.pebble.FileType.FILE and not _app_can_write(info, app_uid)
    }


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


OUTPUT_TAIL = 8000  # characters kept of each of a script's stdout and stderr


class OutputTail(io.StringIO):
    """A text stream that keeps only the last `limit` characters written to it.

    A script's output is the workload's to choose: it is bounded as it arrives, before it
    reaches memory, the charm's log or an action result.
    """

    def __init__(self, limit: int = OUTPUT_TAIL):
        super().__init__()
        self.limit = limit
        self.dropped = 0

    def write(self, s: str) -> int:  # noqa: D102 (io.StringIO's)
        written = super().write(s)
        if self.tell() > 2 * self.limit:  # trim in batches: amortised O(1) per character
            value = self.getvalue()
            self.dropped += len(value) - self.limit
            self.seek(0)
            self.truncate()
            super().write(value[-self.limit :])
        return written

    def text(self) -> str:
        """The last `limit` characters, saying how many came before them."""
        value = self.getvalue()
        dropped = self.dropped + max(0, len(value) - self.limit)
        value = value[-self.limit :]
        return f"[{dropped} earlier characters left out]\n{value}" if dropped else value


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
    stdout, stderr = OutputTail(), OutputTail()
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
        err = stderr.text()
        if exc.exit_code == KILLED_EXIT and err.rstrip().endswith(KILLED_MARKER):
            return ScriptRun(None, stdout.text(), err.rstrip()[: -len(KILLED_MARKER)])
        return ScriptRun(exc.exit_code, stdout.text(), err)
    except ops.pebble.TimeoutError:  # the client gave up waiting: Pebble's timeout has passed
        return ScriptRun(None, stdout.text(), stderr.text())
    except ops.pebble.ChangeError as exc:
        if "timed out" not in exc.err and "timeout" not in exc.err:
            raise
        return ScriptRun(None, stdout.text(), stderr.text())
    return ScriptRun(0, stdout.text(), stderr.text())
