"""The config files the rock ships, checked by the real programs that read them."""

import subprocess
from pathlib import Path

import pytest

from flask_rock import local_run, toolchain
from flask_rock.expand import CONFIG_FILES_DIR
from flask_rock.rootfs import sandbox_argv
from tests.e2e.rock_runner import SAMPLE

MAPPING = CONFIG_FILES_DIR / "statsd-mapping.conf"


def _statsd_check_config(mapping: Path) -> subprocess.CompletedProcess:
    exporter = toolchain.ensure_binary(toolchain.STATSD_EXPORTER)
    return subprocess.run(
        [str(exporter), "--check-config", f"--statsd.mapping-config={mapping}"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_statsd_mapping_passes_statsd_exporter_check_config():
    result = _statsd_check_config(MAPPING)
    assert result.returncode == 0, result.stderr
    assert "Configuration check successful" in result.stderr


def test_statsd_check_config_rejects_an_invalid_metric_name(tmp_path: Path):
    broken = tmp_path / "mapping.conf"
    broken.write_text(MAPPING.read_text().replace("name: flask_requests", "name: flask requests"))
    result = _statsd_check_config(broken)
    assert result.returncode != 0
    assert "flask requests" in result.stderr


@pytest.fixture(scope="module")
def sample_rootfs(tmp_path_factory):
    """The sample rock's filesystem, laid out as `flask_rock run` lays it out."""
    rootfs, _ = local_run.prepare(SAMPLE.resolve(), tmp_path_factory.mktemp("state"))
    return rootfs


def _gunicorn_check_config(rootfs, entrypoint: str) -> subprocess.CompletedProcess:
    command = ["/bin/python3", "-m", "gunicorn", "--check-config"]
    command += ["-c", "/flask/gunicorn.conf.py", entrypoint]
    return subprocess.run(
        sandbox_argv(rootfs, command), capture_output=True, text=True, timeout=120
    )


def test_gunicorn_conf_passes_check_config_with_the_sample_app(sample_rootfs):
    result = _gunicorn_check_config(sample_rootfs, "app:app")
    assert result.returncode == 0, result.stdout + result.stderr


def test_gunicorn_check_config_fails_for_a_missing_app(sample_rootfs):
    result = _gunicorn_check_config(sample_rootfs, "app:no_such_app")
    assert result.returncode != 0
    assert "no_such_app" in result.stdout + result.stderr
