"""How the CLI decides what to hand the deployment's controller (`controller_client`)."""

from pathlib import Path

import pytest

from juju_local import controller_client
from juju_local.controller_client import DEFAULT_STATE, forward, state_and_command


@pytest.mark.parametrize(
    ("argv", "state", "command"),
    [
        (["config", "a=1"], DEFAULT_STATE, "config"),
        (["--state-dir", "/srv/x", "status"], Path("/srv/x"), "status"),
        (["--state-dir=/srv/y", "config", "--reset", "a"], Path("/srv/y"), "config"),
        (["--state-dir", "/srv/x", "config", "--help"], Path("/srv/x"), None),
        (["--verbose", "status"], DEFAULT_STATE, None),  # a form we do not parse: the CLI does
        ([], DEFAULT_STATE, None),
    ],
)
def test_state_and_command(argv, state, command, monkeypatch):
    monkeypatch.delenv(controller_client.STATE_ENV, raising=False)
    found_state, found_command, request = state_and_command(argv)

    assert (found_state, found_command) == (state, command)
    assert request[:2] == ["--state-dir", str(state)]


def test_a_relative_state_dir_is_sent_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    state, _, request = state_and_command(["--state-dir", "here", "status"])

    assert state == tmp_path / "here" and request == [
        "--state-dir",
        str(tmp_path / "here"),
        "status",
    ]


def test_the_state_env_names_the_default(monkeypatch):
    monkeypatch.setenv(controller_client.STATE_ENV, "/srv/from-env")

    assert state_and_command(["status"])[0] == Path("/srv/from-env")


@pytest.mark.parametrize("argv", [["deploy"], ["remove"], ["integrate", "postgresql"]])
def test_other_commands_run_in_the_cli(argv, tmp_path):
    assert forward(["--state-dir", str(tmp_path), *argv]) is None


def test_no_controller_means_the_cli_runs_it(tmp_path):
    assert forward(["--state-dir", str(tmp_path), "status"]) is None
