"""A unit's workload container, as Juju runs it on Kubernetes, on this machine.

The rock's filesystem comes from `flask_rock` (the layout `flask_rock run` uses). Pebble is
started the way Juju starts it in a sidecar pod: `--hold` (nothing starts until the charm
replans), its state and socket under `/charm/container` (the volume shared with the charm
container), and `PEBBLE_COPY_ONCE` so the rock's own layer is in the plan before the charm adds
any, and `--identities` granting the charm's user admin access (Juju's charm-init writes the same
file: identity `charm`, the charm container's uid). A "fresh container" (a new pod, or a new
image) is a new layout and an empty `/charm/container`.

Pebble is the PID namespace's pid 1 (bubblewrap's `--as-pid-1`), as in a pod: when it dies, the
kernel kills every process of the container with it, so no service outlives its supervisor.
"""

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from flask_rock import toolchain
from flask_rock.rootfs import PEBBLE_DIR, sandbox_argv
from juju_local import processes

CONTAINER_MOUNT = "/charm/container"
IDENTITIES_MOUNT = "/charm/etc/pebble/identities.yaml"
SOCKET_NAME = "pebble.socket"
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


class WorkloadContainer:
    """One workload container: start, stop, replace, and talk to its Pebble from the host.

    The container outlives the process that starts it (a deployment is left running), so it is
    found again from its state directory: the sandbox's pid is kept in `pod.pid`.
    """

    def __init__(self, project_dir: Path, state_dir: Path, enter: list[str] | None = None):
        self.project_dir = project_dir.resolve()
        self.state_dir = state_dir
        self.enter = list(enter or [])  # runs the pod in its own network (see `network`)
        self.charm_container_dir = state_dir / "charm-container"  # /charm/container inside
        self.log_path = state_dir / "pebble.log"
        self.pid_path = state_dir / "pod.pid"

    @property
    def socket(self) -> Path:
        """The Pebble socket, as the host sees it."""
        return self.charm_container_dir / SOCKET_NAME

    def start(self, charm_uid: int = 0) -> None:
        """Start a fresh container: the image's files and an empty Pebble state.

        `charm_uid` is the user the charm runs as: Pebble gives it admin access.
        """
        # Here, not at the top: laying out the rock is for deploy and upgrade; the other
        # commands (config, status: one process each) need not import it.
        from flask_rock import local_run

        self.stop()
        rootfs, _ = local_run.prepare(self.project_dir, self.state_dir / "image")
        shutil.rmtree(self.charm_container_dir, ignore_errors=True)
        self.charm_container_dir.mkdir(parents=True)
        self.charm_container_dir.chmod(0o755)  # a non-root charm reaches the socket through it
        identities = self.state_dir / "identities.yaml"
        identities.write_text(
            f"identities:\n  charm:\n    access: admin\n    local:\n      user-id: {charm_uid}\n"
        )
        env = {
            "PEBBLE": f"{CONTAINER_MOUNT}/pebble",
            "PEBBLE_SOCKET": f"{CONTAINER_MOUNT}/{SOCKET_NAME}",
            "PEBBLE_COPY_ONCE": PEBBLE_DIR,
        }
        command = ["/bin/pebble", "run", "--create-dirs", "--hold", "--verbose"]
        command += ["--identities", IDENTITIES_MOUNT]
        argv = sandbox_argv(
            rootfs,
            command,
            env=env,
            binds=[(self.charm_container_dir, CONTAINER_MOUNT), (identities, IDENTITIES_MOUNT)],
            die_with_parent=False,
        )
        argv.insert(1, "--as-pid-1")  # Pebble is the container's init: its death ends the pod
        argv = [*self.enter, *argv]  # it execs bwrap: pod.pid stays the sandbox's
        with self.log_path.open("a") as log:
            process = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # not killed with the command that deployed it
            )
        self.pid_path.write_text(f"{process.pid}\n")
        self._wait_ready(process)

    def _wait_ready(self, process: subprocess.Popen) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline and process.poll() is None:
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

    def _sandbox_pid(self) -> int | None:
        return processes.running_pid(self.pid_path)

    @property
    def running(self) -> bool:
        """Whether the container's Pebble is alive."""
        return self._sandbox_pid() is not None

    @property
    def pebble_pid(self) -> int | None:
        """The container's Pebble (its pid 1) as the host numbers it, if it runs."""
        sandbox = self._sandbox_pid()
        return processes.descendant(sandbox, "/bin/pebble") if sandbox else None

    @property
    def died(self) -> bool:
        """Whether the container was started and its Pebble has since exited (the pod is gone)."""
        return self.pid_path.exists() and not self.running

    def stop(self) -> None:
        """Stop the container as Kubernetes does: SIGTERM to Pebble, which stops the services."""
        sandbox = self._sandbox_pid()
        if sandbox is not None:
            pebble = self.pebble_pid
            os.kill(pebble or sandbox, signal.SIGTERM)
            if not processes.wait_gone(sandbox, STOP_TIMEOUT):
                os.killpg(sandbox, signal.SIGKILL)  # the whole pod, as a kubelet would
                processes.wait_gone(sandbox, STOP_TIMEOUT)
        self.pid_path.unlink(missing_ok=True)
