"""The ``flask-framework/install-app`` part: which project files go to ``/flask/app``."""

import fnmatch
import posixpath
import re
from pathlib import Path
from typing import Any

APP_DIR = "flask/app"
DAEMON_ID = 584792

# Files and directories shipped by default when they exist, in this order.
DEFAULT_PRIME_NAMES = (
    "app",
    "app.py",
    "main.py",
    "src",
    "migrate",
    "migrate.sh",
    "migrate.py",
    "static",
    "templates",
)
# Top-level entries never copied in exclude mode.
SKIPPED_ENTRIES = ("node_modules", ".git", ".yarn", "*.rock")

# A literal prefix check, as Rockcraft does: "flask/application.py" passes too.
_PRIME_PREFIX = re.compile(r"-? *flask/app")


def is_valid_prime_entry(entry: str) -> bool:
    """Whether a user ``prime`` entry starts like ``flask/app`` or ``-flask/app``."""
    return _PRIME_PREFIX.match(entry) is not None


def effective_prime(project_dir: Path, user_prime: list[str]) -> list[str]:
    """Return the user's prime list, or else the default entries that exist in the project."""
    if user_prime:
        return list(user_prime)
    return [f"{APP_DIR}/{name}" for name in DEFAULT_PRIME_NAMES if (project_dir / name).exists()]


def is_include_mode(prime: list[str]) -> bool:
    """Whether the prime list names what to ship (its first entry is not an exclusion)."""
    return bool(prime) and bool(prime[0]) and not prime[0].startswith("-")


def project_entries(project_dir: Path) -> list[str]:
    """Return the project's top-level entries (hidden ones too) in code-point order."""
    names = sorted(entry.name for entry in project_dir.iterdir())
    return [n for n in names if not any(fnmatch.fnmatchcase(n, p) for p in SKIPPED_ENTRIES)]


def _organize(project_dir: Path, prime: list[str]) -> dict[str, str]:
    if is_include_mode(prime):
        # Keys are relative to flask/app, computed lexically as os.path.relpath does.
        return {posixpath.relpath(entry, APP_DIR): entry for entry in prime}
    return {name: f"{APP_DIR}/{name}" for name in project_entries(project_dir)}


def install_app_part(project_dir: Path, user_prime: list[str]) -> dict[str, Any]:
    """Return the extension's install-app part for a validated user prime list."""
    prime = effective_prime(project_dir, user_prime)
    organize = _organize(project_dir, prime)
    return {
        "plugin": "dump",
        "source": ".",
        "organize": organize,
        "stage": list(organize.values()),
        "prime": prime,
        "permissions": [{"owner": DAEMON_ID, "group": DAEMON_ID}],
    }
