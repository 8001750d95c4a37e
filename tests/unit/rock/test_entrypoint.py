"""WSGI entrypoint discovery: candidates, passes, what counts as a binding."""

from collections.abc import Mapping
from pathlib import Path

import pytest

from flask_rock.entrypoint import (
    NOT_FOUND,
    candidate_paths,
    find_entrypoint,
    module_path,
)
from flask_rock.errors import ProjectError
from tests.unit.rock.flask_rock_helpers import write_files


def discover(root: Path, files: Mapping[str, str | None], name: str | None = "my-app") -> str:
    write_files(root, files)
    return find_entrypoint(root, name)


def discovery_problems(root: Path, files: Mapping[str, str | None], name: str = "my-app") -> list:
    write_files(root, files)
    with pytest.raises(ProjectError) as caught:
        find_entrypoint(root, name)
    return caught.value.problems


def test_candidates_are_in_search_order():
    assert candidate_paths("My-Flask-App") == [
        "app.py",
        "main.py",
        "app/__init__.py",
        "app/app.py",
        "app/main.py",
        "src/__init__.py",
        "src/app.py",
        "src/main.py",
        "my_flask_app/__init__.py",
        "my_flask_app/app.py",
        "my_flask_app/main.py",
    ]


def test_candidates_without_a_name_skip_the_name_dir():
    assert candidate_paths(None)[-1] == "src/main.py"


@pytest.mark.parametrize(
    ("candidate", "module"),
    [
        ("app.py", "app"),
        ("main.py", "main"),
        ("app/__init__.py", "app"),
        ("src/app.py", "src.app"),
        ("src/__init__.py", "src"),
        ("my_app/main.py", "my_app.main"),
    ],
)
def test_module_path(candidate: str, module: str):
    assert module_path(candidate) == module


@pytest.mark.parametrize(
    ("path", "module"),
    [
        ("app.py", "app"),
        ("main.py", "main"),
        ("app/__init__.py", "app"),
        ("app/app.py", "app.app"),
        ("app/main.py", "app.main"),
        ("src/__init__.py", "src"),
        ("src/app.py", "src.app"),
        ("src/main.py", "src.main"),
        ("my_app/__init__.py", "my_app"),
        ("my_app/app.py", "my_app.app"),
        ("my_app/main.py", "my_app.main"),
    ],
)
@pytest.mark.parametrize(
    ("source", "obj"),
    [
        ("app = object()", "app"),
        ("from .factory import app", "app"),
        ("application = object()", "application"),
        ("from x import application", "application"),
        ("def create_app():\n    return 1", "create_app()"),
        ("def make_app():\n    return 1", "make_app()"),
    ],
)
def test_every_candidate_location_and_object_kind(
    tmp_path: Path, path: str, module: str, source: str, obj: str
):
    assert discover(tmp_path, {path: source}) == f"{module}:{obj}"


def test_name_dir_is_lower_cased_with_underscores(tmp_path: Path):
    files = {"my_flask_app/app.py": "app = 1"}
    assert discover(tmp_path, files, name="My-Flask-App") == "my_flask_app.app:app"


def test_dir_with_the_literal_name_is_not_searched(tmp_path: Path):
    problems = discovery_problems(tmp_path, {"my-app/app.py": "app = 1"}, name="my-app")
    assert problems[0].startswith(NOT_FOUND)


def test_other_dirs_are_not_searched(tmp_path: Path):
    problems = discovery_problems(tmp_path, {"backend/app.py": "app = 1", "webapp.py": "app=1"})
    assert problems[0].startswith(NOT_FOUND)


def test_root_file_wins_over_package(tmp_path: Path):
    assert discover(tmp_path, {"app.py": "app = 1", "my_app/app.py": "app = 1"}) == "app:app"


def test_first_candidate_in_order_wins(tmp_path: Path):
    files = {"main.py": "app = 1", "src/app.py": "app = 1", "app/__init__.py": "app = 1"}
    assert discover(tmp_path, files) == "main:app"


def test_package_init_comes_before_its_modules(tmp_path: Path):
    files = {"src/__init__.py": "application = 1", "src/app.py": "app = 1"}
    assert discover(tmp_path, files) == "src:application"


def test_app_dir_comes_before_src(tmp_path: Path):
    assert discover(tmp_path, {"src/app.py": "app=1", "app/main.py": "app=1"}) == "app.main:app"


def test_app_preferred_over_application_in_one_file(tmp_path: Path):
    assert discover(tmp_path, {"app.py": "application = 1\napp = 2"}) == "app:app"


def test_variable_pass_runs_over_all_files_before_factories(tmp_path: Path):
    files = {"app.py": "def create_app():\n    pass", "src/main.py": "application = 1"}
    assert discover(tmp_path, files) == "src.main:application"


def test_factory_pass_prefers_create_app_in_a_file(tmp_path: Path):
    source = "def make_app():\n    pass\ndef create_app():\n    pass"
    assert discover(tmp_path, {"main.py": source}) == "main:create_app()"


def test_factory_pass_takes_first_file(tmp_path: Path):
    files = {"main.py": "def make_app(): pass", "src/app.py": "def create_app(): pass"}
    assert discover(tmp_path, files) == "main:make_app()"


@pytest.mark.parametrize(
    "source",
    [
        "app, other = 1, 2",
        "(app, other) = (1, 2)",
        "[app] = [1]",
        "app: object = object()",
        "app += 1",
        "import app",
        "import flask as app",
        "from x import *",
        "from x import app as other",
        "async def create_app():\n    pass",
        "class app:\n    pass",
        "def factory():\n    app = 1\n    return app",
        "if True:\n    app = 1",
        "try:\n    app = 1\nexcept Exception:\n    pass",
        "with open('x') as app:\n    pass",
        "for app in []:\n    pass",
        "def build():\n    def create_app():\n        pass",
        "class Holder:\n    def create_app(self):\n        pass",
        "obj.app = 1",
        "apps = 1\nApp = 2\ncreate_apps = 3",
        "create_app = lambda: 1",
    ],
)
def test_forms_that_do_not_count(tmp_path: Path, source: str):
    problems = discovery_problems(tmp_path, {"app.py": source})
    assert problems[0].startswith(NOT_FOUND)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("x = app = 1", "app:app"),
        ("from flask_app import create as app", "app:app"),
        ("from .web import (site, application)", "app:application"),
        ("from . import app", "app:app"),
        ("app = 1\napp += 1", "app:app"),
    ],
)
def test_forms_that_count(tmp_path: Path, source: str, expected: str):
    assert discover(tmp_path, {"app.py": source}) == expected


def test_syntax_error_is_reported_with_file_name_and_message(tmp_path: Path):
    problems = discovery_problems(tmp_path, {"app.py": "app = Flask(\n"})
    assert len(problems) == 1
    assert problems[0].startswith("error parsing app.py: '(' was never closed")


def test_syntax_error_in_a_package_file_names_the_file(tmp_path: Path):
    problems = discovery_problems(tmp_path, {"src/__init__.py": "def (:"})
    assert problems[0].startswith("error parsing __init__.py: invalid syntax")


def test_syntax_error_before_the_match_stops_discovery(tmp_path: Path):
    problems = discovery_problems(tmp_path, {"app.py": "def (", "main.py": "app = 1"})
    assert problems[0].startswith("error parsing app.py:")


def test_syntax_error_after_the_match_is_not_reached(tmp_path: Path):
    assert discover(tmp_path, {"app.py": "app = 1", "main.py": "def ("}) == "app:app"


def test_undecodable_file_is_a_parse_error(tmp_path: Path):
    (tmp_path / "app.py").write_bytes(b"app = '\xff'\n")
    with pytest.raises(ProjectError) as caught:
        find_entrypoint(tmp_path, "my-app")
    assert caught.value.problems[0].startswith("error parsing app.py:")


def test_directory_named_like_a_candidate_is_skipped(tmp_path: Path):
    assert discover(tmp_path, {"app.py": None, "main.py": "app = 1"}) == "main:app"


def test_nothing_found_says_how_to_fix(tmp_path: Path):
    problems = discovery_problems(tmp_path, {})
    assert problems[0].startswith(NOT_FOUND)
    assert "services.flask.command" in problems[0]
