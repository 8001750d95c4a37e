"""uv.lock is the one source of versions: the staged charm's, the tools', every tox env's."""

from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from juju_local import charm_stage
from juju_local.charm_stage import REPO

RUNTIME = {"ops", "pydantic", "pyyaml", "cosl", "charmlibs-interfaces-tracing"}
# Only ever needed to build, lint or test the charm: never in its venv.
TOOLING_ONLY = {"pytest", "ruff", "pyright", "charmcraft", "tox", "uv", "jubilant", "hypothesis"}


def lock_versions() -> dict[str, set[str]]:
    with (REPO / "uv.lock").open("rb") as handle:
        packages = tomllib.load(handle)["package"]
    versions: dict[str, set[str]] = {}
    for package in packages:
        if "version" in package:
            versions.setdefault(canonicalize_name(package["name"]), set()).add(package["version"])
    return versions


def pyproject() -> dict:
    with (REPO / "pyproject.toml").open("rb") as handle:
        return tomllib.load(handle)


@pytest.fixture(scope="module")
def staged_pins() -> dict[str, str]:
    try:
        charm_stage.find_uv()
    except charm_stage.StageError as error:
        pytest.skip(str(error))
    pins = {}
    for line in charm_stage.runtime_dependencies(REPO):
        requirement = Requirement(line)
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", line
        pins[canonicalize_name(requirement.name)] = specifier.version
    return pins


def test_the_staged_charm_gets_the_locked_version_of_every_package(staged_pins):
    locked = lock_versions()
    assert RUNTIME <= staged_pins.keys()
    for name, version in staged_pins.items():
        assert version in locked[name], name


def test_the_staged_charm_gets_no_tooling_and_no_jinja2(staged_pins):
    assert not (TOOLING_ONLY | {"jinja2"}) & staged_pins.keys()


def test_jinja2_is_no_runtime_dependency():
    declared = {Requirement(line).name for line in pyproject()["project"]["dependencies"]}
    assert {canonicalize_name(name) for name in declared} == RUNTIME


def test_each_tool_is_pinned_exactly_and_locked_at_that_version():
    locked = lock_versions()
    tools = [Requirement(line) for line in pyproject()["dependency-groups"]["tools"]]
    assert {tool.name for tool in tools} == {"uv", "tox", "tox-uv"}
    for tool in tools:
        (specifier,) = tool.specifier
        assert specifier.operator == "=="
        assert locked[canonicalize_name(tool.name)] == {specifier.version}


def test_a_project_without_a_lock_stages_its_dependencies_as_written(tmp_path: Path):
    pyproject_text = '[project]\ndependencies = ["ops~=3.0", "requests"]\n'
    (tmp_path / "pyproject.toml").write_text(pyproject_text)
    assert charm_stage.runtime_dependencies(tmp_path) == ["ops~=3.0", "requests"]


def test_a_project_with_an_unreadable_lock_is_a_clear_error(tmp_path: Path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "0"\n')
    (tmp_path / "uv.lock").write_text("this is not a lock file [")
    try:
        charm_stage.find_uv()
    except charm_stage.StageError as error:
        pytest.skip(str(error))
    with pytest.raises(charm_stage.StageError, match="uv could not export"):
        charm_stage.runtime_dependencies(tmp_path)
