"""The main job, end to end: the sample rock deployed with the charm, driven as Juju drives it.

One deployment serves the whole module (deploying takes seconds, not minutes), so the tests run
in order and each leaves the app serving.
"""

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from juju_local import charm_stage, controller, pebble_status, processes
from juju_local.deployment import Deployment
from tests.e2e import deployment_state, rock_runner

REPO = Path(__file__).resolve().parents[2]

READY = 30.0


def _checks(deployment: Deployment) -> dict[str, tuple[str, int]]:
    """Each Pebble check's status and success count, from `pebble checks`."""
    rows = deployment.container.pebble("checks").stdout.splitlines()[1:]
    found = {}
    for row in rows:
        name, _level, _startup, status, successes, *_ = row.split()
        found[name] = (status, int(successes))
    return found


def _wait(predicate, timeout: float = READY) -> bool:
    return rock_runner.wait_until(predicate, timeout)


class _Traffic:
    """Requests in a loop on another thread, counting anything but a 200."""

    def __init__(self) -> None:
        self.sent = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set() and self.sent < 10_000:
            try:
                status, _ = rock_runner.get("/")
                if status != 200:
                    self.failures.append(f"HTTP {status}")
            except OSError as error:
                self.failures.append(repr(error))
            self.sent += 1

    def __enter__(self) -> "_Traffic":
        self._thread.start()
        return self

    def __exit__(self, *_) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def test_deploy_serves_the_sample_active_with_checks_passing(deployment: Deployment):
    status, body = rock_runner.get("/")
    assert status == 200 and "flask-k8s sample" in body
    assert deployment_state.unit_status(deployment) == ("active", "")
    # Pebble runs checks every 10 s: wait for each to have passed at least once.
    assert _wait(lambda: all(ok >= 1 for _, ok in _checks(deployment).values()), timeout=40)
    assert {name: status for name, (status, _) in _checks(deployment).items()} == {
        "flask-ready": "up",
        "statsd-exporter-up": "up",
    }


def test_config_worker_type_sync_reloads_gunicorn_without_restart(deployment: Deployment):
    starts = deployment_state.service_starts(deployment)
    master = rock_runner.gunicorn_master_pid()

    deployment.config({"worker-type": "sync"})

    def using_sync() -> bool:
        found = re.findall(r"Using worker: (\S+)", deployment.container.log_path.read_text())
        return bool(found) and found[-1] == "sync"

    assert _wait(using_sync)
    assert rock_runner.wait_for_http_ok("/")
    assert rock_runner.gunicorn_master_pid() == master  # the worker class changes by SIGHUP
    assert deployment_state.service_starts(deployment) == starts
    assert deployment_state.unit_status(deployment) == ("active", "")


def test_config_webserver_timeout_reloads_without_failed_requests(deployment: Deployment):
    starts = deployment_state.service_starts(deployment)
    master = rock_runner.gunicorn_master_pid()

    with _Traffic() as traffic:
        deployment.config({"webserver-timeout": 42})
        time.sleep(1.0)  # keep traffic flowing while the new workers take over

    assert traffic.sent > 0 and traffic.failures == []
    assert rock_runner.gunicorn_master_pid() == master
    assert deployment_state.service_starts(deployment) == starts
    # Pebble's own log file, not `pebble logs`: Gunicorn's access log (one line a request) would
    # push the reload line out of the last lines Pebble keeps.
    assert "Handling signal: hup" in deployment.container.log_path.read_text()


def test_invalid_config_blocks_naming_the_option_and_keeps_serving(deployment: Deployment):
    master = rock_runner.gunicorn_master_pid()

    deployment.config({"webserver-workers": 0})

    status, message = deployment_state.unit_status(deployment)
    assert status == "blocked" and "webserver-workers" in message
    assert rock_runner.get("/")[0] == 200
    assert rock_runner.gunicorn_master_pid() == master
    deployment.config({"webserver-workers": None})
    assert deployment_state.unit_status(deployment) == ("active", "")


def test_integrate_prometheus_counts_requests_exactly(deployment: Deployment):
    deployment.integrate_prometheus()
    prometheus = deployment.prometheus
    rock_runner.get("/")  # the counter exists only once gunicorn has counted something
    assert _wait(lambda: prometheus.query("flask_requests"), timeout=30)
    # Pebble's flask-ready check asks the app for "/" every 10 s, and the app counts that too:
    # paused while we count.
    assert deployment.container.pebble("stop-checks", "flask-ready").returncode == 0
    try:
        before = rock_runner.settled_metric("flask_requests")
        assert _wait(lambda: _prometheus_value(deployment) == before, timeout=30)
        sent = 9

        for _ in range(sent):
            assert rock_runner.get("/")[0] == 200

        assert _wait(lambda: _prometheus_value(deployment) == before + sent, timeout=30), (
            f"Prometheus has {_prometheus_value(deployment)}, expected {before + sent}"
        )
    finally:
        deployment.container.pebble("start-checks", "flask-ready")
    target = prometheus.targets()[0]
    assert target["health"] == "up"
    assert target["labels"]["juju_unit"] == "flask-k8s/0"


def _prometheus_value(deployment: Deployment) -> float:
    result = deployment.prometheus.query("flask_requests")
    return float(result[0]["value"][1]) if result else -1.0


def test_rotate_secret_key_action_gives_the_app_a_new_key(deployment: Deployment):
    _, body = rock_runner.get("/secret-key-id")
    before = re.search(r'"sha256":\s*"(\w+)"', body)
    assert before, body

    result = deployment.run_action("rotate-secret-key")

    assert result.status == "completed", result.describe()
    assert rock_runner.wait_for_http_ok("/secret-key-id")
    _, body = rock_runner.get("/secret-key-id")
    after = re.search(r'"sha256":\s*"(\w+)"', body)
    assert after and after.group(1) != before.group(1)


def test_killed_gunicorn_master_is_restarted_by_pebble(deployment: Deployment):
    master = rock_runner.gunicorn_master_pid()

    os.kill(master, signal.SIGKILL)

    # The old workers may answer for a moment before they notice their master is gone; wait for
    # a new master, started by Pebble, serving.
    def restarted() -> bool:
        masters = rock_runner.gunicorn_master_pids()
        return len(masters) == 1 and masters[0] != master and rock_runner.get_or_none("/") == 200

    assert _wait(restarted, timeout=90), deployment.container.pebble("services").stdout

    # Pebble gives what is left of the old master's group its kill-delay before it starts the
    # service again: meanwhile the unit says Pebble is restarting the app, then Active.
    def active_again() -> bool:
        deployment.fire("update-status")
        return deployment_state.unit_status(deployment) == ("active", "")

    assert rock_runner.wait_until(active_again, timeout=120, interval=2.0), (
        deployment_state.unit_status(deployment)
    )


# -- the command line: one hook at a time, one-line errors, a pod that dies, remove -----------


def _cli(deployment: Deployment, *args: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "juju_local", "--state-dir", str(deployment.state_dir), *args]
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=600)


def _pod_processes(deployment: Deployment) -> list[int]:
    """Every process of the workload container, the sandbox included."""
    return processes.tree(int(deployment.container.pid_path.read_text()))


def test_the_charm_runs_as_its_charm_user(deployment: Deployment):
    """charm-user non-root: the hooks run as Juju's uid 170 and still drive Pebble."""
    uid = charm_stage.CHARM_USERS[charm_stage.load(deployment.state_dir / "charm").charm_user]
    if os.geteuid() != 0:
        pytest.skip("switching users needs root")
    assert (deployment.state_dir / "charm" / ".unit-state.db").stat().st_uid == uid
    assert deployment_state.unit_status(deployment) == (
        "active",
        "",
    )  # the charm replanned Pebble as that uid


def _controller_pid(deployment: Deployment, other_than: int | None = None) -> int:
    """The deployment's controller, once one other than `other_than` runs."""
    found: list[int] = []

    def started() -> bool:
        pid = controller.running_pid(deployment.state_dir)
        found[:] = [pid] if pid is not None and pid != other_than else []
        return bool(found)

    assert _wait(started), "no controller started"
    return found[0]


def test_config_and_status_are_run_by_the_deployments_controller(deployment: Deployment):
    """The CLI hands `config` and `status` to a warm controller; hooks run as before."""
    assert _cli(deployment, "status").returncode == 0  # starts one if none runs yet
    pid = _controller_pid(deployment)
    log = deployment.state_dir / controller.LOG_NAME
    before = log.read_text().count("config: exit 0")

    done = _cli(deployment, "config", "webserver-keepalive=7")

    assert done.returncode == 0, done.stderr
    assert "Unit flask-k8s/0* active" in done.stdout and "flask-ready" in done.stdout
    assert log.read_text().count("config: exit 0") == before + 1
    assert controller.running_pid(deployment.state_dir) == pid  # the same warm process
    assert str(deployment.model.config()["webserver-keepalive"]) == "7"
    refused = _cli(deployment, "config", "webserver-keepalive=soon")
    assert refused.returncode == 1 and "expected int" in refused.stderr
    assert refused.stderr.count("\n") == 1


def test_a_controller_that_is_stale_or_gone_hands_the_command_back(deployment: Deployment):
    assert _cli(deployment, "status").returncode == 0
    first = _controller_pid(deployment)
    # Started with another environment: it answers "stale" and exits; the CLI runs the
    # command itself, then starts a controller with its own environment.
    argv = [sys.executable, "-m", "juju_local", "--state-dir", str(deployment.state_dir)]
    env = {**os.environ, "JUJU_LOCAL_DEBUG": "1"}
    done = subprocess.run(
        [*argv, "status"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0 and "Unit flask-k8s/0" in done.stdout, done.stderr
    second = _controller_pid(deployment, other_than=first)
    assert not processes.alive(first)

    os.kill(second, signal.SIGKILL)  # gone, its socket left behind
    assert _wait(lambda: not processes.alive(second))
    done = _cli(deployment, "config", "webserver-keepalive=3")
    assert done.returncode == 0 and "Unit flask-k8s/0* active" in done.stdout, done.stderr
    _controller_pid(deployment, other_than=second)


def test_status_shows_the_tables_pebbles_cli_shows(deployment: Deployment):
    ours = pebble_status.tables(deployment.container.socket)
    services = deployment.container.pebble("services").stdout
    checks = deployment.container.pebble("checks").stdout

    assert ours.splitlines() == [line.rstrip() for line in (services + checks).splitlines()]


def test_concurrent_commands_queue_like_hooks_on_a_unit(deployment: Deployment):
    values = ["3", "4", "5", "6"]
    argv = [sys.executable, "-m", "juju_local", "--state-dir", str(deployment.state_dir)]
    running = [
        subprocess.Popen(
            [*argv, "config", f"webserver-keepalive={value}"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for value in values
    ]
    outcomes = [(process.wait(timeout=600), *process.communicate()) for process in running]

    for code, out, err in outcomes:
        assert code == 0, f"{out}\n{err}"
        assert "database is locked" not in out + err
    assert str(deployment.model.config()["webserver-keepalive"]) in values
    assert not any(line for line in deployment.model.log_lines() if "Traceback" in line)

    # Back-to-back SIGHUPs can kill Gunicorn's master in its own logging (a reentrant write to
    # stderr from its SIGCHLD handler): no hook fails, Pebble restarts it, and the unit is
    # Active again once it serves.
    def active() -> bool:
        deployment.fire("update-status")
        return deployment_state.unit_status(deployment) == ("active", "")

    assert rock_runner.wait_until(active, timeout=60, interval=2.0)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["config", "no-such-option=1"], 'unknown option "no-such-option"'),
        (["config", "webserver-workers=many"], 'option "webserver-workers" expected int'),
        (["config", "--no-such-flag"], "unrecognized arguments: --no-such-flag"),
        (["run-action", "no-such-action"], 'action "no-such-action" not defined'),
    ],
)
def test_errors_are_one_line_with_exit_code_1(deployment: Deployment, args, words):
    done = _cli(deployment, *args)

    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and words in done.stderr, done.stderr
    assert deployment_state.unit_status(deployment) == ("active", "")  # nothing was lost


def test_deploying_a_missing_rock_directory_is_one_line(tmp_path):
    state = tmp_path / "elsewhere"
    argv = [sys.executable, "-m", "juju_local", "--state-dir", str(state)]
    done = subprocess.run(
        [*argv, "deploy", str(tmp_path / "no-rock")], cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and "no rockcraft.yaml" in done.stderr


def test_killing_pebble_ends_the_whole_pod_and_status_says_so(deployment: Deployment):
    pebble = deployment.container.pebble_pid
    assert pebble is not None
    pod = _pod_processes(deployment)
    assert len(pod) >= 4  # the sandbox, Pebble, gunicorn (master and workers), statsd_exporter

    os.kill(pebble, signal.SIGKILL)

    assert _wait(lambda: not any(processes.alive(pid) for pid in pod), timeout=30)
    assert processes.wait_closed([8000, 9102], timeout=10) == []
    status = _cli(deployment, "status")
    assert status.returncode == 0
    assert "active" not in status.stdout and "agent lost" in status.stdout, status.stdout
    refused = _cli(deployment, "config", "webserver-keepalive=2")
    assert refused.returncode == 1 and "upgrade" in refused.stderr


def test_upgrade_starts_a_fresh_pod(deployment: Deployment):
    done = _cli(deployment, "upgrade")

    assert done.returncode == 0, done.stderr
    assert rock_runner.wait_for_http_ok("/")
    assert deployment_state.unit_status(deployment) == ("active", "")


def test_remove_ends_everything_it_started(deployment: Deployment):
    pod = _pod_processes(deployment)
    prometheus = int(deployment.prometheus.pid_path.read_text())
    assert _cli(deployment, "status").returncode == 0
    warm = _controller_pid(deployment)

    done = _cli(deployment, "remove")

    assert done.returncode == 0 and done.stdout.strip() == "removed", done.stderr
    assert not any(processes.alive(pid) for pid in [*pod, prometheus, warm])
    assert [port for port in (8000, 9102, 9090) if processes.listening(port)] == []
    assert not deployment.state_dir.exists()
