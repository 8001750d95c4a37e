"""`flask_rock run DIR`: run a rock's own Pebble services on this machine, without Docker.

The project is expanded (or its pack-ready rockcraft.yaml read as is), its files laid out as the
rock would hold them, and a real Pebble started in a sandbox with the rock's layer, exactly as the
rock's entrypoint does: `pebble run --args flask sync` here is `docker run … --args flask sync`.
Real rocks are still built with `rockcraft pack`; this is for fast iteration and for tests.
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from flask_rock import toolchain
from flask_rock.errors import ProjectError
from flask_rock.expand import expand_project, is_flask_framework
from flask_rock.project import load_document
from flask_rock.rootfs import PEBBLE_DIR, Rootfs, build_rootfs, sandbox_argv
from flask_rock.rules import name_problems

APP_PORT = 8000
METRICS_PORT = 9102
STATSD_PORT = 9125
READY_TIMEOUT = 120.0
STOP_TIMEOUT = 20.0


def add_run_parser(subparsers: "argparse._SubParsersAction") -> None:
    """Register the `run` subcommand."""
    parser = subparsers.add_parser(
        "run",
        help="run the rock's Pebble services locally (real Pebble, gunicorn, statsd_exporter)",
        description=__doc__,
    )
    parser.add_argument("project_dir", metavar="DIR", type=Path, help="the Flask project")
    parser.add_argument(
        "--args",
        nargs=argparse.REMAINDER,
        default=None,
        metavar="SERVICE ARG",
        help="as `docker run … --args`: replace a service's default arguments, "
        "e.g. `--args flask sync` for sync workers (must come last)",
    )
    parser.set_defaults(handler=run_command)


def run_command(options: argparse.Namespace) -> int:
    """The `run` subcommand: problems are listed, never shown as a traceback."""
    try:
        return run(options.project_dir, options.args)
    except ProjectError as error:
        print(f"flask_rock run {options.project_dir}: cannot run the rock:", file=sys.stderr)
        for problem in error.problems:
            print(f"- {problem}", file=sys.stderr)
        return 1


def load_pack_ready(project_dir: Path) -> dict:
    """The pack-ready rockcraft.yaml of a project, expanding the extension when it is used.

    A pack-ready file is not expanded, but its name still becomes a file name here, so it must
    be a name Rockcraft accepts.
    """
    document = load_document(project_dir / "rockcraft.yaml")
    if is_flask_framework(document):
        return expand_project(project_dir)
    problems = name_problems(document)
    if problems:
        raise ProjectError(problems)
    return document


def pebble_layer(document: dict) -> dict:
    """The layer Rockcraft bakes into the image from the project's services and checks."""
    services = document.get("services") or {}
    if "flask" not in services:
        raise ProjectError(
            ["rockcraft.yaml has no `services.flask`: is it a flask-framework rock?"]
        )
    layer = {
        "summary": document.get("summary", ""),
        "description": document.get("description", ""),
        "services": services,
    }
    if document.get("checks"):
        layer["checks"] = document["checks"]
    return layer


def prepare(
    project_dir: Path, state_dir: Path, document: dict | None = None
) -> tuple[Rootfs, dict]:
    """Everything a run needs: binaries, the app's Python, the layout and the rock's layer."""
    document = document if document is not None else load_pack_ready(project_dir)
    binaries = {
        "pebble": toolchain.ensure_binary(toolchain.PEBBLE),
        "statsd_exporter": toolchain.ensure_binary(toolchain.STATSD_EXPORTER),
    }
    venv = toolchain.ensure_app_environment(project_dir)
    rootfs = build_rootfs(document, project_dir, state_dir, venv, binaries)
    layers = rootfs.pebble_dir / "layers"
    layers.mkdir(exist_ok=True)
    for stale in layers.glob("*.yaml"):
        stale.unlink()
    name = document.get("name", "rock")
    (layers / f"001-{name}.yaml").write_text(yaml.safe_dump(pebble_layer(document)))
    return rootfs, document


def ports_in_use(ports: tuple[int, ...] = (APP_PORT, METRICS_PORT)) -> list[int]:
    """Which of the rock's fixed ports something on this machine already listens on."""
    busy = []
    for port in ports:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("0.0.0.0", port))
            except OSError:
                busy.append(port)
    return busy


def wait_for_http(url: str, timeout: float, process: subprocess.Popen | None = None) -> bool:
    """Poll `url` until it answers (any HTTP status) or `timeout` passes or `process` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except urllib.error.HTTPError:
            return True
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    return False


def pebble_client(rootfs: Rootfs, *args: str) -> subprocess.CompletedProcess:
    """Run the Pebble CLI on the host against the sandboxed daemon's socket."""
    pebble = toolchain.ensure_binary(toolchain.PEBBLE)
    env = {**os.environ, "PEBBLE": str(rootfs.pebble_dir)}
    return subprocess.run(
        [str(pebble), *args], env=env, capture_output=True, text=True, timeout=STOP_TIMEOUT
    )


def stop(process: subprocess.Popen, rootfs: Rootfs) -> None:
    """Stop the services gracefully through Pebble, then end the sandbox."""
    if process.poll() is None:
        try:
            pebble_client(rootfs, "stop", "flask", "statsd-exporter")
        except (subprocess.TimeoutExpired, OSError):
            pass
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run(project_dir: Path, service_args: list[str] | None) -> int:
    """Run the rock in the foreground until interrupted; return the exit code."""
    project_dir = project_dir.resolve()
    document = load_pack_ready(project_dir)  # the project's own problems come first
    busy = ports_in_use()
    if busy:
        raise ProjectError(
            [
                f"port {port} is already in use on this machine: stop what listens there "
                f"(another `flask_rock run`?) and retry"
                for port in busy
            ]
        )
    state_dir = toolchain.cache_dir() / "runs" / project_dir.name
    rootfs, document = prepare(project_dir, state_dir, document)
    command = ["/bin/pebble", "run", "--verbose"]  # --verbose: show the services' logs
    if service_args:
        command += ["--args", *service_args]
    argv = sandbox_argv(rootfs, command, env={"PEBBLE": PEBBLE_DIR})
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    signal.signal(signal.SIGTERM, _interrupt)  # unwind to `finally`, as Ctrl-C does
    try:
        if not wait_for_http(f"http://127.0.0.1:{APP_PORT}/", READY_TIMEOUT, process):
            print(f"{document.get('name')} did not start serving; Pebble's view:", file=sys.stderr)
            print(pebble_client(rootfs, "services").stdout, file=sys.stderr)
            stop(process, rootfs)
            return 1
        print(serving_banner(document.get("name", "rock"), rootfs), flush=True)
        return process.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stop(process, rootfs)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def serving_banner(name: str, rootfs: Rootfs) -> str:
    """Where the running rock can be reached."""
    return (
        f"\n{name} is serving:\n"
        f"  app:     http://127.0.0.1:{APP_PORT}/\n"
        f"  metrics: http://127.0.0.1:{METRICS_PORT}/metrics\n"
        f"  pebble:  PEBBLE={rootfs.pebble_dir} pebble services\n"
        f"Press Ctrl-C to stop.\n"
    )
