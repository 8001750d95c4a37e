"""Which flask-framework extension a project gets, from its base and build-base.

Rockcraft ships two: the stable one for ``bare``, ``ubuntu@22.04`` (or the deprecated
``ubuntu:22.04``) and ``ubuntu@24.04``, and an experimental one for ``ubuntu@26.04``. The
*effective* base (the build-base when set, else the base; ``devel`` meaning the newest) picks
one, and that one must support the project's ``base``. So ``build-base: devel`` with
``base: ubuntu@24.04`` is refused, as is any build-base that selects the other extension.
The experimental extension needs Rockcraft's switch, the environment variable below set to
any non-empty value.
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .bounded import short_repr

EXTENSION = "flask-framework"
EXPERIMENTAL_SWITCH = "ROCKCRAFT_ENABLE_EXPERIMENTAL_EXTENSIONS"
STABLE_BASES = ("bare", "ubuntu@22.04", "ubuntu:22.04", "ubuntu@24.04")
EXPERIMENTAL_BASES = ("ubuntu@26.04",)
# The build-bases Rockcraft's project accepts (ubuntu:24.04 is not one; ubuntu:22.04 is a
# deprecated spelling of ubuntu@22.04).
BUILD_BASES = (
    "ubuntu@20.04",
    "ubuntu:20.04",
    "ubuntu@22.04",
    "ubuntu:22.04",
    "ubuntu@24.04",
    "ubuntu@25.10",
    "ubuntu@26.04",
    "devel",
)
# For a bare base, the rock's Python comes from the build-base.
BARE_BUILD_BASE_PYTHON = {"ubuntu@22.04": "3.10", "ubuntu:22.04": "3.10", "ubuntu@24.04": "3.12"}


@dataclass(frozen=True)
class Selection:
    """The extension a project selects: the bases it supports and whether it is experimental."""

    bases: tuple[str, ...]
    experimental: bool


STABLE = Selection(STABLE_BASES, experimental=False)
EXPERIMENTAL = Selection(EXPERIMENTAL_BASES, experimental=True)


def effective_base(document: Mapping[str, Any]) -> str | None:
    """The base selecting the extension: build-base, else base, normalised to ``name@series``."""
    value = document.get("build-base") or document.get("base")
    if not isinstance(value, str) or not value:
        return None
    if value == "devel":
        return "ubuntu@devel"
    if value.count(":") == 1 and "@" not in value:
        value = value.replace(":", "@")
    return value if value.count("@") == 1 else None


def select_extension(document: Mapping[str, Any]) -> Selection:
    """The stable extension when the effective base is one of its bases, else the experimental.

    A bare base without build-base counts as stable: the missing build-base is its problem.
    """
    if document.get("base") == "bare" and not document.get("build-base"):
        return STABLE
    return STABLE if effective_base(document) in STABLE_BASES else EXPERIMENTAL


def experimental_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether Rockcraft's experimental-extensions switch is on (any non-empty value)."""
    return bool((os.environ if environ is None else environ).get(EXPERIMENTAL_SWITCH))


def _choices() -> str:
    return f"{', '.join(STABLE_BASES)}, or {EXPERIMENTAL_BASES[0]} (experimental)"


def _build_base_problems(document: Mapping[str, Any]) -> list[str]:
    build_base = document.get("build-base")
    if build_base is None or build_base in BUILD_BASES:
        return []
    hint = " (write ubuntu@24.04)" if build_base == "ubuntu:24.04" else ""
    return [
        f"build-base {short_repr(build_base)} is not a build-base Rockcraft accepts{hint}: use "
        f"one of {', '.join(BUILD_BASES)}, or remove it"
    ]


def base_problems(
    document: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> list[str]:
    """Problems with the base, build-base and extension selection (empty when usable)."""
    base = document.get("base")
    if base is None:
        return [f"base is missing: set it to one of {_choices()}"]
    problems = _build_base_problems(document)
    if problems:
        return problems
    selection = select_extension(document)
    if base not in selection.bases:
        return [_unsupported(document, selection)]
    if selection.experimental and not experimental_enabled(environ):
        return [
            f"base {base!r} uses the experimental {EXTENSION} extension: set "
            f"{EXPERIMENTAL_SWITCH}=1 in the environment to enable it (as Rockcraft requires)"
        ]
    return []


def _unsupported(document: Mapping[str, Any], selection: Selection) -> str:
    base = document["base"]
    build_base = document.get("build-base")
    if base == "bare":
        return (
            f"base 'bare' with build-base {build_base!r} is not supported: the "
            f"{EXTENSION} extension for bare rocks needs build-base "
            f"{', '.join(BARE_BUILD_BASE_PYTHON)}"
        )
    if build_base is not None and base in STABLE_BASES + EXPERIMENTAL_BASES:
        return (
            f"base {base!r} with build-base {build_base!r} is not supported: that build-base "
            f"selects the {EXTENSION} extension for {', '.join(selection.bases)}; set a "
            f"build-base of the same Ubuntu series as the base, or remove it"
        )
    hint = " (write ubuntu@24.04)" if base == "ubuntu:24.04" else ""
    return (
        f"base {short_repr(base)} is not supported by the {EXTENSION} extension{hint}: use one "
        f"of {_choices()}"
    )


def bare_python_version(document: Mapping[str, Any]) -> tuple[str | None, list[str]]:
    """For a bare base, the Python version its build-base brings; else None."""
    if document.get("base") != "bare":
        return None, []
    build_base = document.get("build-base")
    if build_base is None:
        choices = ", ".join(BARE_BUILD_BASE_PYTHON)
        return None, [f"build-base is missing: base bare needs build-base set to one of {choices}"]
    # base_problems has already refused any other build-base for bare.
    return BARE_BUILD_BASE_PYTHON[build_base], []
