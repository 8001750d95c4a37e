"""WSGI entrypoint discovery: read candidate files with ``ast``, never import them."""

import ast
from pathlib import Path, PurePosixPath

from .bounded import MAX_SOURCE_BYTES, read_regular_file
from .errors import ProjectError

APP_NAMES = ("app", "application")
FACTORY_NAMES = ("create_app", "make_app")
_ROOT_FILES = ("app.py", "main.py")
_PACKAGE_FILES = ("__init__.py", "app.py", "main.py")

NOT_FOUND = "Missing WSGI entrypoint in default search locations"


def package_dir_name(rock_name: str) -> str:
    """Return the package directory searched for a rock called ``rock_name``."""
    return rock_name.replace("-", "_").lower()


def candidate_paths(rock_name: str | None) -> list[str]:
    """Return the candidate files, relative to the project, in search order."""
    dirs = ["app", "src"]
    if rock_name is not None:
        dirs.append(package_dir_name(rock_name))
    return [*_ROOT_FILES, *(f"{d}/{f}" for d in dirs for f in _PACKAGE_FILES)]


def module_path(candidate: str) -> str:
    """Return the dotted module for a candidate file (``app/__init__.py`` -> ``app``)."""
    parts = [p.removesuffix(".py") for p in PurePosixPath(candidate).parts if p != "__init__.py"]
    return ".".join(parts)


def _import_binds(node: ast.ImportFrom) -> set[str]:
    # `from m import x as y` binds y; a star import binds nothing we can see.
    return {alias.asname or alias.name for alias in node.names}


def top_level_bindings(tree: ast.Module) -> set[str]:
    """Return names bound at module level by plain assignments or ``from ... import``.

    Tuple, annotated and augmented assignments and ``import x`` deliberately do not count:
    Rockcraft only recognises these two forms.
    """
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.ImportFrom):
            names |= _import_binds(node)
    return names


def top_level_functions(tree: ast.Module) -> set[str]:
    """Return the names of module-level ``def`` statements (``async def`` excluded)."""
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}


def _parse(path: Path) -> ast.Module:
    """Parse a candidate; any failure is reported as Rockcraft does for a syntax error."""
    try:
        source = read_regular_file(path, MAX_SOURCE_BYTES).decode("utf-8")
        return ast.parse(source, filename=str(path))
    except SyntaxError as err:
        reason = err.msg
    except (ValueError, RecursionError, MemoryError) as err:
        reason = str(err) or type(err).__name__
    raise ProjectError(
        [
            f"error parsing {path.name}: {reason} (in {path}); fix the Python syntax, or set "
            "services.flask.command in rockcraft.yaml"
        ]
    )


def _first_match(found: set[str], wanted: tuple[str, ...]) -> str | None:
    return next((name for name in wanted if name in found), None)


def find_entrypoint(project_dir: Path, rock_name: str | None) -> str:
    """Return the gunicorn entrypoint, e.g. ``app:app`` or ``src.main:create_app()``.

    Candidates are parsed lazily in order, so a syntax error only matters in a file reached
    before the entrypoint is found.

    Raises:
        ProjectError: a parsed candidate has a syntax error, or nothing is found.
    """
    existing = [c for c in candidate_paths(rock_name) if (project_dir / c).is_file()]
    trees: dict[str, ast.Module] = {}
    for candidate in existing:
        trees[candidate] = _parse(project_dir / candidate)
        name = _first_match(top_level_bindings(trees[candidate]), APP_NAMES)
        if name:
            return f"{module_path(candidate)}:{name}"
    for candidate in existing:
        name = _first_match(top_level_functions(trees[candidate]), FACTORY_NAMES)
        if name:
            return f"{module_path(candidate)}:{name}()"
    raise ProjectError(
        [
            f"{NOT_FOUND}: define a top-level 'app' (or 'application', or a create_app()/"
            "make_app() factory) in app.py or main.py, or in __init__.py, app.py or main.py under "
            "app/, src/ or the directory named after the rock; or set services.flask.command in "
            "rockcraft.yaml"
        ]
    )
