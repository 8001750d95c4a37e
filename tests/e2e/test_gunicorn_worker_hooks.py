"""The charm's per-worker hooks under a real Gunicorn: the rock's own `post_request` still runs.

Gunicorn (the sample app's environment, gevent workers) runs the config file the charm renders
over a rock config file that defines its own `post_request`. Each request must run it exactly
once, before and after a SIGHUP reload (which loads the file afresh and replaces the workers).
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import workload
from flask_rock import toolchain
from tests.e2e import rock_runner
from tests.e2e.rock_runner import SAMPLE

ROCK_CONFIG = """\
bind = ["127.0.0.1:8000"]
chdir = {chdir!r}
workers = 1


def post_request(worker, req, environ, resp):
    with open({record!r}, "a", encoding="utf-8") as record:
        record.write(req.path + "\\n")
"""


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[tuple[subprocess.Popen, Path, Path]]:
    """Gunicorn with the charm's config over the rock's; yields (process, record, log)."""
    record, log = tmp_path / "post_request.log", tmp_path / "gunicorn.log"
    rock_conf = tmp_path / "rock.conf.py"
    rock_conf.write_text(ROCK_CONFIG.format(chdir=str(SAMPLE), record=str(record)))
    charm_conf = tmp_path / "charm.conf.py"
    charm_conf.write_text(workload.gunicorn_config(str(rock_conf), {"worker_class": "gevent"}))
    python = toolchain.ensure_app_environment(SAMPLE) / "bin" / "python"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(python), "-m", "gunicorn", "-c", str(charm_conf), "app:app"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        assert rock_runner.wait_for_http_ok("/", timeout=60), log.read_text()
        yield process, record, log
    finally:
        process.terminate()
        process.wait(timeout=60)


def _requests_on_one_connection(path: str, count: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", 8000, timeout=30)
    for _ in range(count):
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        assert response.status == 200
    connection.close()


def _workers_started(log: Path) -> int:
    return len(re.findall(r"Using worker: gevent", log.read_text()))


def _recorded(record: Path) -> int:
    return len(record.read_text().splitlines()) if record.exists() else 0


def test_rocks_post_request_runs_once_per_request_before_and_after_a_reload(gunicorn):
    process, record, log = gunicorn
    record.unlink(missing_ok=True)  # the readiness probe's requests

    _requests_on_one_connection("/", 20)
    # post_request runs once the response is sent: give the last one its moment.
    assert rock_runner.wait_until(lambda: _recorded(record) >= 20, timeout=10)
    before = _recorded(record)
    started = _workers_started(log)
    os.kill(process.pid, signal.SIGHUP)
    assert rock_runner.wait_until(lambda: _workers_started(log) > started, timeout=30)
    _requests_on_one_connection("/", 20)
    assert rock_runner.wait_until(lambda: _recorded(record) >= 40, timeout=10)

    assert (before, _recorded(record)) == (20, 40)
