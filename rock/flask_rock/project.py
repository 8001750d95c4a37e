"""Reading a project: its rockcraft.yaml and the names of its Python requirements."""

import contextlib
from pathlib import Path
from typing import Any

import yaml
from packaging.requirements import InvalidRequirement, Requirement

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from .errors import ProjectError

REQUIREMENTS_TXT = "requirements.txt"
PYPROJECT_TOML = "pyproject.toml"


def load_document(path: Path) -> dict[str, Any]:
    """Load a rockcraft.yaml file as a mapping.

    Raises:
        ProjectError: the directory or file is missing or unreadable, the YAML does not parse,
            or the document is not a mapping.
    """
    if not path.parent.is_dir():
        raise ProjectError(
            [
                f"project directory {path.parent} does not exist: pass the directory that holds "
                f"{path.name}"
            ]
        )
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProjectError(
            [
                f"{path} not found: create it (with 'extensions: [flask-framework]') or pass "
                "the right project directory or file name"
            ]
        ) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ProjectError([f"{path} cannot be read ({err}): make it a readable UTF-8 file"])
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as err:
        detail = " ".join(str(err).split())
        raise ProjectError([f"{path} is not valid YAML ({detail}): fix the syntax"]) from None
    if not isinstance(document, dict):
        raise ProjectError(
            [
                f"{path} must hold a YAML mapping (keys such as name, base, extensions), "
                f"not {type(document).__name__}"
            ]
        )
    return document


def requirement_files(project_dir: Path) -> list[str]:
    """Return which of requirements.txt and pyproject.toml exist in the project."""
    return [name for name in (REQUIREMENTS_TXT, PYPROJECT_TOML) if (project_dir / name).exists()]


def _names_from_lines(lines: list[str]) -> set[str]:
    """Return the lower-cased names of the PEP 508 lines; lines that do not parse are skipped.

    Like Rockcraft, no pip syntax is interpreted: ``-r other.txt``, options and lines with
    comments simply do not parse and are ignored.
    """
    names: set[str] = set()
    for line in lines:
        with contextlib.suppress(InvalidRequirement):
            names.add(Requirement(line).name.lower())
    return names


def _requirements_txt_names(path: Path) -> set[str]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        raise ProjectError([f"{path.name} cannot be read ({err}): make it a readable file"])
    return _names_from_lines(text.splitlines())


def pyproject_dependencies(path: Path) -> list[str]:
    """The `[project].dependencies` of a pyproject.toml; ProjectError when malformed."""
    try:
        with path.open("rb") as stream:
            data = tomllib.load(stream)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise ProjectError([f"{path.name} cannot be parsed as TOML ({err}): fix its syntax"])
    project = data.get("project", {})
    if not isinstance(project, dict):
        raise ProjectError([f"{path.name}: [project] must be a table; fix or remove it"])
    dependencies = project.get("dependencies", [])
    if not isinstance(dependencies, list) or not all(isinstance(d, str) for d in dependencies):
        raise ProjectError(
            [
                f"{path.name}: [project].dependencies must be a list of requirement strings, "
                'such as ["flask>=3"]'
            ]
        )
    return dependencies


def read_requirement_names(project_dir: Path) -> set[str]:
    """Return the lower-cased requirement names from requirements.txt and pyproject.toml.

    Either file may be missing; pyproject.toml contributes its ``[project].dependencies``.

    Raises:
        ProjectError: a file exists but cannot be read, or pyproject.toml is malformed.
    """
    names: set[str] = set()
    problems: list[str] = []
    requirements_txt = project_dir / REQUIREMENTS_TXT
    pyproject = project_dir / PYPROJECT_TOML
    try:
        if requirements_txt.exists():
            names |= _requirements_txt_names(requirements_txt)
    except ProjectError as err:
        problems += err.problems
    try:
        if pyproject.exists():
            names |= _names_from_lines(pyproject_dependencies(pyproject))
    except ProjectError as err:
        problems += err.problems
    if problems:
        raise ProjectError(problems)
    return names
