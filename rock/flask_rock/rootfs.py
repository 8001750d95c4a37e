"""The rock's filesystem, laid out on this machine and shown to processes in a sandbox.

`build_rootfs` places what `rockcraft pack` would put in the image (the app under /flask/app,
/flask/gunicorn.conf.py, /statsd-mapping.conf, /bin/statsd_exporter, /bin/python3) into a
directory we own. `sandbox_argv` wraps a command in bubblewrap so that it sees that directory
as `/` over the host's /usr and /etc: nothing is ever written to the host's own `/`.
"""

import fnmatch
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from flask_rock.bounded import short_repr
from flask_rock.errors import ProjectError

ROCK_UID = 584792  # _daemon_ in every rock
ROCK_USER = "_daemon_"
INSTALL_APP_PART = "flask-framework/install-app"
CONFIG_FILES_PART = "flask-framework/config-files"
PEBBLE_DIR = "/var/lib/pebble/default"
SANDBOX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Directories the extension's logging part creates in the image, writable by the app.
APP_WRITABLE_DIRS = ("/var/log/flask", "/opt/promtail")  # /etc/promtail: /etc is the host's


@dataclass
class Rootfs:
    """A laid-out rock filesystem and what the sandbox must bind to run it."""

    root: Path
    pebble_dir: Path
    host_paths: list[Path] = field(default_factory=list)  # bound read-only at the same path

    @property
    def pebble_socket(self) -> Path:
        """Pebble's API socket as seen from the host."""
        return self.pebble_dir / ".pebble.socket"


def build_rootfs(
    document: dict, project_dir: Path, state_dir: Path, venv: Path, binaries: dict[str, Path]
) -> Rootfs:
    """Lay out the rock described by a pack-ready `document` under `state_dir`."""
    root = state_dir / "root"
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    parts = document.get("parts") or {}
    _install_app(parts.get(INSTALL_APP_PART) or {}, project_dir, root)
    _install_config_files(parts.get(CONFIG_FILES_PART) or {}, project_dir, root)
    _chown_tree(root / "flask")
    python_base = _python_base(venv)
    _populate_bin(root / "bin", venv, binaries)
    _write_accounts(root / "etc")
    pebble_dir = state_dir / "pebble"
    pebble_dir.mkdir(parents=True, exist_ok=True)
    host_paths = [venv, python_base, *{path.parent for path in binaries.values()}]
    return Rootfs(root=root, pebble_dir=pebble_dir, host_paths=host_paths)


def _resolves_inside(path: Path, top: Path) -> bool:
    """Whether ``path``, its symlinks and ``..`` resolved, lies in ``top`` (itself resolved)."""
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(top))


def _target(root: Path, target: object, where: str) -> Path:
    """The rootfs path for an organize target, refused when it would land outside the root."""
    if not isinstance(target, str) or not target or target.startswith("/"):
        raise ProjectError([f"{where}: target {short_repr(target)} must be a relative path"])
    destination = root / target
    if not _resolves_inside(destination, root):
        raise ProjectError(
            [f"{where}: target {short_repr(target)} leads outside the rock's filesystem"]
        )
    return destination


def _install_app(part: dict, project_dir: Path, root: Path) -> None:
    """Copy the project files the install-app part's organize map names, then apply excludes.

    Every source must resolve inside the project and every target inside the rootfs, so neither
    ``..`` nor a symlink reads or writes anywhere else.
    """
    organize = part.get("organize") or {}
    where = f"parts.{INSTALL_APP_PART}.organize"
    if not isinstance(organize, dict) or not organize:
        raise ProjectError([f"parts.{INSTALL_APP_PART} has no `organize`: run `expand` first"])
    for source, target in organize.items():
        if not isinstance(source, str) or source.startswith("/"):
            raise ProjectError([f"{where}: source {short_repr(source)} must be a relative path"])
        src = project_dir / source
        if not _resolves_inside(src, project_dir):
            raise ProjectError(
                [
                    f"{where}: {short_repr(source)} leads outside the project (through .. or a "
                    "symlink): ship only files inside the project"
                ]
            )
        if not src.exists():
            raise ProjectError(
                [
                    f"parts.{INSTALL_APP_PART}.prime lists {short_repr(target)}, but {src} does "
                    "not exist"
                ]
            )
        _copy(src, _target(root, target, where), root)
    for entry in part.get("prime") or []:
        if isinstance(entry, str) and entry.startswith("-"):
            _remove_matching(root, entry[1:].strip())


def _config_source(part: dict, project_dir: Path) -> Path:
    """The config-files source: inside the project, or the files this package ships."""
    # Here, not at the top: the charm's sandbox (juju_local) needs only `bind`, not expand's
    # imports, on every hook it dispatches.
    from flask_rock.expand import CONFIG_FILES_DIR

    where = f"parts.{CONFIG_FILES_PART}.source"
    value = part.get("source") or ""
    if not isinstance(value, str):
        raise ProjectError([f"{where} must be a path, not {short_repr(value)}"])
    source = Path(value) if Path(value).is_absolute() else project_dir / value
    if not (_resolves_inside(source, project_dir) or _resolves_inside(source, CONFIG_FILES_DIR)):
        raise ProjectError(
            [
                f"{where} ({short_repr(value)}) lies outside the project: vendor the config "
                "files into the project (expand --vendor-config) or leave the default"
            ]
        )
    if not (source / "gunicorn.conf.py").is_file():
        raise ProjectError([f"{where} ({source}) holds no gunicorn.conf.py"])
    return source


def _install_config_files(part: dict, project_dir: Path, root: Path) -> None:
    """Dump the config-files part's source into `/`, renaming what `organize` says."""
    source = _config_source(part, project_dir)
    organize = part.get("organize") or {}
    if not isinstance(organize, dict):
        raise ProjectError([f"parts.{CONFIG_FILES_PART}.organize must be a mapping"])
    where = f"parts.{CONFIG_FILES_PART}.organize"
    for item in sorted(source.iterdir()):
        if not _resolves_inside(item, source):
            raise ProjectError(
                [f"parts.{CONFIG_FILES_PART}: {item} leads outside its source directory"]
            )
        _copy(item, _target(root, organize.get(item.name, item.name), where), root)


def _copy(src: Path, dst: Path, root: Path) -> None:
    """Copy a file or tree to ``dst``, never writing outside ``root``.

    Nested symlinks are copied as symlinks, never followed; before each write the destination
    is resolved again, so a symlink copied earlier cannot redirect a later write.
    """
    if not _resolves_inside(dst, root):
        raise ProjectError([f"copying {src} would write outside the rock's filesystem ({dst})"])
    if src.is_dir():
        dst.mkdir(parents=True, exist_ok=True)
        for child in sorted(src.iterdir()):
            if child.is_symlink():
                _copy_link(child, dst / child.name, root)
            else:
                _copy(child, dst / child.name, root)
        return
    if not src.is_file():
        raise ProjectError([f"{src} is not a regular file or directory: remove it or exclude it"])
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.is_symlink():
        dst.unlink()  # replace the link itself; never write through it
    shutil.copy2(src, dst)


def _copy_link(link: Path, dst: Path, root: Path) -> None:
    if not _resolves_inside(dst.parent, root):
        raise ProjectError([f"copying {link} would write outside the rock's filesystem ({dst})"])
    if dst.is_symlink() or dst.is_file():
        dst.unlink()
    elif dst.exists():
        raise ProjectError([f"{link} is a symlink, but {dst} is already a directory"])
    os.symlink(os.readlink(link), dst)


def _remove_matching(root: Path, pattern: str) -> None:
    pattern = pattern.strip("/")
    for path in sorted(root.glob("flask/app/**/*"), reverse=True):
        relative = path.relative_to(root).as_posix()
        if fnmatch.fnmatchcase(relative, pattern) or relative.startswith(pattern + "/"):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def _chown_tree(top: Path) -> None:
    """Give the app's files to _daemon_, as the parts' `permissions` do (needs root)."""
    if os.geteuid() != 0:
        return
    for directory, _, files in os.walk(top):
        os.lchown(directory, ROCK_UID, ROCK_UID)
        for name in files:
            os.lchown(os.path.join(directory, name), ROCK_UID, ROCK_UID)


def _python_base(venv: Path) -> Path:
    from flask_rock.toolchain import python_home

    return python_home(venv)


def _populate_bin(bin_dir: Path, venv: Path, binaries: dict[str, Path]) -> None:
    """/bin: the host's /usr/bin (for /bin/sh and friends), the venv's python, our binaries."""
    bin_dir.mkdir(parents=True)
    for entry in os.scandir("/usr/bin"):
        os.symlink(f"/usr/bin/{entry.name}", bin_dir / entry.name)
    # A wrapper, not a symlink: Python finds its venv from the path it was started by.
    wrapper = f'#!/bin/sh\nexec {venv}/bin/python3 "$@"\n'
    for name in ("python3", "python"):
        (bin_dir / name).unlink(missing_ok=True)
        (bin_dir / name).write_text(wrapper)
        (bin_dir / name).chmod(0o755)
    for name, path in binaries.items():
        (bin_dir / name).unlink(missing_ok=True)
        os.symlink(path, bin_dir / name)


def _write_accounts(etc: Path) -> None:
    """The host's users and groups plus the rock's _daemon_."""
    etc.mkdir(parents=True)
    for name, line in (
        ("passwd", f"{ROCK_USER}:x:{ROCK_UID}:{ROCK_UID}::/nonexistent:/usr/sbin/nologin\n"),
        ("group", f"{ROCK_USER}:x:{ROCK_UID}:\n"),
    ):
        host = Path("/etc", name).read_text()
        kept = [row for row in host.splitlines(keepends=True) if not row.startswith(ROCK_USER)]
        (etc / name).write_text("".join(kept) + line)


def sandbox_argv(
    rootfs: Rootfs,
    command: list[str],
    env: dict[str, str] | None = None,
    binds: list[tuple[Path, str]] | None = None,
    die_with_parent: bool = True,
) -> list[str]:
    """Wrap `command` in bubblewrap, with the rock's layout as its view of `/`.

    `binds` are extra (host path, sandbox path) pairs mounted read-write. A sandbox that must
    outlive the process starting it (a deployment left running) passes `die_with_parent=False`.
    """
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise ProjectError(
            [
                "bubblewrap is not installed: `apt-get install bubblewrap` (it gives the rock's "
                "processes their own view of /flask and /bin without touching the host's /)"
            ]
        )
    argv = [bwrap, "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
    argv += ["--die-with-parent"] if die_with_parent else []
    argv += system_binds() + _rock_binds(rootfs.root)
    argv += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/tmp"]
    argv += ["--perms", "0755", "--tmpfs", "/var"]
    for directory in APP_WRITABLE_DIRS:
        argv += ["--perms", "0777", "--dir", directory]
    argv += create_parents("/var/lib/pebble")
    argv += ["--bind", str(rootfs.pebble_dir), PEBBLE_DIR]
    for path in rootfs.host_paths:
        argv += bind(path, str(path), read_only=True)
    for host, inside in binds or []:
        argv += bind(host, inside)
    argv += ["--cap-add", "ALL"] if os.geteuid() == 0 else []
    argv += ["--clearenv", "--chdir", "/"]
    environment = {"PATH": SANDBOX_PATH, "LANG": "C.UTF-8", "HOME": "/root", **(env or {})}
    for key, value in environment.items():
        argv += ["--setenv", key, value]
    return [*argv, *command]


def system_binds() -> list[str]:
    """The host's /usr and its /lib* links, read-only: the rock's base, in effect."""
    argv = ["--ro-bind", "/usr", "/usr"]
    for name in ("lib", "lib64", "sbin", "lib32", "libx32"):
        host = Path("/", name)
        if host.is_symlink():
            argv += ["--symlink", os.readlink(host), f"/{name}"]
        elif host.is_dir():
            argv += ["--ro-bind", str(host), f"/{name}"]
    return argv


def _rock_binds(root: Path) -> list[str]:
    """The rock's own files over the host's: /bin, accounts, /flask and root-level files."""
    argv = ["--ro-bind", str(root / "bin"), "/bin", "--ro-bind", "/etc", "/etc"]
    argv += ["--ro-bind", str(root / "etc/passwd"), "/etc/passwd"]
    argv += ["--ro-bind", str(root / "etc/group"), "/etc/group"]
    argv += ["--bind", str(root / "flask"), "/flask"]
    for item in sorted(root.iterdir()):
        if item.is_file():  # files the config part dumped at the root, e.g. statsd-mapping.conf
            argv += ["--ro-bind", str(item), f"/{item.name}"]
    return argv


def bind(host: Path, inside: str, read_only: bool = False) -> list[str]:
    """Mount `host` at `inside`, its ancestors created traversable first."""
    flag = "--ro-bind" if read_only else "--bind"
    return [*create_parents(str(Path(inside).parent)), flag, str(host), inside]


def create_parents(path: str) -> list[str]:
    """Create every ancestor of `path` as a world-readable directory (bwrap defaults to 0700)."""
    argv: list[str] = []
    current = Path("/")
    for part in Path(path).parts[1:]:
        current = current / part
        if str(current) in ("/usr", "/etc", "/bin", "/flask", "/proc", "/dev"):
            return argv  # bound from elsewhere: nothing to create inside
        if str(current) != "/tmp":  # a sticky tmpfs already; a checkout may live under it
            argv += ["--perms", "0755", "--dir", str(current)]
    return argv
