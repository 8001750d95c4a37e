"""Fixtures building throw-away flask-framework projects and fake run-time tools."""

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.rock.flask_rock_helpers import FLASK_APP, ProjectFactory, short_form, write_files


@pytest.fixture
def make_project(tmp_path: Path) -> ProjectFactory:
    """Return a factory writing a project into a fresh directory.

    ``files`` defaults to a working app.py + requirements.txt; ``document`` (a dict, or raw
    text) defaults to ``short_form()``.
    """
    counter = iter(range(1000))

    def factory(
        files: dict[str, str | None] | None = None,
        document: dict[str, Any] | str | None = None,
    ) -> Path:
        root = tmp_path / f"project{next(counter)}"
        root.mkdir()
        if files is None:
            files = {"app.py": FLASK_APP, "requirements.txt": "flask\n"}
        write_files(root, files)
        if document is None:
            document = short_form()
        text = document if isinstance(document, str) else yaml.safe_dump(document, sort_keys=False)
        (root / "rockcraft.yaml").write_text(text, encoding="utf-8")
        return root

    return factory


@pytest.fixture(autouse=True)
def _experimental_switch_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests start with Rockcraft's experimental-extensions switch off, whatever the shell has."""
    monkeypatch.delenv("ROCKCRAFT_ENABLE_EXPERIMENTAL_EXTENSIONS", raising=False)


@pytest.fixture
def fake_venv(tmp_path: Path) -> Path:
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / "pyvenv.cfg").write_text(f"home = {Path(sys.base_prefix) / 'bin'}\n")
    return venv


@pytest.fixture
def fake_binaries(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "tools").mkdir()
    binaries = {name: tmp_path / "tools" / name for name in ("pebble", "statsd_exporter")}
    for path in binaries.values():
        path.write_text("#!/bin/sh\n")
    return binaries
