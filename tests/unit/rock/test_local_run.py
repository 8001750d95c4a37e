"""`flask_rock run`: what it prepares, and the clear errors it gives before starting anything."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from flask_rock import local_run, toolchain
from flask_rock.errors import ProjectError
from flask_rock.expand import expand_project
from flask_rock.rootfs import ROCK_UID, build_rootfs, sandbox_argv
from tests.unit.rock.flask_rock_helpers import FLASK_APP, ProjectFactory, short_form

ROCK_DIR = Path(__file__).parents[3] / "rock"
FILES = {"app.py": FLASK_APP, "requirements.txt": "flask\n"}


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flask_rock", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROCK_DIR), **(env or {})},
        timeout=60,
    )


def test_pebble_layer_holds_the_rock_services():
    document = {"summary": "s", "description": "d", "services": {"flask": {"command": "x"}}}
    assert local_run.pebble_layer(document) == {
        "summary": "s",
        "description": "d",
        "services": {"flask": {"command": "x"}},
    }


def test_pebble_layer_without_flask_service_is_an_error():
    with pytest.raises(ProjectError, match="services.flask"):
        local_run.pebble_layer({"services": {"web": {}}})


def test_rootfs_lays_out_app_and_config_files(
    make_project: ProjectFactory, tmp_path: Path, fake_venv: Path, fake_binaries: dict[str, Path]
):
    project_dir = make_project({**FILES, "migrate.py": "", "static/a.css": "x", "notes.txt": ""})
    document = expand_project(project_dir)

    rootfs = build_rootfs(document, project_dir, tmp_path / "state", fake_venv, fake_binaries)

    app = rootfs.root / "flask" / "app"
    assert sorted(p.name for p in app.iterdir()) == ["app.py", "migrate.py", "static"]
    assert (rootfs.root / "flask" / "gunicorn.conf.py").is_file()
    assert (rootfs.root / "statsd-mapping.conf").is_file()
    assert os.readlink(rootfs.root / "bin" / "statsd_exporter") == str(
        fake_binaries["statsd_exporter"]
    )
    assert str(fake_venv) in (rootfs.root / "bin" / "python3").read_text()
    passwd = (rootfs.root / "etc" / "passwd").read_text()
    assert f"_daemon_:x:{ROCK_UID}:{ROCK_UID}:" in passwd
    if os.geteuid() == 0:
        assert (app / "app.py").stat().st_uid == ROCK_UID


def test_rootfs_exclude_mode_copies_everything_but_the_excluded(
    make_project: ProjectFactory, tmp_path: Path, fake_venv: Path, fake_binaries: dict[str, Path]
):
    document = short_form()
    document["parts"] = {"flask-framework/install-app": {"prime": ["-flask/app/secret.txt"]}}
    project_dir = make_project({**FILES, "secret.txt": "x", "lib/x.py": ""}, document)

    rootfs = build_rootfs(
        expand_project(project_dir), project_dir, tmp_path / "state", fake_venv, fake_binaries
    )

    app = rootfs.root / "flask" / "app"
    assert (app / "lib" / "x.py").is_file()
    assert (app / "app.py").is_file()
    assert not (app / "secret.txt").exists()


def test_sandbox_binds_the_rock_layout_over_host_usr(
    make_project: ProjectFactory, tmp_path: Path, fake_venv: Path, fake_binaries: dict[str, Path]
):
    project_dir = make_project()
    rootfs = build_rootfs(
        expand_project(project_dir), project_dir, tmp_path / "s", fake_venv, fake_binaries
    )

    argv = sandbox_argv(rootfs, ["/bin/true"], env={"A": "1"})

    joined = " ".join(argv)
    assert f"--bind {rootfs.root / 'flask'} /flask" in joined
    assert f"--ro-bind {rootfs.root / 'statsd-mapping.conf'} /statsd-mapping.conf" in joined
    assert "--ro-bind /usr /usr" in joined
    assert "--setenv A 1" in joined
    assert argv[-1] == "/bin/true"
    # Every bind target lies inside the sandbox: nothing is mounted over the host's own paths.
    assert "--unshare-pid" in argv and "--die-with-parent" in argv


def test_missing_go_and_pebble_explains_how_to_get_it(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("FLASK_ROCK_CACHE", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("FLASK_ROCK_BIN", raising=False)

    with pytest.raises(ProjectError) as error:
        toolchain.ensure_binary(toolchain.PEBBLE)

    message = error.value.problems[0]
    assert "Go is not installed" in message
    assert "go install github.com/canonical/pebble/cmd/pebble@v1.32.1" in message


def test_cli_run_on_a_broken_project_lists_problems_without_traceback(
    make_project: ProjectFactory,
):
    project_dir = make_project({"requirements.txt": "requests\n"})

    result = _cli("run", str(project_dir))

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "flask" in result.stderr and "Missing WSGI entrypoint" in result.stderr


def test_cli_run_refuses_when_the_app_port_is_taken(make_project: ProjectFactory):
    project_dir = make_project()
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind(("0.0.0.0", local_run.APP_PORT))
        except OSError:
            pytest.skip("port 8000 is already taken on this machine")
        listener.listen()

        result = _cli("run", str(project_dir))

    assert result.returncode == 1
    assert "port 8000 is already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_pack_ready_document_is_used_as_is(tmp_path: Path):
    document = {"name": "x", "services": {"flask": {"command": "c"}}, "parts": {}}
    (tmp_path / "rockcraft.yaml").write_text(yaml.safe_dump(document))
    assert local_run.load_pack_ready(tmp_path) == document


def test_sandbox_makes_every_ancestor_of_a_bound_path_traversable(
    make_project: ProjectFactory, tmp_path: Path, fake_venv: Path, fake_binaries: dict[str, Path]
):
    # The app runs as _daemon_: it must reach the venv even when the checkout lives in /tmp.
    project_dir = make_project()
    rootfs = build_rootfs(
        expand_project(project_dir), project_dir, tmp_path / "s", fake_venv, fake_binaries
    )

    argv = sandbox_argv(rootfs, ["/bin/true"])

    created = {argv[i + 1] for i, arg in enumerate(argv) if arg == "--dir"}
    for ancestor in list(fake_venv.parents)[:-1]:
        if str(ancestor) != "/tmp":
            assert str(ancestor) in created, ancestor
