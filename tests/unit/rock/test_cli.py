"""The command line, run as users run it: ``PYTHONPATH=rock python3 -m flask_rock``."""

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from flask_rock import __main__ as cli
from flask_rock.bases import EXPERIMENTAL_SWITCH
from flask_rock.expand import expand_project
from tests.unit.rock.flask_rock_helpers import FLASK_APP, ProjectFactory, short_form

ROCK_DIR = Path(__file__).parents[3] / "rock"


def flask_rock(
    *args: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROCK_DIR), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "flask_rock", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )


def assert_problem_listing(result: subprocess.CompletedProcess[str], where: Path, count: int):
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    header, *lines = result.stderr.splitlines()
    assert str(where) in header
    assert len(lines) == count
    assert all(line.startswith("- ") for line in lines)


def test_expand_prints_the_expanded_document(make_project: ProjectFactory):
    root = make_project()
    result = flask_rock("expand", root)
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout) == expand_project(root)
    assert result.stderr == ""


def test_expand_output_keeps_key_order_and_block_scripts(make_project: ProjectFactory):
    result = flask_rock("expand", make_project())
    assert result.stdout.startswith("name: my-app\n")
    assert "override-build: |-\n      craftctl default\n" in result.stdout
    command = "/bin/python3 -m gunicorn -c /flask/gunicorn.conf.py 'app:app' -k [ sync ]"
    assert f"command: {command}\n" in result.stdout


def test_expand_options(make_project: ProjectFactory, tmp_path: Path):
    root = make_project()
    (root / "rockcraft.yaml").rename(root / "short.yaml")
    output = tmp_path / "out.yaml"
    result = flask_rock(
        "expand", root, "--file", "short.yaml", "--config-source", "cfg", "-o", output
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    expanded = yaml.safe_load(output.read_text())
    assert expanded["parts"]["flask-framework/config-files"]["source"] == "cfg"
    assert expanded == expand_project(root, "short.yaml", "cfg")


def test_expand_lists_every_problem(make_project: ProjectFactory):
    root = make_project({"main.py": "x = 1"}, short_form(base="bare"))
    result = flask_rock("expand", root)
    assert_problem_listing(result, root / "rockcraft.yaml", 3)
    assert result.stdout == ""
    assert "- Missing WSGI entrypoint in default search locations" in result.stderr


def test_check_ok(make_project: ProjectFactory):
    result = flask_rock("check", make_project())
    assert result.returncode == 0
    assert "OK" in result.stdout


def test_check_lists_every_problem(make_project: ProjectFactory):
    parts = {"flask-framework/install-app": {"prime": ["app.py"]}}
    root = make_project({"app.py": "def (", "requirements.txt": ""}, short_form(parts=parts))
    result = flask_rock("check", root)
    assert_problem_listing(result, root / "rockcraft.yaml", 3)
    assert "- error parsing app.py:" in result.stderr


def test_check_with_file_option(make_project: ProjectFactory):
    root = make_project()
    (root / "rockcraft.yaml").rename(root / "other.yaml")
    assert flask_rock("check", root, "--file", "other.yaml").returncode == 0
    assert_problem_listing(flask_rock("check", root), root / "rockcraft.yaml", 1)


def test_experimental_base_is_refused_naming_the_switch(make_project: ProjectFactory):
    root = make_project(document=short_form(base="ubuntu@26.04"))
    result = flask_rock("check", root)
    assert_problem_listing(result, root / "rockcraft.yaml", 1)
    assert "ROCKCRAFT_ENABLE_EXPERIMENTAL_EXTENSIONS=1" in result.stderr


@pytest.mark.parametrize("command", ["check", "expand"])
def test_experimental_base_is_accepted_with_the_switch(make_project: ProjectFactory, command):
    root = make_project(document=short_form(base="ubuntu@26.04"))
    result = flask_rock(command, root, env={EXPERIMENTAL_SWITCH: "1"})
    assert result.returncode == 0, result.stderr
    assert result.stderr == "*EXPERIMENTAL* extension 'flask-framework' enabled " + (
        f"({EXPERIMENTAL_SWITCH} is set)\n"
    )


def test_unsupported_base_is_listed_alone(make_project: ProjectFactory):
    root = make_project({}, short_form(base="ubuntu:24.04"))
    result = flask_rock("check", root)
    assert_problem_listing(result, root / "rockcraft.yaml", 1)
    assert "'ubuntu:24.04'" in result.stderr


@pytest.mark.parametrize(
    "document",
    [
        "name: [oops\n",
        "just a string\n",
        "parts: 3\nbase: bare\nextensions: [flask-framework]\n",
        short_form(parts={"flask-framework/install-app": {"prime": "x"}}),
        short_form(services={"flask": ["x"]}),
        short_form(extensions=None),
    ],
)
@pytest.mark.parametrize("command", ["check", "expand"])
def test_bad_documents_fail_cleanly(make_project: ProjectFactory, document: Any, command: str):
    root = make_project(document=document)
    result = flask_rock(command, root)
    assert_problem_listing(result, root / "rockcraft.yaml", 1)


@pytest.mark.parametrize("command", ["check", "expand"])
def test_missing_directory_or_file(tmp_path: Path, command: str):
    missing = flask_rock(command, tmp_path / "nope")
    assert_problem_listing(missing, tmp_path / "nope" / "rockcraft.yaml", 1)
    empty = flask_rock(command, tmp_path)
    assert_problem_listing(empty, tmp_path / "rockcraft.yaml", 1)


def test_unreadable_rockcraft_file(make_project: ProjectFactory):
    root = make_project()
    (root / "rockcraft.yaml").unlink()
    (root / "rockcraft.yaml").mkdir()
    assert_problem_listing(flask_rock("check", root), root / "rockcraft.yaml", 1)


def test_unwritable_output(make_project: ProjectFactory, tmp_path: Path):
    root = make_project()
    result = flask_rock("expand", root, "-o", tmp_path / "missing-dir" / "out.yaml")
    assert_problem_listing(result, root / "rockcraft.yaml", 1)
    assert "-o/--output" in result.stderr


@pytest.mark.parametrize("args", [[], ["frobnicate"], ["expand"], ["check", "a", "--bogus"]])
def test_usage_errors_exit_2(args: list[str]):
    result = flask_rock(*args)
    assert result.returncode == 2
    assert "usage:" in result.stderr


def test_a_registered_subcommand_is_dispatched(monkeypatch: pytest.MonkeyPatch):
    calls: list[str] = []

    def add_hello_parser(subparsers: Any) -> None:
        parser = subparsers.add_parser("hello")
        parser.add_argument("who")

        def handler(args: argparse.Namespace) -> int:
            calls.append(args.who)
            return 7

        parser.set_defaults(handler=handler)

    monkeypatch.setattr(cli, "SUBCOMMANDS", [*cli.SUBCOMMANDS, add_hello_parser])
    assert cli.main(["hello", "world"]) == 7
    assert calls == ["world"]


def test_main_in_process(make_project: ProjectFactory, capsys: pytest.CaptureFixture[str]):
    root = make_project({"app.py": FLASK_APP, "requirements.txt": "flask"})
    assert cli.main(["check", str(root)]) == 0
    assert "OK" in capsys.readouterr().out
