"""The real programs a local run needs: Pebble, statsd_exporter and the app's Python environment.

Binaries are built from source with Go at the versions the rock and Juju use, and cached. The
Python environment holds gunicorn and the project's requirements, as the rock's python part would.
"""

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from flask_rock.errors import ProjectError

# `go install` of these fails on the module proxy's version list here, so build from the module
# cache instead: `go mod download` fetches exactly this version, then `go build` in its directory.
PEBBLE_MODULE = "github.com/canonical/pebble"
PEBBLE_VERSION = "v1.32.1"
STATSD_EXPORTER_MODULE = "github.com/prometheus/statsd_exporter"
STATSD_EXPORTER_VERSION = "v0.26.0"
GUNICORN_REQUIREMENT = "gunicorn~=23.0"


@dataclass(frozen=True)
class GoTool:
    """A Go program built from one module version."""

    name: str
    module: str
    version: str
    package: str  # package path inside the module

    def install_hint(self) -> str:
        """How a user gets this binary without us."""
        return (
            f"install Go >= 1.26.5 and rerun, or build it yourself with "
            f"`go install {self.module}{self.package[1:]}@{self.version}` and put it on PATH "
            f"(or set FLASK_ROCK_BIN to its directory)"
        )


PEBBLE = GoTool("pebble", PEBBLE_MODULE, PEBBLE_VERSION, "./cmd/pebble")
STATSD_EXPORTER = GoTool("statsd_exporter", STATSD_EXPORTER_MODULE, STATSD_EXPORTER_VERSION, ".")
GO_TOOLS = (PEBBLE, STATSD_EXPORTER)


def cache_dir() -> Path:
    """Where built binaries and Python environments are kept (ignored by git)."""
    configured = os.environ.get("FLASK_ROCK_CACHE")
    if configured:
        return Path(configured).resolve()
    return Path(__file__).resolve().parents[2] / ".cache"


def _version_stamp(binary: Path) -> Path:
    return binary.with_name(binary.name + ".version")


def find_binary(tool: GoTool) -> Path | None:
    """An existing binary: $FLASK_ROCK_BIN, then our cache (at the pinned version), then PATH."""
    configured = os.environ.get("FLASK_ROCK_BIN")
    if configured and (Path(configured) / tool.name).is_file():
        return Path(configured) / tool.name
    cached = cache_dir() / "bin" / tool.name
    stamp = _version_stamp(cached)
    if cached.is_file() and stamp.is_file() and stamp.read_text().strip() == tool.version:
        return cached
    on_path = shutil.which(tool.name)
    # Debian's `pebble` is an unrelated ACME server: accept only Canonical's, which has `enter`.
    if on_path and (tool is not PEBBLE or _is_canonical_pebble(on_path)):
        return Path(on_path)
    return None


def _is_canonical_pebble(path: str) -> bool:
    try:
        result = subprocess.run(
            [path, "version", "--client"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and "client" in result.stdout


def build_binary(tool: GoTool) -> Path:
    """Build `tool` at its pinned version into the cache; ProjectError explains any failure."""
    go = shutil.which("go")
    if go is None:
        raise ProjectError(
            [f"{tool.name} not found and Go is not installed: {tool.install_hint()}"]
        )
    target = cache_dir() / "bin" / tool.name
    target.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOFLAGS": "-mod=mod"}
    download = _run_go(
        [go, "mod", "download", "-json", f"{tool.module}@{tool.version}"], env, cwd=None, tool=tool
    )
    module_dir = _json_field(download, "Dir")
    _run_go([go, "build", "-o", str(target), tool.package], env, cwd=module_dir, tool=tool)
    _version_stamp(target).write_text(tool.version + "\n")
    return target


def _json_field(document: str, field: str) -> str:
    import json

    return json.loads(document)[field]


def _run_go(argv: list[str], env: dict[str, str], cwd: str | None, tool: GoTool) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd)
    if result.returncode != 0:
        last_lines = "\n".join(result.stderr.strip().splitlines()[-5:])
        raise ProjectError(
            [f"building {tool.name} {tool.version} failed ({' '.join(argv[:3])}): {last_lines}"]
        )
    return result.stdout


def ensure_binary(tool: GoTool) -> Path:
    """The binary for `tool`, building it with Go when it is missing."""
    found = find_binary(tool)
    if found is not None:
        return found
    print(f"building {tool.name} {tool.version} with Go (once; cached in {cache_dir()}/bin)")
    return build_binary(tool)


def requirements_fingerprint(project_dir: Path) -> str:
    """A key that changes whenever what the app's environment must hold changes."""
    digest = hashlib.sha256()
    digest.update(f"{sys.version_info[:2]} {GUNICORN_REQUIREMENT}".encode())
    for name in ("requirements.txt", "pyproject.toml"):
        path = project_dir / name
        digest.update(name.encode() + b"\0")
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def ensure_app_environment(project_dir: Path) -> Path:
    """A virtualenv with gunicorn and the project's requirements, built once per requirements."""
    venv = cache_dir() / "app-envs" / requirements_fingerprint(project_dir)
    if (venv / ".complete").is_file():
        return venv
    if venv.exists():
        shutil.rmtree(venv)
    print(f"creating the app's Python environment in {venv} (once per requirements)")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    requirements = [GUNICORN_REQUIREMENT]
    if (project_dir / "requirements.txt").is_file():
        requirements += ["-r", str(project_dir / "requirements.txt")]
    if (project_dir / "pyproject.toml").is_file():
        # Imported here: finding a binary (juju-local status, every command) needs no packaging.
        from flask_rock.project import pyproject_dependencies

        requirements += pyproject_dependencies(project_dir / "pyproject.toml")
    pip = [str(venv / "bin" / "python3"), "-m", "pip", "--disable-pip-version-check", "-q"]
    result = subprocess.run([*pip, "install", *requirements], capture_output=True, text=True)
    if result.returncode != 0:
        shutil.rmtree(venv, ignore_errors=True)
        tail = "\n".join(result.stderr.strip().splitlines()[-5:])
        raise ProjectError([f"installing the project's requirements failed: {tail}"])
    (venv / ".complete").write_text("")
    return venv


def python_home(venv: Path) -> Path:
    """The installation the venv's interpreter comes from (it must be visible in the sandbox)."""
    for line in (venv / "pyvenv.cfg").read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "home":
            return Path(value.strip()).parent
    raise ProjectError([f"{venv}/pyvenv.cfg has no `home`: delete {venv} and rerun"])
