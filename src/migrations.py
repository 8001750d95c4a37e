"""The app's migrate script: discovery, coordination across units, execution, bookkeeping.

Discovery. In /flask/app, first found wins: `migrate` (if executable, run as is), `migrate.sh`
(run with bash), `migrate.py` (run with the Python of the rock's `flask` command). None: nothing
to run. The script runs through Pebble exec as the rock's user (`_daemon_`), in /flask/app, with
the environment the `flask` service gets. It runs in its own session under a small supervisor in
the rock's Python, which kills it and every process it started after `migration-timeout`
seconds (Pebble's own exec timeout, 10 s later, is the backstop: alone it would leave the
script's children running).

What "the code" is. A *code id* hashes the charm's own code, the script's name and content, and
the path, size and mtime of every file under /flask/app (`__pycache__` aside). A new image or a
new charm revision gives a new code id; a pod restarted on the same image and charm does not.
A related database (its endpoint and name, `integrations.identity_of`; not its credentials) is
part of the code id too: moving to another database is new code, so the script runs against it
before the app serves with it.
A migration "for code C" is needed once per application, not once per unit.

When. A unit evaluates migrations only while its app is not running (the first start of the app
in a workload container: a fresh pod, after a refresh or a new image, or a stopped app), on
upgrade-charm, and while it has an outstanding request (below). If its code is already migrated
it starts the app at once; if not, it runs the script when the protocol below lets it, and
starts the app only after the script succeeded. A running app is never gated, so config-changed,
update-status and the like neither run nor re-run anything. The `run-migrations` action runs the
script on demand (leader only, below).

How units take turns, and why that never runs two scripts at once nor deadlocks a rolling
upgrade: see `migration_protocol`.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import pathlib
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import ops

import pebble_io
from migration_protocol import Board, Lease, Result, arbitrate, decide, record
from status import StatusError

if TYPE_CHECKING:
    from workload import FlaskApp

logger = logging.getLogger(__name__)

PEER = "secret-storage"
APP_DIR = "/flask/app"
WANT_KEY = "migration-want"
RESULT_KEY = "migration-result"
LEASE_KEY = "migration-lease"
MIGRATED_KEY = "migrated"
SERIAL_KEY = "migration-serial"
RETRY_KEY = "migration-retry"
MAX_FILES = 5000  # files under /flask/app that go into the code id
DEFAULT_USER = "_daemon_"


class MigrationPendingError(StatusError):
    """The app must not start (yet); `status` says why and what to do."""


class MigrationActionError(Exception):
    """The run-migrations action cannot run; the message says why and what to do."""


# -- pure core --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Script:
    """A discovered migrate script and the command that runs it."""

    name: str
    argv: tuple[str, ...]


def discover(files: Mapping[str, int], interpreter: str) -> Script | None:
    """Pick the script from the regular files of /flask/app (name -> permission bits)."""
    if files.get("migrate", 0) & 0o111:
        return Script("migrate", (f"{APP_DIR}/migrate",))
    if "migrate.sh" in files:
        return Script("migrate.sh", ("/bin/bash", f"{APP_DIR}/migrate.sh"))
    if "migrate.py" in files:
        return Script("migrate.py", (interpreter, f"{APP_DIR}/migrate.py"))
    return None


def code_id(charm: str, script: Script, content: bytes, listing: Iterable[str]) -> str:
    """Identify the code a migration is for (see the module docstring)."""
    digest = hashlib.sha256()
    for part in (charm.encode(), script.name.encode(), content, *(x.encode() for x in listing)):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()[:20]


def last_line(text: str) -> str:
    """The last non-blank line of `text`, shortened for a status message."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    line = lines[-1] if lines else ""
    return line if len(line) <= 200 else line[:197] + "..."


def failure_message(app: str, script: str, run: pebble_io.ScriptRun, timeout: int) -> str:
    """The Blocked message for a failed run."""
    how = f"exit {run.exit_code}" if run.exit_code is not None else f"killed after {timeout}s"
    why = last_line(run.stderr) or last_line(run.stdout) or "no output"
    return (
        f"migration {script} failed ({how}): {why}; fix it and run "
        f"`juju run {app}/leader run-migrations`"
    )


# -- peer data ----------------------------------------------------------------------------------


def _json(raw: str | None) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _lease(raw: str | None) -> Lease | None:
    value = _json(raw)
    try:
        return Lease(
            str(value["unit"]),
            str(value["code"]),
            int(value["serial"]),
            float(value["expires"]),
            bool(value.get("failed", False)),
        )
    except (TypeError, KeyError, ValueError):
        return None


def _result(raw: str | None) -> Result | None:
    value = _json(raw)
    try:
        serial = value.get("serial")
        return Result(
            str(value["code"]),
            bool(value["ok"]),
            None if serial is None else int(serial),
            int(value.get("retry", 0)),
        )
    except (AttributeError, TypeError, KeyError, ValueError):
        return None


def _int(raw: str | None) -> int:
    try:
        return int(raw or 0)
    except ValueError:
        return 0


def read_board(relation: ops.Relation, app: ops.Application, unit: ops.Unit) -> Board:
    """Read the peer relation into a Board."""
    app_data = relation.data[app]
    migrated = _json(app_data.get(MIGRATED_KEY))
    wants, results = {}, {}
    for member in (unit, *relation.units):
        data = relation.data[member]
        if data.get(WANT_KEY):
            wants[member.name] = data[WANT_KEY]
        result = _result(data.get(RESULT_KEY))
        if result is not None:
            results[member.name] = result
    return Board(
        lease=_lease(app_data.get(LEASE_KEY)),
        migrated=tuple(str(c) for c in migrated) if isinstance(migrated, list) else (),
        serial=_int(app_data.get(SERIAL_KEY)),
        retry=_int(app_data.get(RETRY_KEY)),
        wants=wants,
        results=results,
    )


def write_app_board(relation: ops.Relation, app: ops.Application, board: Board) -> None:
    """Write the leader's part of the Board, touching only keys whose value changes."""
    lease = board.lease
    values = {
        LEASE_KEY: json.dumps(dataclasses.asdict(lease), sort_keys=True) if lease else "",
        MIGRATED_KEY: json.dumps(list(board.migrated)) if board.migrated else "",
        SERIAL_KEY: str(board.serial) if board.serial else "",
        RETRY_KEY: str(board.retry) if board.retry else "",
    }
    data = relation.data[app]
    for key, value in values.items():
        if data.get(key, "") != value:
            data[key] = value


@functools.lru_cache(maxsize=1)
def charm_fingerprint() -> str:
    """Hash of the charm's own code: a new charm revision is new code to migrate for."""
    digest = hashlib.sha256()
    for path in sorted(pathlib.Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


# -- glue ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ActionReport:
    """What the run-migrations action reports."""

    results: dict[str, Any]
    failure: str | None = None


class Migrations(ops.Object):
    """Run the app's migrate script when new code arrives, one unit at a time."""

    _stored = ops.StoredState()

    def __init__(self, charm: ops.CharmBase):
        super().__init__(charm, "migrations")
        self._charm = charm
        # The last failure's Blocked message (the status survives update-status this way).
        self._stored.set_default(failed_code=None, failure=None)

    @property
    def _relation(self) -> ops.Relation | None:
        return self.model.get_relation(PEER)

    def coordinate(self, timeout: int) -> None:
        """Leader: fold results in, end a finished or stale lease, grant the next (step 3)."""
        relation = self._relation
        if relation is None or not self._charm.unit.is_leader():
            return
        board = read_board(relation, self._charm.app, self._charm.unit)
        members = [self._charm.unit.name, *(unit.name for unit in relation.units)]
        after = arbitrate(
            board, leader=self._charm.unit.name, members=members, now=time.time(), timeout=timeout
        )
        if after != board:
            if after.lease != board.lease:
                logger.info("migration lease: %s -> %s", board.lease, after.lease)
            write_app_board(relation, self._charm.app, after)

    def gate(self, container: ops.Container, app: FlaskApp, *, upgrading: bool) -> None:
        """Return when the app may run its code; raise MigrationPendingError otherwise."""
        relation = self._relation
        own = relation.data[self._charm.unit] if relation else {}
        running = container.get_service("flask").is_running()
        if running and not upgrading and not own.get(WANT_KEY):
            return  # nothing new: never re-run for a running app
        script = self._find(container, app)
        if script is None:
            self._set_want(None)
            return
        if relation is None:
            raise MigrationPendingError(ops.WaitingStatus(f"waiting for the {PEER} relation"))
        code = self._code_id(container, script, app)
        board = read_board(relation, self._charm.app, self._charm.unit)
        timeout = app.config.migration_timeout
        decision = decide(
            board,
            me=self._charm.unit.name,
            code=code,
            now=time.time(),
            timeout=timeout,
            leader=self._charm.unit.is_leader(),
        )
        if decision.kind == "done":
            self._set_want(None)
            return
        if decision.kind == "failed":
            raise MigrationPendingError(ops.BlockedStatus(self._failure(script, code)))
        if decision.kind == "wait":
            self._set_want(code)
            on = decision.holder or "the leader to schedule it"
            raise MigrationPendingError(ops.WaitingStatus(f"waiting for migration on {on}"))
        run = self._run(container, app, script, code, decision.serial or 0, board)
        if run.exit_code != 0:
            raise MigrationPendingError(ops.BlockedStatus(self._failure(script, code)))

    def run_action(self, container: ops.Container, app: FlaskApp) -> ActionReport:
        """Run the script now, on the leader (step 5); raise MigrationActionError if not."""
        name = self._charm.app.name
        if not self._charm.unit.is_leader():
            raise MigrationActionError(
                f"migrations are coordinated by the leader: juju run {name}/leader run-migrations"
            )
        relation = self._relation
        if relation is None:
            raise MigrationActionError(f"waiting for the {PEER} relation; try again shortly")
        script = self._find(container, app)
        if script is None:
            return ActionReport({"result": f"no migrate script in {APP_DIR}: nothing to run"})
        board = read_board(relation, self._charm.app, self._charm.unit)
        lease = board.lease
        if lease is not None and lease.unit != self._charm.unit.name and lease.live(time.time()):
            raise MigrationActionError(
                f"a migration is running on {lease.unit}: wait for it to end (juju status), "
                "then run the action again if needed"
            )
        failed = lease is not None and lease.failed
        board = dataclasses.replace(board, retry=board.retry + 1, lease=None if failed else lease)
        code = self._code_id(container, script, app)
        run = self._run(container, app, script, code, board.serial + 1, board)
        results: dict[str, Any] = {
            "script": script.name,
            "exit-code": -1 if run.exit_code is None else run.exit_code,
            "output": run.stdout[-8000:],
            "error-output": run.stderr[-8000:],
        }
        if run.exit_code is None:
            results["timed-out"] = True
        return ActionReport(results, None if run.exit_code == 0 else self._failure(script, code))

    # -- helpers ------------------------------------------------------------------------------

    def _find(self, container: ops.Container, app: FlaskApp) -> Script | None:
        try:
            entries = container.list_files(APP_DIR)
        except (ops.pebble.APIError, ops.pebble.PathError):
            return None
        files = {f.name: f.permissions for f in entries if f.type == ops.pebble.FileType.FILE}
        return discover(files, app.rock_command.interpreter)

    def _code_id(self, container: ops.Container, script: Script, app: FlaskApp) -> str:
        content = container.pull(f"{APP_DIR}/{script.name}", encoding=None).read()
        listing: list[str] = []
        directories = [APP_DIR]
        while directories and len(listing) < MAX_FILES:
            for entry in container.list_files(directories.pop()):
                if entry.type == ops.pebble.FileType.DIRECTORY:
                    if entry.name != "__pycache__":
                        directories.append(entry.path)
                elif entry.type == ops.pebble.FileType.FILE and not entry.name.endswith(".pyc"):
                    stamp = entry.last_modified.timestamp() if entry.last_modified else 0
                    listing.append(f"{entry.path}\0{entry.size}\0{stamp}")
        import integrations  # the related databases (none: the code id is unchanged)

        if database := integrations.identity_of(app.integration_env):
            listing.append(f"database\0{database}")
        return code_id(charm_fingerprint(), script, content, sorted(listing))

    def _set_want(self, code: str | None) -> None:
        relation = self._relation
        if relation is not None and relation.data[self._charm.unit].get(WANT_KEY, "") != (
            code or ""
        ):
            relation.data[self._charm.unit][WANT_KEY] = code or ""

    def _run(
        self,
        container: ops.Container,
        app: FlaskApp,
        script: Script,
        code: str,
        serial: int,
        board: Board,
    ) -> pebble_io.ScriptRun:
        """Run the script and record the outcome (unit databag; leader: app databag)."""
        service = app.service()
        rock = app.rock_service
        timeout = app.config.migration_timeout
        try:
            run = pebble_io.run_script(
                container,
                list(script.argv),
                python=app.rock_command.interpreter,
                user=rock.get("user") or (None if rock.get("user-id") else DEFAULT_USER),
                group=rock.get("group"),
                working_dir=APP_DIR,
                environment=service.get("environment") or {},
                timeout=timeout,
            )
        except (ops.pebble.APIError, ops.pebble.ChangeError) as exc:
            run = pebble_io.ScriptRun(-1, "", f"could not start {script.name}: {exc}")
        ok = run.exit_code == 0
        log = logger.info if ok else logger.error
        log(
            "migration %s (code %s) %s\n--- stdout ---\n%s\n--- stderr ---\n%s",
            script.name,
            code,
            "succeeded" if ok else f"failed: exit {run.exit_code} (None: killed at timeout)",
            run.stdout,
            run.stderr,
        )
        me = self._charm.unit.name
        result = Result(code, ok, serial, board.retry)
        relation = self._relation
        assert relation is not None  # callers checked
        relation.data[self._charm.unit][RESULT_KEY] = json.dumps(dataclasses.asdict(result))
        self._set_want(None)
        if self._charm.unit.is_leader():
            after = record(board, me=me, code=code, serial=serial, ok=ok)
            write_app_board(relation, self._charm.app, after)
        if ok:
            self._stored.failed_code = self._stored.failure = None
        else:
            self._stored.failed_code = code
            self._stored.failure = failure_message(self._charm.app.name, script.name, run, timeout)
        return run

    def _failure(self, script: Script, code: str) -> str:
        if self._stored.failed_code == code and self._stored.failure:
            return str(self._stored.failure)
        return (
            f"migration {script.name} failed (see juju debug-log); fix it and run "
            f"`juju run {self._charm.app.name}/leader run-migrations`"
        )
