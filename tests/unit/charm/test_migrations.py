"""Migrations: discovery, execution, gating, failure and the action, one unit at a time."""

from __future__ import annotations

import dataclasses
import json
import pathlib
import subprocess
import sys
import time
from typing import Any

import ops
import pytest
from ops import testing

import migration_protocol as protocol
import migrations
import pebble_io
from charm import FlaskCharm
from tests.unit.charm.charm_state import app_env, container, state

KEY = "the-generated-key"
MIGRATE_PY = ("/bin/python3", "/flask/app/migrate.py")


def supervised(argv: tuple[str, ...] = MIGRATE_PY, timeout: int = 300) -> tuple[str, ...]:
    """The command Pebble runs for `argv`: the script under the rock's Python supervisor."""
    return tuple(pebble_io.supervised("/bin/python3", list(argv), timeout))


FIX = "`juju run flask-k8s/leader run-migrations`"
# Unit 0 has led in an earlier hook: it may run its own migration without a lease.
LED = {"migration-leader": json.dumps({"unit": "flask-k8s/0", "epoch": 1, "fences": []})}


@pytest.fixture
def app_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    """Backs /flask/app: the rock's app with a migrate.py."""
    path = tmp_path / "app"
    path.mkdir()
    (path / "app.py").write_text("app = None\n")
    (path / "migrate.py").write_text("print('migrated')\n")
    return path


def app_state(
    charm_dir: pathlib.Path,
    app_dir: pathlib.Path,
    *,
    execs: tuple[testing.Exec, ...] = (testing.Exec(supervised(), stdout="migrated\n"),),
    peer_app: dict[str, str] | None = None,
    **kwargs: Any,
) -> testing.State:
    """A leader with the key generated, and a fresh container holding the app in app_dir."""
    secret = testing.Secret(tracked_content={"value": KEY}, owner="app")
    peer = testing.PeerRelation(
        "secret-storage",
        local_app_data={"secret-key-id": secret.id, **LED, **(peer_app or {})},
    )
    box = container(charm_dir, app_dir=app_dir, execs=execs)
    return state(charm_dir, relations={peer}, secrets={secret}, containers={box}, **kwargs)


def with_peers(st: testing.State, peers: dict[int, dict[str, str]]) -> testing.State:
    """The same state with other units (and their databags) on the peer relation."""
    peer = peer_of(st)
    return dataclasses.replace(st, relations={dataclasses.replace(peer, peers_data=peers)})


def ready(ctx: testing.Context[FlaskCharm], st: testing.State) -> testing.State:
    """Run pebble-ready for the state's own container."""
    return ctx.run(ctx.on.pebble_ready(st.get_container("flask-app")), st)


def flask_running(out: testing.State) -> bool:
    statuses = out.get_container("flask-app").service_statuses
    return statuses.get("flask") == ops.pebble.ServiceStatus.ACTIVE


def peer_of(out: testing.State) -> testing.PeerRelation:
    relation = out.get_relations("secret-storage")[0]
    assert isinstance(relation, testing.PeerRelation)
    return relation


# -- discovery (pure) ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"migrate": 0o755, "migrate.sh": 0o644, "migrate.py": 0o644}, ("/flask/app/migrate",)),
        ({"migrate": 0o644, "migrate.sh": 0o644}, ("/bin/bash", "/flask/app/migrate.sh")),
        ({"migrate.sh": 0o644, "migrate.py": 0o644}, ("/bin/bash", "/flask/app/migrate.sh")),
        ({"migrate.py": 0o644, "app.py": 0o644}, ("/usr/bin/python3.12", "/flask/app/migrate.py")),
        ({"app.py": 0o644}, None),
    ],
)
def test_discover_first_found_wins(files, expected):
    found = migrations.discover(files, "/usr/bin/python3.12")

    assert (found.argv if found else None) == expected


def test_discover_in_the_container_prefers_executable_migrate(ctx, charm_dir, app_dir):
    migrate = app_dir / "migrate"
    migrate.write_text("#!/bin/sh\necho ok\n")
    migrate.chmod(0o755)
    (app_dir / "migrate.sh").write_text("echo sh\n")
    execs = (testing.Exec(supervised(("/flask/app/migrate",))),)

    out = ready(ctx, app_state(charm_dir, app_dir, execs=execs))

    assert [e.command[-1] for e in ctx.exec_history["flask-app"]] == ["/flask/app/migrate"]
    assert out.unit_status == testing.ActiveStatus("")


def test_no_script_means_nothing_to_run(ctx, charm_dir, app_dir, calls):
    (app_dir / "migrate.py").unlink()

    out = ready(ctx, app_state(charm_dir, app_dir))

    assert calls.log == ["push", "start"]
    assert out.unit_status == testing.ActiveStatus("")


# -- how it runs --------------------------------------------------------------------------------


def test_migration_runs_as_rock_user_in_app_dir_with_app_env_and_timeout(ctx, charm_dir, app_dir):
    execs = (testing.Exec(supervised(timeout=42)),)
    config = {"migration-timeout": 42, "flask-env": "prod"}
    st = app_state(charm_dir, app_dir, execs=execs, config=config)

    out = ready(ctx, st)

    (run,) = ctx.exec_history["flask-app"]
    assert run.command == list(supervised(timeout=42))
    assert run.command[-2:] == list(MIGRATE_PY)
    assert (run.user, run.working_dir) == ("_daemon_", "/flask/app")
    assert run.timeout == 42 + pebble_io.BACKSTOP  # the supervisor kills at 42 s
    assert run.environment == app_env(out)
    assert run.environment["FLASK_SECRET_KEY"] == KEY
    assert run.environment["FLASK_ENV"] == "prod"


def test_fresh_container_starts_app_only_after_migration(ctx, charm_dir, app_dir, calls):
    out = ready(ctx, app_state(charm_dir, app_dir))

    assert calls.log == ["migrate", "push", "start"]
    assert flask_running(out)
    assert out.unit_status == testing.ActiveStatus("")
    code = json.loads(peer_of(out).local_unit_data["migration-result"])["code"]
    assert json.loads(peer_of(out).local_app_data["migrated"]) == [code]


@pytest.mark.parametrize("event", ["config_changed", "update_status", "leader_elected", "start"])
def test_no_run_on_other_events_once_migrated(ctx, charm_dir, app_dir, calls, event):
    settled = ready(ctx, app_state(charm_dir, app_dir))
    calls.clear()

    out = ctx.run(getattr(ctx.on, event)(), settled)

    assert calls.log == []
    assert out.unit_status == testing.ActiveStatus("")


def test_restarted_container_with_same_code_does_not_rerun(ctx, charm_dir, app_dir, calls):
    settled = ready(ctx, app_state(charm_dir, app_dir))
    (charm_dir / "gunicorn.conf.py").unlink()
    fresh = container(charm_dir, app_dir=app_dir)
    calls.clear()

    out = ready(ctx, dataclasses.replace(settled, containers={fresh}))

    assert calls.log == ["push", "start"]
    assert out.unit_status == testing.ActiveStatus("")


def test_upgrade_charm_with_new_code_migrates_it(ctx, charm_dir, app_dir, calls):
    settled = ready(ctx, app_state(charm_dir, app_dir))
    (app_dir / "migrate.py").write_text("print('migrated v2')\n")
    calls.clear()

    out = ctx.run(ctx.on.upgrade_charm(), settled)

    assert calls.log == ["migrate"]
    assert len(json.loads(peer_of(out).local_app_data["migrated"])) == 2
    assert out.unit_status == testing.ActiveStatus("")


def test_upgrade_charm_with_nothing_new_runs_nothing(ctx, charm_dir, app_dir, calls):
    settled = ready(ctx, app_state(charm_dir, app_dir))
    calls.clear()

    ctx.run(ctx.on.upgrade_charm(), settled)

    assert calls.log == []


def test_new_charm_revision_is_new_code(ctx, charm_dir, app_dir, calls, monkeypatch):
    settled = ready(ctx, app_state(charm_dir, app_dir))
    monkeypatch.setattr(migrations, "charm_fingerprint", lambda: "next-revision")
    calls.clear()

    ctx.run(ctx.on.upgrade_charm(), settled)

    assert calls.log == ["migrate"]


# -- failure ------------------------------------------------------------------------------------


def failing(code: int = 3) -> tuple[testing.Exec, ...]:
    err = "Traceback (most recent call last):\n  ...\nRuntimeError: no database\n"
    return (testing.Exec(supervised(), return_code=code, stdout="starting\n", stderr=err),)


def test_failed_migration_blocks_and_does_not_start(ctx, charm_dir, app_dir, calls):
    st = app_state(charm_dir, app_dir, execs=failing())

    out = ready(ctx, st)

    assert out.unit_status == testing.BlockedStatus(
        f"migration migrate.py failed (exit 3): RuntimeError: no database; fix it and run {FIX}"
    )
    assert calls.log == ["migrate"]
    assert not flask_running(out)
    assert "flask-ready" not in out.get_container("flask-app").plan.checks


def test_failed_migration_logs_its_output(ctx, charm_dir, app_dir, caplog):
    ready(ctx, app_state(charm_dir, app_dir, execs=failing()))

    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "starting" in logged and "Traceback (most recent call last)" in logged


@pytest.mark.parametrize("event", ["update_status", "config_changed", "start", "pebble_ready"])
def test_failed_migration_is_not_retried_by_events(ctx, charm_dir, app_dir, calls, event):
    failed = ready(ctx, app_state(charm_dir, app_dir, execs=failing()))
    calls.clear()

    if event == "pebble_ready":
        out = ready(ctx, failed)
    else:
        out = ctx.run(getattr(ctx.on, event)(), failed)

    assert calls.log == []
    assert out.unit_status == failed.unit_status
    assert "RuntimeError: no database" in out.unit_status.message


def test_timeout_blocks_saying_it_was_killed(ctx, charm_dir, app_dir, monkeypatch):
    def hung(container: ops.Container, argv: list[str], **kwargs: Any) -> pebble_io.ScriptRun:
        return pebble_io.ScriptRun(None, "locking table\n", "")

    monkeypatch.setattr(pebble_io, "run_script", hung)
    st = app_state(charm_dir, app_dir, config={"migration-timeout": 5})

    out = ready(ctx, st)

    assert out.unit_status == testing.BlockedStatus(
        f"migration migrate.py failed (killed after 5s): locking table; fix it and run {FIX}"
    )
    assert not flask_running(out)


def _run_script_failing_with(error: Exception, stderr: str) -> pebble_io.ScriptRun:
    """Run `run_script` on a container whose process writes `stderr`, then raises `error`."""

    class Process:
        def wait(self) -> None:
            raise error

    class Box:
        def exec(self, argv: list[str], **kwargs: Any) -> Process:
            kwargs["stderr"].write(stderr)
            return Process()

    return pebble_io.run_script(
        Box(),  # type: ignore[arg-type]
        ["x"],
        python="/bin/python3",
        user=None,
        group=None,
        working_dir="/",
        environment={},
        timeout=5,
    )


def test_pebble_timeout_change_error_is_a_timeout():
    error = ops.pebble.ChangeError("exec: timed out after 5s", None)  # type: ignore[arg-type]

    run = _run_script_failing_with(error, "half done\n")

    assert run == pebble_io.ScriptRun(None, "", "half done\n")


def test_supervisor_killed_marker_is_a_timeout():
    error = ops.pebble.ExecError(["x"], pebble_io.KILLED_EXIT, None, None)

    run = _run_script_failing_with(error, f"waiting for a lock\n{pebble_io.KILLED_MARKER}\n")

    assert run == pebble_io.ScriptRun(None, "", "waiting for a lock\n")


def test_supervisor_kills_the_script_and_its_children(tmp_path):
    pid_file = tmp_path / "child.pid"
    script = f"sleep 600 & echo $! > {pid_file}; wait"
    argv = pebble_io.supervised(sys.executable, ["bash", "-c", script], 0.5)

    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)

    assert done.returncode == pebble_io.KILLED_EXIT
    assert done.stderr.strip().endswith(pebble_io.KILLED_MARKER)
    child = int(pid_file.read_text())
    assert not pathlib.Path(f"/proc/{child}").exists() or "Z" in _proc_state(child)


def test_supervisor_passes_exit_code_through():
    argv = pebble_io.supervised(sys.executable, ["bash", "-c", "exit 3"], 5)

    assert subprocess.run(argv, capture_output=True, timeout=30).returncode == 3


def _proc_state(pid: int) -> str:
    try:
        return pathlib.Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return "gone"


# -- the action ---------------------------------------------------------------------------------


def test_action_reports_exit_code_and_output(ctx, charm_dir, app_dir):
    settled = ready(ctx, app_state(charm_dir, app_dir))

    out = ctx.run(ctx.on.action("run-migrations"), settled)

    assert ctx.action_results == {
        "script": "migrate.py",
        "exit-code": 0,
        "output": "migrated\n",
        "error-output": "",
    }
    assert out.unit_status == testing.ActiveStatus("")


def test_action_after_fix_runs_again_and_starts_the_app(ctx, charm_dir, app_dir, calls):
    failed = ready(ctx, app_state(charm_dir, app_dir, execs=failing()))
    box = dataclasses.replace(
        failed.get_container("flask-app"), execs={testing.Exec(supervised(), stdout="ok\n")}
    )
    calls.clear()

    out = ctx.run(ctx.on.action("run-migrations"), dataclasses.replace(failed, containers={box}))

    assert calls.log == ["migrate", "push", "start"]
    assert ctx.action_results is not None and ctx.action_results["exit-code"] == 0
    assert out.unit_status == testing.ActiveStatus("")
    assert flask_running(out)


def test_action_failure_fails_with_message_and_output(ctx, charm_dir, app_dir):
    st = app_state(charm_dir, app_dir, execs=failing(code=2))

    with pytest.raises(testing.ActionFailed) as failure:
        ctx.run(ctx.on.action("run-migrations"), st)

    assert failure.value.message.startswith("migration migrate.py failed (exit 2)")
    assert ctx.action_results is not None
    assert ctx.action_results["exit-code"] == 2
    assert "RuntimeError: no database" in ctx.action_results["error-output"]


def test_action_on_non_leader_points_at_the_leader(ctx, charm_dir, app_dir):
    with pytest.raises(testing.ActionFailed) as failure:
        ctx.run(ctx.on.action("run-migrations"), app_state(charm_dir, app_dir, leader=False))

    assert "juju run flask-k8s/leader run-migrations" in failure.value.message
    assert ctx.exec_history == {}


def lease(unit: str, code: str = "c", serial: int = 1, failed: bool = False) -> str:
    """A lease as the leader writes it, for `unit` on its pod `pod-<unit number>`."""
    pod = f"pod-{unit.rsplit('/', 1)[-1]}"
    value = {"unit": unit, "code": code, "serial": serial, "pod": pod, "failed": failed}
    return json.dumps(value)


def test_action_refuses_while_another_unit_holds_the_lease(ctx, charm_dir, app_dir):
    st = with_peers(
        app_state(charm_dir, app_dir, peer_app={"migration-lease": lease("flask-k8s/2")}),
        {2: {"migration-want": "c", "migration-pod": "pod-2"}},
    )

    with pytest.raises(testing.ActionFailed) as failure:
        ctx.run(ctx.on.action("run-migrations"), st)

    assert "a migration is running on flask-k8s/2" in failure.value.message
    assert ctx.exec_history == {}


def test_action_without_script_says_so(ctx, charm_dir, app_dir):
    (app_dir / "migrate.py").unlink()

    ctx.run(ctx.on.action("run-migrations"), app_state(charm_dir, app_dir))

    assert ctx.action_results == {"result": "no migrate script in /flask/app: nothing to run"}


# -- coordination seen from one unit ------------------------------------------------------------


def test_non_leader_asks_and_waits_for_the_leader(ctx, charm_dir, app_dir):
    out = ready(ctx, app_state(charm_dir, app_dir, leader=False))

    assert out.unit_status == testing.WaitingStatus(
        "waiting for migration on the leader to schedule it"
    )
    data = peer_of(out).local_unit_data
    assert data["migration-want"] and data["migration-pod"]
    assert json.loads(data["migration-history"]) == [data["migration-want"]]
    assert ctx.exec_history == {}
    assert not flask_running(out)


def test_waiting_unit_names_the_lease_holder(ctx, charm_dir, app_dir):
    st = app_state(
        charm_dir, app_dir, leader=False, peer_app={"migration-lease": lease("flask-k8s/2")}
    )

    out = ready(ctx, st)

    assert out.unit_status == testing.WaitingStatus("waiting for migration on flask-k8s/2")


def test_leader_waits_for_a_live_lease_of_another_unit(ctx, charm_dir, app_dir):
    st = with_peers(
        app_state(charm_dir, app_dir, peer_app={"migration-lease": lease("flask-k8s/1")}),
        {1: {"migration-want": "c", "migration-pod": "pod-1"}},
    )

    out = ready(ctx, st)

    assert out.unit_status == testing.WaitingStatus("waiting for migration on flask-k8s/1")
    assert ctx.exec_history == {}


def test_leader_not_yet_committed_as_leader_waits_and_records_itself(ctx, charm_dir, app_dir):
    st = app_state(charm_dir, app_dir, peer_app={"migration-leader": ""})

    out = ready(ctx, st)

    assert ctx.exec_history == {}  # a leadership no one else can see yet runs nothing
    assert json.loads(peer_of(out).local_app_data["migration-leader"])["unit"] == "flask-k8s/0"
    again = ready(ctx, out)
    assert flask_running(again) and again.unit_status == testing.ActiveStatus("")


@pytest.mark.parametrize(
    "raw",
    [
        "[" * 100_000 + "]" * 100_000,  # nested deep enough to raise RecursionError
        '{"unit": 3, "code": "c", "serial": "x", "pod": "p"}',
        '{"unit": "flask-k8s/2", "code": "c", "serial": true, "pod": "p"}',
        '"a string"',
        "not json",
        "[1, 2]",
    ],
)
def test_malformed_peer_data_counts_as_absent(ctx, charm_dir, app_dir, raw, caplog):
    app_keys = ("migration-lease", "migrated", "migration-serial")
    peer_app: dict[str, str] = {key: raw for key in app_keys}  # noqa: C420 (typed)
    keys = ("migration-result", "migration-history", "migration-ack", "migration-want")
    unit: dict[str, str] = {key: raw for key in keys}  # noqa: C420
    st = with_peers(app_state(charm_dir, app_dir, peer_app=peer_app), {1: unit})

    out = ready(ctx, st)

    assert [e.command for e in ctx.exec_history["flask-app"]] == [list(supervised())]
    assert out.unit_status == testing.ActiveStatus("")
    assert "ignoring malformed" in caplog.text


# -- the leader's arbitration (pure) ------------------------------------------------------------

UNITS = ["app/0", "app/1", "app/2"]


def peer(want: str | None = None, pod: str = "p", **kwargs: Any) -> protocol.Peer:
    return protocol.Peer(want=want, pod=pod, **kwargs)


def test_arbitrate_grants_highest_ordinal_waiting_unit_on_its_pod():
    board = protocol.Board(leader="app/0", peers={"app/1": peer("c2"), "app/2": peer("c2", "q")})

    after = protocol.arbitrate(board, leader="app/0", members=UNITS)

    assert after.lease == protocol.Lease("app/2", "c2", 1, "q")


def test_arbitrate_keeps_a_live_lease_however_long_it_lasts():
    held = protocol.Lease("app/2", "c2", 1, "p")
    board = protocol.Board(
        lease=held, serial=1, leader="app/0", peers={"app/1": peer("c2"), "app/2": peer("c2")}
    )

    after = protocol.arbitrate(board, leader="app/0", members=UNITS)

    assert after.lease == held


def test_arbitrate_success_records_and_others_need_no_lease():
    board = protocol.Board(
        lease=protocol.Lease("app/2", "c2", 1, "p"),
        serial=1,
        leader="app/0",
        peers={"app/1": peer("c2"), "app/2": peer(result=protocol.Result("c2", True, 1, 0))},
    )

    after = protocol.arbitrate(board, leader="app/0", members=UNITS)

    assert after.lease is None
    assert after.migrated == ("c2",)


def test_arbitrate_failure_keeps_a_failed_lease_and_grants_no_one_that_code():
    held = protocol.Lease("app/2", "c2", 1, "p")
    board = protocol.Board(
        lease=held,
        serial=1,
        leader="app/0",
        peers={"app/1": peer("c2"), "app/2": peer(result=protocol.Result("c2", False, 1, 0))},
    )

    after = protocol.arbitrate(board, leader="app/0", members=UNITS)

    assert after.lease == dataclasses.replace(held, failed=True)


@pytest.mark.parametrize(
    ("holder", "members", "next_lease"),
    [
        # its pod was replaced: its run is gone; it gets a lease for its new pod
        (peer("c2", pod="new-pod"), UNITS, protocol.Lease("app/2", "c2", 2, "new-pod")),
        # it wants other code now
        (peer("c3"), UNITS, protocol.Lease("app/2", "c3", 2, "p")),
        # it left
        (peer("c2"), ["app/0", "app/1"], protocol.Lease("app/1", "c2", 2, "q")),
    ],
)
def test_arbitrate_ends_a_lease_whose_holder_cannot_be_running(holder, members, next_lease):
    board = protocol.Board(
        lease=protocol.Lease("app/2", "c2", 1, "p"),
        serial=1,
        leader="app/0",
        peers={"app/1": peer("c2", "q"), "app/2": holder},
    )

    after = protocol.arbitrate(board, leader="app/0", members=members)

    assert after.lease == next_lease


def test_holder_on_a_new_pod_does_not_run_its_old_pods_lease():
    board = protocol.Board(lease=protocol.Lease("app/2", "c2", 1, "old"), serial=1)

    decision = protocol.decide(board, me="app/2", code="c2", pod="new", leads=False)

    assert decision.kind == "wait"


def test_new_leader_fences_the_old_one_until_it_acks():
    board = protocol.Board(
        leader="app/0", epoch=3, peers={"app/0": peer(pod="p0"), "app/1": peer("c2")}
    )

    fenced = protocol.arbitrate(board, leader="app/2", members=UNITS)

    assert fenced.fences == (protocol.Fence("app/0", "p0", 4),)
    assert fenced.lease is None  # no grant while the old leader may still run
    acked = dataclasses.replace(fenced, peers={**board.peers, "app/0": peer(pod="p0", ack=4)})
    after = protocol.arbitrate(acked, leader="app/2", members=UNITS)
    assert after.fences == () and after.lease == protocol.Lease("app/1", "c2", 1, "p")


def test_leader_success_keeps_another_units_failed_lease():
    failed = protocol.Lease("app/2", "c2", 1, "p", failed=True)
    board = protocol.Board(lease=failed, serial=1)

    after = protocol.record(board, me="app/0", code="c3", pod="p0", serial=2, ok=True)

    assert after.lease == failed and after.migrated == ("c3",)


def test_leader_failure_leaves_a_failed_lease_in_its_name():
    after = protocol.record(protocol.Board(), me="app/0", code="c3", pod="p0", serial=1, ok=False)

    assert after.lease == protocol.Lease("app/0", "c3", 1, "p0", failed=True)


def test_a_later_failure_never_overwrites_a_success_of_the_same_code():
    ok = protocol.Result("c2", True, 1, 0)

    assert protocol.next_result(ok, protocol.Result("c2", False, 2, 1)) == ok
    assert protocol.next_result(ok, protocol.Result("c3", False, 2, 1)).code == "c3"


def test_code_behind_a_migrated_newer_code_is_superseded():
    board = protocol.Board(
        migrated=("c1", "c3"),
        peers={"app/0": peer(history=("c1", "c2")), "app/2": peer(history=("c1", "c2", "c3"))},
    )

    assert board.superseded("c2") and not board.superseded("c3")
    assert protocol.decide(board, me="app/0", code="c2", pod="p", leads=True).kind == (
        "superseded"
    )


def test_supervisor_killed_takes_the_script_and_its_children_with_it(tmp_path):
    # As when the charm container restarts mid-run: only the supervisor is killed.
    pid_file = tmp_path / "child.pid"
    script = f"sleep 600 & echo $! > {pid_file}; wait"
    argv = pebble_io.supervised(sys.executable, ["bash", "-c", script], 600)
    supervisor = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    child = _wait_for_pid(pid_file)

    supervisor.kill()
    supervisor.wait()

    assert _wait_dead(child), "the script's child outlived the supervisor"


def _wait_for_pid(path: pathlib.Path) -> int:
    for _ in range(300):
        if path.exists() and path.read_text().strip():
            return int(path.read_text())
        time.sleep(0.05)
    raise AssertionError(f"{path} never written")


def _wait_dead(pid: int) -> bool:
    for _ in range(200):  # the guardian checks every GUARD_PERIOD s
        if _proc_state(pid) in ("gone", "Z"):
            return True
        time.sleep(0.05)
    return False


# -- the script's output is the workload's: bounded before memory, log or action result ------


def test_output_tail_keeps_only_the_last_characters():
    tail = pebble_io.OutputTail(limit=10)

    for _ in range(1000):
        tail.write("0123456789abcdef")

    assert tail.getvalue().endswith("abcdef")
    assert len(tail.getvalue()) <= 20  # trimmed as it grows, not only at the end
    assert tail.text() == "[15990 earlier characters left out]\n6789abcdef"


def test_output_tail_short_output_is_kept_whole():
    tail = pebble_io.OutputTail(limit=10)
    tail.write("ok\n")

    assert tail.text() == "ok\n"


def test_huge_script_output_reaches_log_and_action_bounded(ctx, charm_dir, app_dir, caplog):
    flood = "x" * (20 * 1024 * 1024)  # 20 MB, then the line that matters
    execs = (testing.Exec(supervised(), return_code=1, stdout=flood, stderr=flood + "\nboom\n"),)
    st = app_state(charm_dir, app_dir, execs=execs)

    with pytest.raises(testing.ActionFailed):
        ctx.run(ctx.on.action("run-migrations"), st)

    results = ctx.action_results or {}
    assert len(results["output"]) <= 8000 and len(results["error-output"]) <= 8000
    assert results["error-output"].endswith("boom\n")
    logged = sum(len(record.getMessage()) for record in caplog.records)
    assert logged < 100_000  # the tails, not 40 MB
    assert "earlier characters left out" in caplog.text
