"""The app's migrate script: discovery, coordination across units, execution, bookkeeping.

Discovery. In /flask/app, first found wins: `migrate` (if executable, run as is), `migrate.sh`
(run with bash), `migrate.py` (run with the Python of the rock's `flask` command). None: nothing
to run. The script runs through Pebble exec as the rock's user (`_daemon_`), in /flask/app, with
the environment the `flask` service gets. It runs in its own session under a small supervisor in
the rock's Python, which kills it and every process it started after `migration-timeout`
seconds (Pebble's own exec timeout, 10 s later, is the backstop: alone it would leave the
script's children running), and whenever the supervisor itself dies (see `pebble_io`).

Bookkeeping in the workload container, root-owned in /run/flask-k8s (gone with the container,
out of the app user's reach): `pod`, a random id for this container, and `migrated`, the code
and serial of the run that succeeded here, written before the app starts so that a retried
hook does not run it again. Every value read from the peer relation is parsed defensively:
malformed data is logged and counts as absent.

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
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import ops

import pebble_io
from migration_protocol import (
    HISTORY,
    Board,
    Decision,
    Fence,
    Lease,
    Peer,
    Result,
    action_refusal,
    arbitrate,
    decide,
    for_action,
    leading,
    next_result,
    record,
    with_history,
)
from status import StatusError

if TYPE_CHECKING:
    from workload import FlaskApp

logger = logging.getLogger(__name__)
T = TypeVar("T")

PEER = "secret-storage"
APP_DIR = "/flask/app"
WANT_KEY = "migration-want"
RESULT_KEY = "migration-result"
LEASE_KEY = "migration-lease"
MIGRATED_KEY = "migrated"
SERIAL_KEY = "migration-serial"
RETRY_KEY = "migration-retry"
LEADER_KEY = "migration-leader"
POD_KEY = "migration-pod"
HISTORY_KEY = "migration-history"
ACK_KEY = "migration-ack"
# Root-owned, in the workload container: gone with it, and out of the app user's reach.
STATE_DIR = "/run/flask-k8s"
POD_FILE = f"{STATE_DIR}/pod"
MARKER_FILE = f"{STATE_DIR}/migrated"
CODE_FILE = f"{STATE_DIR}/code"  # the code id of this container, once computed
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


# -- peer data (remote: parsed defensively; anything malformed counts as absent) --------------


def _json(raw: str | None) -> Any:
    try:
        return json.loads(raw) if raw else None
    except (ValueError, RecursionError):
        logger.warning("ignoring malformed migration data: %.80r", raw)
        return None


def _str(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(value)
    return value


def _natural(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeError(value)
    return value


def _parse(kind: str, raw: str | None, parse: Callable[[Any], T]) -> T | None:
    value = _json(raw)
    if value is None:
        return None
    try:
        return parse(value)
    except (TypeError, KeyError, ValueError, AttributeError):
        logger.warning("ignoring malformed %s: %.80r", kind, raw)
        return None


def _lease(value: Any) -> Lease:
    failed = value.get("failed", False)
    if not isinstance(failed, bool):
        raise TypeError(failed)
    return Lease(
        _str(value["unit"]),
        _str(value["code"]),
        _natural(value["serial"]),
        _str(value["pod"]),
        failed,
    )


def _result(value: Any) -> Result:
    if not isinstance(value["ok"], bool):
        raise TypeError(value["ok"])
    return Result(
        _str(value["code"]), value["ok"], _natural(value["serial"]), _natural(value["retry"])
    )


def _codes(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise TypeError(value)
    return tuple(_str(code) for code in value)[-HISTORY:]


def _leadership(value: Any) -> tuple[str, int, tuple[Fence, ...]]:
    fences = tuple(
        Fence(_str(f["unit"]), f["pod"] and _str(f["pod"]), _natural(f["epoch"]))
        for f in value.get("fences", [])
    )
    return _str(value["unit"]), _natural(value["epoch"]), fences


def _int(raw: str | None) -> int:
    value = _parse("number", raw, _natural)
    return value or 0


def read_peer(data: Mapping[str, str]) -> Peer:
    """One unit's published migration data."""
    want = data.get(WANT_KEY) or None
    return Peer(
        want=want,
        result=_parse("migration result", data.get(RESULT_KEY), _result),
        pod=data.get(POD_KEY) or None,
        history=_parse("migration history", data.get(HISTORY_KEY), _codes) or (),
        ack=_int(data.get(ACK_KEY)),
    )


def read_board(relation: ops.Relation, app: ops.Application, unit: ops.Unit) -> Board:
    """Read the peer relation into a Board."""
    app_data = relation.data[app]
    leader, epoch, fences = _parse("migration leader", app_data.get(LEADER_KEY), _leadership) or (
        None,
        0,
        (),
    )
    return Board(
        lease=_parse("migration lease", app_data.get(LEASE_KEY), _lease),
        migrated=_parse("migrated codes", app_data.get(MIGRATED_KEY), _codes) or (),
        serial=_int(app_data.get(SERIAL_KEY)),
        retry=_int(app_data.get(RETRY_KEY)),
        leader=leader,
        epoch=epoch,
        fences=fences,
        peers={m.name: read_peer(relation.data[m]) for m in (unit, *relation.units)},
    )


def _set(data: ops.RelationDataContent, key: str, value: str) -> None:
    if data.get(key, "") != value:
        data[key] = value


def write_app_board(relation: ops.Relation, app: ops.Application, board: Board) -> None:
    """Write the leader's part of the Board, touching only keys whose value changes."""
    lease = board.lease
    leadership = {
        "unit": board.leader,
        "epoch": board.epoch,
        "fences": [dataclasses.asdict(f) for f in board.fences],
    }
    values = {
        LEASE_KEY: json.dumps(dataclasses.asdict(lease), sort_keys=True) if lease else "",
        MIGRATED_KEY: json.dumps(list(board.migrated)) if board.migrated else "",
        SERIAL_KEY: str(board.serial) if board.serial else "",
        RETRY_KEY: str(board.retry) if board.retry else "",
        LEADER_KEY: json.dumps(leadership, sort_keys=True) if board.leader else "",
    }
    for key, value in values.items():
        _set(relation.data[app], key, value)


def write_peer(relation: ops.Relation, unit: ops.Unit, peer: Peer) -> None:
    """Write a unit's own part of the Board, touching only keys whose value changes."""
    result = peer.result
    values = {
        WANT_KEY: peer.want or "",
        RESULT_KEY: json.dumps(dataclasses.asdict(result), sort_keys=True) if result else "",
        POD_KEY: peer.pod or "",
        HISTORY_KEY: json.dumps(list(peer.history)) if peer.history else "",
        ACK_KEY: str(peer.ack) if peer.ack else "",
    }
    for key, value in values.items():
        _set(relation.data[unit], key, value)


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
        self._leader: bool | None = None  # read once per hook: it must not change mid-hook
        self._committed: Board | None = None

    @property
    def _relation(self) -> ops.Relation | None:
        return self.model.get_relation(PEER)

    def _is_leader(self) -> bool:
        if self._leader is None:
            self._leader = bool(self._charm.unit.is_leader())
        return bool(self._leader)

    def coordinate(self, container: ops.Container) -> None:
        """Every hook, first: publish this unit's pod, ack and success; the leader arbitrates.

        The success is the marker's (a retried hook); the arbitration is step 3. Nothing at all
        happens without a migrate script.
        """
        relation = self._relation
        if relation is None or not container.can_connect():
            return
        if self._find(container, None) is None:
            return
        me = self._charm.unit
        board = self._committed_board(relation)
        peer = dataclasses.replace(board.peers[me.name], pod=self._pod(container))
        if not self._is_leader() and board.leader not in (None, me.name):
            peer = dataclasses.replace(peer, ack=board.epoch)  # no unleased run of ours is left
        code = self._read(container, CODE_FILE)
        if code:  # even a hook that finds the app running publishes where this pod stands
            peer = dataclasses.replace(peer, history=with_history(peer.history, code))
        marker = self._marker(container)
        if marker is not None:
            result = Result(marker[0], True, marker[1], board.retry)
            peer = dataclasses.replace(peer, result=next_result(peer.result, result))
        write_peer(relation, me, peer)
        self._arbitrated(relation)

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
        me = self._charm.unit.name
        self._remember_code(container, code)
        self.coordinate(container)
        committed = self._committed_board(relation)
        board = self._arbitrated(relation)
        pod = self._pod(container)
        marker = self._marker(container)
        if marker is not None and marker[0] == code:
            decision = Decision("done")  # a retried hook: its success is on record here
        else:
            leads = self._is_leader() and leading(committed, board, me)
            decision = decide(board, me=me, code=code, pod=pod, leads=leads)
        if decision.kind in ("done", "superseded"):
            if decision.kind == "superseded":
                logger.info("code %s is older than a migrated code: starting without a run", code)
            self._set_want(None)
            return
        self._set_want(code)
        if decision.kind == "failed":
            raise MigrationPendingError(ops.BlockedStatus(self._failure(script, code, decision)))
        if decision.kind == "wait":
            on = decision.holder or "the leader to schedule it"
            raise MigrationPendingError(ops.WaitingStatus(f"waiting for migration on {on}"))
        run = self._run(container, app, script, code, decision.serial or 0, board)
        if run.exit_code != 0:
            raise MigrationPendingError(ops.BlockedStatus(self._failure(script, code, decision)))

    def run_action(self, container: ops.Container, app: FlaskApp) -> ActionReport:
        """Run the script now, on the leader (step 5); raise MigrationActionError if not."""
        name = self._charm.app.name
        if not self._is_leader():
            raise MigrationActionError(
                f"migrations are coordinated by the leader: juju run {name}/leader run-migrations"
            )
        relation = self._relation
        if relation is None:
            raise MigrationActionError(f"waiting for the {PEER} relation; try again shortly")
        script = self._find(container, app)
        if script is None:
            return ActionReport({"result": f"no migrate script in {APP_DIR}: nothing to run"})
        code = self._code_id(container, script, app)
        self._remember_code(container, code)
        self.coordinate(container)
        committed = self._committed_board(relation)
        board = self._arbitrated(relation)
        me = self._charm.unit.name
        refusal = action_refusal(board, me=me, code=code, leads=leading(committed, board, me))
        if refusal:
            raise MigrationActionError(f"{refusal}: run the action again once it is over")
        board = for_action(board)
        run = self._run(container, app, script, code, board.serial + 1, board)
        results: dict[str, Any] = {
            "script": script.name,
            "exit-code": -1 if run.exit_code is None else run.exit_code,
            "output": run.stdout[-8000:],
            "error-output": run.stderr[-8000:],
        }
        if run.exit_code is None:
            results["timed-out"] = True
        failure = None if run.exit_code == 0 else self._failure(script, code, Decision("failed"))
        return ActionReport(results, failure)

    # -- helpers ------------------------------------------------------------------------------

    def _find(self, container: ops.Container, app: FlaskApp | None) -> Script | None:
        interpreter = app.rock_command.interpreter if app else "python3"
        try:
            entries = container.list_files(APP_DIR)
        except (ops.pebble.APIError, ops.pebble.PathError):
            return None
        files = {f.name: f.permissions for f in entries if f.type == ops.pebble.FileType.FILE}
        return discover(files, interpreter)

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

    def _committed_board(self, relation: ops.Relation) -> Board:
        """The board as this hook found it, before its own writes (read once per hook)."""
        if self._committed is None:
            self._committed = read_board(relation, self._charm.app, self._charm.unit)
        return self._committed

    def _arbitrated(self, relation: ops.Relation) -> Board:
        """The board with this hook's writes; the leader arbitrates it again first."""
        board = read_board(relation, self._charm.app, self._charm.unit)
        if not self._is_leader():
            return board
        members = [self._charm.unit.name, *(unit.name for unit in relation.units)]
        after = arbitrate(board, leader=self._charm.unit.name, members=members)
        if after.lease != board.lease:
            logger.info("migration lease: %s -> %s", board.lease, after.lease)
        write_app_board(relation, self._charm.app, after)
        return after

    @staticmethod
    def _read(container: ops.Container, path: str) -> str | None:
        try:
            return container.pull(path).read().strip()
        except (ops.pebble.PathError, ops.pebble.APIError):
            return None

    @staticmethod
    def _write(container: ops.Container, path: str, content: str) -> None:
        container.push(path, content, make_dirs=True, permissions=0o644)

    def _pod(self, container: ops.Container) -> str:
        """This workload container's identity: a new one for each new container."""
        pod = self._read(container, POD_FILE)
        if not pod:
            pod = uuid.uuid4().hex
            self._write(container, POD_FILE, pod)
        return pod

    def _remember_code(self, container: ops.Container, code: str) -> None:
        if self._read(container, CODE_FILE) != code:
            self._write(container, CODE_FILE, code)

    def _marker(self, container: ops.Container) -> tuple[str, int] | None:
        """(code, serial) of the run that succeeded in this container, if any."""
        raw = self._read(container, MARKER_FILE)
        value = _json(raw)
        if value is None:
            return None
        try:
            return _str(value["code"]), _natural(value["serial"])
        except (TypeError, KeyError):
            logger.warning("ignoring malformed migration marker: %.80r", raw)
            return None

    def _set_want(self, code: str | None) -> None:
        relation = self._relation
        if relation is not None:
            _set(relation.data[self._charm.unit], WANT_KEY, code or "")

    def _run(
        self,
        container: ops.Container,
        app: FlaskApp,
        script: Script,
        code: str,
        serial: int,
        board: Board,
    ) -> pebble_io.ScriptRun:
        """Run the script and record the outcome: marker, then unit databag (leader: app)."""
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
                environment=app.environment(),
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
        if ok:  # on record in this pod before anything else can fail
            self._write(container, MARKER_FILE, json.dumps({"code": code, "serial": serial}))
        relation = self._relation
        assert relation is not None  # callers checked
        me = self._charm.unit
        peer = read_peer(relation.data[me])
        result = next_result(peer.result, Result(code, ok, serial, board.retry))
        write_peer(relation, me, dataclasses.replace(peer, result=result, want=None))
        if self._is_leader():
            pod = self._pod(container)
            after = record(board, me=me.name, code=code, pod=pod, serial=serial, ok=ok)
            write_app_board(relation, self._charm.app, after)
        if ok:
            self._stored.failed_code = self._stored.failure = None
        else:
            self._stored.failed_code = code
            self._stored.failure = failure_message(self._charm.app.name, script.name, run, timeout)
        return run

    def _failure(self, script: Script, code: str, decision: Decision) -> str:
        fix = f"fix it and run `juju run {self._charm.app.name}/leader run-migrations`"
        if decision.holder and decision.holder != self._charm.unit.name:
            where = f"on {decision.holder} (see juju debug-log)"
            return f"migration {script.name} failed {where}; {fix}"
        if self._stored.failed_code == code and self._stored.failure:
            return str(self._stored.failure)
        return f"migration {script.name} failed (see juju debug-log); {fix}"
