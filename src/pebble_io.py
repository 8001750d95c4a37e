"""The few calls that change the workload, in one place.

The charm changes the running workload only through these functions, so that tests and
benchmarks can count starts, restarts, reloads, pushes and execs by wrapping them (the
`ops.testing` Pebble records neither restarts on replan nor signals).
"""

from __future__ import annotations

import logging

import ops

logger = logging.getLogger(__name__)


def replan(container: ops.Container) -> None:
    """Start services that are not running and restart those whose definition changed."""
    logger.info("replanning %s", container.name)
    container.replan()


def reload(container: ops.Container, service: str) -> None:
    """Ask a service to reload its configuration (SIGHUP)."""
    logger.info("sending SIGHUP to %s", service)
    container.send_signal("SIGHUP", service)


def push(container: ops.Container, path: str, content: str, owner: int) -> None:
    """Write a file readable by the workload user, creating its directory."""
    logger.info("writing %s", path)
    container.push(path, content, make_dirs=True, permissions=0o644, user_id=owner, group_id=owner)


def run(container: ops.Container, argv: list[str], *, user: str | None, working_dir: str) -> bool:
    """Run a short command; True when it exits 0, False when it exits non-zero.

    Raises ops.pebble.APIError/ChangeError/TimeoutError when it cannot be run at all.
    """
    logger.info("running %s", argv)
    process = container.exec(argv, user=user, working_dir=working_dir, timeout=60)
    try:
        process.wait_output()
    except ops.pebble.ExecError as exc:
        logger.info("%s exited %s: %s", argv, exc.exit_code, exc.stderr)
        return False
    return True
