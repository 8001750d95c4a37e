"""Local servers that come from PyPI (moto's S3, aiosmtpd), run from `.cache/servers-venv`.

`scripts/bootstrap` installs that virtualenv from `juju_local/servers-requirements.txt` (every
version and hash pinned). Like the database servers, each runs as `nobody` inside a mount
namespace that shows its own directory at `/mnt/db`; the virtualenv and
`servers_venv_main.py` are bound read-only at `/mnt/venv` and `/mnt/bin`, so no directory of
the repository need be readable by `nobody`.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from juju_local.charm_stage import REPO
from juju_local.databases import INSIDE, NOBODY, DatabaseError, Server

VENV = REPO / ".cache" / "servers-venv"
MAIN = Path(__file__).with_name("servers_venv_main.py")
VENV_INSIDE, BIN_INSIDE = "/mnt/venv", "/mnt/bin"


def python() -> Path:
    """The virtualenv's interpreter; a clear error when bootstrap has not installed it."""
    interpreter = VENV / "bin" / "python"
    if not interpreter.exists():
        raise DatabaseError(
            f"{VENV} is missing: run scripts/bootstrap (it installs moto and aiosmtpd there)"
        )
    return interpreter


def run_main(argv: list[str], request: dict, timeout: float = 60) -> dict:
    """Run `servers_venv_main.py` outside the sandbox (a client step): JSON in, JSON out."""
    result = subprocess.run(
        [str(python()), str(MAIN), *argv],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise DatabaseError(f"{argv[0]} failed: {result.stderr.strip()[-500:]}")
    return json.loads(result.stdout)


class VenvServer(Server):
    """A server started as `python servers_venv_main.py KIND PORT /mnt/db` in the venv."""

    def confined(self, argv: list[str]) -> list[str]:
        """As `nobody` (when root), its directory at /mnt/db, the venv and script read-only."""
        binds = [
            "--bind", str(self.dir), INSIDE,
            "--ro-bind", str(VENV), VENV_INSIDE,
            "--ro-bind", str(MAIN.parent), BIN_INSIDE,
        ]  # fmt: skip
        if os.getuid() != 0:
            return ["bwrap", "--dev-bind", "/", "/", *binds, *argv]
        drop = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]
        return ["bwrap", "--dev-bind", "/", "/", "--tmpfs", "/mnt", *binds, "--", *drop, *argv]

    def command(self, port: int) -> list[str]:
        """The venv's Python (found through /mnt/venv) running our server script."""
        python()  # a clear error when the venv is missing
        script = f"{BIN_INSIDE}/{MAIN.name}"
        return [f"{VENV_INSIDE}/bin/python", script, self.kind, str(port), INSIDE]
