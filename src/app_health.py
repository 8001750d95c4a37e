"""Is the app serving? The `flask` service's Pebble check, and the status it implies.

The check runs a tiny HTTP probe in the rock's own Python: it sends `GET /` and passes on any
HTTP status line. A TCP check is not enough (a frozen Gunicorn master keeps its listening socket
open, so connections succeed while no request is ever answered), and Pebble's `http` check fails
on anything but 2xx, while any Flask app may answer `/` with 404 or 302. The probe is ours, fixed
by the charm: nothing of it comes from the workload's files but the interpreter, which runs
isolated (`-I -S`: no site-packages, no PYTHON* variables, no current directory on sys.path).

What the app prints is untrusted: a line of it reaches a status message only through
`printable_line`, bounded and stripped of control characters.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import shlex
import time
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

import ops

logger = logging.getLogger(__name__)

# Pebble runs the check every PERIOD and restarts the app after THRESHOLD failures in a row: a
# frozen app is restarted within about a minute. The probe's own timeout stays below Pebble's,
# and both are generous, so that an app whose workers are all busy for a few seconds is not
# restarted (Gunicorn's own worker timeout deals with single stuck requests).
PERIOD = "10s"
PERIOD_SECONDS = 10.0
CHECK_TIMEOUT = "9s"
THRESHOLD = 3
PROBE_TIMEOUT = 8.0
# After a start, how long a hook waits for the app to answer before saying it is still starting.
START_WAIT = 30.0
START_POLL = 0.5
MAX_LINE = 160
APP_DIR = "/flask/app"  # where a flask-framework rock keeps the app's code
LOG_LINES = 200
MAX_LOG_BYTES = 256 * 1024

_PROBE = """\
import socket, sys
port, timeout = int(sys.argv[1]), float(sys.argv[2])
with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
    conn.settimeout(timeout)
    conn.sendall(b"GET / HTTP/1.0\\r\\nHost: localhost\\r\\nUser-Agent: flask-k8s\\r\\n\\r\\n")
    head = b""
    while len(head) < 5:
        chunk = conn.recv(5 - len(head))
        if not chunk:
            break
        head += chunk
sys.exit(0 if head == b"HTTP/" else 1)
"""


def probe_argv(interpreter: str, port: int, timeout: float = PROBE_TIMEOUT) -> list[str]:
    """The probe command: exits 0 when the app answers HTTP on `port` within `timeout`."""
    return [interpreter, "-I", "-S", "-c", _PROBE, str(port), str(timeout)]


def check(interpreter: str, port: int, rock_service: Mapping[str, Any]) -> ops.pebble.CheckDict:
    """The app's Pebble check: the probe, run as the app's own user.

    `ready`, not `alive`: Juju turns `alive` checks into the pod's liveness probe, so Kubernetes
    would kill a pod whose app is deliberately not started yet (for example while it waits for
    another unit's migration) and loop it forever. A failing `ready` check only takes the pod out
    of the Service endpoints, and the service's `on-check-failure` restarts the app in the pod.
    """
    exec_spec: dict[str, Any] = {
        "command": shlex.join(probe_argv(interpreter, port)),
        "working-dir": "/",
    }
    for key in ("user", "user-id", "group", "group-id"):
        if rock_service.get(key) is not None:
            exec_spec[key] = rock_service[key]
    return {
        "override": "replace",
        "level": "ready",
        "period": PERIOD,
        "timeout": CHECK_TIMEOUT,
        "threshold": THRESHOLD,
        "exec": exec_spec,  # type: ignore[typeddict-item]  # built key by key
    }


# -- what the app printed -------------------------------------------------------------------

_GUNICORN_OWN = ("gunicorn.errors.", "HaltServer")
_EXCEPTION = re.compile(r"[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b(: .*)?")


def printable_line(text: str, limit: int = MAX_LINE) -> str:
    """One line of untrusted text, safe for a status or a log: no control characters, bounded."""
    cleaned = "".join(
        " " if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") else char for char in text
    )
    cleaned = " ".join(cleaned.split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def last_error_line(lines: Iterable[str], app_dir: str = APP_DIR) -> str | None:
    """The line that best says why the app stopped: the last exception, else the last error.

    A Python traceback ends with the exception (`RuntimeError: boom`), which Gunicorn follows
    with its own generic lines (`Worker failed to boot`): the exception says more. An exception
    raised through the app's own code (a frame in `app_dir`) wins over one of Gunicorn's master,
    which, with workers dying at once, may even fail on its own logging (`reentrant call`).
    """
    stripped = [line.strip() for line in lines if line.strip()]
    from_app = _exceptions_from(stripped, app_dir)
    if from_app:
        return printable_line(from_app[-1])
    exceptions = [line for line in stripped if _EXCEPTION.fullmatch(line)]
    # Gunicorn's master ends with its own HaltServer traceback: the worker's exception before it
    # says why.
    own = [line for line in exceptions if not line.startswith(_GUNICORN_OWN)]
    if own or exceptions:
        return printable_line((own or exceptions)[-1])
    for line in reversed(stripped):
        if "error" in line.lower():
            return printable_line(line)
    return printable_line(stripped[-1]) if stripped else None


def _exceptions_from(lines: list[str], app_dir: str) -> list[str]:
    """The exception lines whose traceback has a frame in `app_dir`."""
    found, in_app = [], False
    for line in lines:
        if line.startswith("Traceback (most recent call last)"):
            in_app = False
        elif line.startswith(f'File "{app_dir}/'):
            in_app = True
        elif _EXCEPTION.fullmatch(line):
            if in_app:
                found.append(line)
            in_app = False
    return found


def read_log_lines(container: ops.Container, service: str, count: int = LOG_LINES) -> list[str]:
    """The service's last lines of output as Pebble keeps them; [] if they cannot be read.

    ops has no call for Pebble's logs API, so this uses the client's raw request; anything
    unexpected (an older ops, a test double, a malformed answer) only loses the error line.
    """
    try:
        response = container.pebble._request_raw(  # noqa: SLF001
            "GET", "/v1/logs", {"services": service, "n": str(count)}
        )
        body = response.read(MAX_LOG_BYTES).decode("utf-8", errors="replace")
    except Exception as exc:  # noqa: BLE001 - only a diagnostic is lost
        logger.info("cannot read the %s logs: %s", service, exc)
        return []
    lines = []
    for raw in body.splitlines():
        try:
            entry = json.loads(raw)
        except (ValueError, RecursionError):
            continue
        message = entry.get("message") if isinstance(entry, dict) else None
        if isinstance(message, str):
            lines.append(message)
    return lines


# -- the status ---------------------------------------------------------------------------------


def crashed_status(error_line: str | None) -> ops.BlockedStatus:
    """The app does not stay up: say what it printed last."""
    said = f": {error_line}" if error_line else ""
    return ops.BlockedStatus(f"the app exits at start{said} (see `pebble logs flask`)")


def not_answering_status(failures: int, port: int) -> ops.MaintenanceStatus:
    """The app runs but fails its check: Pebble restarts it after THRESHOLD failures."""
    failed = f"{failures} failed check(s); " if failures else ""
    return ops.MaintenanceStatus(
        f"the app does not answer HTTP on port {port} ({failed}Pebble restarts it after "
        f"{THRESHOLD}): see `pebble logs flask`"
    )


def restarting_status(port: int) -> ops.MaintenanceStatus:
    """Pebble is stopping the app itself (a failed check): it starts it again by itself."""
    return ops.MaintenanceStatus(
        f"the app does not answer HTTP on port {port}: Pebble is restarting it "
        "(see `pebble logs flask`)"
    )


def pebble_is_stopping_it(change_error: str) -> bool:
    """Whether a start failed because Pebble is still stopping the service (kill-delay)."""
    return "cannot start service while" in change_error


def starting_status(port: int) -> ops.WaitingStatus:
    """Started, but not answering yet when the hook stopped waiting."""
    return ops.WaitingStatus(
        f"the app has not answered HTTP on port {port} within {START_WAIT:.0f} s of starting: "
        "see `pebble logs flask`"
    )


def is_running(info: ops.pebble.ServiceInfo) -> bool:
    """Whether Pebble has the service up (`backoff` and `error` are not).

    ops gives an enum for the states it knows and a plain string for the others (`backoff`).
    """
    current = info.current
    return getattr(current, "value", current) == "active"


def check_failing(info: ops.pebble.CheckInfo | None) -> bool:
    """Whether the check's last runs failed (a check not run yet is not failing)."""
    if info is None:
        return False
    status = getattr(info.status, "value", info.status)
    return info.failures > 0 or status == "down"


def check_passed(info: ops.pebble.CheckInfo | None) -> bool:
    """Whether the check has passed since it last failed (ops.testing reports no successes)."""
    if info is None or check_failing(info):
        return False
    return info.successes is None or info.successes > 0


def wait_for_start(
    container: ops.Container,
    service: str,
    argv: list[str],
    user: str | None,
    wait: float | None = None,
) -> bool | None:
    """After a start: True once the app answers, False if it exits, None if still starting.

    When the probe cannot be run at all (not when it fails), this trusts Pebble: True.
    """
    deadline = time.monotonic() + (START_WAIT if wait is None else wait)
    while True:
        info = container.get_services(service).get(service)
        if info is None or not is_running(info):
            return False
        answered = probe(container, argv, user)
        if answered is None:
            return True
        if answered:
            return True
        if time.monotonic() >= deadline:
            return None
        time.sleep(START_POLL)


def probe(container: ops.Container, argv: list[str], user: str | None) -> bool | None:
    """Run the probe once in the workload container (the check's own command).

    True: the app answered HTTP; False: it did not; None: the probe could not be run.
    """
    try:
        process = container.exec(argv, user=user, working_dir="/", timeout=PROBE_TIMEOUT + 5)
        process.wait_output()
    except ops.pebble.ExecError as exc:
        if exc.exit_code in (126, 127):  # the shell's "cannot run": no verdict on the app
            logger.info("cannot run the app probe: exit %s", exc.exit_code)
            return None
        return False
    except (ops.pebble.APIError, ops.pebble.ChangeError, ops.pebble.TimeoutError) as exc:
        logger.info("cannot run the app probe: %s", exc)
        return None
    return True


def _recent(verified_at: float | None) -> bool:
    """Whether `verified_at` lies less than one check PERIOD back (a clock set back: no)."""
    return verified_at is not None and 0.0 <= time.time() - verified_at < PERIOD_SECONDS


@dataclasses.dataclass
class AppHealth:
    """Judge the running app from Pebble's view of it, and from the probe when in doubt.

    `crash` is the app's last error line while it keeps exiting ("" when it printed none, None
    once it answers): the charm keeps it between hooks, so that a crash loop stays Blocked while
    Pebble briefly shows the service up between two exits.

    `verified_at` is when a hook last saw the app answer (`time.time()`, None: not known to):
    within one check PERIOD of it, a check that has not run yet (after a start Pebble waits a
    PERIOD before its first run) is no reason to probe again, for the app was seen answering as
    recently as a passing check would have. So a hook that follows another one closely (a
    `juju config` after a deploy) skips the probe's exec, which costs ~0.1 s.
    """

    container: ops.Container
    interpreter: str
    user: str | None
    crash: str | None = None
    service: str = "flask"
    check_name: str = "flask-ready"
    port: int = 8000
    verified_at: float | None = None

    @property
    def _argv(self) -> list[str]:
        return probe_argv(self.interpreter, self.port)

    def assess(self, started: bool) -> ops.StatusBase | None:
        """The status saying what is wrong with the app, or None when it serves.

        `started`: the app was (re)started in this hook, so wait for it to answer or exit.
        """
        if started:
            answered = wait_for_start(self.container, self.service, self._argv, self.user)
            if answered is None:
                return starting_status(self.port)
            if not answered:
                return self.crashed()
            return self._serving(verified=True)
        return self._assess_running()

    def _assess_running(self) -> ops.StatusBase | None:
        """`assess` for an app this hook did not start."""
        self.verified_at, verified_at = None, self.verified_at  # kept only when it serves
        info = self.container.get_services(self.service).get(self.service)
        if info is not None and not is_running(info) and self.crash is None:
            # An app that was serving exited (killed, out of memory): Pebble restarts it, after
            # the kill-delay its leftover processes get. Only a failed start is a crash loop.
            if probe(self.container, self._argv, self.user):
                return self._serving(verified=True)  # already serving again
            return restarting_status(self.port)
        if info is None or not is_running(info):
            return self.crashed()
        check = self.container.get_checks(self.check_name).get(self.check_name)
        if check_passed(check):
            return self._serving(verified=False)
        if check is not None and not check_failing(check) and self.crash is None:
            if _recent(verified_at):  # seen answering less than a check period ago
                self.verified_at = verified_at
                return None
        # Failing, or not run since a restart: ask the app now rather than report the past.
        answered = probe(self.container, self._argv, self.user)
        if answered or (answered is None and not check_failing(check)):
            return self._serving(verified=bool(answered))
        if self.crash is not None:  # between two exits of a crash loop
            return self.crashed()
        return not_answering_status(check.failures if check is not None else 0, self.port)

    def _serving(self, *, verified: bool) -> None:
        """It serves: no crash; `verified`: this hook saw it answer (see `verified_at`)."""
        self.crash = None
        if verified:
            self.verified_at = time.time()

    def crashed(self, output: list[str] | None = None) -> ops.BlockedStatus:
        """The app keeps exiting: Blocked with its last error line (from its logs or `output`)."""
        lines = read_log_lines(self.container, self.service) + (output or [])
        line = last_error_line(lines) or self.crash or None
        self.crash = line or ""
        self.verified_at = None
        logger.warning("the app exits at start: %s", line)
        return crashed_status(line)
