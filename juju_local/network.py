"""Pod network identities for a deployment's extra units, as Kubernetes gives each pod its own.

Every pod binds the same ports (8000 for the app, 9102 for metrics, UDP 9125 for StatsD), so
each unit after the first gets a network namespace of its own: `eth0` at `10.B.C.(10+n)/24`,
the other end of a veth pair plugged into the deployment's bridge, which holds the host's
address `10.B.C.1`. The host reaches every pod and every pod reaches the host and the others,
as on a Kubernetes pod network. Unit 0 keeps the host's network (127.0.0.1), where the existing
tools and tests expect it.

Names derive from the state directory (`jl<key>-<n>` namespaces, `jl<key>br` bridge,
`jl<key>h<n>` veths), so `remove` finds them without any record, and a registry entry per
deployment (`REGISTRY/<key>`, naming the state directory) lets a later `deploy` delete what a
killed run left behind. This needs root and `ip` (iproute2); `nsenter` runs a pod in its
namespace.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
from pathlib import Path

IP = "/usr/sbin/ip"
NSENTER = "/usr/bin/nsenter"
REGISTRY = Path("/run/juju-local-pods")  # one file per deployment with pod networks
FIRST_HOST = 10  # unit n's address ends in FIRST_HOST + n
MAX_UNIT = 240


class NetworkError(Exception):
    """A pod network could not be made; the message says why."""


class PodNetwork:
    """The network namespaces and bridge of one deployment (found from its state directory)."""

    def __init__(self, state_dir: Path):
        self.state_dir = state_dir.resolve()
        digest = hashlib.sha256(str(self.state_dir).encode()).hexdigest()
        self.key = digest[:6]
        self.prefix = f"jl{self.key}"
        # 10.64.0.0/10 split in /24s by the key: two deployments rarely share one.
        self.subnet = f"10.{64 + int(digest[6:8], 16) % 64}.{int(digest[8:10], 16)}"
        self.bridge = f"{self.prefix}br"

    @property
    def has_bridge(self) -> bool:
        """Whether the pod network exists (a unit after the first was added)."""
        return Path("/sys/class/net", self.bridge).exists()

    @property
    def host_address(self) -> str:
        """The host's address on the pod network (the bridge's)."""
        return f"{self.subnet}.1"

    def address(self, number: int) -> str:
        """Unit `number`'s pod address."""
        return f"{self.subnet}.{FIRST_HOST + number}"

    def namespace(self, number: int) -> str:
        """Unit `number`'s network namespace name."""
        return f"{self.prefix}-{number}"

    def enter_argv(self, number: int) -> list[str]:
        """What runs a command in unit `number`'s namespace (exec, so its pid is the command's)."""
        return [NSENTER, f"--net=/run/netns/{self.namespace(number)}", "--"]

    # -- making and deleting ------------------------------------------------------------------

    def create(self, number: int) -> str:
        """Give unit `number` its namespace, veth pair and address (fresh); the address."""
        if os.geteuid() != 0:
            raise NetworkError("units after the first need network namespaces: run as root")
        if not 0 < number <= MAX_UNIT:
            raise NetworkError(f"unit numbers above {MAX_UNIT} have no pod address")
        self.delete(number)
        self._register()
        self._ensure_bridge()
        namespace, host_end, pod_end = self.namespace(number), *self._veths(number)
        address = self.address(number)
        _ip("netns", "add", namespace)
        _ip("link", "add", host_end, "type", "veth", "peer", "name", pod_end)
        _ip("link", "set", pod_end, "netns", namespace)
        _ip("link", "set", host_end, "master", self.bridge, "up")
        _ip("-n", namespace, "link", "set", pod_end, "name", "eth0")
        _ip("-n", namespace, "addr", "add", f"{address}/24", "dev", "eth0")
        _ip("-n", namespace, "link", "set", "eth0", "up")
        _ip("-n", namespace, "link", "set", "lo", "up")
        _ip("-n", namespace, "route", "add", "default", "via", self.host_address)
        return address

    def delete(self, number: int) -> None:
        """Remove unit `number`'s namespace (killing what still runs in it) and its veths."""
        namespace = self.namespace(number)
        if namespace in self.namespaces():
            _kill_inside(namespace)
            _ip("netns", "delete", namespace, check=False)
        for link in self._veths(number):
            if Path("/sys/class/net", link).exists():
                _ip("link", "delete", link, check=False)

    def delete_all(self) -> None:
        """Remove every namespace, veth and the bridge this deployment made; forget it."""
        for namespace in self.namespaces():
            self.delete(int(namespace.rsplit("-", 1)[1]))
        for link in _links(self.prefix):
            _ip("link", "delete", link, check=False)
        (REGISTRY / self.key).unlink(missing_ok=True)

    def namespaces(self) -> list[str]:
        """This deployment's network namespaces that exist now."""
        return [name for name in _namespaces() if name.startswith(f"{self.prefix}-")]

    def leftovers(self) -> list[str]:
        """Namespaces and links of this deployment that exist now (empty once removed)."""
        return [*self.namespaces(), *_links(self.prefix)]

    def _veths(self, number: int) -> tuple[str, str]:
        return f"{self.prefix}h{number}", f"{self.prefix}p{number}"

    def _ensure_bridge(self) -> None:
        if self.has_bridge:
            return
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.host_address}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")

    def _register(self) -> None:
        REGISTRY.mkdir(parents=True, exist_ok=True)
        (REGISTRY / self.key).write_text(str(self.state_dir))


def collect_leftovers() -> list[str]:
    """Delete the pod networks of deployments that are gone (a killed run); their state dirs."""
    collected = []
    entries = sorted(REGISTRY.iterdir()) if REGISTRY.is_dir() else []
    for entry in entries:
        with contextlib.suppress(OSError):
            state_dir = Path(entry.read_text().strip())
            if not (state_dir / "deployment.json").is_file():
                PodNetwork(state_dir).delete_all()
                collected.append(str(state_dir))
    return collected


def _namespaces() -> list[str]:
    netns = Path("/run/netns")
    return sorted(entry.name for entry in netns.iterdir()) if netns.is_dir() else []


def _links(prefix: str) -> list[str]:
    net = Path("/sys/class/net")
    return sorted(entry.name for entry in net.iterdir() if entry.name.startswith(prefix))


def _kill_inside(namespace: str) -> None:
    """SIGKILL what still runs in `namespace`: a pod whose Pebble did not stop in time."""
    done = subprocess.run([IP, "netns", "pids", namespace], capture_output=True, text=True)
    for pid in done.stdout.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


def _ip(*args: str, check: bool = True) -> None:
    done = subprocess.run([IP, *args], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise NetworkError(f"ip {' '.join(args)}: {done.stderr.strip()}")
