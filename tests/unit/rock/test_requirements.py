"""Requirement names from requirements.txt and pyproject.toml, and the worker they imply."""

import textwrap
from pathlib import Path

import pytest

from flask_rock.errors import ProjectError
from flask_rock.expand import check_project, expand_project
from flask_rock.project import read_requirement_names, requirement_files
from tests.unit.rock.flask_rock_helpers import FLASK_APP, ProjectFactory


def names_of(tmp_path: Path, requirements: str | None = None, pyproject: str | None = None):
    if requirements is not None:
        (tmp_path / "requirements.txt").write_text(requirements)
    if pyproject is not None:
        (tmp_path / "pyproject.toml").write_text(textwrap.dedent(pyproject))
    return read_requirement_names(tmp_path)


def test_plain_names_are_lower_cased(tmp_path: Path):
    assert names_of(tmp_path, "Flask\nGEVENT>=24\n") == {"flask", "gevent"}


@pytest.mark.parametrize(
    ("line", "name"),
    [
        (" flask == 99", "flask"),
        ("flask[async]>=2.3", "flask"),
        ("flask; python_version >= '3.8'", "flask"),
        ("flask @ https://example.com/flask.tar.gz", "flask"),
        ("Flask_Login", "flask_login"),
    ],
)
def test_pep508_lines_parse(tmp_path: Path, line: str, name: str):
    assert names_of(tmp_path, line) == {name}


@pytest.mark.parametrize(
    "line",
    [
        "-r other.txt",
        "flask  # the web framework",
        "# flask",
        "--index-url https://example.com",
        "-e .",
        "flask \\",
        "",
        "./local/flask",
    ],
)
def test_unparsable_lines_are_ignored(tmp_path: Path, line: str):
    assert names_of(tmp_path, f"{line}\nrequests\n") == {"requests"}


def test_included_requirements_files_are_not_followed(tmp_path: Path):
    (tmp_path / "base.txt").write_text("flask\n")
    assert names_of(tmp_path, "-r base.txt\n") == set()


def test_pyproject_dependencies_are_read(tmp_path: Path):
    pyproject = """
        [project]
        name = "demo"
        dependencies = ["Flask>=3.0", "gevent"]
    """
    assert names_of(tmp_path, pyproject=pyproject) == {"flask", "gevent"}


def test_both_files_are_merged(tmp_path: Path):
    pyproject = '[project]\nname = "x"\ndependencies = ["gevent"]\n'
    assert names_of(tmp_path, "flask\n", pyproject) == {"flask", "gevent"}


@pytest.mark.parametrize(
    "pyproject",
    [
        '[tool.poetry]\nname = "x"\n',
        '[project]\nname = "x"\n',
        "",
        '[project]\nname = "x"\n[project.optional-dependencies]\nweb = ["flask"]\n',
    ],
)
def test_pyproject_without_dependencies_gives_no_names(tmp_path: Path, pyproject: str):
    assert names_of(tmp_path, pyproject=pyproject) == set()


def test_pyproject_unparsable_entries_are_ignored(tmp_path: Path):
    pyproject = '[project]\nname = "x"\ndependencies = ["flask # c", "-r x", "gevent"]\n'
    assert names_of(tmp_path, pyproject=pyproject) == {"gevent"}


@pytest.mark.parametrize(
    ("pyproject", "fragment"),
    [
        ("[project\n", "cannot be parsed as TOML"),
        ('project = "x"\n', "[project] must be a table"),
        ('[project]\ndependencies = "flask"\n', "list of requirement strings"),
        ("[project]\ndependencies = [1]\n", "list of requirement strings"),
    ],
)
def test_malformed_pyproject_is_a_problem(tmp_path: Path, pyproject: str, fragment: str):
    with pytest.raises(ProjectError) as caught:
        names_of(tmp_path, pyproject=pyproject)
    assert caught.value.problems[0].startswith("pyproject.toml")
    assert fragment in caught.value.problems[0]


def test_requirement_files_lists_existing_ones(tmp_path: Path):
    assert requirement_files(tmp_path) == []
    (tmp_path / "pyproject.toml").write_text("")
    assert requirement_files(tmp_path) == ["pyproject.toml"]
    (tmp_path / "requirements.txt").write_text("")
    assert requirement_files(tmp_path) == ["requirements.txt", "pyproject.toml"]


# Through the whole expansion: validation and the worker class.


def flask_command(document: dict) -> str:
    return document["services"]["flask"]["command"]


@pytest.mark.parametrize(
    ("requirements", "pyproject_deps", "worker"),
    [
        ("flask\ngevent\n", None, "gevent"),
        ("Flask\nGevent==24.2\n", None, "gevent"),
        ("flask\n", '["gevent>=24"]', "gevent"),
        (None, '["flask", "gevent"]', "gevent"),
        ("flask\n", None, "sync"),
        ("flask\ngevent-websocket\n", None, "sync"),
        ("flask\ngevent # async\n", None, "sync"),
        ("flask\n# gevent\n", None, "sync"),
        (None, '["flask"]', "sync"),
    ],
)
def test_worker_class(
    make_project: ProjectFactory, requirements: str | None, pyproject_deps: str | None, worker
):
    files = {"app.py": FLASK_APP}
    if requirements is not None:
        files["requirements.txt"] = requirements
    if pyproject_deps is not None:
        files["pyproject.toml"] = f'[project]\nname = "x"\ndependencies = {pyproject_deps}\n'
    expanded = expand_project(make_project(files))
    assert flask_command(expanded).endswith(f"'app:app' -k [ {worker} ]")


def test_python_requirements_lists_requirements_txt_only_when_it_exists(
    make_project: ProjectFactory,
):
    with_txt = expand_project(make_project({"app.py": FLASK_APP, "requirements.txt": "flask"}))
    pyproject = {"app.py": FLASK_APP, "pyproject.toml": '[project]\ndependencies = ["flask"]\n'}
    without_txt = expand_project(make_project(pyproject))
    part = "flask-framework/dependencies"
    assert with_txt["parts"][part]["python-requirements"] == ["requirements.txt"]
    assert without_txt["parts"][part]["python-requirements"] == []


def test_no_requirements_file_is_the_only_requirements_problem(make_project: ProjectFactory):
    problems = check_project(make_project({"app.py": FLASK_APP}))
    assert len(problems) == 1
    assert "requirements.txt or pyproject.toml" in problems[0]


@pytest.mark.parametrize(
    "files",
    [
        {"requirements.txt": "requests\n"},
        {"requirements.txt": "flask-login\nflask_cors\n"},
        {"requirements.txt": "-r flask.txt\n", "flask.txt": "flask\n"},
        {"requirements.txt": "flask  # needed\n"},
        {"pyproject.toml": '[project]\ndependencies = ["requests"]\n'},
        {"pyproject.toml": '[project]\nname = "flask"\n'},
        {"requirements.txt": "", "pyproject.toml": "[tool.x]\nflask = 1\n"},
    ],
)
def test_flask_must_be_a_requirement(make_project: ProjectFactory, files: dict):
    problems = check_project(make_project({"app.py": FLASK_APP, **files}))
    assert len(problems) == 1
    assert problems[0].startswith("flask is not among the project's requirements")


@pytest.mark.parametrize(
    "files",
    [
        {"requirements.txt": "FLASK\n"},
        {"requirements.txt": "requests\n", "pyproject.toml": '[project]\ndependencies=["Flask"]'},
        {"pyproject.toml": '[project]\ndependencies = ["flask>=3"]\n'},
    ],
)
def test_flask_found_in_either_file(make_project: ProjectFactory, files: dict):
    assert check_project(make_project({"app.py": FLASK_APP, **files})) == []
