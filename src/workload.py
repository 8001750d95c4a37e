"""The workload, computed: pure functions from config and facts to Pebble layer, env and files.

Nothing here talks to Juju or Pebble. `charm.py` reads the inputs (config, the rock's `flask`
service from the rock's own layer files, the secret key, the ingress URL), calls `FlaskApp`, and
applies what differs.

Every `juju config` change reaches a running Gunicorn without a restart: Gunicorn re-reads its
`-c` config file on SIGHUP (not its argv, not its environment), then starts new workers and lets
the old ones finish their requests; its listening socket stays open throughout. So the command
the charm renders is the rock's with `-c` pointing at the charm's own config file
(`CHARM_GUNICORN_CONFIG`) and with no `-k`: that file executes the rock's config file, then sets
the worker class, the operator's settings and the app's `FLASK_*` environment. A change changes
only that file: the charm pushes it and sends SIGHUP. The Pebble service (rock command, rock
environment) stays the same for the container's life.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import app_health

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
# The rock's own layers, in the image: root's files, read-only to the app. Pebble is started with
# PEBBLE_COPY_ONCE pointing here, so these are the layers the plan began with.
ROCK_LAYERS_DIR = "/var/lib/pebble/default/layers"

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

    def render(self, config_path: str = CHARM_GUNICORN_CONFIG) -> str:
        """Render the command with `-c config_path` and without any worker class.

        The worker class goes into the config file instead (`FlaskApp.settings`): Gunicorn lets
        its command line override its config file, and re-reads only the file on SIGHUP.
        """
        base = list(self.base)
        defaults = list(self.default_args) if self.default_args is not None else None
        found = _flag_value(base, _CONFIG_FLAGS)
        if found:
            base[found[0] : found[1]] = ["-c", config_path]
        else:
            base += ["-c", config_path]
        if base and base[-1] in _WORKER_FLAGS and defaults:  # `-k [ sync ]`
            base.pop()
            defaults.pop(0)
        for tokens in (base, defaults or []):
            while found := _flag_value(tokens, _WORKER_FLAGS):
                del tokens[found[0] : found[1]]
        command = shlex.join(base)
        if defaults:
            command += f" [ {shlex.join(defaults)} ]"
        return command


def env_value(value: str | int | float | bool) -> str:
    """Encode a value for Flask's `from_prefixed_env`, which json-loads every FLASK_* value.

    Booleans and numbers are JSON. A string stays as it is unless JSON would read it as something
    else (`"true"`, `"42"`), in which case it is JSON-quoted so that Flask sees a string.
    """
    if isinstance(value, (bool, int, float)):
        return json.dumps(value)
    try:
        decoded = json.loads(value)
    except ValueError:
        return value
    return value if isinstance(decoded, str) else json.dumps(value)


# The variables the flask-* options, the secret key and the URL give the app (a subset is set).
CHARM_ENV_NAMES = (
    "FLASK_ENV",
    "FLASK_DEBUG",
    "FLASK_PERMANENT_SESSION_LIFETIME",
    "FLASK_PREFERRED_URL_SCHEME",
    "FLASK_APPLICATION_ROOT",
    "FLASK_SESSION_COOKIE_SECURE",
    "FLASK_SECRET_KEY",
    "FLASK_BASE_URL",
)
PEER_FQDNS = "FLASK_PEER_FQDNS"
# Names the app options may not take: the charm sets them.
RESERVED_NAMES = (*CHARM_ENV_NAMES, PEER_FQDNS)
# Juju's model proxy (the hook's JUJU_CHARM_*_PROXY) → the app's variables, both cases.
PROXY_SOURCES = {
    "HTTP_PROXY": "JUJU_CHARM_HTTP_PROXY",
    "HTTPS_PROXY": "JUJU_CHARM_HTTPS_PROXY",
    "NO_PROXY": "JUJU_CHARM_NO_PROXY",
}
PROXY_NAMES = (*PROXY_SOURCES, *(name.lower() for name in PROXY_SOURCES))


def proxy_environment(hook_env: Mapping[str, str]) -> dict[str, str]:
    """The proxy variables for the app, from the hook's environment (unset ones left out)."""
    env: dict[str, str] = {}
    for name, source in PROXY_SOURCES.items():
        value = hook_env.get(source)
        if value and "\x00" not in value:
            env[name] = env[name.lower()] = value
    return env


def peer_fqdns(app: str, model: str, units: Iterable[str]) -> str:
    """Each unit's Kubernetes FQDN, comma-separated in unit order.

    `<app>-<n>.<app>-endpoints.<model>.svc.cluster.local`: the pod's name under the headless
    service Juju creates for the application.
    """

    def number(unit: str) -> int:
        tail = unit.rpartition("/")[2]
        return int(tail) if tail.isdigit() else -1

    pods = sorted(set(units), key=lambda unit: (number(unit), unit))
    return ",".join(
        f"{unit.replace('/', '-')}.{app}-endpoints.{model}.svc.cluster.local" for unit in pods
    )


def managed_by_file(name: str) -> bool:
    """Whether the charm's Gunicorn config file owns this variable of the app's environment."""
    return name.startswith("FLASK_") or name in PROXY_NAMES


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


# Gunicorn's graceful timeout, fixed by the charm so that Pebble's kill-delay can match it: when
# the service does restart (a new rock command, a failed check), Gunicorn gets this long to finish
# in-flight requests after SIGTERM, and Pebble sends SIGKILL only after a margin beyond it.
GRACEFUL_TIMEOUT = 30
KILL_DELAY = f"{GRACEFUL_TIMEOUT + 5}s"

# Gunicorn's default access line, then the request id an ingress or client sent (`X-Request-ID`)
# and the id of the request's trace (set by the tracing hook below; `-` without tracing).
TRACE_ID_KEY = "flask_k8s.trace_id"  # a WSGI environment key; Gunicorn's atoms are lower-case
ACCESS_LOG_FORMAT = (
    '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" '
    f"request_id=%({{x-request-id}}i)s trace_id=%({{{TRACE_ID_KEY}}}e)s"
)

# Per-worker hooks, decided at each worker's start (a SIGHUP may change the worker class).
#
# Under gevent, Gunicorn's keep-alive loop serves a connection's next request without yielding
# to the hub when that request is already buffered, so one connection can serve hundreds of
# requests in a row while the others wait. A timer sleep after each request lets them in
# (`sleep(0)` does not: it only yields to callbacks already due). Sync and gthread workers never
# yield. The rock's own hooks, if its config file defines them, run too (its `post_request`
# first), exactly once.
#
# A gthread worker that stops (a reload replaces every worker) closes its idle keep-alive
# connections unanswered: a client whose next request is already on its way gets no response.
# Before closing them, it serves what arrives on them for a moment, each answer saying
# `Connection: close` (the worker is no longer alive), as gevent workers do.
#
# With a tracing relation (OTEL_EXPORTER_OTLP_ENDPOINT) and the OpenTelemetry SDK, the OTLP/HTTP
# exporter and Flask's (or the generic WSGI) instrumentation in the app's Python, each worker
# starts a tracer and instruments the app; without the packages it logs one line and serves.
WORKER_HOOKS = """\
_rock_post_worker_init = globals().get("post_worker_init")
_rock_post_request = globals().get("post_request")
_timer_sleep = None


def _positional_arity(function):
    import inspect as _inspect

    kinds = (_inspect.Parameter.POSITIONAL_ONLY, _inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(p.kind in kinds for p in _inspect.signature(function).parameters.values())


# Gunicorn accepts a post_request of 2, 3 or 4 arguments: call the rock's as Gunicorn would.
_rock_post_request_arity = _positional_arity(_rock_post_request) if _rock_post_request else 0


def post_worker_init(worker):
    global _timer_sleep
    # Gunicorn says which class it uses only when the master starts; a SIGHUP may change it.
    worker.log.info("Using worker: %s", worker.cfg.worker_class_str)
    modules = {cls.__module__ for cls in type(worker).__mro__}
    if _yield_under_gevent and "gunicorn.workers.ggevent" in modules:
        import gevent

        _timer_sleep = gevent.sleep
    if "gunicorn.workers.gthread" in modules:
        _serve_idle_connections_on_exit(worker)
    if _rock_post_worker_init is not None:
        _rock_post_worker_init(worker)
    try:
        _start_tracing(worker)
    except Exception as exc:  # a broken package must not keep the worker from serving
        worker.log.warning("tracing is off: setting it up failed: %s", repr(exc)[:200])


def _start_tracing(worker):
    # One tracer provider per worker, after the fork: the SDK's export thread would not survive
    # one. Only with a tracing relation (the endpoint in the environment) and the packages.
    import os as _os

    if not _os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        worker.log.info(
            "tracing is off: the app's Python lacks %s (add opentelemetry-sdk and "
            "opentelemetry-exporter-otlp-proto-http to requirements.txt)",
            str(exc.name or "the OpenTelemetry SDK")[:80],
        )
        return
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return  # the app or the rock's own hook set one up: theirs wins
    provider = TracerProvider()  # its resource: OTEL_SERVICE_NAME
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))  # reads the endpoint
    trace.set_tracer_provider(provider)
    worker.wsgi = _instrumented(worker.wsgi, worker.log)


def _instrumented(app, log):
    # A Flask app gets Flask's instrumentation (spans named after the route), any other WSGI
    # app the generic one; the trace id then goes into the WSGI environment for the access log.
    try:
        from flask import Flask
        from opentelemetry.instrumentation.flask import FlaskInstrumentor
    except ImportError:
        Flask = FlaskInstrumentor = None
    if Flask is not None and isinstance(app, Flask):
        FlaskInstrumentor().instrument_app(app)
    else:
        try:
            from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
        except ImportError:
            log.info("tracing: no Flask or WSGI instrumentation in the app's Python")
            return app
        app = OpenTelemetryMiddleware(app)
    from opentelemetry import trace

    def record_trace_id(environ, start_response):
        def start(status, headers, exc_info=None):
            span = trace.get_current_span().get_span_context()
            if span.is_valid:
                environ[_TRACE_ID_KEY] = format(span.trace_id, "032x")
            return start_response(status, headers, exc_info)

        return app(environ, start)

    return record_trace_id


def _serve_idle_connections_on_exit(worker):
    poller, close, finish = worker.poller, worker.poller.close, worker.finish_request
    answered_while_stopping = []  # kept alive by an answer sent just before the worker stopped

    def finish_request(future):
        if not worker.alive and not future.cancelled() and future.exception() is None:
            keepalive, connection = future.result()
            if keepalive:
                answered_while_stopping.append(connection)
                return
        finish(future)

    def close_after_last_requests():
        import concurrent.futures as _futures
        import time as _time

        waiting = [
            key.data.args[0]
            for key in list(poller.get_map().values())
            if getattr(key.data, "func", None) is not None
            and key.data.func.__name__ == "on_client_socket_readable"
        ]
        close()
        _futures.wait(list(worker.futures), timeout=worker.cfg.graceful_timeout)
        _time.sleep(0.05)  # their done-callbacks run just after the results are set
        _serve_last_requests(worker, waiting + answered_while_stopping)

    worker.finish_request = finish_request  # futures take it when their request is queued
    poller.close = close_after_last_requests


def _serve_last_requests(worker, connections):
    import selectors as _selectors
    import time as _time

    selector = _selectors.DefaultSelector()
    for connection in connections:
        selector.register(connection.sock, _selectors.EVENT_READ, connection)
    deadline = _time.monotonic() + min(max(worker.cfg.keepalive, 1), 5)
    while selector.get_map() and _time.monotonic() < deadline:
        worker.notify()  # the master kills a worker it has not heard from in `timeout`
        for key, _ in selector.select(min(0.5, max(0.0, deadline - _time.monotonic()))):
            selector.unregister(key.fileobj)
            connection = key.data
            try:
                connection.init()  # blocking again; a new connection gets its parser
                worker.handle(connection)
            except Exception:  # a client gone meanwhile: nothing to answer
                pass
            finally:
                connection.close()
    for key in list(selector.get_map().values()):
        key.data.close()
    selector.close()


def post_request(worker, req, environ, resp):
    if _rock_post_request is not None:
        _rock_post_request(*(worker, req, environ, resp)[:_rock_post_request_arity])
    if _timer_sleep is not None:
        _timer_sleep(1e-6)
"""


_ENV_LINE = "_os.environ.update("
# The master's environment as Pebble started it: /proc keeps the process's initial one.
INITIAL_ENVIRON = f"""\
def _managed(name):
    return name.startswith("FLASK_") or name in {PROXY_NAMES!r}


def _initial_environ():
    try:
        with open("/proc/self/environ", "rb") as _file:
            _items = _file.read().split(b"\\0")
    except OSError:
        return {{}}
    _pairs = (_item.partition(b"=") for _item in _items)
    return {{_os.fsdecode(_k): _os.fsdecode(_v) for _k, _sep, _v in _pairs if _sep}}


_initial = _initial_environ()
"""


def rendered_environment(conf: str) -> dict[str, str]:
    """The app environment a config file rendered by `gunicorn_config` sets ({} if none).

    Only for a file the charm pushed and the app cannot write (`pebble_io.pushed_content`).
    """
    import ast

    for line in conf.splitlines():
        if line.startswith(_ENV_LINE) and line.endswith(")"):
            try:
                env = ast.literal_eval(line[len(_ENV_LINE) : -1])
            except (ValueError, SyntaxError, RecursionError, MemoryError):
                return {}
            if isinstance(env, dict):
                return {str(key): str(value) for key, value in env.items()}
    return {}


def gunicorn_config(
    rock_config_path: str | None,
    settings: Mapping[str, int | str],
    app_env: Mapping[str, str] | None = None,
    timer_yield: bool = True,
) -> str:
    """Render the charm's Gunicorn config file: the rock's file, then what the charm sets.

    `app_env` holds the app's variables the file owns (`managed_by_file`: FLASK_* and proxy): the
    file sets them in the master's environment (which new workers inherit) and puts back any
    other such variable as Pebble gave it (or removes it), so a changed option is a reload too.
    The file holds the secret key: the charm makes it readable by the app's group only.
    `timer_yield=False` turns the gevent yield off (for bench/gevent_yield.py).
    """
    lines = [
        "# Written by the flask-k8s charm; edits are overwritten. Gunicorn re-reads this file on",
        "# SIGHUP: the charm applies every change to it with a graceful reload.",
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
        "# Gunicorn's own access line, then the request's id and trace id (a rock's own format",
        "# stays as it is).",
        "if 'access_log_format' not in globals():",
        f"    access_log_format = {ACCESS_LOG_FORMAT!r}",
        f"_TRACE_ID_KEY = {TRACE_ID_KEY!r}",
        f"graceful_timeout = {GRACEFUL_TIMEOUT!r}",
    ]
    if "workers" not in settings:
        lines += DEFAULT_WORKERS.splitlines()
    lines += [f"{name} = {value!r}" for name, value in sorted(settings.items())]
    if app_env is not None:
        lines += [
            "# The app's FLASK_* and proxy variables: new workers inherit the master's",
            "# environment. One the charm no longer sets goes back to what Pebble gave Gunicorn.",
            "import os as _os",
            *INITIAL_ENVIRON.splitlines(),
            f"_charm_names = {tuple(sorted(app_env))!r}",
            "for _name in [_n for _n in _os.environ if _managed(_n) and _n not in _charm_names]:",
            "    if _name in _initial:",
            "        _os.environ[_name] = _initial[_name]",
            "    else:",
            "        del _os.environ[_name]",
            f"{_ENV_LINE}{dict(sorted(app_env.items()))!r})",
        ]
    lines += [f"_yield_under_gevent = {timer_yield!r}", *WORKER_HOOKS.splitlines()]
    return "\n".join(lines) + "\n"


class RockLayerError(ValueError):
    """The rock's layer files do not define a usable `flask` service."""


def _merge_service(current: dict[str, Any], layer: Mapping[str, Any]) -> dict[str, Any]:
    """Combine one layer's service into the service so far, as Pebble does.

    `override: replace` starts over; `merge` replaces scalars, appends lists (`after`, …) and
    merges maps (`environment`, `on-check-failure`, …) key by key.
    """
    if layer.get("override") == "replace":
        return dict(layer)
    merged = dict(current)
    for key, value in layer.items():
        if key == "override":
            continue
        if isinstance(value, list) and isinstance(merged.get(key), list):
            merged[key] = [*merged[key], *value]
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def rock_service_from_layers(layers: Mapping[str, str]) -> dict[str, Any]:
    """The rock's `flask` service from its layer files ({file name: YAML}), combined in order.

    Pebble orders layer files by their `NNN-` prefix. Raises RockLayerError when no layer
    defines the service or a file is not a layer.
    """
    import yaml  # ops depends on PyYAML; imported here, only when the state must be rebuilt

    service: dict[str, Any] | None = None
    for name in sorted(layers, key=lambda n: (n.split("-", 1)[0], n)):
        try:
            layer = yaml.safe_load(layers[name]) or {}
        except yaml.YAMLError as exc:
            raise RockLayerError(f"the rock's layer {name} is not YAML: {exc}") from None
        spec = (layer.get("services") or {}).get(APP_SERVICE) if isinstance(layer, dict) else None
        if spec is None:
            continue
        if not isinstance(spec, dict):
            raise RockLayerError(f"the rock's layer {name} has a malformed flask service")
        service = _merge_service(service or {}, spec)
    if not service or not isinstance(service.get("command"), str):
        raise RockLayerError("the rock's layers define no flask service with a command")
    return service


@dataclasses.dataclass(frozen=True)
class FlaskApp:
    """Gunicorn serving the Flask app: the `flask` service, its check and its config file."""

    rock_service: Mapping[str, Any]
    config: FlaskConfig
    secret_key: str
    base_url: str
    # Variables from related integrations (databases, …): src/integrations/.
    integration_env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # The app options' FLASK_* variables (`app_options`), secret ones included.
    app_env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    peer_fqdns: str | None = None  # FLASK_PEER_FQDNS
    proxy_env: Mapping[str, str] = dataclasses.field(default_factory=dict)  # proxy_environment

    @property
    def rock_command(self) -> RockCommand:
        """The rock's own command, parsed."""
        return RockCommand.parse(self.rock_service.get("command", ""))

    def command(self) -> str:
        """Render the command the charm runs: the rock's, with our config file and no `-k`."""
        rock = self.rock_command
        if not rock.runs_gunicorn:
            return shlex.join(rock.base) + (
                f" [ {shlex.join(rock.default_args)} ]" if rock.default_args else ""
            )
        return rock.render()

    def charm_environment(self) -> dict[str, str]:
        """What the charm computes: the flask-* and app options, secret key, peers, proxy."""
        env = environment(self.config, self.secret_key, self.base_url)
        env.update(self.app_env)
        if self.peer_fqdns:
            env[PEER_FQDNS] = self.peer_fqdns
        return {**env, **self.proxy_env}

    def environment(self) -> dict[str, str]:
        """The app's whole environment: the rock's, integrations', then the charm's.

        THE environment of everything that runs the app's code (the app, its migrate script,
        its background workers).
        """
        rock_env = self.rock_service.get("environment") or {}
        return {**rock_env, **self.integration_env, **self.charm_environment()}

    def settings(self) -> dict[str, int | str]:
        """Gunicorn settings the charm sets: the worker class and the operator's options.

        The worker class is the operator's, else the rock's default (its `-k`, which the
        command no longer carries): the same effective class renders the same file.
        """
        settings: dict[str, int | str] = dict(self.config.gunicorn_settings())
        worker_class = self.config.worker_type or self.rock_command.default_worker
        if worker_class is not None:
            settings["worker_class"] = worker_class
        return settings

    def gunicorn_config(self) -> str:
        """Content of `CHARM_GUNICORN_CONFIG`."""
        managed = {k: v for k, v in self.environment().items() if managed_by_file(k)}
        return gunicorn_config(self.rock_command.config_path, self.settings(), managed)

    def service(self) -> ops.pebble.ServiceDict:
        """Render the `flask` service: the rock's own, with our command.

        The FLASK_* variables go through the config file (a reload), not Pebble's environment (a
        restart), unless the rock's command does not run Gunicorn.
        """
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
                "kill-delay": KILL_DELAY,
                "on-check-failure": {
                    **(self.rock_service.get("on-check-failure") or {}),
                    APP_CHECK: "restart",
                },
            }
        )
        # Integrations (databases, …) stay in Pebble's environment: a changed credential or
        # a removed relation takes the one restart that re-opens every connection.
        env = (
            {**rock_env, **self.integration_env}
            if self.rock_command.runs_gunicorn
            else self.environment()
        )
        if env:  # Pebble's plan leaves an empty environment out: so must we, to compare
            service["environment"] = env
        return service  # type: ignore[return-value]  # a ServiceDict, built key by key

    def layer(self) -> ops.pebble.LayerDict:
        """Render the app's part of the charm's layer."""
        return {
            "services": {APP_SERVICE: self.service()},
            "checks": {
                # An HTTP probe on `/` that passes on any answer: see `app_health`.
                APP_CHECK: app_health.check(
                    self.rock_command.interpreter, APP_PORT, self.rock_service
                ),
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
    app: FlaskApp,
    log_targets: Mapping[str, Mapping[str, Any]] | None = None,
    background: Mapping[str, ops.pebble.ServiceDict] | None = None,
) -> ops.pebble.LayerDict:
    """Render the charm's whole layer.

    That is the app's service and checks, the exporter's check, the background services
    (`background.BackgroundServices.services`) and the log targets
    (`loki_push_api.log_targets`) when there are any.
    """
    app_layer, exporter_layer = app.layer(), StatsdExporter.layer()
    layer: dict[str, Any] = {
        "summary": "flask-k8s: the Flask app as configured by the charm",
        "services": {**app_layer.get("services", {}), **(background or {})},
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

    The keys the layer sets are compared, and an environment the layer no longer sets.
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
            # A replaced service keeps nothing else: an environment we no longer set (the last
            # integration removed) must go too. (Pebble fills in other keys, such as defaults.)
            if "environment" in have and "environment" not in spec:
                return False
    return True
