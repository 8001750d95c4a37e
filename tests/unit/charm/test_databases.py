"""The database relations: request, environment, lifecycle, secrecy and bad provider data.

The provider side is the Data Platform team's own provider handler (`db_provider`), fed what
our charm wrote, so these tests prove that the two ends understand each other.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

import ops
import pytest
from ops import testing

from charm import FlaskCharm
from tests.unit.charm.db_provider import Answer, data_platform_provider
from tests.unit.charm.test_charm import flask_service, settled_state
from tests.unit.charm.test_migrations import app_state, ready

APP = "flask-k8s"
PASSWORD = "Pa55:w/rd@x"  # characters a URI must encode
KINDS = [  # endpoint, interface, scheme, env prefix
    ("postgresql", "postgresql_client", "postgresql", "POSTGRESQL"),
    ("mysql", "mysql_client", "mysql", "MYSQL"),
    ("mongodb", "mongodb_client", "mongodb", "MONGODB"),
]


def our_request(ctx: testing.Context[FlaskCharm], charm_dir: pathlib.Path, endpoint: str):
    """What our leader writes when the relation is created."""
    relation = testing.Relation(endpoint)
    out = ctx.run(
        ctx.on.relation_created(relation), settled_state(charm_dir, relations={relation})
    )
    return dict(out.get_relation(relation.id).local_app_data)


def answered(
    ctx: testing.Context[FlaskCharm],
    charm_dir: pathlib.Path,
    endpoint: str = "postgresql",
    interface: str = "postgresql_client",
    **response: str,
) -> Answer:
    """Run our request through the Data Platform provider; return its answer."""
    fields = {"endpoints": "10.0.0.5:5432", "username": "relation-7", "password": PASSWORD}
    fields.update(response)
    return data_platform_provider(interface, our_request(ctx, charm_dir, endpoint), **fields)


def related(charm_dir: pathlib.Path, endpoint: str, answer: Answer, **kwargs) -> testing.State:
    """Our charm's state with the provider's answer on the other side."""
    relation = testing.Relation(endpoint, remote_app_data=answer.app_data)
    st = settled_state(charm_dir, relations={relation}, **kwargs)
    secrets = {answer.secret} if answer.secret else set()
    return dataclasses.replace(st, secrets={*st.secrets, *secrets})


def env_of(out: testing.State) -> dict[str, str]:
    return dict(flask_service(out).environment)


def db_vars(env: dict[str, str], prefix: str = "POSTGRESQL") -> dict[str, str]:
    return {key: value for key, value in env.items() if key.startswith(f"{prefix}_")}


# -- the request ------------------------------------------------------------------------------


def test_relation_created_leader_asks_for_database_named_after_app_with_secrets(ctx, charm_dir):
    request = our_request(ctx, charm_dir, "postgresql")

    assert request == {
        "database": APP,
        "requested-secrets": json.dumps(["username", "password", "tls", "tls-ca", "uris"]),
    }


def test_relation_created_non_leader_writes_nothing(ctx, charm_dir):
    relation = testing.Relation("postgresql")
    st = settled_state(charm_dir, relations={relation}, leader=False)

    out = ctx.run(ctx.on.relation_created(relation), st)

    assert dict(out.get_relation(relation.id).local_app_data) == {}


# -- the environment --------------------------------------------------------------------------


@pytest.mark.parametrize(("endpoint", "interface", "scheme", "prefix"), KINDS)
def test_provider_answer_gives_app_paas_charm_variables(
    ctx, charm_dir, endpoint, interface, scheme, prefix
):
    answer = answered(ctx, charm_dir, endpoint, interface)
    st = related(charm_dir, endpoint, answer)

    out = ctx.run(ctx.on.relation_changed(st.get_relations(endpoint)[0]), st)

    uri = f"{scheme}://relation-7:Pa55%3Aw%2Frd%40x@10.0.0.5:5432/{APP}"
    assert db_vars(env_of(out), prefix) == {
        f"{prefix}_DB_CONNECT_STRING": uri,
        f"{prefix}_DB_SCHEME": scheme,
        f"{prefix}_DB_NETLOC": "relation-7:Pa55%3Aw%2Frd%40x@10.0.0.5:5432",
        f"{prefix}_DB_PATH": f"/{APP}",
        f"{prefix}_DB_PARAMS": "",
        f"{prefix}_DB_QUERY": "",
        f"{prefix}_DB_FRAGMENT": "",
        f"{prefix}_DB_USERNAME": "relation-7",
        f"{prefix}_DB_PASSWORD": PASSWORD,
        f"{prefix}_DB_HOSTNAME": "10.0.0.5",
        f"{prefix}_DB_PORT": "5432",
        f"{prefix}_DB_NAME": APP,
    }
    assert out.unit_status == testing.ActiveStatus()


def test_older_provider_plain_username_and_password_are_accepted(ctx, charm_dir):
    # A provider that predates secrets (data_interfaces v0 without `requested-secrets`).
    plain = Answer(
        {"endpoints": "db.example:5432", "database": APP, "username": "u", "password": "p"},
        None,
    )
    st = related(charm_dir, "postgresql", plain)

    out = ctx.run(ctx.on.relation_changed(st.get_relations("postgresql")[0]), st)

    assert env_of(out)["POSTGRESQL_DB_CONNECT_STRING"] == f"postgresql://u:p@db.example:5432/{APP}"


def test_mongodb_provider_uri_is_used_as_given(ctx, charm_dir):
    uri = f"mongodb://relation-7:pw@10.0.0.5:27017,10.0.0.6:27017/{APP}?replicaSet=mongodb"
    answer = answered(ctx, charm_dir, "mongodb", "mongodb_client", uris=uri)
    st = related(charm_dir, "mongodb", answer)

    out = ctx.run(ctx.on.relation_changed(st.get_relations("mongodb")[0]), st)

    env = env_of(out)
    assert env["MONGODB_DB_CONNECT_STRING"] == uri
    assert env["MONGODB_DB_HOSTNAME"] == "10.0.0.5"
    assert env["MONGODB_DB_PORT"] == "27017"
    assert env["MONGODB_DB_QUERY"] == "replicaSet=mongodb"


@pytest.mark.parametrize(
    ("app_data", "expected"),
    [
        ({}, "redis://redis-k8s-0.redis-k8s-endpoints:6379"),
        ({"leader-host": "10.0.0.9"}, "redis://10.0.0.9:6379"),
    ],
)
def test_redis_unit_data_gives_app_redis_variables(ctx, charm_dir, app_data, expected):
    relation = testing.Relation(
        "redis",
        remote_app_name="redis-k8s",
        remote_app_data=app_data,
        remote_units_data={0: {"hostname": "redis-k8s-0.redis-k8s-endpoints", "port": "6379"}},
    )
    st = settled_state(charm_dir, relations={relation})

    out = ctx.run(ctx.on.relation_changed(relation, remote_unit=0), st)

    env = env_of(out)
    assert env["REDIS_DB_CONNECT_STRING"] == expected
    assert env["REDIS_DB_PORT"] == "6379"
    assert "REDIS_DB_NAME" not in env
    assert out.unit_status == testing.ActiveStatus()


def test_migrate_script_gets_the_same_variables(ctx, charm_dir):
    # The migrate script runs with the flask service's environment (src/migrations.py); the
    # variables are in that service, so they reach it as they reach the app.
    answer = answered(ctx, charm_dir)
    st = related(charm_dir, "postgresql", answer)

    out = ctx.run(ctx.on.relation_changed(st.get_relations("postgresql")[0]), st)

    assert env_of(out)["POSTGRESQL_DB_NAME"] == APP


# -- lifecycle --------------------------------------------------------------------------------


def test_before_provider_publishes_waits_naming_relation_and_starts_without(ctx, charm_dir, calls):
    relation = testing.Relation("postgresql")
    st = settled_state(charm_dir, relations={relation})

    out = ctx.run(ctx.on.pebble_ready(st.get_container("flask-app")), st)

    assert out.unit_status.name == "waiting"
    assert "postgresql" in out.unit_status.message
    assert db_vars(env_of(out)) == {}
    assert calls.log.count("start") == 1


def served(ctx, charm_dir, answer: Answer, calls) -> testing.State:
    """A unit already serving with the provider's answer; the call log cleared."""
    st = related(charm_dir, "postgresql", answer)
    out = ctx.run(ctx.on.relation_changed(st.get_relations("postgresql")[0]), st)
    calls.clear()
    return out


@pytest.mark.parametrize(
    "broken",
    [
        {},  # the provider withdrew its data
        {"endpoints": "not an endpoint", "secret-user": "x"},
    ],
)
def test_provider_data_gone_or_bad_keeps_serving_with_what_it_had(ctx, charm_dir, calls, broken):
    answer = answered(ctx, charm_dir)
    before = served(ctx, charm_dir, answer, calls)
    relation = dataclasses.replace(before.get_relations("postgresql")[0], remote_app_data=broken)
    others = {rel for rel in before.relations if rel.id != relation.id}
    st = dataclasses.replace(before, relations={*others, relation})

    out = ctx.run(ctx.on.relation_changed(relation), st)

    assert env_of(out) == env_of(before)
    assert calls.log == []
    assert out.unit_status.name in ("waiting", "blocked")
    assert "postgresql" in out.unit_status.message


def test_password_rotation_restarts_once_with_new_credentials(ctx, charm_dir, calls):
    answer = answered(ctx, charm_dir)
    before = served(ctx, charm_dir, answer, calls)
    assert answer.secret is not None
    rotated = dataclasses.replace(
        answer.secret, latest_content={"username": "relation-7", "password": "new-one"}
    )
    st = dataclasses.replace(
        before, secrets={*(s for s in before.secrets if s.id != rotated.id), rotated}
    )

    out = ctx.run(ctx.on.secret_changed(rotated), st)

    assert env_of(out)["POSTGRESQL_DB_PASSWORD"] == "new-one"
    assert calls.log.count("restart") == 1


def test_relation_removed_drops_variables_with_one_restart(ctx, charm_dir, calls):
    answer = answered(ctx, charm_dir)
    before = served(ctx, charm_dir, answer, calls)
    relation = before.get_relations("postgresql")[0]

    out = ctx.run(ctx.on.relation_broken(relation), before)

    assert db_vars(env_of(out)) == {}
    assert calls.log.count("restart") == 1
    assert out.unit_status == testing.ActiveStatus()


def test_credentials_appear_in_no_log_databag_or_status(ctx, charm_dir, calls):
    answer = answered(ctx, charm_dir)
    out = served(ctx, charm_dir, answer, calls)

    relation = out.get_relations("postgresql")[0]
    ours = [dict(relation.local_app_data), dict(relation.local_unit_data)]
    ours += [dict(rel.local_app_data) for rel in out.relations]
    texts = [line.message for line in ctx.juju_log] + [str(bag) for bag in ours]
    texts.append(out.unit_status.message)
    assert not [text for text in texts if PASSWORD in text or "Pa55" in text]


# -- bad provider data ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("app_data", "status", "says"),
    [
        ({"endpoints": "10.0.0.5", "username": "u", "password": "p"}, "blocked", "endpoint"),
        ({"endpoints": "10.0.0.5:99999", "username": "u", "password": "p"}, "blocked", "endpoint"),
        ({"endpoints": "10.0.0.5:5432", "username": "u"}, "blocked", "password"),
        ({"endpoints": "10.0.0.5:5432"}, "waiting", "credentials"),
        ({"endpoints": "h:1", "secret-user": "secret:nosuchsecret0000000"}, "blocked", "secret"),
        (
            {"endpoints": "h:1", "database": "a/b", "username": "u", "password": "p"},
            "blocked",
            "name",
        ),
    ],
)
def test_bad_provider_data_names_relation_and_what_to_do(ctx, charm_dir, app_data, status, says):
    relation = testing.Relation("postgresql", remote_app_data=app_data)
    st = settled_state(charm_dir, relations={relation})

    out = ctx.run(ctx.on.relation_changed(relation), st)

    assert out.unit_status.name == status
    assert "postgresql" in out.unit_status.message
    assert says in out.unit_status.message
    assert db_vars(env_of(out)) == {}  # a fresh unit starts without them


def test_credentials_secret_not_granted_yet_waits_naming_the_relation(ctx, charm_dir, monkeypatch):
    answer = answered(ctx, charm_dir)
    st = related(charm_dir, "postgresql", answer)

    def not_granted(*_: object, **__: object) -> dict[str, str]:
        raise ops.ModelError("ERROR permission denied")  # what secret-get says before a grant

    monkeypatch.setattr(ops.Secret, "get_content", not_granted)
    out = ctx.run(ctx.on.relation_changed(st.get_relations("postgresql")[0]), st)

    assert out.unit_status == testing.WaitingStatus(
        "waiting for access to the credentials secret of the postgresql relation "
        "(the provider must grant it)"
    )
    assert db_vars(env_of(out)) == {}


def test_bad_mongodb_uri_blocks(ctx, charm_dir):
    app_data = {"endpoints": "h:1", "username": "u", "password": "p", "uris": "http://x"}
    relation = testing.Relation("mongodb", remote_app_data=app_data)
    st = settled_state(charm_dir, relations={relation})

    out = ctx.run(ctx.on.relation_changed(relation), st)

    assert out.unit_status.name == "blocked"
    assert "mongodb" in out.unit_status.message


def test_redis_bad_port_blocks_and_missing_waits(ctx, charm_dir):
    bad = testing.Relation("redis", remote_units_data={0: {"hostname": "r", "port": "x"}})
    missing = testing.Relation("redis", id=bad.id, remote_units_data={0: {}})

    out_bad = ctx.run(
        ctx.on.relation_changed(bad, remote_unit=0), settled_state(charm_dir, relations={bad})
    )
    out_missing = ctx.run(
        ctx.on.relation_changed(missing, remote_unit=0),
        settled_state(charm_dir, relations={missing}),
    )

    assert (out_bad.unit_status.name, out_missing.unit_status.name) == ("blocked", "waiting")
    assert "redis" in out_bad.unit_status.message and "redis" in out_missing.unit_status.message


# -- migrations follow the database -----------------------------------------------------------


@pytest.fixture
def app_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    """Backs /flask/app: an app with a migrate.py."""
    path = tmp_path / "app"
    path.mkdir()
    (path / "migrate.py").write_text("print('migrated')\n")
    return path


def steps(calls) -> list[str]:
    """The migrations, starts and restarts, in order."""
    return [step for step in calls.log if step in ("migrate", "start", "restart")]


def _running_with_migrate(ctx, charm_dir, app_dir, calls) -> testing.State:
    calls.clear()  # what `answered` did
    out = ready(ctx, app_state(charm_dir, app_dir))
    assert steps(calls) == ["migrate", "start"]
    calls.clear()
    return out


def _add(st: testing.State, relation: testing.Relation, answer: Answer) -> testing.State:
    """`st` with a new relation: Juju's first event for it is relation-created."""
    secrets = {answer.secret} if answer.secret else set()
    return dataclasses.replace(
        st, relations={*st.relations, relation}, secrets={*st.secrets, *secrets}
    )


def test_new_database_runs_migration_against_it_before_serving(ctx, charm_dir, app_dir, calls):
    answer = answered(ctx, charm_dir)
    running = _running_with_migrate(ctx, charm_dir, app_dir, calls)
    relation = testing.Relation("postgresql", remote_app_data=answer.app_data)

    out = ctx.run(ctx.on.relation_created(relation), _add(running, relation, answer))

    assert steps(calls) == ["migrate", "restart"]
    migrate_run = ctx.exec_history["flask-app"][-1]
    assert migrate_run.environment["POSTGRESQL_DB_CONNECT_STRING"].startswith("postgresql://")
    assert env_of(out)["POSTGRESQL_DB_NAME"] == APP
    assert out.unit_status == testing.ActiveStatus()


def test_password_rotation_is_not_new_code(ctx, charm_dir, app_dir, calls):
    answer = answered(ctx, charm_dir)
    assert answer.secret is not None
    running = _running_with_migrate(ctx, charm_dir, app_dir, calls)
    relation = testing.Relation("postgresql", remote_app_data=answer.app_data)
    served = ctx.run(ctx.on.relation_created(relation), _add(running, relation, answer))
    calls.clear()
    rotated = dataclasses.replace(
        answer.secret, latest_content={"username": "relation-7", "password": "rotated"}
    )
    others = {s for s in served.secrets if s.id != rotated.id}

    out = ctx.run(
        ctx.on.secret_changed(rotated), dataclasses.replace(served, secrets={*others, rotated})
    )

    assert steps(calls) == ["restart"]
    assert env_of(out)["POSTGRESQL_DB_PASSWORD"] == "rotated"


def test_another_database_name_is_new_code(ctx, charm_dir, app_dir, calls):
    answer = answered(ctx, charm_dir)
    running = _running_with_migrate(ctx, charm_dir, app_dir, calls)
    relation = testing.Relation("postgresql", remote_app_data=answer.app_data)
    served = ctx.run(ctx.on.relation_created(relation), _add(running, relation, answer))
    calls.clear()
    moved = dataclasses.replace(
        served.get_relations("postgresql")[0],
        remote_app_data={**answer.app_data, "database": "other"},
    )
    others = {rel for rel in served.relations if rel.id != moved.id}

    out = ctx.run(
        ctx.on.relation_changed(moved), dataclasses.replace(served, relations={*others, moved})
    )

    assert steps(calls) == ["migrate", "restart"]
    assert env_of(out)["POSTGRESQL_DB_NAME"] == "other"


def test_hook_without_database_relation_imports_no_integration_module(ctx, charm_dir, monkeypatch):
    import importlib

    imported: list[str] = []
    real = importlib.import_module

    def spy(name: str, package: str | None = None):
        imported.append(name)
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", spy)

    ctx.run(ctx.on.update_status(), settled_state(charm_dir))

    assert not [name for name in imported if name.startswith("integrations.")]
