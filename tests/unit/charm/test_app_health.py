"""The app's health: the probe, the last error line, and the statuses the charm derives."""

from __future__ import annotations

import dataclasses
import http.server
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import ops
import pytest
from ops import testing

import app_health
import pebble_io
from tests.unit.charm.charm_state import container
from tests.unit.charm.test_charm import settled_state

# -- the probe, run for real against local sockets ------------------------------------------


class _AnyStatus(http.server.BaseHTTPRequestHandler):
    code = 404

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self.send_response(self.code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's name
        pass


@pytest.fixture
def http_port(request: pytest.FixtureRequest) -> Iterator[int]:
    handler = type("Handler", (_AnyStatus,), {"code": request.param})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A socket that accepts connections (backlog) but never answers: a frozen master."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield listener.getsockname()[1]
    listener.close()


def _probe(port: int, timeout: float = 2.0) -> int:
    argv = app_health.probe_argv(sys.executable, port, timeout)
    return subprocess.run(argv, capture_output=True, timeout=30, check=False).returncode


@pytest.mark.parametrize("http_port", [200, 302, 404, 500], indirect=True)
def test_probe_passes_on_any_http_answer(http_port):
    assert _probe(http_port) == 0


def test_probe_fails_when_the_socket_accepts_but_never_answers(silent_port):
    assert _probe(silent_port, timeout=0.5) != 0


def test_probe_fails_when_nothing_listens(silent_port):
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    assert _probe(port) != 0


def test_check_is_a_ready_exec_check_as_the_app_user_with_a_fixed_command():
    check = app_health.check("/bin/python3", 8000, {"user": "_daemon_", "command": "rm -rf /"})

    assert check.get("level") == "ready"  # never liveness: see app_health.check
    assert check["exec"]["user"] == "_daemon_"  # type: ignore[typeddict-item]
    command = check["exec"]["command"]  # type: ignore[typeddict-item]
    assert command.startswith("/bin/python3 -I -S -c ") and "rm -rf" not in command


# -- the app's last error line --------------------------------------------------------------

GUNICORN_CRASH = [
    "[2026-12-03 04:00:00 +0000] [7] [INFO] Booting worker with pid: 7",
    "Traceback (most recent call last):",
    '  File "/flask/app/app.py", line 40, in <module>',
    '    raise RuntimeError("boom")',
    "RuntimeError: boom",
    "[2026-12-03 04:00:00 +0000] [7] [INFO] Worker exiting (pid: 7)",
    "[2026-12-03 04:00:01 +0000] [1] [ERROR] Reason: Worker failed to boot.",
    "Traceback (most recent call last):",
    '  File "/lib/python3.12/site-packages/gunicorn/arbiter.py", line 242, in handle_chld',
    "gunicorn.errors.HaltServer: <HaltServer 'Worker failed to boot.' 3>",
]


def test_last_error_line_is_the_exception_not_gunicorns_summary():
    assert app_health.last_error_line(GUNICORN_CRASH) == "RuntimeError: boom"


def test_last_error_line_is_the_apps_exception_when_gunicorns_master_fails_on_its_own():
    """Workers dying at once can make the master fail in its own logging, after the app's error."""
    lines = [
        *GUNICORN_CRASH[:7],
        "Traceback (most recent call last):",
        '  File "/lib/python3.12/site-packages/gunicorn/arbiter.py", line 242, in handle_chld',
        '  File "/usr/lib/python3.12/logging/__init__.py", line 1163, in emit',
        "RuntimeError: reentrant call inside <_io.BufferedWriter name='<stderr>'>",
    ]
    assert app_health.last_error_line(lines) == "RuntimeError: boom"


def test_last_error_line_without_traceback_is_the_last_error():
    lines = ["starting", "[ERROR] Connection in use: ('0.0.0.0', 8000)", "[INFO] Retrying"]
    assert app_health.last_error_line(lines) == "[ERROR] Connection in use: ('0.0.0.0', 8000)"


def test_last_error_line_of_nothing_is_none():
    assert app_health.last_error_line(["", "  "]) is None


def test_untrusted_line_loses_control_characters_and_is_bounded():
    hostile = "ValueError: \x1b[31mred\x1b[0m\r\nfake line\u202e\x00" + "x" * 1000

    line = app_health.last_error_line([hostile])

    assert line is not None and len(line) == app_health.MAX_LINE
    assert line.startswith("ValueError: [31mred [0m fake line")
    assert line.isprintable() and line.endswith("…")


# -- waiting for a start, against a scripted container ---------------------------------------


@dataclasses.dataclass
class _Scripted:
    """A container whose service states and probe answers follow a script."""

    states: list[str]
    answers: list[bool]

    def get_services(self, name: str) -> dict[str, ops.pebble.ServiceInfo]:
        current = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return {name: ops.pebble.ServiceInfo(name, "enabled", current)}


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> _Scripted:
    box = _Scripted(["active"], [False])
    monkeypatch.setattr(app_health, "START_POLL", 0.0)
    monkeypatch.setattr(
        app_health,
        "probe",
        lambda *_: box.answers.pop(0) if len(box.answers) > 1 else box.answers[0],
    )
    return box


def _wait(box: _Scripted, wait: float = 5.0) -> bool | None:
    return app_health.wait_for_start(box, "flask", ["probe"], None, wait=wait)  # type: ignore[arg-type]


def test_start_wait_ends_when_the_app_answers(scripted):
    scripted.answers[:] = [False, False, True]
    assert _wait(scripted) is True


def test_start_wait_sees_an_app_that_exits_after_pebbles_okay_delay(scripted):
    scripted.states[:] = ["active", "active", "backoff"]
    assert _wait(scripted) is False


def test_start_wait_gives_up_on_an_app_still_starting(scripted):
    assert _wait(scripted, wait=0.0) is None


# -- the charm's statuses (ops.testing) -------------------------------------------------------


def _ready(ctx: testing.Context, st: testing.State) -> testing.State:
    return ctx.run(ctx.on.pebble_ready(st.get_container("flask-app")), st)


UNTRUSTED = ["Traceback (most recent call last):", "KeyError: '\x1b[2J" + "A" * 500 + "'"]


@pytest.fixture
def untrusted_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app_health, "read_log_lines", lambda *_: list(UNTRUSTED))


def _crash_status(line: str) -> str:
    return f"the app exits at start: {line} (see `pebble logs flask`)"


def test_app_exiting_after_start_blocks_with_its_bounded_last_error_line(
    ctx, charm_dir, monkeypatch, untrusted_logs
):
    monkeypatch.setattr(app_health, "wait_for_start", lambda *_: False)

    out = _ready(ctx, settled_state(charm_dir))

    line = app_health.last_error_line(UNTRUSTED)
    assert line is not None and len(line) == app_health.MAX_LINE and "\x1b" not in line
    assert out.unit_status == testing.BlockedStatus(_crash_status(line))


def test_app_exiting_within_okay_delay_blocks_with_the_exception(ctx, charm_dir, monkeypatch):
    def failing_replan(_container: ops.Container) -> None:
        err = "cannot start service: exited quickly\nMost recent output:\n    OSError: no db"
        raise ops.pebble.ChangeError(err, None)  # type: ignore[arg-type]

    monkeypatch.setattr(pebble_io, "replan", failing_replan)

    out = ctx.run(ctx.on.config_changed(), settled_state(charm_dir))

    assert out.unit_status == testing.BlockedStatus(_crash_status("OSError: no db"))


def test_app_pebble_is_still_stopping_is_being_restarted_not_crashed(ctx, charm_dir, monkeypatch):
    # A frozen app failed its check: Pebble stops it (up to kill-delay), then starts it again.
    def replan_while_terminating(_container: ops.Container) -> None:
        err = 'cannot perform the following tasks:\n- Start service "flask" (cannot start '
        err += "service while terminating)"
        raise ops.pebble.ChangeError(err, None)  # type: ignore[arg-type]

    monkeypatch.setattr(pebble_io, "replan", replan_while_terminating)
    settled = settled_state(charm_dir)
    box = dataclasses.replace(
        settled.get_container("flask-app"),
        service_statuses={"flask": ops.pebble.ServiceStatus.INACTIVE},
    )

    out = ctx.run(ctx.on.update_status(), dataclasses.replace(settled, containers={box}))

    assert out.unit_status == testing.MaintenanceStatus(
        "the app does not answer HTTP on port 8000: Pebble is restarting it "
        "(see `pebble logs flask`)"
    )


def _after_crash(ctx, charm_dir, monkeypatch) -> testing.State:
    monkeypatch.setattr(app_health, "wait_for_start", lambda *_: False)
    monkeypatch.setattr(app_health, "read_log_lines", lambda *_: ["RuntimeError: boom"])
    out = _ready(ctx, settled_state(charm_dir))
    monkeypatch.setattr(app_health, "read_log_lines", lambda *_: [])  # logs rolled over
    return out


def _with_app(out: testing.State, status: ops.pebble.ServiceStatus, check: testing.CheckInfo):
    box = out.get_container("flask-app")
    box = dataclasses.replace(box, service_statuses={"flask": status}, check_infos={check})
    return dataclasses.replace(out, containers={box})


def test_crash_loop_stays_blocked_while_pebble_briefly_shows_it_up(ctx, charm_dir, monkeypatch):
    out = _after_crash(ctx, charm_dir, monkeypatch)
    monkeypatch.setattr(app_health, "probe", lambda *_: False)
    failing = testing.CheckInfo(
        "flask-ready",
        level=ops.pebble.CheckLevel.READY,
        failures=5,
        status=ops.pebble.CheckStatus.DOWN,
    )

    for _ in range(3):
        out = ctx.run(
            ctx.on.update_status(), _with_app(out, ops.pebble.ServiceStatus.ACTIVE, failing)
        )
        assert out.unit_status == testing.BlockedStatus(_crash_status("RuntimeError: boom"))


def test_crash_loop_ends_when_the_app_answers(ctx, charm_dir, monkeypatch):
    out = _after_crash(ctx, charm_dir, monkeypatch)
    failing = testing.CheckInfo(
        "flask-ready",
        level=ops.pebble.CheckLevel.READY,
        failures=5,
        status=ops.pebble.CheckStatus.DOWN,
    )

    out = ctx.run(ctx.on.update_status(), _with_app(out, ops.pebble.ServiceStatus.ACTIVE, failing))

    assert out.unit_status == testing.ActiveStatus("")


@pytest.mark.parametrize("failures", [1, 3])
def test_failing_check_is_not_active(ctx, charm_dir, monkeypatch, failures):
    started = _ready(ctx, settled_state(charm_dir))
    monkeypatch.setattr(app_health, "probe", lambda *_: False)
    status = ops.pebble.CheckStatus.DOWN if failures >= 3 else ops.pebble.CheckStatus.UP
    check = testing.CheckInfo(
        "flask-ready", level=ops.pebble.CheckLevel.READY, failures=failures, status=status
    )

    st = _with_app(started, ops.pebble.ServiceStatus.ACTIVE, check)

    out = ctx.run(ctx.on.pebble_check_failed(st.get_container("flask-app"), check), st)

    assert out.unit_status == testing.MaintenanceStatus(
        f"the app does not answer HTTP on port 8000 ({failures} failed check(s); Pebble "
        "restarts it after 3): see `pebble logs flask`"
    )


def test_passing_check_is_active_without_a_probe(ctx, charm_dir, monkeypatch):
    started = _ready(ctx, settled_state(charm_dir))

    def no_probe(*_: object) -> bool:
        raise AssertionError("a passing check needs no probe")

    monkeypatch.setattr(app_health, "probe", no_probe)
    check = testing.CheckInfo(
        "flask-ready",
        level=ops.pebble.CheckLevel.READY,
        successes=4,
        status=ops.pebble.CheckStatus.UP,
    )

    out = ctx.run(
        ctx.on.update_status(), _with_app(started, ops.pebble.ServiceStatus.ACTIVE, check)
    )

    assert out.unit_status == testing.ActiveStatus("")


def test_the_start_probe_runs_in_the_container_as_the_app_user(ctx, charm_dir, real_probe):
    probe = testing.Exec(["/bin/python3", "-I", "-S", "-c"], return_code=0)
    box = container(charm_dir, execs=[probe])

    out = _ready(ctx, settled_state(charm_dir, containers={box}))

    (run,) = ctx.exec_history["flask-app"]
    assert run.command == app_health.probe_argv("/bin/python3", 8000)
    assert (run.user, run.working_dir) == ("_daemon_", "/")
    assert out.unit_status == testing.ActiveStatus("")


def test_app_not_answering_within_the_start_wait_is_waiting(ctx, charm_dir, monkeypatch):
    monkeypatch.setattr(app_health, "wait_for_start", lambda *_: None)

    out = _ready(ctx, settled_state(charm_dir))

    assert isinstance(out.unit_status, testing.WaitingStatus)
    assert "has not answered HTTP on port 8000" in out.unit_status.message


def test_a_probe_that_cannot_run_trusts_pebble(ctx, charm_dir, real_probe):
    # No mock for the probe: ops.testing answers 127, as a shell does for a missing command.
    out = _ready(ctx, settled_state(charm_dir))

    assert out.unit_status == testing.ActiveStatus("")


def test_a_probe_that_runs_and_fails_is_not_trusted(ctx, charm_dir, real_probe, monkeypatch):
    monkeypatch.setattr(app_health, "START_WAIT", 0.0)
    probe = testing.Exec(["/bin/python3", "-I", "-S", "-c"], return_code=1)
    box = container(charm_dir, execs=[probe])

    out = _ready(ctx, settled_state(charm_dir, containers={box}))

    assert isinstance(out.unit_status, testing.WaitingStatus)


class _Response:
    def __init__(self, body: bytes):
        self._body = body

    def read(self, limit: int) -> bytes:
        return self._body[:limit]


@dataclasses.dataclass
class _LogsContainer:
    body: bytes
    queries: list[dict[str, str]] = dataclasses.field(default_factory=list)

    @property
    def pebble(self) -> _LogsContainer:
        return self

    def _request_raw(self, method: str, path: str, query: dict[str, str]) -> _Response:
        assert (method, path) == ("GET", "/v1/logs")
        self.queries.append(query)
        return _Response(self.body)


def test_log_lines_are_read_from_pebbles_logs_api_skipping_garbage():
    body = b"\n".join(
        [
            b'{"time": "t", "service": "flask", "message": "Traceback\\n"}',
            b"[" * 5000,
            b'{"message": 42}',
            b'{"time": "t", "service": "flask", "message": "KeyError: 1\\n"}',
        ]
    )
    box = _LogsContainer(body)

    lines = app_health.read_log_lines(box, "flask")  # type: ignore[arg-type]

    assert lines == ["Traceback\n", "KeyError: 1\n"]
    assert box.queries == [{"services": "flask", "n": str(app_health.LOG_LINES)}]


def test_log_lines_that_cannot_be_read_are_none():
    assert app_health.read_log_lines(object(), "flask") == []  # type: ignore[arg-type]


class _BackoffContainer:
    """Pebble's view while it restarts an app that exited: `flask` in backoff."""

    def get_services(self, *names: str) -> dict[str, ops.pebble.ServiceInfo]:
        info = ops.pebble.ServiceInfo("flask", ops.pebble.ServiceStartup.ENABLED, "backoff")
        return {"flask": info}


def test_a_serving_app_that_exited_is_being_restarted_until_it_serves(monkeypatch):
    monkeypatch.setattr(app_health, "probe", lambda *_: False)
    monkeypatch.setattr(app_health, "read_log_lines", lambda *_: ["MemoryError"])
    health = app_health.AppHealth(_BackoffContainer(), "/bin/python3", None)  # type: ignore[arg-type]

    looks = [health.assess(started=False) for _ in range(3)]  # Pebble's kill-delay, backoff

    assert looks == [app_health.restarting_status(8000)] * 3
    assert health.crash is None  # a failed start, not this, makes a crash loop


def _crash_looping(monkeypatch, container, **kwargs) -> app_health.AppHealth:
    """AppHealth for an app whose start failed with "RuntimeError: boom", as its log says."""
    monkeypatch.setattr(app_health, "read_log_lines", lambda *_: ["RuntimeError: boom"])
    return app_health.AppHealth(
        container, "/bin/python3", None, crash="RuntimeError: boom", **kwargs
    )


def test_a_crash_loop_seen_at_start_stays_blocked_while_pebble_restarts_it(monkeypatch):
    monkeypatch.setattr(app_health, "probe", lambda *_: False)
    health = _crash_looping(monkeypatch, _BackoffContainer())

    assert health.assess(started=False) == ops.BlockedStatus(_crash_status("RuntimeError: boom"))


def test_app_serving_again_after_one_exit_is_fine(monkeypatch):
    monkeypatch.setattr(app_health, "probe", lambda *_: True)  # Pebble's view lags the app's
    health = app_health.AppHealth(_BackoffContainer(), "/bin/python3", None)  # type: ignore[arg-type]

    assert health.assess(started=False) is None
    assert health.crash is None


class _NotCheckedYet:
    """Pebble's view just after a start: `flask` active, its check not run yet."""

    def get_services(self, *names: str) -> dict[str, ops.pebble.ServiceInfo]:
        return {
            "flask": ops.pebble.ServiceInfo("flask", ops.pebble.ServiceStartup.ENABLED, "active")
        }

    def get_checks(self, *names: str) -> dict[str, ops.pebble.CheckInfo]:
        info = ops.pebble.CheckInfo("flask-ready", "ready", ops.pebble.CheckStatus.UP, successes=0)
        return {"flask-ready": info}


def _probes(monkeypatch: pytest.MonkeyPatch, answer: bool) -> list[object]:
    runs: list[object] = []
    monkeypatch.setattr(app_health, "probe", lambda *args: runs.append(args) or answer)
    return runs


def test_an_app_seen_answering_within_a_check_period_needs_no_probe(monkeypatch):
    runs = _probes(monkeypatch, answer=False)
    seen = time.time() - app_health.PERIOD_SECONDS / 2
    health = app_health.AppHealth(_NotCheckedYet(), "/bin/python3", None, verified_at=seen)  # type: ignore[arg-type]

    assert health.assess(started=False) is None
    assert runs == []
    assert health.verified_at == seen  # no new evidence: the old one ages on


@pytest.mark.parametrize("ago", [app_health.PERIOD_SECONDS + 1, None, -60.0])
def test_an_app_not_seen_recently_is_probed_before_it_is_active(monkeypatch, ago):
    runs = _probes(monkeypatch, answer=False)
    seen = None if ago is None else time.time() - ago  # -60: the clock was set back
    health = app_health.AppHealth(_NotCheckedYet(), "/bin/python3", None, verified_at=seen)  # type: ignore[arg-type]

    assert health.assess(started=False) == app_health.not_answering_status(0, 8000)
    assert len(runs) == 1
    assert health.verified_at is None


def test_a_crash_loop_is_probed_however_recently_the_app_answered(monkeypatch):
    runs = _probes(monkeypatch, answer=False)
    health = _crash_looping(monkeypatch, _NotCheckedYet(), verified_at=time.time())

    assert health.assess(started=False) == ops.BlockedStatus(_crash_status("RuntimeError: boom"))
    assert len(runs) == 1


def test_a_start_that_answers_records_when(scripted):
    scripted.answers[:] = [True]
    health = app_health.AppHealth(scripted, "/bin/python3", None)  # type: ignore[arg-type]
    before = time.time()

    assert health.assess(started=True) is None
    assert health.verified_at is not None and health.verified_at >= before
