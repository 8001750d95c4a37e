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

from .bounded import read_regular_text
from .errors import ProjectError

REQUIREMENTS_TXT = "requirements.txt"
PYPROJECT_TOML = "pyproject.toml"


# A real rockcraft.yaml holds a few hundred values, a few levels deep. An alias bomb shares
# nodes to describe billions of values in a few hundred bytes; a recursive alias is endless.
MAX_DOCUMENT_VALUES = 100_000
MAX_DOCUMENT_DEPTH = 50

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _measure(value: Any, depth: int, seen: dict[int, tuple[int, int]]) -> tuple[int, int]:
    """Return (values once aliases are expanded, nesting height) of a loaded YAML value.

    Shared (aliased) containers are measured once and counted at every use, so an alias bomb
    costs as much to measure as its file is long. ``depth`` cuts off recursive aliases.
    """
    if not isinstance(value, (dict, list)):
        return 1, 0
    if id(value) in seen:
        count, height = seen[id(value)]
        if depth + height > MAX_DOCUMENT_DEPTH:
            raise _TooDeepError
        return count, height
    if depth > MAX_DOCUMENT_DEPTH:
        raise _TooDeepError
    children = [*value.keys(), *value.values()] if isinstance(value, dict) else value
    count, height = 1, 0
    for child in children:
        child_count, child_height = _measure(child, depth + 1, seen)
        count += child_count
        height = max(height, child_height + 1)
        if count > MAX_DOCUMENT_VALUES:
            break
    seen[id(value)] = (count, height)
    return count, height


class _TooDeepError(Exception):
    pass


def check_document_bounds(path: Path, document: Any) -> None:
    """Refuse a document too large or too deep once its YAML aliases are expanded.

    Raises:
        ProjectError: naming the file and the limit.
    """
    try:
        count, _ = _measure(document, 0, {})
    except _TooDeepError:
        raise ProjectError(
            [
                f"{path} nests values more than {MAX_DOCUMENT_DEPTH} levels deep (a recursive "
                "YAML alias?): write the values out plainly"
            ]
        ) from None
    if count > MAX_DOCUMENT_VALUES:
        raise ProjectError(
            [
                f"{path} expands to more than {MAX_DOCUMENT_VALUES} values (YAML aliases "
                "repeating one another?): write the values out plainly"
            ]
        )


def load_document(path: Path) -> dict[str, Any]:
    """Load a rockcraft.yaml file as a mapping.

    Raises:
        ProjectError: the directory or file is missing, unreadable, not a regular file or too
            large, the YAML does not parse or expands beyond bounds, or it is not a mapping.
    """
    if not path.parent.is_dir():
        raise ProjectError(
            [
                f"project directory {path.parent} does not exist: pass the directory that holds "
                f"{path.name}"
            ]
        )
    try:
        text = read_regular_text(path)
    except FileNotFoundError:
        raise ProjectError(
            [
                f"{path} not found: create it (with 'extensions: [flask-framework]') or pass "
                "the right project directory or file name"
            ]
        ) from None
    try:
        document = yaml.load(text, Loader=_Loader)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as err:
        detail = " ".join(str(err).split())
        raise ProjectError([f"{path} is not valid YAML ({detail}): fix the syntax"]) from None
    except RecursionError:
        raise ProjectError(
            [f"{path} nests values too deeply to parse: write the values out plainly"]
        ) from None
    check_document_bounds(path, document)
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
    text = read_regular_text(path, errors="replace")
    return _names_from_lines(text.splitlines())


def pyproject_dependencies(path: Path) -> list[str]:
    """The `[project].dependencies` of a pyproject.toml; ProjectError when malformed."""
    try:
        data = tomllib.loads(read_regular_text(path))
    except tomllib.TOMLDecodeError as err:
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
