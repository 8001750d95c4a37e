"""Rules of Rockcraft's project model the expansion honours: name, scalars, stage-packages."""

from pathlib import Path

import pytest

from flask_rock.expand import check_project, expand_project
from flask_rock.rules import is_valid_name
from tests.unit.rock.flask_rock_helpers import FLASK_APP, ProjectFactory, short_form

RUNTIME = "flask-framework/runtime"
DEPENDENCIES = "flask-framework/dependencies"


# The project name


@pytest.mark.parametrize(
    "name", ["my-app", "a", "app2", "2app", "a-1-b", "x" * 40, "9-a", "abc-def-ghi"]
)
def test_valid_names(name: str):
    assert is_valid_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "123",
        "-app",
        "app-",
        "my--app",
        "My-App",
        "my_app",
        "my.app",
        "../x",
        "a/b",
        "x" * 41,
        "app\n",
        "über",
        5,
        None,
        True,
    ],
)
def test_invalid_names(name):
    assert not is_valid_name(name)


def test_invalid_name_is_a_problem_listed_with_the_others(make_project: ProjectFactory):
    problems = check_project(make_project({}, short_form(name="My_App")))
    assert len(problems) == 3
    assert problems[-1].startswith("name 'My_App' is not a valid rock name")


def test_missing_name_is_a_problem(make_project: ProjectFactory):
    problems = check_project(make_project(document=short_form(name=...)))
    assert problems == ["name is missing: set it to the rock's name, e.g. my-flask-app"]


def test_a_name_with_dots_is_never_searched_outside_the_project(
    make_project: ProjectFactory, tmp_path: Path
):
    # A sibling of the project that `name: ../x` would point discovery at.
    outside = tmp_path / "x"
    outside.mkdir()
    (outside / "app.py").write_text(FLASK_APP)
    root = make_project({"requirements.txt": "flask"}, short_form(name="../x"))

    problems = check_project(root)

    assert len(problems) == 2
    assert problems[0].startswith("Missing WSGI entrypoint")
    assert problems[1].startswith("name '../x' is not a valid rock name")


# Scalars coerced as Rockcraft's model does


@pytest.mark.parametrize(("version", "expected"), [(1.0, "1.0"), (2, "2"), ("0.1", "0.1")])
def test_version_becomes_a_string(make_project: ProjectFactory, version, expected: str):
    expanded = expand_project(make_project(document=short_form(version=version)))
    assert expanded["version"] == expected


def test_version_must_be_a_scalar(make_project: ProjectFactory):
    problems = check_project(make_project(document=short_form(version=[1])))
    assert problems == ["version must be a string such as '1.0', not [1]"]


def test_environment_numbers_become_strings(make_project: ProjectFactory):
    services = {"flask": {"environment": {"PORT": 8000, "RATIO": 0.5, "NAME": "x"}}}
    document = short_form(environment={"WORKERS": 4}, services=services)

    expanded = expand_project(make_project(document=document))

    assert expanded["environment"] == {"WORKERS": "4"}
    assert expanded["services"]["flask"]["environment"] == {
        "PORT": "8000",
        "RATIO": "0.5",
        "NAME": "x",
    }


@pytest.mark.parametrize("value", [True, None, ["a"], {"a": 1}])
def test_environment_values_other_than_scalars_are_problems(make_project: ProjectFactory, value):
    problems = check_project(make_project(document=short_form(environment={"DEBUG": value})))
    assert len(problems) == 1
    assert problems[0].startswith("environment.DEBUG must be a string")


def test_check_environment_numbers_become_strings(make_project: ProjectFactory):
    checks = {"alive": {"exec": {"command": "true", "environment": {"N": 1}}}}
    expanded = expand_project(make_project(document=short_form(checks=checks)))
    assert expanded["checks"]["alive"]["exec"]["environment"] == {"N": "1"}


def test_scalar_build_on_and_build_for_become_lists(make_project: ProjectFactory):
    platforms = {"amd64": None, "arm": {"build-on": "amd64", "build-for": "arm64"}}
    expanded = expand_project(make_project(document=short_form(platforms=platforms)))
    assert expanded["platforms"] == {
        "amd64": None,
        "arm": {"build-on": ["amd64"], "build-for": ["arm64"]},
    }


# Packages and chisel slices are never mixed in one part


def test_a_package_added_to_the_runtime_part_is_refused(make_project: ProjectFactory):
    parts = {RUNTIME: {"stage-packages": ["curl"]}}
    problems = check_project(make_project(document=short_form(parts=parts)))
    assert len(problems) == 1
    assert problems[0].startswith(f"parts.{RUNTIME}.stage-packages mixes packages ['curl']")
    assert "chisel slices ['ca-certificates_data']" in problems[0]


def test_a_slice_added_to_the_dependencies_part_is_refused(make_project: ProjectFactory):
    parts = {DEPENDENCIES: {"stage-packages": ["libpq5_libs"]}}
    problems = check_project(make_project(document=short_form(parts=parts)))
    assert len(problems) == 1
    assert problems[0].startswith(f"parts.{DEPENDENCIES}.stage-packages mixes")


def test_bare_runtime_accepts_more_slices(make_project: ProjectFactory):
    parts = {RUNTIME: {"stage-packages": ["libpq5_libs"]}}
    document = short_form(base="bare", parts=parts, **{"build-base": "ubuntu@22.04"})
    expanded = expand_project(make_project(document=document))
    assert expanded["parts"][RUNTIME]["stage-packages"][-1] == "libpq5_libs"


def test_a_users_own_part_may_not_mix_either(make_project: ProjectFactory):
    parts = {"mine": {"plugin": "nil", "stage-packages": ["libpq5", "bash_bins"]}}
    problems = check_project(make_project(document=short_form(parts=parts)))
    assert problems == [
        "parts.mine.stage-packages mixes packages ['libpq5'] with chisel slices ['bash_bins']: "
        "Rockcraft cannot install both in one part; list the packages in a part of their own"
    ]


def test_packages_alone_in_a_users_part_are_fine(make_project: ProjectFactory):
    parts = {"mine": {"plugin": "nil", "stage-packages": ["libpq5", "curl"]}}
    assert check_project(make_project(document=short_form(parts=parts))) == []
