"""Helpers shared by the flask_rock tests."""

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

# make_project(files=None, document=None) -> the project directory.
ProjectFactory = Callable[..., Path]

FLASK_APP = "from flask import Flask\n\napp = Flask(__name__)\n"


def short_form(**overrides: Any) -> dict[str, Any]:
    """Return a minimal short-form rockcraft.yaml document, with keys overridden or added."""
    document: dict[str, Any] = {
        "name": "my-app",
        "base": "ubuntu@22.04",
        "version": "0.1",
        "summary": "A Flask app",
        "description": "A Flask app.",
        "platforms": {"amd64": None},
        "extensions": ["flask-framework"],
    }
    document.update(overrides)
    return {key: value for key, value in document.items() if value is not ...}


def write_files(root: Path, files: Mapping[str, str | None]) -> None:
    """Write files relative to ``root``; a None content makes a directory."""
    for relative, content in files.items():
        path = root / relative
        if content is None:
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
