"""Validation: bases, build-base, prime prefixes, document shape, problems reported together."""

from pathlib import Path

import pytest

from flask_rock.bases import EXPERIMENTAL_SWITCH
from flask_rock.errors import ProjectError
from flask_rock.expand import check_project, expand_project, is_flask_framework
from flask_rock.install_app import is_valid_prime_entry
from tests.unit.rock.flask_rock_helpers import FLASK_APP, ProjectFactory, short_form

INSTALL_APP = "flask-framework/install-app"


def problems_for(make_project: ProjectFactory, files=None, **overrides) -> list[str]:
    return check_project(make_project(files, short_form(**overrides)))


# Bases


@pytest.mark.parametrize("base", ["ubuntu@22.04", "ubuntu:22.04", "ubuntu@24.04"])
def test_supported_ubuntu_bases(make_project: ProjectFactory, base: str):
    assert problems_for(make_project, base=base) == []


def test_bare_base_is_supported(make_project: ProjectFactory):
    assert problems_for(make_project, base="bare", **{"build-base": "ubuntu@22.04"}) == []


@pytest.mark.parametrize("base", ["ubuntu:24.04", "ubuntu@20.04", "ubuntu@26.10", "alpine", 22])
def test_unsupported_base_is_a_single_problem_naming_it(make_project: ProjectFactory, base):
    # Even with other problems present, an unsupported base is reported alone.
    problems = problems_for(make_project, files={}, base=base)
    assert len(problems) == 1
    assert repr(base) in problems[0]
    assert "ubuntu@24.04" in problems[0]


def test_missing_base_is_reported(make_project: ProjectFactory):
    problems = problems_for(make_project, base=...)
    assert len(problems) == 1
    assert problems[0].startswith("base is missing")


# Bare build-base


@pytest.mark.parametrize("build_base", ["ubuntu@22.04", "ubuntu:22.04", "ubuntu@24.04"])
def test_bare_build_bases_with_known_python(make_project: ProjectFactory, build_base: str):
    assert problems_for(make_project, base="bare", **{"build-base": build_base}) == []


@pytest.mark.parametrize(
    "build_base", ["ubuntu@20.04", "ubuntu@26.04", "devel", "bare", 24, "ubuntu:24.04"]
)
def test_bare_with_unknown_build_base_names_it(make_project: ProjectFactory, build_base):
    problems = problems_for(make_project, base="bare", **{"build-base": build_base})
    assert len(problems) == 1
    assert f"build-base {build_base!r}" in problems[0]


def test_bare_without_build_base(make_project: ProjectFactory):
    problems = problems_for(make_project, base="bare")
    assert len(problems) == 1
    assert problems[0].startswith("build-base is missing")
    # Only build-bases Rockcraft accepts are offered.
    assert "ubuntu:24.04" not in problems[0]
    assert problems[0].endswith("ubuntu@22.04, ubuntu:22.04, ubuntu@24.04")


def test_build_base_ubuntu_colon_24_04_is_refused_with_a_hint(make_project: ProjectFactory):
    # Rockcraft's project accepts ubuntu:22.04 as a deprecated spelling, not ubuntu:24.04.
    problems = problems_for(make_project, base="ubuntu@24.04", **{"build-base": "ubuntu:24.04"})
    assert len(problems) == 1
    assert "build-base 'ubuntu:24.04'" in problems[0]
    assert "write ubuntu@24.04" in problems[0]


@pytest.mark.parametrize(
    ("base", "build_base"),
    [("ubuntu@22.04", "ubuntu@24.04"), ("ubuntu@24.04", "ubuntu@22.04"), ("ubuntu:22.04", None)],
)
def test_build_base_of_the_stable_extension_is_accepted(
    make_project: ProjectFactory, base: str, build_base: str | None
):
    assert problems_for(make_project, base=base, **{"build-base": build_base}) == []


@pytest.mark.parametrize(
    ("base", "build_base"),
    [
        ("ubuntu@24.04", "devel"),
        ("ubuntu@22.04", "ubuntu@20.04"),
        ("ubuntu@24.04", "ubuntu@26.04"),
        ("ubuntu@26.04", "ubuntu@24.04"),
    ],
)
@pytest.mark.parametrize("switch", [None, "1"])
def test_build_base_selecting_the_other_extension_is_refused(
    make_project: ProjectFactory,
    monkeypatch: pytest.MonkeyPatch,
    base: str,
    build_base: str,
    switch: str | None,
):
    # The build-base picks the extension (devel: the newest); it must support the base.
    if switch:
        monkeypatch.setenv(EXPERIMENTAL_SWITCH, switch)
    problems = problems_for(make_project, files={}, base=base, **{"build-base": build_base})
    assert len(problems) == 1
    assert f"base {base!r} with build-base {build_base!r} is not supported" in problems[0]


# The experimental ubuntu@26.04 extension


@pytest.mark.parametrize("build_base", [None, "ubuntu@26.04", "devel"])
def test_ubuntu_26_04_needs_the_experimental_switch(
    make_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch, build_base: str | None
):
    overrides = {"base": "ubuntu@26.04", "build-base": build_base}
    problems = problems_for(make_project, **overrides)
    assert len(problems) == 1
    assert "experimental" in problems[0]
    assert f"{EXPERIMENTAL_SWITCH}=1" in problems[0]

    monkeypatch.setenv(EXPERIMENTAL_SWITCH, "1")
    assert problems_for(make_project, **overrides) == []


def test_an_empty_experimental_switch_is_off(
    make_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv(EXPERIMENTAL_SWITCH, "")
    assert len(problems_for(make_project, base="ubuntu@26.04")) == 1


# Prime prefix


@pytest.mark.parametrize(
    "entry",
    [
        "flask/app/app.py",
        "flask/app",
        "flask/application.py",
        "flask/app_extra",
        "-flask/app/x",
        "- flask/app/test",
        "-   flask/app/test",
        "  flask/app/x",
    ],
)
def test_prime_entries_accepted(entry: str):
    assert is_valid_prime_entry(entry)


@pytest.mark.parametrize(
    "entry",
    ["app.py", "/flask/app/app.py", "flask/ap", "--flask/app/x", "- -flask/app", "", "Flask/app"],
)
def test_prime_entries_rejected(entry: str):
    assert not is_valid_prime_entry(entry)


def test_bad_prime_entries_are_each_reported(make_project: ProjectFactory):
    parts = {INSTALL_APP: {"prime": ["flask/app/app.py", "app.py", "static"]}}
    problems = problems_for(make_project, parts=parts)
    assert len(problems) == 2
    assert all(f"parts.{INSTALL_APP}.prime" in p for p in problems)
    assert "'app.py'" in problems[0] and "'static'" in problems[1]


def test_prime_application_py_literal_prefix_passes(make_project: ProjectFactory):
    parts = {INSTALL_APP: {"prime": ["flask/application.py"]}}
    assert problems_for(make_project, parts=parts) == []


@pytest.mark.parametrize("prime", ["flask/app/app.py", {"a": 1}, 3])
def test_prime_must_be_a_list(make_project: ProjectFactory, prime):
    problems = problems_for(make_project, parts={INSTALL_APP: {"prime": prime}})
    assert problems == [
        f"parts.{INSTALL_APP}.prime must be a list of paths such as flask/app/app.py"
    ]


def test_non_string_prime_entry_is_a_problem(make_project: ProjectFactory):
    problems = problems_for(make_project, parts={INSTALL_APP: {"prime": [3]}})
    assert len(problems) == 1
    assert "3" in problems[0]


# User command


def test_user_command_skips_entrypoint_discovery(make_project: ProjectFactory):
    services = {"flask": {"command": "/bin/python3 -m gunicorn webapp:app"}}
    files = {"requirements.txt": "flask", "app.py": "this is not python ("}
    assert problems_for(make_project, files=files, services=services) == []


@pytest.mark.parametrize("flask_service", [None, {}, {"command": ""}, {"command": None}])
def test_empty_user_command_still_needs_an_entrypoint(make_project: ProjectFactory, flask_service):
    files = {"requirements.txt": "flask"}
    problems = problems_for(make_project, files=files, services={"flask": flask_service})
    assert len(problems) == 1
    assert problems[0].startswith("Missing WSGI entrypoint in default search locations")


# Document shape


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"parts": 3}, "parts must be a mapping, not int"),
        ({"parts": ["a"]}, "parts must be a mapping, not list"),
        ({"services": "x"}, "services must be a mapping, not str"),
        ({"services": {"flask": "cmd"}}, "services.flask must be a mapping"),
        ({"parts": {INSTALL_APP: ["x"]}}, f"parts.{INSTALL_APP} must be a mapping"),
        ({"parts": {"flask-framework/dependencies": 1}}, "flask-framework/dependencies must be"),
        ({"name": 5}, "name 5 is not a valid rock name"),
        ({"extensions": ...}, "extensions: list flask-framework"),
        ({"extensions": "flask-framework"}, "extensions: list flask-framework"),
        ({"extensions": ["django-framework"]}, "extensions: list flask-framework"),
        ({"extensions": ["flask-framework", "go-framework"]}, "remove go-framework"),
    ],
)
def test_wrong_shapes_are_problems(make_project: ProjectFactory, overrides: dict, fragment: str):
    problems = problems_for(make_project, **overrides)
    assert problems, "expected a problem"
    assert any(fragment in p for p in problems), problems


def test_other_parts_and_services_are_left_alone(make_project: ProjectFactory):
    overrides = {"parts": {"mine": None}, "services": {"other": "anything"}}
    assert problems_for(make_project, **overrides) == []


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("name: [unclosed\n", "is not valid YAML"),
        ("- just\n- a list\n", "must hold a YAML mapping"),
        ("", "must hold a YAML mapping"),
        ("plain scalar\n", "must hold a YAML mapping"),
    ],
)
def test_unloadable_documents(make_project: ProjectFactory, text: str, fragment: str):
    problems = check_project(make_project(document=text))
    assert len(problems) == 1
    assert fragment in problems[0] and "rockcraft.yaml" in problems[0]


def test_missing_file_and_directory(tmp_path: Path):
    assert "not found" in check_project(tmp_path)[0]
    assert "does not exist" in check_project(tmp_path / "nope")[0]


def test_other_rockcraft_file_name(make_project: ProjectFactory):
    root = make_project()
    (root / "rockcraft.yaml").rename(root / "short.yaml")
    assert check_project(root, "short.yaml") == []
    assert "not found" in check_project(root)[0]


# Everything at once


def test_all_project_problems_are_reported_together(make_project: ProjectFactory):
    files = {"main.py": "x = 1"}
    overrides = {"base": "bare", "parts": {INSTALL_APP: {"prime": ["app.py"]}}}
    problems = problems_for(make_project, files=files, **overrides)
    assert len(problems) == 4
    assert "requirements" in problems[0]
    assert problems[1].startswith("Missing WSGI entrypoint")
    assert problems[2].startswith("build-base is missing")
    assert "'app.py'" in problems[3]


def test_expand_raises_with_every_problem(make_project: ProjectFactory):
    root = make_project({"app.py": "def (", "requirements.txt": "django"})
    with pytest.raises(ProjectError) as caught:
        expand_project(root)
    assert len(caught.value.problems) == 2
    assert str(caught.value).splitlines()[1].startswith("- error parsing app.py:")


def test_is_flask_framework():
    assert is_flask_framework({"extensions": ["flask-framework"]})
    assert is_flask_framework({"extensions": ["other", "flask-framework"]})
    assert not is_flask_framework({"extensions": ["django-framework"]})
    assert not is_flask_framework({"extensions": "flask-framework"})
    assert not is_flask_framework({"parts": {}})


def test_check_passes_a_good_project(make_project: ProjectFactory):
    assert check_project(make_project({"app.py": FLASK_APP, "requirements.txt": "flask"})) == []


def test_base_is_checked_before_the_document_shape(make_project: ProjectFactory):
    problems = problems_for(make_project, files={}, base="ubuntu:24.04", parts=3, name=1)
    assert len(problems) == 1
    assert "'ubuntu:24.04'" in problems[0]


def test_unreadable_requirements_and_pyproject_are_both_reported(make_project: ProjectFactory):
    files = {"app.py": FLASK_APP, "requirements.txt/oops": "", "pyproject.toml": "[project"}
    problems = problems_for(make_project, files=files)
    assert len(problems) == 2
    assert problems[0].endswith(
        "requirements.txt is a directory, not a regular file: make it a regular file"
    )
    assert problems[1].startswith("pyproject.toml cannot be parsed as TOML")


def test_non_utf8_rockcraft_yaml_is_a_problem(make_project: ProjectFactory):
    root = make_project()
    (root / "rockcraft.yaml").write_bytes(b"name: \xff\n")
    problems = check_project(root)
    assert len(problems) == 1
    assert "UTF-8" in problems[0]
