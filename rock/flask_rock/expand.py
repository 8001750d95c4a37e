"""Validation of a flask-framework project and its expansion into a complete rockcraft.yaml.

Public API: ``check_project``, ``expand_project``, ``is_flask_framework`` and
``CONFIG_FILES_DIR``.
"""

from pathlib import Path
from typing import Any

from .bases import EXTENSION, bare_python_version, base_problems
from .bounded import short_repr
from .entrypoint import find_entrypoint
from .errors import ProjectError
from .install_app import is_valid_prime_entry
from .merge import merge_document, merge_value
from .project import REQUIREMENTS_TXT, load_document, read_requirement_names, requirement_files
from .rules import (
    coerce_scalars,
    is_valid_name,
    name_problems,
    run_user_problems,
    stage_package_problems,
)
from .snippet import ProjectFacts, root_snippet, stage_packages

CONFIG_FILES_DIR: Path = Path(__file__).parent / "files"

PART_PREFIX = f"{EXTENSION}/"
INSTALL_APP = f"{PART_PREFIX}install-app"
_MAPPING_KEYS = ("parts", "services")


def is_flask_framework(document: dict) -> bool:
    """Return whether the document lists ``flask-framework`` under ``extensions``."""
    extensions = document.get("extensions")
    return isinstance(extensions, list) and EXTENSION in extensions


def _mapping(document: dict[str, Any], *keys: str) -> dict[str, Any]:
    """Return the mapping at ``keys`` (``{}`` when absent or null); shape checked beforehand."""
    value: Any = document
    for key in keys:
        value = value.get(key) or {}
    return value


def _extensions_problems(document: dict[str, Any]) -> list[str]:
    extensions = document.get("extensions")
    if not isinstance(extensions, list) or EXTENSION not in extensions:
        return [f"extensions: list {EXTENSION} (add 'extensions: [{EXTENSION}]')"]
    others = [e for e in extensions if e != EXTENSION]
    if others:
        listed = ", ".join(_quoted(e) for e in others[:5])
        return [f"extensions: only {EXTENSION} is supported here; remove {listed}"]
    return []


def _quoted(value: Any) -> str:
    """A short string as is, anything else briefly quoted."""
    return value if isinstance(value, str) and len(value) <= 60 else short_repr(value)


def _type_problems(document: dict[str, Any]) -> list[str]:
    """Return problems with value types the expansion relies on."""
    problems = [
        f"{key} must be a mapping, not {type(document[key]).__name__}"
        for key in _MAPPING_KEYS
        if document.get(key) is not None and not isinstance(document[key], dict)
    ]
    if problems:
        return problems
    # Values the extension merges into must be mappings, or the user's value would win.
    ours = [("services", "flask")] + [
        ("parts", key) for key in _mapping(document, "parts") if str(key).startswith(PART_PREFIX)
    ]
    for parent, key in ours:
        value = _mapping(document, parent).get(key)
        if value is not None and not isinstance(value, dict):
            problems.append(
                f"{parent}.{_quoted(key)} must be a mapping, not {type(value).__name__}"
            )
    return problems


def _requirements(project_dir: Path) -> tuple[set[str], list[str]]:
    if not requirement_files(project_dir):
        return set(), [
            f"missing a requirements file in {project_dir}: add requirements.txt or "
            "pyproject.toml (with [project].dependencies) listing flask"
        ]
    try:
        names = read_requirement_names(project_dir)
    except ProjectError as err:
        return set(), err.problems
    if "flask" not in names:
        return names, [
            "flask is not among the project's requirements: add a 'flask' line to "
            "requirements.txt or 'flask' to [project].dependencies in pyproject.toml"
        ]
    return names, []


def _user_command(document: dict[str, Any]) -> bool:
    return bool(_mapping(document, "services", "flask").get("command"))


def _entrypoint(project_dir: Path, document: dict[str, Any]) -> tuple[str | None, list[str]]:
    if _user_command(document):
        return None, []
    # An invalid name is reported on its own; it never becomes a path we read.
    name = document.get("name") if is_valid_name(document.get("name")) else None
    try:
        return find_entrypoint(project_dir, name), []
    except ProjectError as err:
        return None, err.problems


def _user_prime(document: dict[str, Any]) -> tuple[list[str], list[str]]:
    prime = _mapping(document, "parts", INSTALL_APP).get("prime") or []
    where = f"parts.{INSTALL_APP}.prime"
    if not isinstance(prime, list):
        return [], [f"{where} must be a list of paths such as flask/app/app.py"]
    bad = [
        entry for entry in prime if not isinstance(entry, str) or not is_valid_prime_entry(entry)
    ]
    return prime, [
        f"{where} entry {short_repr(entry)} must start with flask/app (or -flask/app to exclude), "
        "e.g. flask/app/app.py"
        for entry in bad
    ]


def _stage_package_problems(document: dict[str, Any], python_version: str | None) -> list[str]:
    """Mixed packages and slices in any part, the extension's stage-packages included."""
    ours = stage_packages(document["base"] == "bare", python_version or "3")
    user_parts = _mapping(document, "parts")
    names = dict.fromkeys([*ours, *user_parts])
    merged = {
        name: {"stage-packages": merge_value(_stage_list(user_parts.get(name)), ours.get(name))}
        for name in names
    }
    return stage_package_problems(merged)


def _stage_list(part: Any) -> Any:
    return part.get("stage-packages") if isinstance(part, dict) else None


def _analyse(project_dir: Path, document: dict[str, Any]) -> ProjectFacts:
    """Validate the project and return its facts, or raise ProjectError with every problem."""
    # Each gate stops early: later checks rely on what the earlier ones establish.
    for gate in (_extensions_problems, base_problems, _type_problems):
        problems = gate(document)
        if problems:
            raise ProjectError(problems)
    names, problems = _requirements(project_dir)
    entrypoint, entrypoint_problems = _entrypoint(project_dir, document)
    python_version, build_base_problems = bare_python_version(document)
    user_prime, prime_problems = _user_prime(document)
    problems += entrypoint_problems + build_base_problems + prime_problems
    problems += name_problems(document) + run_user_problems(document)
    problems += coerce_scalars(document)
    problems += _stage_package_problems(document, python_version)
    if problems:
        raise ProjectError(problems)
    return ProjectFacts(
        project_dir=project_dir,
        base=document["base"],
        python_version=python_version,
        entrypoint=entrypoint,
        worker="gevent" if "gevent" in names else "sync",
        user_prime=user_prime,
        has_requirements_txt=(project_dir / REQUIREMENTS_TXT).exists(),
    )


def check_project(project_dir: Path, rockcraft_file: str = "rockcraft.yaml") -> list[str]:
    """Return every problem that stops the project from being expanded (empty when fine)."""
    try:
        expand_project(project_dir, rockcraft_file)
    except ProjectError as err:
        return err.problems
    return []


def expand_project(
    project_dir: Path,
    rockcraft_file: str = "rockcraft.yaml",
    config_files_source: str | None = None,
) -> dict:
    """Return the complete rockcraft.yaml document Rockcraft's flask-framework would produce.

    Args:
        project_dir: the project root, holding ``rockcraft_file`` and the Flask sources.
        rockcraft_file: the file name of the short-form rockcraft.yaml inside ``project_dir``.
        config_files_source: the ``source`` of the config-files part; defaults to the
            directory shipped with this package.

    Raises:
        ProjectError: listing every problem found.
    """
    project_dir = Path(project_dir)
    document = load_document(project_dir / rockcraft_file)
    facts = _analyse(project_dir, document)
    source = config_files_source if config_files_source is not None else str(CONFIG_FILES_DIR)
    user_document = {key: value for key, value in document.items() if key != "extensions"}
    return merge_document(user_document, root_snippet(facts, source))
