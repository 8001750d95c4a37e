"""The workload, computed: pure functions from config and facts to Pebble layer, env and files.

Nothing here talks to Juju or Pebble. `charm.py` reads the inputs (config, the rock's `flask`
service from the container's plan, the secret key, the ingress URL), calls `FlaskApp`, and applies
what differs.

How Gunicorn settings reach a running Gunicorn without a restart: Gunicorn re-reads only its `-c`
config file on SIGHUP (not its argv, not its environment). So the charm renders the rock's command
with `-c` pointing at the charm's own config file (`CHARM_GUNICORN_CONFIG`), which first executes
the rock's config file and then sets the options the operator chose. A change to those options
changes only that file: the charm pushes it and sends SIGHUP. The worker class stays on the command
line (`-k`), so changing it changes the command, which takes a restart.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # config imports pydantic, which the charm loads only when it needs it
    import ops

    from config import FlaskConfig

APP_SERVICE = "flask"
EXPORTER_SERVICE = "statsd-exporter"
APP_PORT = 8000
METRICS_PORT = 9102
APP_DIR = "/flask/app"
CHARM_GUNICORN_CONFIG = "/flask/charm/gunicorn.conf.py"
DAEMON_UID = 584792
APP_CHECK = "flask-ready"
EXPORTER_CHECK = "statsd-exporter-up"
ROCK_SERVICE_MARKER = "# rock-flask-service: "

_CONFIG_FLAGS = ("-c", "--config")
_WORKER_FLAGS = ("-k", "--worker-class")


class CommandError(ValueError):
    """The rock's `flask` command cannot be parsed."""


def _flag_value(tokens: list[str], flags: tuple[str, ...]) -> tuple[int, int, str] | None:
    """Find `flag VALUE`, `flag=VALUE` (long) or `-xVALUE` (short): (start, end, value)."""
    for index, token in enumerate(tokens):
        for flag in flags:
            if token == flag and index + 1 < len(tokens):
                return index, index + 2, tokens[index + 1]
            glued = f"{flag}=" if flag.startswith("--") else flag
            if token.startswith(glued) and len(token) > len(glued):
                return index, index + 1, token[len(glued) :]
    return None


@dataclasses.dataclass(frozen=True)
class RockCommand:
    """The rock's `flask` command, split into what the charm keeps and what it changes.

    `base` holds the tokens before Pebble's default-arguments group `[ … ]` (always last), and
    `default_args` the tokens inside it (None when the command has no group). The extension's
    command is `/bin/python3 -m gunicorn -c /flask/gunicorn.conf.py 'app:app' -k [ sync ]`.
    """

    base: tuple[str, ...]
    default_args: tuple[str, ...] | None

    @classmethod
    def parse(cls, command: str) -> RockCommand:
        """Split a Pebble service command; raise CommandError if it cannot be parsed."""
        try:
            tokens = shlex.split(command)
        except ValueError as exc:
            msg = f"cannot parse the rock's flask command {command!r}: {exc}"
            raise CommandError(msg) from None
        if not tokens:
            raise CommandError("the rock's flask command is empty")
        if tokens[-1] == "]" and "[" in tokens:
            start = tokens.index("[")
            return cls(tuple(tokens[:start]), tuple(tokens[start + 1 : -1]))
        return cls(tuple(tokens), None)

    @property
    def runs_gunicorn(self) -> bool:
        """Whether the command starts Gunicorn (so `-c` and `-k` mean what we think)."""
        return any(token.rsplit("/", 1)[-1] == "gunicorn" for token in self.base)

    @property
    def config_path(self) -> str | None:
        """The rock's Gunicorn config file (`-c`), if any."""
        found = _flag_value(list(self.base), _CONFIG_FLAGS)
        return found[2] if found else None

    @property
    def default_worker(self) -> str | None:
        """The worker class the rock runs when the charm does not choose one."""
        if self.base and self.base[-1] in _WORKER_FLAGS and self.default_args:
            return self.default_args[0]
        found = _flag_value([*self.base, *(self.default_args or ())], _WORKER_FLAGS)
        return found[2] if found else None

    @property
    def interpreter(self) -> str:
        """The Python the command runs (the rock's `/bin/python3` unless it says otherwise)."""
        first = self.base[0]
        return first if first.rsplit("/", 1)[-1].startswith("python") else "/bin/python3"

    def render(self, worker_type: str | None, config_path: str = CHARM_GUNICORN_CONFIG) -> str:
        """Render the command with `-c config_path`, and `-k worker_type` when one is chosen."""
        base = list(self.base)
        defaults = list(self.default_args) if self.default_args is not None else None
        found = _flag_value(base, _CONFIG_FLAGS)
        if found:
            base[found[0] : found[1]] = ["-c", config_path]
        else:
            base += ["-c", config_path]
        if worker_type is not None:
            if base and base[-1] in _WORKER_FLAGS and defaults:
                base.pop()
                defaults.pop(0)
            for tokens in (base, defaults or []):
                while found := _flag_value(tokens, _WORKER_FLAGS):
                    del tokens[found[0] : found[1]]
            base += ["-k", worker_type]
        command = shlex.join(base)
        if defaults:
            command += f" [ {shlex.join(defaults)} ]"
        return command


def env_value(value: str | int | bool) -> str:
    """Encode a value for Flask's `from_prefixed_env`, which json-loads every FLASK_* value.

    Booleans and ints are JSON. A string stays as it is unless JSON would read it as something
    else (`"true"`, `"42"`), in which case it is JSON-quoted so that Flask sees a string.
    """
    if isinstance(value, (bool, int)):
        return json.dumps(value)
    try:
        decoded = json.loads(value)
    except ValueError:
        return value
    return value if isinstance(decoded, str) else json.dumps(value)


def environment(config: FlaskConfig, secret_key: str, base_url: str) -> dict[str, str]:
    """Return the FLASK_* variables for the app; options left unset are left out."""
    options: dict[str, str | int | bool | None] = {
        "FLASK_ENV": config.flask_env,
        "FLASK_DEBUG": config.flask_debug,
        "FLASK_PERMANENT_SESSION_LIFETIME": config.flask_permanent_session_lifetime,
        "FLASK_PREFERRED_URL_SCHEME": config.flask_preferred_url_scheme,
        "FLASK_APPLICATION_ROOT": config.flask_application_root,
        "FLASK_SESSION_COOKIE_SECURE": config.flask_session_cookie_secure,
        "FLASK_SECRET_KEY": secret_key,
        "FLASK_BASE_URL": base_url,
    }
    return {name: env_value(value) for name, value in options.items() if value is not None}


# webserver-workers unset, and the rock's own config sets none: 2 x the container's CPUs + 1,
# at most 9 (bench/workers.py, 2 CPUs: 5 sync workers serve an I/O-bound route 5x faster than 1
# and a CPU-bound one as fast as 2; the cap bounds memory on big nodes without a CPU limit).
# Evaluated by Gunicorn inside the workload container, where its CPU quota is visible.
DEFAULT_WORKERS = """\
if "workers" not in globals():
    import math as _math
    import os as _os

    def _container_cpus():
        try:
            with open("/sys/fs/cgroup/cpu.max", encoding="utf-8") as _file:
                _quota, _period = _file.read().split()
            if _quota != "max":
                return max(1, _math.ceil(int(_quota) / int(_period)))
        except (OSError, ValueError):
            pass
        return len(_os.sched_getaffinity(0))

    workers = min(2 * _container_cpus() + 1, 9)
"""


def gunicorn_config(
    rock_config_path: str | None, settings: Mapping[str, int], rock_service: Mapping[str, Any]
) -> str:
    """Render the charm's Gunicorn config file: the rock's file, then the operator's settings.

    The rock's service is recorded in a comment so that the charm can recover the rock's command
    from the container if it ever loses its own memory of it (the file dies with the container).
    """
    lines = [
        "# Written by the flask-k8s charm; edits are overwritten. Gunicorn re-reads this file on",
        "# SIGHUP: the charm applies changes to these settings with a graceful reload.",
        ROCK_SERVICE_MARKER + json.dumps(dict(rock_service), sort_keys=True),
    ]
    if rock_config_path:
        lines += [
            f"_rock_config = {rock_config_path!r}",
            "with open(_rock_config, encoding='utf-8') as _file:",
            "    exec(compile(_file.read(), _rock_config, 'exec'))",
        ]
    lines += [
        "# Access and error logs to stdout/stderr: Pebble forwards them to Loki.",
        "accesslog = '-'",
        "errorlog = '-'",
    ]
    if "workers" not in settings:
        lines += DEFAULT_WORKERS.splitlines()
    lines += [f"{name} = {value!r}" for name, value in sorted(settings.items())]
    return "\n".join(lines) + "\n"


def rock_service_from_config(content: str) -> dict[str, Any] | None:
    """Recover the rock's service recorded by `gunicorn_config`, or None."""
    for line in content.splitlines():
        if line.startswith(ROCK_SERVICE_MARKER):
            try:
                service = json.loads(line[len(ROCK_SERVICE_MARKER) :])
            except ValueError:
                return None
            return service if isinstance(service, dict) else None
    return None


@dataclasses.dataclass(frozen=True)
class FlaskApp:
    """Gunicorn serving the Flask app: the `flask` service, its check and its config file."""

    rock_service: Mapping[str, Any]
    config: FlaskConfig
    secret_key: str
    base_url: str
    # Variables from related integrations (databases, …): src/integrations/.
    integration_env: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def rock_command(self) -> RockCommand:
        """The rock's own command, parsed."""
        return RockCommand.parse(self.rock_service.get("command", ""))

    def command(self) -> str:
        """Render the command the charm runs: the rock's, with our config file and worker class."""
        rock = self.rock_command
        if not rock.runs_gunicorn:
            return shlex.join(rock.base) + (
                f" [ {shlex.join(rock.default_args)} ]" if rock.default_args else ""
            )
        return rock.render(self.config.worker_type)

    def gunicorn_config(self) -> str:
        """Content of `CHARM_GUNICORN_CONFIG`."""
        return gunicorn_config(
            self.rock_command.config_path, self.config.gunicorn_settings(), self.rock_service
        )

    def service(self) -> ops.pebble.ServiceDict:
        """Render the `flask` service: the rock's own, with our command and environment."""
        service: dict[str, Any] = {
            key: value
            for key, value in self.rock_service.items()
            if key not in ("environment", "on-check-failure")
        }
        rock_env = self.rock_service.get("environment") or {}
        service.update(
            {
                "override": "replace",
                "summary": service.get("summary") or "Flask app served by Gunicorn",
                "command": self.command(),
                "startup": "enabled",
                "environment": {
                    **rock_env,
                    **self.integration_env,
                    **environment(self.config, self.secret_key, self.base_url),
                },
                "on-check-failure": {
                    **(self.rock_service.get("on-check-failure") or {}),
                    APP_CHECK: "restart",
                },
            }
        )
        return service  # type: ignore[return-value]  # a ServiceDict, built key by key

    def layer(self) -> ops.pebble.LayerDict:
        """Render the app's part of the charm's layer."""
        return {
            "services": {APP_SERVICE: self.service()},
            "checks": {
                # `ready`, not `alive`: Juju turns `alive` checks into the pod's liveness probe,
                # so Kubernetes would kill a pod whose app is deliberately not started yet (for
                # example while it waits for another unit's migration) and loop it forever. A
                # failing `ready` check only takes the pod out of the Service endpoints, and
                # `on-check-failure` restarts the app inside the pod. The check is TCP, not HTTP
                # on `/`: any Flask app may answer `/` with 404 or 302, and an HTTP check would
                # then restart a healthy app forever.
                APP_CHECK: {
                    "override": "replace",
                    "level": "ready",
                    "tcp": {"port": APP_PORT},
                },
            },
        }


class StatsdExporter:
    """The rock's StatsD exporter: its service stays the rock's; the charm adds a check."""

    @staticmethod
    def layer() -> ops.pebble.LayerDict:
        """Render the exporter's part of the charm's layer."""
        return {
            "checks": {
                # No level: a broken exporter must not take the app out of service, so this
                # check is neither a liveness nor a readiness probe; it is there for
                # `pebble checks` and alerting.
                EXPORTER_CHECK: {
                    "override": "replace",
                    "http": {"url": f"http://localhost:{METRICS_PORT}/metrics"},
                },
            },
        }


def pebble_layer(
    app: FlaskApp, log_targets: Mapping[str, Mapping[str, Any]] | None = None
) -> ops.pebble.LayerDict:
    """Render the charm's whole layer.

    That is the app's service and checks, the exporter's check, and the log targets
    (`loki_push_api.log_targets`) when there are any.
    """
    app_layer, exporter_layer = app.layer(), StatsdExporter.layer()
    layer: dict[str, Any] = {
        "summary": "flask-k8s: the Flask app as configured by the charm",
        "services": dict(app_layer.get("services", {})),
        "checks": {**app_layer.get("checks", {}), **exporter_layer.get("checks", {})},
    }
    return {**layer, **log_targets_layer(log_targets or {})}  # type: ignore[return-value]


def log_targets_layer(log_targets: Mapping[str, Mapping[str, Any]]) -> ops.pebble.LayerDict:
    """Render a layer holding only the log targets (none: an empty layer)."""
    if not log_targets:
        return {}
    return {"log-targets": {name: dict(target) for name, target in log_targets.items()}}  # type: ignore[typeddict-item]


WORKLOAD_SECTIONS = ("services", "checks")
LOG_SECTIONS = ("log-targets",)


def plan_has(
    plan: Mapping[str, Any],
    layer: ops.pebble.LayerDict,
    sections: tuple[str, ...] = WORKLOAD_SECTIONS,
) -> bool:
    """Whether a plan (as a dict) already holds every entry of a layer's sections, as defined.

    Only the keys the layer sets are compared (Pebble may add none, but we need not care).
    Log targets are a section of their own: changing them needs no replan, so no restart.
    """
    for section in sections:
        current = plan.get(section) or {}
        for name, spec in (layer.get(section) or {}).items():  # type: ignore[attr-defined]
            have = current.get(name)
            if have is None:
                return False
            if any(have.get(key) != value for key, value in spec.items() if key != "override"):
                return False
    return True
