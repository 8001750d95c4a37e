"""Rules of Rockcraft's project model that the expansion must honour.

Rockcraft validates the expanded document with its project model; a project the model refuses
never builds, so ``check`` refuses it too, and ``expand`` prints what the model would hold:

- the name: lower-case ASCII letters, digits and hyphens, at most 40 characters, at least one
  letter, no leading, trailing or doubled hyphen (so it can never be a path such as ``../x``);
- scalars where strings are expected are coerced: ``version: 1.0`` is ``'1.0'``, an
  environment value ``8000`` is ``'8000'``; a scalar ``build-on``/``build-for`` is a list;
- ``run-user`` is set by the extension, so a user's own ``run-user`` is refused;
- one part's ``stage-packages`` are all Debian packages or all chisel slices
  (``package_slice``), never both.
"""

from typing import Any

from .bounded import short_repr

MAX_NAME_LENGTH = 40
_NAME_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
_ENVIRONMENT_OWNERS = ("services", "checks")


def name_problems(document: dict[str, Any]) -> list[str]:
    """Problems with the project ``name`` (empty when Rockcraft accepts it)."""
    if "name" not in document or document["name"] is None:
        return ["name is missing: set it to the rock's name, e.g. my-flask-app"]
    name = document["name"]
    if is_valid_name(name):
        return []
    return [
        f"name {short_repr(name)} is not a valid rock name: use lower-case letters, digits and "
        f"hyphens (at most {MAX_NAME_LENGTH}), with at least one letter and no leading, "
        "trailing or doubled hyphen, e.g. my-flask-app"
    ]


def is_valid_name(name: object) -> bool:
    """Whether ``name`` is a project name Rockcraft accepts."""
    return (
        isinstance(name, str)
        and 0 < len(name) <= MAX_NAME_LENGTH
        and set(name) <= _NAME_CHARACTERS
        and any(character.isalpha() for character in name)
        and not name.startswith("-")
        and not name.endswith("-")
        and "--" not in name
    )


def run_user_problems(document: dict[str, Any]) -> list[str]:
    """The extension sets ``run-user: _daemon_``; Rockcraft refuses a second one."""
    if "run-user" not in document:
        return []
    return [
        "run-user: the flask-framework extension sets run-user: _daemon_ itself; remove "
        "run-user from rockcraft.yaml"
    ]


def _label(key: object) -> str:
    """A key as it reads in a message: plain when a short string, else briefly quoted."""
    return key if isinstance(key, str) and len(key) <= 60 else short_repr(key)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _coerce_environment(where: str, environment: Any) -> tuple[Any, list[str]]:
    """Numbers become strings; any other non-string value is a problem."""
    if environment is None:
        return None, []
    if not isinstance(environment, dict):
        return environment, [f"{where} must be a mapping of names to string values"]
    coerced: dict[Any, Any] = {}
    problems = []
    for key, value in environment.items():
        if _is_number(value):
            value = str(value)
        elif not isinstance(value, str):
            problems.append(
                f"{where}.{_label(key)} must be a string, not {short_repr(value)}: quote it"
            )
        coerced[key] = value
    return coerced, problems


def _coerce_nested_environments(document: dict[str, Any]) -> list[str]:
    """Coerce the environment of every service and check, in place."""
    problems: list[str] = []
    for owner in _ENVIRONMENT_OWNERS:
        entries = document.get(owner)
        if not isinstance(entries, dict):
            continue
        for name, entry in entries.items():
            if not isinstance(entry, dict):
                continue
            scopes = [(f"{owner}.{_label(name)}", entry)]
            if owner == "checks" and isinstance(entry.get("exec"), dict):
                scopes = [(f"{owner}.{_label(name)}.exec", entry["exec"])]
            for where, scope in scopes:
                if "environment" in scope:
                    scope["environment"], found = _coerce_environment(
                        f"{where}.environment", scope["environment"]
                    )
                    problems += found
    return problems


def _coerce_platforms(document: dict[str, Any]) -> None:
    platforms = document.get("platforms")
    if not isinstance(platforms, dict):
        return
    for platform in platforms.values():
        if not isinstance(platform, dict):
            continue
        for key in ("build-on", "build-for"):
            if isinstance(platform.get(key), str):
                platform[key] = [platform[key]]


def coerce_scalars(document: dict[str, Any]) -> list[str]:
    """Coerce the document's scalars in place as Rockcraft's model does; return problems."""
    problems: list[str] = []
    version = document.get("version")
    if isinstance(version, (dict, list)):
        problems.append(f"version must be a string such as '1.0', not {short_repr(version)}")
    elif version is not None and not isinstance(version, str):
        document["version"] = str(version)
    for key in ("title", "summary", "description"):
        if _is_number(document.get(key)):
            document[key] = str(document[key])
    if "environment" in document:
        document["environment"], found = _coerce_environment(
            "environment", document["environment"]
        )
        problems += found
    problems += _coerce_nested_environments(document)
    _coerce_platforms(document)
    return problems


def _is_slice(name: str) -> bool:
    return "_" in name


def stage_package_problems(parts: dict[str, Any]) -> list[str]:
    """Parts whose stage-packages mix Debian packages with chisel slices."""
    problems = []
    for name, part in parts.items():
        listed = part.get("stage-packages") if isinstance(part, dict) else None
        if not isinstance(listed, list):
            continue
        names = [item for item in listed if isinstance(item, str) and item]
        slices = [item for item in names if _is_slice(item)]
        packages = [item for item in names if not _is_slice(item)]
        if slices and packages:
            problems.append(
                f"parts.{_label(name)}.stage-packages mixes packages "
                f"{short_repr(packages)} with chisel slices {short_repr(slices)}: Rockcraft "
                "cannot install both in one part; list the packages in a part of their own"
            )
    return problems
