"""Untrusted projects: unbounded inputs are refused, and `run` never writes outside its root.

The CLI runs in a subprocess with a memory cap and a timeout, so a regression fails the test
instead of hanging it or exhausting the machine.
"""

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from flask_rock import local_run
from flask_rock.errors import ProjectError
from flask_rock.expand import expand_project
from flask_rock.rootfs import build_rootfs
from tests.unit.rock.flask_rock_helpers import FLASK_APP, ProjectFactory, short_form

ROCK_DIR = Path(__file__).parents[3] / "rock"
MEMORY_CAP = 1024 * 1024 * 1024
FILES = {"app.py": FLASK_APP, "requirements.txt": "flask\n"}


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def flask_rock(*args: str | Path, env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, "-m", "flask_rock", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROCK_DIR), **(env or {})},
        preexec_fn=_cap_memory,
        timeout=60,
        check=False,
    )


def problem_lines(result: subprocess.CompletedProcess) -> list[str]:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    return [line for line in result.stderr.splitlines() if line.startswith("- ")]


def alias_bomb(key: str, levels: int = 9) -> str:
    """A few hundred bytes of YAML whose ``key`` holds 9**levels values once aliases expand."""
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, levels):
        lines.append(f"l{level}: &l{level} [" + ",".join([f"*l{level - 1}"] * 9) + "]")
    bomb = f"*l{levels - 1}"
    document = {"base": "bare", "extensions": "[flask-framework]", key: bomb}
    if key == "extensions":
        document[key] = f"[flask-framework, {bomb}]"
    return "\n".join(lines + [f"{k}: {v}" for k, v in document.items()]) + "\n"


# Unbounded inputs


@pytest.mark.parametrize("command", ["check", "expand"])
@pytest.mark.parametrize("key", ["extensions", "base", "name"])
def test_yaml_alias_bomb_is_refused(make_project: ProjectFactory, command: str, key: str):
    root = make_project(document=alias_bomb(key))
    assert len((root / "rockcraft.yaml").read_bytes()) < 600

    lines = problem_lines(flask_rock(command, root))

    assert len(lines) == 1
    assert "expands to more than 100000 values" in lines[0]


def test_recursive_yaml_alias_is_refused(make_project: ProjectFactory):
    root = make_project(document="name: &loop [*loop]\nbase: bare\n")
    lines = problem_lines(flask_rock("check", root))
    assert len(lines) == 1
    assert "more than 50 levels deep" in lines[0]


def test_moderate_aliases_still_work(make_project: ProjectFactory):
    text = yaml.safe_dump(short_form()) + "x-env: &env {A: '1'}\nenvironment: *env\n"
    root = make_project(document=text)
    assert flask_rock("check", root).returncode == 0


def test_huge_values_are_quoted_briefly(make_project: ProjectFactory):
    root = make_project(document=short_form(base="x" * 100_000, name="y" * 100_000))
    lines = problem_lines(flask_rock("check", root))
    assert len(lines) == 1
    assert len(lines[0]) < 300


@pytest.mark.parametrize("name", ["rockcraft.yaml", "requirements.txt", "pyproject.toml"])
def test_fifo_in_place_of_a_project_file_is_refused(make_project: ProjectFactory, name: str):
    root = make_project()
    (root / name).unlink(missing_ok=True)
    os.mkfifo(root / name)

    lines = problem_lines(flask_rock("check", root))

    assert any(f"{name} is a FIFO (named pipe), not a regular file" in line for line in lines)


@pytest.mark.parametrize("name", ["rockcraft.yaml", "requirements.txt"])
def test_symlink_to_dev_zero_is_refused(make_project: ProjectFactory, name: str):
    root = make_project()
    (root / name).unlink()
    (root / name).symlink_to("/dev/zero")

    lines = problem_lines(flask_rock("check", root))

    assert any(f"{name} is a character device, not a regular file" in line for line in lines)


def test_oversized_rockcraft_yaml_is_refused(make_project: ProjectFactory):
    root = make_project()
    with (root / "rockcraft.yaml").open("a") as stream:
        stream.write("#" * (1024 * 1024) + "\n")
    lines = problem_lines(flask_rock("check", root))
    assert lines == [
        f"- {root / 'rockcraft.yaml'} is larger than 1024 KiB: that is not a project file we read"
    ]


def test_every_problem_is_listed_beside_an_unreadable_requirements_file(
    make_project: ProjectFactory,
):
    root = make_project({}, short_form(name="Bad_Name"))
    os.mkfifo(root / "requirements.txt")

    lines = problem_lines(flask_rock("check", root))

    assert len(lines) == 3
    assert "requirements.txt is a FIFO" in lines[0]
    assert lines[1].startswith("- Missing WSGI entrypoint")
    assert lines[2].startswith("- name 'Bad_Name' is not a valid rock name")


# `run` writes only inside the rock's root


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory beside the project that nothing may write to."""
    path = tmp_path / "outside"
    path.mkdir()
    (path / "secret.txt").write_text("secret")
    return path


def build(document: dict, project_dir: Path, tmp_path: Path, fake_venv, fake_binaries):
    return build_rootfs(document, project_dir, tmp_path / "state", fake_venv, fake_binaries)


def assert_untouched(outside: Path, tmp_path: Path) -> None:
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == []


def test_config_files_organize_cannot_escape_the_root(
    make_project: ProjectFactory, tmp_path: Path, outside: Path, fake_venv, fake_binaries
):
    project_dir = make_project()
    document = expand_project(project_dir)
    config = document["parts"]["flask-framework/config-files"]
    config["organize"] = {"gunicorn.conf.py": "../../outside/gunicorn.conf.py"}

    with pytest.raises(ProjectError, match="leads outside the rock's filesystem"):
        build(document, project_dir, tmp_path, fake_venv, fake_binaries)

    assert_untouched(outside, tmp_path)


def test_install_app_target_cannot_escape_the_root(
    make_project: ProjectFactory, tmp_path: Path, outside: Path, fake_venv, fake_binaries
):
    project_dir = make_project()
    document = expand_project(project_dir)
    document["parts"]["flask-framework/install-app"]["organize"] = {"app.py": "../../outside/x"}

    with pytest.raises(ProjectError, match="leads outside the rock's filesystem"):
        build(document, project_dir, tmp_path, fake_venv, fake_binaries)

    assert_untouched(outside, tmp_path)


def test_install_app_source_cannot_escape_the_project(
    make_project: ProjectFactory, tmp_path: Path, outside: Path, fake_venv, fake_binaries
):
    project_dir = make_project()
    document = expand_project(project_dir)
    organize = {"../outside/secret.txt": "flask/app/secret.txt"}
    document["parts"]["flask-framework/install-app"]["organize"] = organize

    with pytest.raises(ProjectError, match="leads outside the project"):
        build(document, project_dir, tmp_path, fake_venv, fake_binaries)


def test_prime_entry_through_a_symlink_out_of_the_project_is_refused(
    make_project: ProjectFactory, tmp_path: Path, outside: Path, fake_venv, fake_binaries
):
    parts = {"flask-framework/install-app": {"prime": ["flask/app/app.py", "flask/app/data"]}}
    project_dir = make_project(document=short_form(parts=parts))
    (project_dir / "data").symlink_to(outside)

    with pytest.raises(ProjectError, match="'data' leads outside the project"):
        build(expand_project(project_dir), project_dir, tmp_path, fake_venv, fake_binaries)

    assert_untouched(outside, tmp_path)


def test_a_copied_symlink_cannot_redirect_a_later_write(
    make_project: ProjectFactory, tmp_path: Path, outside: Path, fake_venv, fake_binaries
):
    project_dir = make_project({**FILES, "pkg/__init__.py": ""})
    (project_dir / "pkg" / "out").symlink_to(outside)
    document = expand_project(project_dir)
    organize = {"pkg": "flask/app/pkg", "app.py": "flask/app/pkg/out/app.py"}
    document["parts"]["flask-framework/install-app"]["organize"] = organize

    with pytest.raises(ProjectError, match="leads outside the rock's filesystem"):
        build(document, project_dir, tmp_path, fake_venv, fake_binaries)

    assert_untouched(outside, tmp_path)


def test_nested_symlinks_are_copied_as_links_not_followed(
    make_project: ProjectFactory, tmp_path: Path, outside: Path, fake_venv, fake_binaries
):
    project_dir = make_project({**FILES, "static/a.css": ""})
    (project_dir / "static" / "out").symlink_to(outside)

    rootfs = build(expand_project(project_dir), project_dir, tmp_path, fake_venv, fake_binaries)

    copied = rootfs.root / "flask" / "app" / "static" / "out"
    assert copied.is_symlink() and os.readlink(copied) == str(outside)
    assert_untouched(outside, tmp_path)


def test_config_files_source_outside_the_project_is_refused(
    make_project: ProjectFactory, tmp_path: Path, outside: Path, fake_venv, fake_binaries
):
    (outside / "gunicorn.conf.py").write_text("")
    project_dir = make_project()
    document = expand_project(project_dir, config_files_source=str(outside))

    with pytest.raises(ProjectError, match="lies outside the project"):
        build(document, project_dir, tmp_path, fake_venv, fake_binaries)


@pytest.mark.parametrize("name", ["../x", "../../tmp/evil", "a/b"])
def test_pack_ready_name_must_be_valid(tmp_path: Path, name: str):
    document = {"name": name, "services": {"flask": {"command": "c"}}, "parts": {}}
    (tmp_path / "rockcraft.yaml").write_text(yaml.safe_dump(document))

    with pytest.raises(ProjectError, match="is not a valid rock name"):
        local_run.load_pack_ready(tmp_path)


def test_cli_run_with_a_path_as_name_writes_nothing(tmp_path: Path):
    project_dir = tmp_path / "project"
    project_dir.mkdir()
    document = {"name": "../../../escaped", "services": {"flask": {"command": "c"}}}
    (project_dir / "rockcraft.yaml").write_text(yaml.safe_dump(document))
    cache = tmp_path / "cache"

    result = flask_rock("run", project_dir, env={"FLASK_ROCK_CACHE": str(cache)})

    assert "is not a valid rock name" in result.stderr
    assert problem_lines(result)
    assert not cache.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project"]
