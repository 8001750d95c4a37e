"""Stage a charm project as `charmcraft pack` lays it out, into a directory Juju could run.

`charmcraft.yaml` is split into `metadata.yaml`, `config.yaml` and `actions.yaml`; `src/`,
`lib/` and `cos_custom/` are copied; the runtime dependencies are installed into `venv/` with
`uv pip install --target` for the base's Python, cached by a hash of the dependency list; and
`dispatch` is written as charmcraft writes it. With a `uv.lock` the dependencies are the versions
it pins, the ones charmcraft's uv plugin packs into the charm.
The venv, `src/` and `lib/` are compiled to bytecode for the base's Python at stage time, as a
packed charm ships its venv (`UV_COMPILE_BYTECODE`): a non-root charm cannot write
`__pycache__`, so it would otherwise compile ops and pydantic from source on every hook.
Re-staging into the same directory (an upgrade) replaces the code and keeps the unit's state
(`.unit-state.db`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = REPO / ".cache" / "charm-venvs"
# Where scripts/bootstrap installs the locked uv.
TOOLS_UV = REPO / ".cache" / "tools-venv" / "bin" / "uv"
# What Juju runs the charm with: the base's own Python (ubuntu@24.04 would give 3.12).
BASE_PYTHON = Path("/usr/bin/python3")
DISPATCH = """#!/bin/sh
JUJU_DISPATCH_PATH="${JUJU_DISPATCH_PATH:-$0}" PYTHONPATH=lib:venv exec ./src/charm.py
"""
# charmcraft.yaml keys that are about building, not running: they stay out of metadata.yaml.
BUILD_KEYS = frozenset(
    {"type", "base", "bases", "build-base", "platforms", "parts", "config", "actions",
     "charm-libs", "charmhub", "analysis"}
)  # fmt: skip
# charmcraft.yaml's `charm-user` → the uid Juju runs the charm container as (Juju's
# JujuUserID 170 and JujuSudoUserID 171; root when the key is absent).
CHARM_USERS = {"root": 0, "sudoer": 171, "non-root": 170}
CODE_DIRS = ("src", "lib", "cos_custom")  # cos_custom: charmcraft.yaml's `cos-custom` part
GENERATED = ("metadata.yaml", "config.yaml", "actions.yaml", "dispatch", "venv")
# Part of the venv cache key: bump it when the cached tree's layout changes (v2: bytecode).
VENV_LAYOUT = "bytecode-v2"


class StageError(Exception):
    """The project cannot be staged."""


@dataclass
class StagedCharm:
    """A staged charm directory and what its metadata says."""

    path: Path
    metadata: dict[str, Any]
    config_options: dict[str, dict[str, Any]]
    actions: dict[str, Any]
    python: Path

    @property
    def name(self) -> str:
        """The charm's name."""
        return str(self.metadata["name"])

    @property
    def charm_user(self) -> str:
        """Who Juju runs the charm as: `root` (the default), `sudoer` or `non-root`."""
        return str(self.metadata.get("charm-user") or "root")

    @property
    def containers(self) -> list[str]:
        """The workload containers the charm declares."""
        return list(self.metadata.get("containers") or {})

    @property
    def endpoints(self) -> list[str]:
        """Every relation endpoint (peers, provides, requires) and extra binding."""
        names: list[str] = []
        for section in ("peers", "provides", "requires", "extra-bindings"):
            names += list(self.metadata.get(section) or {})
        return names

    def peer_relations(self) -> dict[str, str]:
        """Peer endpoints and their interfaces (Juju creates these at deploy time)."""
        peers = self.metadata.get("peers") or {}
        return {name: str((spec or {}).get("interface", "")) for name, spec in peers.items()}


def split_charmcraft(document: dict[str, Any]) -> tuple[dict, dict, dict]:
    """`charmcraft.yaml` → (metadata.yaml, config.yaml, actions.yaml) documents."""
    metadata = {k: v for k, v in document.items() if k not in BUILD_KEYS}
    if "name" not in metadata:
        raise StageError("charmcraft.yaml has no `name`")
    config = {"options": dict((document.get("config") or {}).get("options") or {})}
    actions = dict(document.get("actions") or {})
    return metadata, config, actions


def runtime_dependencies(project: Path) -> list[str]:
    """The charm's runtime dependencies, pinned as the packed charm gets them where possible.

    With a `uv.lock`: every package the charm needs at the version the lock pins (what the uv
    plugin's `uv sync --no-dev` installs). Without one: `[project].dependencies` of the
    project's pyproject.toml as written.
    """
    if (project / "uv.lock").is_file():
        return locked_dependencies(project)
    pyproject = project / "pyproject.toml"
    if not pyproject.is_file():
        return []
    import tomllib

    with pyproject.open("rb") as handle:
        return list(tomllib.load(handle).get("project", {}).get("dependencies", []))


def locked_dependencies(project: Path) -> list[str]:
    """`name==version[ ; marker]` for each runtime package `project/uv.lock` pins."""
    argv = [str(find_uv()), "export", "--project", str(project), "--frozen", "--no-dev"]
    argv += ["--no-emit-project", "--no-hashes", "--no-header", "--no-annotate"]
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        raise StageError(f"uv could not export {project / 'uv.lock'}:\n{result.stderr[-3000:]}")
    lines = (line.strip() for line in result.stdout.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def find_uv() -> Path:
    """The uv beside the running Python (a venv that has it), else bootstrap's, else PATH's."""
    on_path = shutil.which("uv")
    for candidate in (Path(sys.executable).parent / "uv", TOOLS_UV, on_path):
        if candidate and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise StageError(f"uv is not installed: run scripts/bootstrap (it puts uv in {TOOLS_UV})")


def stage(
    project: Path,
    charm_dir: Path,
    *,
    python: Path | None = None,
    cache_dir: Path = DEFAULT_CACHE,
    dependencies: list[str] | None = None,
) -> StagedCharm:
    """Stage `project` into `charm_dir` (fresh or an earlier staging: an upgrade)."""
    import yaml  # here, not at the top: dispatching a hook needs no YAML (see `load`)

    python = python or default_python()
    source = project / "charmcraft.yaml"
    if not source.is_file():
        raise StageError(f"{source} does not exist")
    document = yaml.safe_load(source.read_text()) or {}
    metadata, config, actions = split_charmcraft(document)
    if metadata.get("charm-user", "root") not in CHARM_USERS:
        raise StageError(
            f"charmcraft.yaml: charm-user must be one of {', '.join(CHARM_USERS)}, "
            f"got {metadata['charm-user']!r}"
        )
    charm_dir.mkdir(parents=True, exist_ok=True)
    for name in (*CODE_DIRS, *GENERATED):
        _remove(charm_dir / name)
    for name in CODE_DIRS:
        if (project / name).is_dir():
            shutil.copytree(project / name, charm_dir / name, symlinks=True)
    compile_bytecode(python, [charm_dir / name for name in CODE_DIRS])
    for name, content in (
        ("metadata.yaml", metadata),
        ("config.yaml", config),
        ("actions.yaml", actions),
    ):
        (charm_dir / name).write_text(yaml.safe_dump(content, sort_keys=False))
    deps = runtime_dependencies(project) if dependencies is None else dependencies
    _link_tree(ensure_venv(deps, python, cache_dir), charm_dir / "venv")
    (charm_dir / "venv").chmod(0o755)  # mkdtemp made it 0700: a non-root charm reads it
    (charm_dir / "dispatch").write_text(DISPATCH)
    (charm_dir / "dispatch").chmod(0o755)
    entry = charm_dir / "src" / "charm.py"
    if not entry.is_file():
        raise StageError(f"{project}/src/charm.py does not exist")
    entry.chmod(0o755)
    return StagedCharm(charm_dir, metadata, config["options"], actions, python)


def load(charm_dir: Path, python: Path | None = None) -> StagedCharm:
    """Describe an already-staged charm directory."""
    import yaml  # imported on use: a hook's dispatch reads no metadata when told the uid

    def read(name: str) -> dict[str, Any]:
        path = charm_dir / name
        return (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}

    options = read("config.yaml").get("options") or {}
    return StagedCharm(
        charm_dir, read("metadata.yaml"), options, read("actions.yaml"), python or default_python()
    )


def default_python() -> Path:
    """The base's Python if there is one, else the interpreter running us."""
    return BASE_PYTHON if BASE_PYTHON.exists() else Path(sys.executable)


def ensure_venv(dependencies: list[str], python: Path, cache_dir: Path = DEFAULT_CACHE) -> Path:
    """The `uv pip install --target` tree for `dependencies` under `python`, built once, cached."""
    version = subprocess.run(
        [str(python), "-c", "import sys; print(sys.implementation.cache_tag)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    identity = [VENV_LAYOUT, version, *sorted(dependencies)]
    key = hashlib.sha256("\n".join(identity).encode()).hexdigest()[:16]
    target = cache_dir / key
    if target.is_dir():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=cache_dir))
    if not dependencies:  # nothing to install: an empty venv/
        return _publish(building, target)
    # Copies, not links into uv's cache: a staged charm may write to its venv.
    argv = [str(find_uv()), "pip", "install", "--quiet", "--python", str(python)]
    argv += ["--link-mode", "copy", "--compile-bytecode", "--target", str(building), *dependencies]
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        shutil.rmtree(building, ignore_errors=True)
        raise StageError(f"uv could not install {dependencies}:\n{result.stderr[-3000:]}")
    return _publish(building, target)


def compile_bytecode(python: Path, directories: list[Path]) -> None:
    """Write `__pycache__` for `python` beside the sources in `directories` that exist.

    A file that does not compile is left for the hook to report, as Juju would.
    """
    present = [str(path) for path in directories if path.is_dir()]
    if present:
        subprocess.run([str(python), "-m", "compileall", "-q", *present], capture_output=True)


def _publish(building: Path, target: Path) -> Path:
    try:
        building.rename(target)
    except OSError:  # another process built it meanwhile
        shutil.rmtree(building, ignore_errors=True)
    return target


def clone(charm_dir: Path, destination: Path) -> None:
    """Stage another unit's copy of a staged charm (the same revision), without its state."""
    _remove(destination)
    _link_tree(charm_dir, destination, ignore=shutil.ignore_patterns(".unit-state.db*"))


def _link_tree(source: Path, destination: Path, ignore: Any = None) -> None:
    """Copy a tree, hard-linking files where the filesystem allows (the cache is read-only)."""

    def link_or_copy(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, destination, symlinks=True, copy_function=link_or_copy, ignore=ignore)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
