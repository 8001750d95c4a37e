"""The tracer each Gunicorn worker starts, and the access line's request and trace ids.

The charm's config file is loaded as Gunicorn loads it; OpenTelemetry is played by stand-in
modules that record what the hook does with them (the real packages, under a real Gunicorn,
are in tests/e2e/test_tracing.py).
"""

from __future__ import annotations

import runpy
import sys
import types
from typing import Any

import pytest

import workload
from tests.unit.charm.test_workload import ROCK_HOOKS, _load_hooks

ENDPOINT = "http://tempo:4318"
MODULES = (
    "opentelemetry",
    "opentelemetry.trace",
    "opentelemetry.sdk",
    "opentelemetry.sdk.trace",
    "opentelemetry.sdk.trace.export",
    "opentelemetry.exporter",
    "opentelemetry.exporter.otlp",
    "opentelemetry.exporter.otlp.proto",
    "opentelemetry.exporter.otlp.proto.http",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.instrumentation",
    "opentelemetry.instrumentation.flask",
    "opentelemetry.instrumentation.wsgi",
    "flask",
)


class Otel:
    """What the stand-in OpenTelemetry saw: the provider set, the apps instrumented."""

    def __init__(self) -> None:
        self.provider: Any = None
        self.flask_apps: list[object] = []
        self.current_trace_id = 0x0AF7651916CD43DD8448EB211C80319C


class SpanContext:
    def __init__(self, trace_id: int) -> None:
        self.trace_id, self.is_valid = trace_id, trace_id != 0


class TracerProvider:
    def __init__(self) -> None:
        self.processors: list[object] = []

    def add_span_processor(self, processor: object) -> None:
        self.processors.append(processor)


class BatchSpanProcessor:
    def __init__(self, exporter: object) -> None:
        self.exporter = exporter


class OTLPSpanExporter:
    pass


class Flask:
    def __call__(self, environ, start_response):
        start_response("200 OK", [])
        return [b"flask"]


class FlaskInstrumentor:
    apps: list[object] = []  # the fixture's Otel.flask_apps

    def instrument_app(self, app: object) -> None:
        self.apps.append(app)


class OpenTelemetryMiddleware:
    def __init__(self, app) -> None:
        self.app = app

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


def trace_module(seen: Otel) -> types.ModuleType:
    """`opentelemetry.trace`, its global provider and current span those of `seen`."""
    trace = types.ModuleType("opentelemetry.trace")

    def set_tracer_provider(provider: object) -> None:
        seen.provider = provider

    def current_span() -> Any:
        return types.SimpleNamespace(get_span_context=lambda: SpanContext(seen.current_trace_id))

    trace.get_tracer_provider = lambda: seen.provider or object()  # type: ignore[attr-defined]
    trace.set_tracer_provider = set_tracer_provider  # type: ignore[attr-defined]
    trace.get_current_span = current_span  # type: ignore[attr-defined]
    return trace


# Where each stand-in lives, as in the real packages.
PROVIDED = {
    "opentelemetry.sdk.trace": {"TracerProvider": TracerProvider},
    "opentelemetry.sdk.trace.export": {"BatchSpanProcessor": BatchSpanProcessor},
    "opentelemetry.exporter.otlp.proto.http.trace_exporter": {
        "OTLPSpanExporter": OTLPSpanExporter
    },
    "opentelemetry.instrumentation.flask": {"FlaskInstrumentor": FlaskInstrumentor},
    "opentelemetry.instrumentation.wsgi": {"OpenTelemetryMiddleware": OpenTelemetryMiddleware},
    "flask": {"Flask": Flask},
}


@pytest.fixture
def otel(monkeypatch: pytest.MonkeyPatch) -> Otel:
    """Stand-ins for the OpenTelemetry SDK, exporter and instrumentations, and for Flask."""
    seen = Otel()
    modules = {name: types.ModuleType(name) for name in MODULES}
    modules["opentelemetry.trace"] = modules["opentelemetry"].trace = trace_module(seen)  # type: ignore[attr-defined]
    for name, attributes in PROVIDED.items():
        vars(modules[name]).update(attributes)
    monkeypatch.setattr(FlaskInstrumentor, "apps", seen.flask_apps)
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", ENDPOINT)
    return seen


class Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str, *args: object) -> None:
        self.lines.append(message % args)

    warning = info


class Worker:
    """A sync worker (as far as the hooks use one) that loaded `wsgi`."""

    __module__ = "gunicorn.workers.sync"

    def __init__(self, wsgi: object) -> None:
        self.wsgi, self.log = wsgi, Log()
        self.cfg = types.SimpleNamespace(worker_class_str="sync")


def plain_wsgi(environ, start_response):
    start_response("200 OK", [])
    return [b"plain"]


def started(tmp_path, app: object, rock_conf: str = "") -> Worker:
    worker = Worker(app)
    hooks = _load_hooks(tmp_path, rock_conf)
    hooks["post_worker_init"](worker)  # type: ignore[operator]
    return worker


def serve(app: Any) -> dict[str, object]:
    """One request through the worker's WSGI app; its environment afterwards."""
    environ: dict[str, object] = {"REQUEST_METHOD": "GET", "PATH_INFO": "/"}
    body = b"".join(app(environ, lambda status, headers, exc_info=None: None))
    assert body
    return environ


def test_flask_app_gets_a_provider_exporting_over_otlp_http_and_flask_spans(tmp_path, otel):
    flask_app = Flask()

    worker = started(tmp_path, flask_app)

    (processor,) = otel.provider.processors
    assert type(processor).__name__ == "BatchSpanProcessor"
    assert type(processor.exporter).__name__ == "OTLPSpanExporter"
    assert otel.flask_apps == [flask_app]
    environ = serve(worker.wsgi)
    assert environ[workload.TRACE_ID_KEY] == "0af7651916cd43dd8448eb211c80319c"


def test_other_wsgi_apps_get_the_generic_instrumentation(tmp_path, otel):
    worker = started(tmp_path, plain_wsgi)

    assert otel.provider is not None
    assert otel.flask_apps == []
    assert serve(worker.wsgi)[workload.TRACE_ID_KEY] == "0af7651916cd43dd8448eb211c80319c"


def test_a_request_outside_any_trace_records_no_trace_id(tmp_path, otel):
    otel.current_trace_id = 0  # an invalid span context: nothing traced this request

    worker = started(tmp_path, plain_wsgi)

    assert workload.TRACE_ID_KEY not in serve(worker.wsgi)


def test_without_the_endpoint_nothing_is_set_up(tmp_path, otel, monkeypatch):
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT")

    worker = started(tmp_path, plain_wsgi)

    assert otel.provider is None
    assert worker.wsgi is plain_wsgi
    assert worker.log.lines == ["Using worker: sync"]


@pytest.mark.parametrize(
    "missing", ["opentelemetry.sdk.trace", "opentelemetry.exporter.otlp.proto.http.trace_exporter"]
)
def test_without_the_packages_the_worker_logs_one_line_and_serves(
    tmp_path, otel, monkeypatch, missing
):
    monkeypatch.setitem(sys.modules, missing, None)  # what an absent package raises: ImportError

    worker = started(tmp_path, plain_wsgi)

    assert otel.provider is None
    assert worker.wsgi is plain_wsgi
    (line,) = worker.log.lines[1:]
    assert line.startswith(f"tracing is off: the app's Python lacks {missing} ")
    assert len(line) < 200


def test_without_any_instrumentation_the_provider_still_serves_the_apps_own_spans(
    tmp_path, otel, monkeypatch
):
    for name in ("opentelemetry.instrumentation.flask", "opentelemetry.instrumentation.wsgi"):
        monkeypatch.setitem(sys.modules, name, None)

    worker = started(tmp_path, plain_wsgi)

    assert otel.provider is not None
    assert worker.wsgi is plain_wsgi
    assert "no Flask or WSGI instrumentation" in worker.log.lines[-1]


def test_a_failing_instrumentation_leaves_the_worker_serving_untraced(tmp_path, otel, monkeypatch):
    def broken(self: object, app: object) -> None:
        raise RuntimeError("instrumentation bug " + "x" * 500)

    monkeypatch.setattr(FlaskInstrumentor, "instrument_app", broken)
    flask_app = Flask()

    worker = started(tmp_path, flask_app)

    assert worker.wsgi is flask_app
    line = worker.log.lines[-1]
    assert line.startswith("tracing is off: setting it up failed: RuntimeError('instrumentation")
    assert len(line) < 300


def test_a_provider_the_rock_set_up_is_left_alone(tmp_path, otel):
    rock_conf = ROCK_HOOKS.replace(
        'calls.append("post_worker_init")',
        "from opentelemetry import trace\n"
        "    from opentelemetry.sdk.trace import TracerProvider\n"
        "    trace.set_tracer_provider(TracerProvider())",
    )

    worker = started(tmp_path, plain_wsgi, rock_conf)

    assert otel.provider is not None and otel.provider.processors == []  # the rock's own
    assert worker.wsgi is plain_wsgi


# -- the access line ---------------------------------------------------------------------------


def test_access_line_ends_with_request_and_trace_ids_after_gunicorns_own(tmp_path):
    settings = _load_hooks(tmp_path, "")

    assert settings["access_log_format"] == workload.ACCESS_LOG_FORMAT
    assert workload.ACCESS_LOG_FORMAT.startswith(
        '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" '  # Gunicorn's default
    )
    assert workload.ACCESS_LOG_FORMAT.endswith(
        " request_id=%({x-request-id}i)s trace_id=%({flask_k8s.trace_id}e)s"
    )


def test_a_rocks_own_access_format_is_kept(tmp_path):
    settings = _load_hooks(tmp_path, "access_log_format = '%(h)s %(s)s'\n")

    assert settings["access_log_format"] == "%(h)s %(s)s"


def test_the_hooks_still_chain_the_rocks_post_worker_init(tmp_path, otel):
    worker = Worker(plain_wsgi)
    hooks = runpy.run_path(str(_rendered(tmp_path)))

    hooks["post_worker_init"](worker)

    assert hooks["calls"] == ["post_worker_init"]
    assert otel.provider is not None


def _rendered(tmp_path) -> Any:
    rock_conf = tmp_path / "rock.conf.py"
    rock_conf.write_text(ROCK_HOOKS)
    ours = tmp_path / "charm.conf.py"
    ours.write_text(workload.gunicorn_config(str(rock_conf), {}))
    return ours
