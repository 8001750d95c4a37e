"""A unit's workload container, as Juju runs it on Kubernetes, on this machine.

The rock's filesystem comes from `flask_rock` (the layout `flask_rock run` uses). Pebble is
started the way Juju starts it in a sidecar pod: `--hold` (nothing starts until the charm
replans), its state and socket under `/charm/container` (the volume shared with the charm
container), and `PEBBLE_COPY_ONCE` so the rock's own layer is in the plan before the charm adds
any. A "fresh container" (a new pod, or a new image) is a new layout and an empty
`/charm/container`.
"""

import os
import shutil
import subprocess
import time
from pathlib import Path

from flask_rock import local_run, toolchain
from flask_rock.rootfs import PEBBLE_DIR, Rootfs, sandbox_argv

CONTAINER_MOUNT = "/charm/container"
SOCKET_NAME = "pebble.socket"
READY_TIMEOUT = 60.0


class WorkloadContainer:
    """One workload container: start, stop, replace, and talk to its Pebble from the host."""

    def __init__(self, project_dir: Path, state_dir: Path):
        self.project_dir = project_dir.resolve()
        self.state_dir = state_dir
        self.charm_container_dir = state_dir / "charm-container"  # /charm/container inside
        self.log_path = state_dir / "pebble.log"
        self.rootfs: Rootfs | None = None
        self._process: subprocess.Popen | None = None

    @property
    def socket(self) -> Path:
        """The Pebble socket, as the host sees it."""
        return self.charm_container_dir / SOCKET_NAME

    def start(self) -> None:
        """Start a fresh container: the image's files and an empty Pebble state."""
        self.stop()
        self.rootfs, _ = local_run.prepare(self.project_dir, self.state_dir / "image")
        shutil.rmtree(self.charm_container_dir, ignore_errors=True)
        self.charm_container_dir.mkdir(parents=True)
        env = {
            "PEBBLE": f"{CONTAINER_MOUNT}/pebble",
            "PEBBLE_SOCKET": f"{CONTAINER_MOUNT}/{SOCKET_NAME}",
            "PEBBLE_COPY_ONCE": PEBBLE_DIR,
        }
        command = ["/bin/pebble", "run", "--create-dirs", "--hold", "--verbose"]
        argv = sandbox_argv(
            self.rootfs, command, env=env, binds=[(self.charm_container_dir, CONTAINER_MOUNT)]
        )
        with self.log_path.open("a") as log:
            self._process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                break
            if self.socket.exists() and self.pebble("services").returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"the workload's Pebble did not come up; see {self.log_path}")

    def pebble(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run the Pebble CLI against this container's daemon."""
        binary = toolchain.ensure_binary(toolchain.PEBBLE)
        env = {**os.environ, "PEBBLE_SOCKET": str(self.socket)}
        return subprocess.run(
            [str(binary), *args], env=env, capture_output=True, text=True, timeout=timeout
        )

    @property
    def running(self) -> bool:
        """Whether the container's Pebble is alive."""
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        """Stop the container as Kubernetes would: SIGTERM to Pebble, which stops the services."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self.pebble("stop", "--no-wait", "flask", "statsd-exporter", timeout=20)
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
