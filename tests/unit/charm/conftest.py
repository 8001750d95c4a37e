"""Fixtures for the charm's state-transition tests."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import ops
import pytest
from ops import testing

import pebble_io
from charm import FlaskCharm
from tests.unit.charm.charm_state import Calls


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[Calls]:
    """Record starts, restarts, reloads, pushes and execs; the real calls still happen."""
    record = Calls()
    replan, reload, push, run = pebble_io.replan, pebble_io.reload, pebble_io.push, pebble_io.run

    def spy_replan(container: ops.Container) -> None:
        running = container.get_service("flask").is_running()
        record.log.append("restart" if running else "start")
        replan(container)

    def spy_reload(container: ops.Container, service: str) -> None:
        record.log.append("reload")
        reload(container, service)

    def spy_push(container: ops.Container, path: str, content: str, owner: int) -> None:
        record.log.append("push")
        push(container, path, content, owner)

    def spy_run(container: ops.Container, argv: list[str], **kwargs: object) -> bool:
        record.log.append("exec")
        return run(container, argv, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pebble_io, "replan", spy_replan)
    monkeypatch.setattr(pebble_io, "reload", spy_reload)
    monkeypatch.setattr(pebble_io, "push", spy_push)
    monkeypatch.setattr(pebble_io, "run", spy_run)
    yield record


@pytest.fixture
def ctx() -> testing.Context[FlaskCharm]:
    return testing.Context(FlaskCharm)


@pytest.fixture
def charm_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    """Backs /flask/charm so that the charm's pushed file survives between runs."""
    path = tmp_path / "flask-charm"
    path.mkdir()
    return path
