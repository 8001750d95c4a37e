"""The tracing relation: request, environment, lifecycle, bad provider data, import cost.

The provider side is the ecosystem's own provider library (`tracing_provider`), fed what our
charm wrote, so these tests prove that the two ends understand each other.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import subprocess
import sys

import pytest
from ops import testing

from charm import FlaskCharm
from tests.unit.charm.test_charm import flask_service, settled_state
from tests.unit.charm.test_hook_cost import child_imports, settled
from tests.unit.charm.tracing_provider import tempo_answer

APP = "flask-k8s"
URL = "http://tempo-0.tempo-endpoints.cos.svc.cluster.local:4318"
ROOT = pathlib.Path(__file__).resolve().parents[3]


def our_request(ctx: testing.Context[FlaskCharm], charm_dir: pathlib.Path, leader: bool = True):
    """What our unit writes into its app databag when the relation is created."""
    relation = testing.Relation("tracing", remote_app_name="tempo")
    st = settled_state(charm_dir, relations={relation}, leader=leader)
    out = ctx.run(ctx.on.relation_created(relation), st)
    return dict(out.get_relation(relation.id).local_app_data)


def related(charm_dir: pathlib.Path, app_data: dict[str, str], **kwargs) -> testing.State:
    relation = testing.Relation("tracing", remote_app_name="tempo", remote_app_data=app_data)
    return settled_state(charm_dir, relations={relation}, **kwargs)


def changed(ctx: testing.Context[FlaskCharm], st: testing.State) -> testing.State:
    return ctx.run(ctx.on.relation_changed(st.get_relations("tracing")[0]), st)


def otel_vars(out: testing.State) -> dict[str, str]:
    env = flask_service(out).environment
    return {key: value for key, value in env.items() if key.startswith("OTEL_")}


def receivers(*entries: tuple[str, str, str]) -> dict[str, str]:
    """A provider databag: (protocol name, transport type, url) each."""
    listed = [{"protocol": {"name": n, "type": t}, "url": u} for n, t, u in entries]
    return {"receivers": json.dumps(listed)}


# -- the request ------------------------------------------------------------------------------


def test_leader_asks_for_otlp_over_http(ctx, charm_dir):
    assert our_request(ctx, charm_dir) == {"receivers": json.dumps(["otlp_http"])}


def test_non_leader_writes_nothing(ctx, charm_dir):
    assert our_request(ctx, charm_dir, leader=False) == {}


def test_request_is_written_once(ctx, charm_dir):
    # A second reconcile finds the request in place and leaves the databag alone.
    relation = testing.Relation("tracing", local_app_data={"receivers": json.dumps(["otlp_http"])})
    st = settled_state(charm_dir, relations={relation})

    out = ctx.run(ctx.on.relation_changed(relation), st)

    assert dict(out.get_relation(relation.id).local_app_data) == {
        "receivers": json.dumps(["otlp_http"])
    }


# -- the environment --------------------------------------------------------------------------


def test_provider_answer_gives_app_the_paas_charm_variables(ctx, charm_dir):
    answer = tempo_answer(our_request(ctx, charm_dir), otlp_http=URL, otlp_grpc="tempo:4317")

    out = changed(ctx, related(charm_dir, answer))

    assert otel_vars(out) == {"OTEL_SERVICE_NAME": APP, "OTEL_EXPORTER_OTLP_ENDPOINT": URL}
    assert out.unit_status == testing.ActiveStatus()


def test_the_first_otlp_http_receiver_is_used(ctx, charm_dir):
    data = receivers(
        ("otlp_grpc", "grpc", "tempo:4317"),
        ("otlp_http", "http", "https://tempo.example/otlp"),
        ("otlp_http", "http", "http://second:4318"),
    )

    out = changed(ctx, related(charm_dir, data))

    assert otel_vars(out)["OTEL_EXPORTER_OTLP_ENDPOINT"] == "https://tempo.example/otlp"


# -- lifecycle --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("app_data", "says"),
    [
        ({}, "waiting for the tracing relation to publish its receivers"),
        (
            receivers(("otlp_grpc", "grpc", "tempo:4317")),
            "waiting for the tracing relation to offer OTLP over HTTP",
        ),
        ({"receivers": "[]"}, "waiting for the tracing relation to offer OTLP over HTTP"),
    ],
)
def test_partial_data_waits_naming_the_relation_and_starts_without(
    ctx, charm_dir, calls, app_data, says
):
    st = related(charm_dir, app_data)

    out = ctx.run(ctx.on.pebble_ready(st.get_container("flask-app")), st)

    assert out.unit_status == testing.WaitingStatus(says)
    assert otel_vars(out) == {}
    assert calls.log.count("start") == 1


def serving(ctx, charm_dir, calls) -> testing.State:
    out = changed(ctx, related(charm_dir, receivers(("otlp_http", "http", URL))))
    assert otel_vars(out)
    calls.clear()
    return out


def _with_remote(st: testing.State, app_data: dict[str, str]) -> testing.State:
    relation = dataclasses.replace(st.get_relations("tracing")[0], remote_app_data=app_data)
    others = {rel for rel in st.relations if rel.id != relation.id}
    return dataclasses.replace(st, relations={*others, relation})


def test_relation_removed_drops_the_variables_with_one_restart(ctx, charm_dir, calls):
    before = serving(ctx, charm_dir, calls)

    out = ctx.run(ctx.on.relation_broken(before.get_relations("tracing")[0]), before)

    assert otel_vars(out) == {}
    assert calls.log.count("restart") == 1
    assert out.unit_status == testing.ActiveStatus()


def test_a_new_url_restarts_once_with_it(ctx, charm_dir, calls):
    before = serving(ctx, charm_dir, calls)

    out = changed(ctx, _with_remote(before, receivers(("otlp_http", "http", "http://new:4318"))))

    assert otel_vars(out)["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://new:4318"
    assert calls.log.count("restart") == 1


@pytest.mark.parametrize("broken", [{}, {"receivers": "{"}])
def test_data_gone_or_bad_keeps_serving_with_what_it_had(ctx, charm_dir, calls, broken):
    before = serving(ctx, charm_dir, calls)

    out = changed(ctx, _with_remote(before, broken))

    assert otel_vars(out) == otel_vars(before)
    assert calls.log == []
    assert out.unit_status.name in ("waiting", "blocked")
    assert "tracing" in out.unit_status.message


def test_tracing_is_not_new_code(ctx, charm_dir, calls):
    # Spans going somewhere else change no backend the app's data lives in: no migration.
    before = serving(ctx, charm_dir, calls)

    changed(ctx, _with_remote(before, receivers(("otlp_http", "http", "http://new:4318"))))

    assert "migrate" not in calls.log


# -- bad provider data ------------------------------------------------------------------------

DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(
    "app_data",
    [
        {"receivers": "not json"},
        {"receivers": DEEP},  # the library's own decoding would raise RecursionError
        {"receivers": json.dumps({"otlp_http": URL})},
        {"receivers": json.dumps([{"protocol": "otlp_http", "url": URL}])},
        {"receivers": json.dumps([{"protocol": {"name": "otlp_http", "type": "udp"}, "url": 1}])},
        receivers(("otlp_http", "http", "ftp://tempo:4318")),
        receivers(("otlp_http", "http", "http://:4318")),
        receivers(("otlp_http", "http", "http://tempo:99999")),
        receivers(("otlp_http", "http", "http://tempo:4318/x?a=b")),
        receivers(("otlp_http", "http", "http://tempo:4318/\n")),
        receivers(("otlp_http", "http", "http://tempo/" + "a" * 3000)),
    ],
)
def test_malformed_data_blocks_naming_the_relation(ctx, charm_dir, app_data):
    out = changed(ctx, related(charm_dir, app_data))

    assert out.unit_status.name == "blocked"
    assert out.unit_status.message.startswith("the tracing relation published ")
    assert "remove the relation" in out.unit_status.message
    assert otel_vars(out) == {}


def test_a_token_in_the_url_is_in_no_log_or_status(ctx, charm_dir):
    token = "s3cr3t-t0ken"
    good = changed(
        ctx, related(charm_dir, receivers(("otlp_http", "http", f"http://u:{token}@t")))
    )
    bad = changed(ctx, related(charm_dir, receivers(("otlp_http", "http", f"ftp://u:{token}@t"))))

    texts = [line.message for line in ctx.juju_log] + [
        good.unit_status.message,
        bad.unit_status.message,
    ]
    assert otel_vars(good)["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://u:{token}@t"
    assert bad.unit_status.name == "blocked"
    assert not [text for text in texts if token in text]


# -- what it costs ----------------------------------------------------------------------------


def test_the_module_imports_neither_the_library_nor_pydantic():
    # integrations.identity_of imports the module whenever the app has OTEL_* variables
    # (the rock may set its own): importing it must stay cheap.
    code = (
        "import sys, integrations.tracing; "
        "print(sorted(m for m in ('pydantic', 'charmlibs') if m in sys.modules))"
    )
    paths = [str(ROOT / p) for p in ("src", "lib")] + sys.path
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(paths)},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.strip() == "[]"


def test_a_quiet_hook_with_a_tracing_relation_imports_no_pydantic(ctx, charm_dir, tmp_path):
    relation = testing.Relation("tracing", remote_app_data=receivers(("otlp_http", "http", URL)))
    out = settled(ctx, charm_dir, relations={relation})
    assert otel_vars(out) and out.unit_status == testing.ActiveStatus("")

    seen = child_imports(out, tmp_path, "update_status", "config_changed_new")

    assert seen["update_status"] == []  # all as left: the relation is not read again
    assert "pydantic" in seen["config_changed_new"]  # the check can see an import
