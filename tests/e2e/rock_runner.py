"""Drive `python -m flask_rock run` as a user would, and read what the running rock shows."""

import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from flask_rock import local_run, toolchain

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "rock" / "sample"
APP_URL = f"http://127.0.0.1:{local_run.APP_PORT}"
METRICS_URL = f"http://127.0.0.1:{local_run.METRICS_PORT}/metrics"
STARTUP_TIMEOUT = 300.0  # the first run builds Pebble and the app's environment


@dataclass
class RunningRock:
    """A `flask_rock run` process and where its output goes."""

    process: subprocess.Popen
    log_path: Path
    pebble_dir: Path
    diagnostics: list[str] = field(default_factory=list)

    def pebble(self, *args: str) -> str:
        """Ask the rock's Pebble something, as `pebble <args>` would."""
        binary = toolchain.ensure_binary(toolchain.PEBBLE)
        result = subprocess.run(
            [str(binary), *args],
            env={**os.environ, "PEBBLE": str(self.pebble_dir)},
            capture_output=True,
            text=True,
            timeout=30,
        )
        return result.stdout + result.stderr

    def describe(self) -> str:
        """What a developer needs when a test fails: the run's output, services and logs."""
        output = self.log_path.read_text() if self.log_path.exists() else ""
        return (
            f"--- flask_rock run output (tail) ---\n{output[-4000:]}\n"
            f"--- pebble services ---\n{self.pebble('services')}\n"
            f"--- pebble logs ---\n{self.pebble('logs', '-n', '40')}"
        )

    def stop(self) -> None:
        """Stop the run as Ctrl-C would, and make sure nothing is left behind."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start(tmp_dir: Path, *service_args: str, project: Path = SAMPLE) -> RunningRock:
    """Start the rock and wait until its banner says it serves."""
    log_path = tmp_dir / "run.log"
    argv = [sys.executable, "-m", "flask_rock", "run", str(project)]
    if service_args:
        argv += ["--args", *service_args]
    env = {**os.environ, "PYTHONPATH": str(REPO / "rock")}
    with log_path.open("w") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
    pebble_dir = toolchain.cache_dir() / "runs" / project.name / "pebble"
    running = RunningRock(process, log_path, pebble_dir)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while "is serving" not in log_path.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            report = running.describe()
            running.stop()
            raise AssertionError(f"flask_rock run did not come up\n{report}")
        time.sleep(0.2)
    return running


def get(path: str) -> tuple[int, str]:
    """GET a path of the app; return the status and body."""
    try:
        with urllib.request.urlopen(APP_URL + path, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def get_or_none(path: str) -> int | None:
    """The status of GET `path`, or None while nothing answers."""
    try:
        return get(path)[0]
    except (urllib.error.URLError, OSError):
        return None


def metric(name: str, labels: str = "") -> float:
    """One sample from the exporter's /metrics; 0 when the series does not exist yet."""
    with urllib.request.urlopen(METRICS_URL, timeout=10) as response:
        text = response.read().decode()
    selector = re.escape(name + (f"{{{labels}}}" if labels else ""))
    match = re.search(rf"^{selector} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def wait_for_metric(name: str, labels: str, expected: float, timeout: float = 10.0) -> float:
    """StatsD is UDP and asynchronous: poll until the series reaches `expected`, or time out."""
    deadline = time.monotonic() + timeout
    value = metric(name, labels)
    while value < expected and time.monotonic() < deadline:
        time.sleep(0.1)
        value = metric(name, labels)
    return value


def settled_metric(
    name: str, labels: str = "", quiet: float = 0.5, timeout: float = 10.0
) -> float:
    """A series' value once no StatsD packet from earlier requests is still moving it."""
    deadline = time.monotonic() + timeout
    value = metric(name, labels)
    while time.monotonic() < deadline:
        time.sleep(quiet)
        latest = metric(name, labels)
        if latest == value:
            return value
        value = latest
    raise AssertionError(f"{name}{{{labels}}} kept changing for {timeout}s")


def gunicorn_processes() -> dict[int, tuple[int, str]]:
    """Every gunicorn process of a rock on this machine: pid -> (parent pid, command line)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        line = " ".join(part.decode(errors="replace") for part in argv if part)
        if "-m gunicorn" in line and "/gunicorn.conf.py" in line:
            found[int(entry.name)] = (parent, line)
    return found


def gunicorn_master_cmdlines() -> list[str]:
    """Command lines of the gunicorn masters (processes whose parent is not gunicorn)."""
    processes = gunicorn_processes()
    return sorted(line for parent, line in processes.values() if parent not in processes)


def gunicorn_master_pids() -> list[int]:
    """The pids of the gunicorn masters running (processes whose parent is not gunicorn)."""
    processes = gunicorn_processes()
    return sorted(pid for pid, (parent, _) in processes.items() if parent not in processes)


def gunicorn_master_pid() -> int:
    """The pid of the one gunicorn master running."""
    masters = gunicorn_master_pids()
    assert len(masters) == 1, f"expected one gunicorn master: {gunicorn_processes()}"
    return masters[0]


def wait_for_worker_count(master: int, count: int, timeout: float = 30.0) -> bool:
    """Poll until `master` has exactly `count` worker processes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers = [pid for pid, (parent, _) in gunicorn_processes().items() if parent == master]
        if len(workers) == count:
            return True
        time.sleep(0.2)
    return False


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.2) -> bool:
    """Poll `predicate` until it is true or `timeout` seconds pass; return whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def wait_for_http_ok(path: str, timeout: float = 30.0) -> bool:
    """Poll the app until `path` answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if get(path)[0] == 200:
                return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    return False


def worker_class_from_log(running: RunningRock) -> str:
    """The worker class gunicorn itself reports at start-up ("Using worker: gevent")."""
    logs = running.pebble("logs", "flask", "-n", "all")
    found = re.findall(r"\[INFO\] Using worker: (\S+)", logs)
    assert found, f"gunicorn never logged its worker class:\n{logs}"
    return found[-1]
