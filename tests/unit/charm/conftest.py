"""Fixtures for the charm's state-transition tests."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

import ops
import pytest
from ops import testing

import app_health
import pebble_io
from charm import FlaskCharm
from pebble_io import ScriptRun
from tests.unit.charm.charm_state import Calls

_PROBE = app_health.probe


@pytest.fixture(autouse=True)
def app_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The started app answers the charm's HTTP probe at once, without an exec to mock."""
    monkeypatch.setattr(app_health, "probe", lambda *_args, **_kwargs: True)


@pytest.fixture
def real_probe(app_answers: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The probe runs as an exec in the container (mock it with `testing.Exec`)."""
    monkeypatch.setattr(app_health, "probe", _PROBE)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[Calls]:
    """Record starts, restarts, reloads, pushes, execs and migrations; the real calls happen."""
    record = Calls()
    replan, reload, push, run = pebble_io.replan, pebble_io.reload, pebble_io.push, pebble_io.run
    run_script = pebble_io.run_script

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

    def spy_run_script(container: ops.Container, argv: list[str], **kwargs: Any) -> ScriptRun:
        record.log.append("migrate")
        return run_script(container, argv, **kwargs)

    monkeypatch.setattr(pebble_io, "run", spy_run)
    monkeypatch.setattr(pebble_io, "run_script", spy_run_script)
    yield record


@pytest.fixture
def ctx() -> testing.Context[FlaskCharm]:
    return testing.Context(FlaskCharm)


@pytest.fixture
def charm_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    """Backs /flask/charm so that the charm's pushed file survives between runs."""
    path = tmp_path / "flask" / "charm"
    path.mkdir(parents=True)
    return path
