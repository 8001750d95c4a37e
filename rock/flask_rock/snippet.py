"""The extension's root snippet: ``run-user``, the Pebble services and the parts it adds."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .install_app import DAEMON_ID, install_app_part

DAEMON_USER = "_daemon_"
GUNICORN_PACKAGE = "gunicorn~=23.0"
STATSD_EXPORTER_REPO = "https://github.com/prometheus/statsd_exporter.git"
STATSD_EXPORTER_TAG = "v0.26.0"
STATSD_EXPORTER_COMMAND = (
    "/bin/statsd_exporter --statsd.mapping-config=/statsd-mapping.conf "
    "--statsd.listen-udp=localhost:9125 --statsd.listen-tcp=localhost:9125"
)
# Ubuntu's venv ships its own ca-certificates.crt, which clashes with ca-certificates_data.
_CA_BUNDLE_EXCLUSION = "-etc/ssl/certs/ca-certificates.crt"


@dataclass(frozen=True)
class ProjectFacts:
    """What validation learnt about a project, enough to build the snippet.

    Attributes:
        project_dir: the project root.
        base: the rock's base.
        python_version: ``3.10``/``3.12`` for a bare base (from build-base), else None.
        entrypoint: the WSGI entrypoint, or None when the user set services.flask.command.
        worker: the default gunicorn worker class, ``gevent`` or ``sync``.
        user_prime: the user's prime list for the install-app part (possibly empty).
        has_requirements_txt: whether requirements.txt exists.
    """

    project_dir: Path
    base: str
    python_version: str | None
    entrypoint: str | None
    worker: str
    user_prime: list[str]
    has_requirements_txt: bool


def _owned(path: str) -> dict[str, Any]:
    return {"path": path, "owner": DAEMON_ID, "group": DAEMON_ID}


def flask_command(entrypoint: str, worker: str) -> str:
    """Return the flask service command; ``[ worker ]`` is Pebble's replaceable default arg."""
    return f"/bin/python3 -m gunicorn -c /flask/gunicorn.conf.py '{entrypoint}' -k [ {worker} ]"


def services(facts: ProjectFacts) -> dict[str, Any]:
    """Return the ``flask`` and ``statsd-exporter`` services."""
    flask: dict[str, Any] = {
        "override": "replace",
        "startup": "enabled",
        "after": ["statsd-exporter"],
        "user": DAEMON_USER,
    }
    if facts.entrypoint is not None:
        flask["command"] = flask_command(facts.entrypoint, facts.worker)
    statsd = {
        "override": "merge",
        "command": STATSD_EXPORTER_COMMAND,
        "summary": "statsd exporter service",
        "startup": "enabled",
        "user": DAEMON_USER,
    }
    return {"flask": flask, "statsd-exporter": statsd}


def stage_packages(bare: bool, python_version: str | None) -> dict[str, list[str]]:
    """The stage-packages of each part the extension adds (``python_version``: bare only)."""
    if not bare:
        return {
            "flask-framework/dependencies": ["python3-venv"],
            "flask-framework/runtime": ["ca-certificates_data"],
        }
    return {
        "flask-framework/dependencies": [f"python{python_version}-venv_ensurepip"],
        "flask-framework/runtime": ["bash_bins", "coreutils_bins", "ca-certificates_data"],
        "flask-framework/runtime-libs": ["libstdc++6"],
    }


def dependencies_part(facts: ProjectFacts) -> dict[str, Any]:
    """Return the python part installing gunicorn and the project's requirements."""
    packages = stage_packages(facts.python_version is not None, facts.python_version)
    part: dict[str, Any] = {
        "plugin": "python",
        "stage-packages": packages["flask-framework/dependencies"],
        "source": ".",
        "python-packages": [GUNICORN_PACKAGE],
        "python-requirements": ["requirements.txt"] if facts.has_requirements_txt else [],
        "build-environment": [],
    }
    if facts.python_version is None:
        part["stage"] = [_CA_BUNDLE_EXCLUSION]
    else:
        interpreter = f"python{facts.python_version}"
        part["build-environment"] = [{"PARTS_PYTHON_INTERPRETER": interpreter}]
    return part


def config_files_part(source: str) -> dict[str, Any]:
    """Return the part shipping gunicorn.conf.py and statsd-mapping.conf from ``source``."""
    return {
        "plugin": "dump",
        "source": source,
        "organize": {"gunicorn.conf.py": "flask/gunicorn.conf.py"},
        "permissions": [_owned("flask/gunicorn.conf.py")],
    }


def statsd_exporter_part() -> dict[str, Any]:
    """Return the part building statsd_exporter from source."""
    return {
        "build-snaps": ["go"],
        "source-tag": STATSD_EXPORTER_TAG,
        "plugin": "go",
        "source": STATSD_EXPORTER_REPO,
    }


def logging_part() -> dict[str, Any]:
    """Return the part creating the promtail and log directories the charm relies on."""
    dirs = ("opt/promtail", "etc/promtail", "var/log/flask")
    lines = ["craftctl default", *(f"mkdir -p $CRAFT_PART_INSTALL/{d}" for d in dirs)]
    return {
        "plugin": "nil",
        "override-build": "\n".join(lines),
        "permissions": [_owned(d) for d in dirs],
    }


def runtime_parts(bare: bool) -> dict[str, Any]:
    """Return the runtime part(s); a bare rock also needs a shell, coreutils and /tmp."""
    packages = stage_packages(bare, None)
    if not bare:
        return {
            "flask-framework/runtime": {
                "plugin": "nil",
                "stage-packages": packages["flask-framework/runtime"],
            }
        }
    return {
        "flask-framework/runtime": {
            "plugin": "nil",
            "override-build": (
                "mkdir -m 777 ${CRAFT_PART_INSTALL}/tmp\n"
                "ln -sf /usr/bin/bash ${CRAFT_PART_INSTALL}/usr/bin/sh"
            ),
            "stage-packages": packages["flask-framework/runtime"],
        },
        "flask-framework/runtime-libs": {
            "plugin": "nil",
            "stage-packages": packages["flask-framework/runtime-libs"],
        },
    }


def parts(facts: ProjectFacts, config_files_source: str) -> dict[str, Any]:
    """Return every part the extension adds, in Rockcraft's order."""
    return {
        "flask-framework/dependencies": dependencies_part(facts),
        "flask-framework/install-app": install_app_part(facts.project_dir, facts.user_prime),
        "flask-framework/config-files": config_files_part(config_files_source),
        "flask-framework/statsd-exporter": statsd_exporter_part(),
        "flask-framework/logging": logging_part(),
        **runtime_parts(facts.base == "bare"),
    }


def root_snippet(facts: ProjectFacts, config_files_source: str) -> dict[str, Any]:
    """Return the snippet merged into the user's document."""
    return {
        "run-user": DAEMON_USER,
        "services": services(facts),
        "parts": parts(facts, config_files_source),
    }
