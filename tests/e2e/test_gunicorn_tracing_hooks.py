"""The charm's tracing hook under a real Gunicorn, in a rock without the OpenTelemetry packages.

With the tracing variables set, each worker logs one line saying why tracing is off and serves;
the access line still carries the request id (and `-` for the trace id). The sample, which has
the packages, is traced end to end in test_tracing.py.
"""

from __future__ import annotations

import os
import subprocess
import urllib.request
from pathlib import Path

import workload
from flask_rock import toolchain
from tests.e2e import rock_runner

BARE_APP = """\
from flask import Flask

app = Flask(__name__)


@app.route("/")
def index():
    return "ok"
"""


def test_without_the_packages_each_worker_logs_one_line_and_serves(tmp_path: Path):
    # Gunicorn runs the charm's config file with the tracing variables set, in an app
    # environment that has Flask but no OpenTelemetry SDK.
    project = tmp_path / "bare"
    project.mkdir()
    (project / "app.py").write_text(BARE_APP)
    (project / "requirements.txt").write_text("Flask~=3.1\n")
    python = toolchain.ensure_app_environment(project) / "bin" / "python"
    rock_conf = tmp_path / "rock.conf.py"
    rock_conf.write_text(f"bind = ['127.0.0.1:8000']\nchdir = {str(project)!r}\nworkers = 2\n")
    charm_conf = tmp_path / "charm.conf.py"
    charm_conf.write_text(workload.gunicorn_config(str(rock_conf), {"worker_class": "sync"}))
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}
    log = tmp_path / "gunicorn.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(python), "-m", "gunicorn", "-c", str(charm_conf), "app:app"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        assert rock_runner.wait_for_http_ok("/", timeout=60), log.read_text()
        request = urllib.request.Request(
            rock_runner.APP_URL + "/?bare", headers={"X-Request-ID": "bare-1"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
        assert rock_runner.wait_until(lambda: "request_id=bare-1" in log.read_text(), 10.0)
    finally:
        process.terminate()
        process.wait(timeout=60)

    text = log.read_text()
    assert text.count("tracing is off: the app's Python lacks opentelemetry") == 2, text
    assert "Traceback" not in text
    (line,) = [line for line in text.splitlines() if "request_id=bare-1" in line]
    assert '"GET /?bare HTTP/1.1" 200 ' in line
    assert line.endswith("request_id=bare-1 trace_id=-")
