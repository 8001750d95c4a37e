"""App options end to end: a charm project whose charmcraft.yaml adds options, no Python.

The sample rock is deployed with a copy of this charm whose charmcraft.yaml declares a required
`greeting` and an int `max-items`. Until `greeting` is set the unit is Blocked and the app is
not started; `juju-local config` then sets both (typed as the options say) and the app shows
them in its `app.config`; a change is a reload, not a restart.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from juju_local.deployment import REPO, Deployment
from tests.e2e import deployment_state, rock_runner

READY = 60.0
OPTIONS = {
    "greeting": {"type": "string", "optional": False, "description": "the app's greeting"},
    "max-items": {"type": "int", "default": 10, "description": "items per page"},
}


def charm_project(directory: Path) -> Path:
    """A charm project like this one, its charmcraft.yaml edited as a charm author would."""
    directory.mkdir()
    for name in ("src", "lib", "cos_custom", "pyproject.toml", "uv.lock"):
        (directory / name).symlink_to(REPO / name)
    document = yaml.safe_load((REPO / "charmcraft.yaml").read_text())
    document["config"]["options"].update(OPTIONS)
    (directory / "charmcraft.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return directory


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return charm_project(tmp_path_factory.mktemp("project") / "charm")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, project):
    deployed = Deployment(tmp_path_factory.mktemp("local-juju") / "default")
    deployed.deploy(charm=project)
    yield deployed
    deployed.remove()


def _cli(deployment: Deployment, *args: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "juju_local", "--state-dir", str(deployment.state_dir), *args]
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=600)


def _setting(name: str) -> object:
    status, body = rock_runner.get(f"/config/{name}")
    assert status == 200, body
    return json.loads(body)[name]


def test_required_option_unset_blocks_and_the_app_is_not_started(deployment):
    assert deployment_state.unit_status(deployment) == (
        "blocked",
        "missing required option(s) greeting: juju config flask-k8s greeting=…",
    )
    assert deployment_state.service_starts(deployment) == 0


def test_options_set_with_juju_local_config_reach_the_app(deployment):
    result = _cli(deployment, "config", "greeting=hello", "max-items=25")

    assert result.returncode == 0, result.stderr
    assert deployment_state.unit_status(deployment) == ("active", "")
    assert rock_runner.wait_for_http_ok("/config/GREETING", READY)
    assert _setting("GREETING") == "hello"
    assert _setting("MAX_ITEMS") == 25  # an int option arrives as an int in app.config


def test_a_changed_option_is_a_reload_not_a_restart(deployment):
    starts = deployment_state.service_starts(deployment)

    result = _cli(deployment, "config", "greeting=bonjour")

    assert result.returncode == 0, result.stderr
    assert rock_runner.wait_for_http_ok("/config/GREETING", READY)
    assert _wait_for_setting("GREETING", "bonjour")
    assert deployment_state.service_starts(deployment) == starts


def test_a_mistyped_value_is_refused_as_juju_refuses_it(deployment):
    result = _cli(deployment, "config", "max-items=many")

    assert result.returncode == 1
    assert 'option "max-items" expected int, got "many"' in result.stderr


def test_an_option_added_later_arrives_with_upgrade(deployment, project):
    document = yaml.safe_load((project / "charmcraft.yaml").read_text())
    document["config"]["options"]["farewell"] = {"type": "string"}
    (project / "charmcraft.yaml").write_text(yaml.safe_dump(document, sort_keys=False))

    deployment.upgrade()
    result = _cli(deployment, "config", "farewell=bye")

    assert result.returncode == 0, result.stderr
    assert rock_runner.wait_for_http_ok("/config/FAREWELL", READY)
    assert _wait_for_setting("FAREWELL", "bye")
    assert _setting("GREETING") == "bonjour"  # kept across the upgrade


def _wait_for_setting(name: str, expected: object, timeout: float = READY) -> bool:
    """A reload replaces workers one by one: wait until the new ones answer."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = rock_runner.get(f"/config/{name}")
        # An old worker, still serving until the reload reaches it, may not know the name (404).
        if status == 200 and json.loads(body)[name] == expected:
            return True
        time.sleep(0.2)
    return False
