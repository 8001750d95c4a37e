"""What a `juju-local` command and a staged charm's hook load when they start.

Each `juju-local` command is a process of its own, and each hook a fresh Python: what they
import or compile at start-up is paid on every `juju-local config`. These tests check what is
loaded, never how long it takes.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from juju_local import charm_stage, cli, databases

REPO = charm_stage.REPO
# Loaded only by the commands that need them (deploy, upgrade, integrate, remove).
NOT_FOR_CONFIG = (
    "yaml",
    "urllib.request",
    "packaging",
    "flask_rock.local_run",
    "flask_rock.expand",
    "flask_rock.project",
    "juju_local.databases",
)


def test_config_and_status_import_no_yaml_rock_layout_or_servers(tmp_path):
    """Parse `config`, build the hook runner and render status as the command does."""
    state = tmp_path / "default"
    script = textwrap.dedent(
        f"""
        import json, sys
        from pathlib import Path
        from juju_local import cli
        from juju_local.deployment import Deployment
        from juju_local.model import Model

        state = Path({str(state)!r})
        Model.create(state / "model" / "model.json", "app", charm_config_options={{}})
        (state / "charm").mkdir()
        (state / "deployment.json").write_text(json.dumps({{"rock": "/nowhere", "charm_uid": 0}}))
        cli.build_parser().parse_args(["config", "webserver-keepalive=3"])
        deployment = Deployment(state)
        deployment.model.set_config({{"x": "1"}})
        deployment.runner()
        deployment.status()
        print(json.dumps(sorted(sys.modules)))
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(REPO / p) for p in ("rock", "."))}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=REPO
    )
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout.splitlines()[-1]))
    assert "juju_local.dispatch" in loaded  # the probe did reach the hook runner
    assert sorted(loaded & set(NOT_FOR_CONFIG)) == []


def test_the_command_line_names_every_database_server():
    assert cli.DATABASES == tuple(databases.SERVERS)


def test_staged_code_ships_bytecode_the_base_python_loads_without_writing(tmp_path):
    """A non-root charm cannot write `__pycache__`: staging compiles src/ and lib/ for it."""
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "lib" / "charms").mkdir(parents=True)
    (project / "charmcraft.yaml").write_text("name: tiny\ntype: charm\n")
    (project / "src" / "charm.py").write_text("import helper\n")
    (project / "src" / "helper.py").write_text("VALUE = 1\n")
    (project / "lib" / "charms" / "shared.py").write_text("VALUE = 2\n")
    python = charm_stage.default_python()

    staged = charm_stage.stage(
        project, tmp_path / "charm", python=python, cache_dir=tmp_path / "venvs", dependencies=[]
    )

    env = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": "lib:src", "PATH": os.environ["PATH"]}
    done = subprocess.run(
        [str(python), "-v", "-c", "import helper, charms.shared"],
        cwd=staged.path,
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    from_bytecode = [line for line in done.stderr.splitlines() if "code object from" in line]
    for module in ("src/__pycache__/helper.", "lib/charms/__pycache__/shared."):
        assert any(module in line for line in from_bytecode), done.stderr[-2000:]


def test_the_venv_cache_key_changes_with_its_layout(tmp_path, monkeypatch):
    """A venv cached before staging compiled bytecode is not reused."""
    python = charm_stage.default_python()
    first = charm_stage.ensure_venv([], python, tmp_path)
    monkeypatch.setattr(charm_stage, "VENV_LAYOUT", "another-layout")
    second = charm_stage.ensure_venv([], python, tmp_path)
    assert first != second and Path(first).is_dir() and Path(second).is_dir()


def test_the_controller_client_imports_no_juju_local_module_but_itself():
    """What `python -m juju_local config …` loads before a controller answers."""
    script = (
        "import json, sys; import juju_local.controller_client; "
        "print(json.dumps(sorted(sys.modules)))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=REPO
    )
    assert done.returncode == 0, done.stderr
    ours = [
        name
        for name in json.loads(done.stdout)
        if name.split(".")[0] in ("juju_local", "flask_rock")
    ]
    assert ours == ["juju_local", "juju_local.controller_client"]
