"""The app's own options, required relations, peers and proxy, with ops.testing.

The charm's metadata is a test copy of charmcraft.yaml (split as packing splits it) that adds
options of every type, a secret one and a required one, and `optional: false` relations: what
a charm author writes, with no Python.
"""

from __future__ import annotations

import dataclasses
import pathlib
import subprocess
import sys
import textwrap
from typing import Any

import ops
import pytest
import yaml
from ops import testing

import workload
from charm import FlaskCharm
from juju_local.charm_stage import split_charmcraft
from tests.unit.charm.charm_state import MODEL, app_env
from tests.unit.charm.hook_cost import HookToolCounter
from tests.unit.charm.test_charm import run, settled_state

ROOT = pathlib.Path(__file__).resolve().parents[3]
APP_OPTIONS: dict[str, dict[str, Any]] = {
    "greeting": {"type": "string", "description": "shown on the index page"},
    "answer": {"type": "string"},
    "retries": {"type": "int", "default": 3},
    "ratio": {"type": "float"},
    "verbose": {"type": "boolean"},
    "api-token": {"type": "secret"},
    "tenant": {"type": "string", "optional": False},
}
REQUIRED_RELATIONS: dict[str, dict[str, Any]] = {
    "search": {"interface": "opensearch_client", "optional": False},
    "audit-log": {"interface": "syslog", "optional": False, "limit": 1},
}
PROXY = {
    "JUJU_CHARM_HTTP_PROXY": "http://squid.internal:3128",
    "JUJU_CHARM_HTTPS_PROXY": "http://squid.internal:3129",
    "JUJU_CHARM_NO_PROXY": "127.0.0.1,localhost,.svc",
}


def charmcraft_copy(
    tmp_path: pathlib.Path,
    options: dict[str, dict[str, Any]],
    requires: dict[str, dict[str, Any]] | None = None,
) -> pathlib.Path:
    """charmcraft.yaml with more options and relations, as a charm author would edit it."""
    document = yaml.safe_load((ROOT / "charmcraft.yaml").read_text())
    document["config"]["options"].update(options)
    document["requires"].update(requires or {})
    path = tmp_path / "charmcraft.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def context(path: pathlib.Path, **kwargs: Any) -> testing.Context[FlaskCharm]:
    meta, config, actions = split_charmcraft(yaml.safe_load(path.read_text()))
    return testing.Context(FlaskCharm, meta=meta, config=config, actions=actions, **kwargs)


@pytest.fixture
def app_ctx(tmp_path) -> testing.Context[FlaskCharm]:
    return context(charmcraft_copy(tmp_path, APP_OPTIONS))


def with_config(st: testing.State, **config: Any) -> testing.State:
    return dataclasses.replace(st, config={**st.config, **config})


def with_secrets(st: testing.State, *secrets: testing.Secret) -> testing.State:
    return dataclasses.replace(st, secrets={*st.secrets, *secrets})


def settled(ctx, charm_dir, *secrets: testing.Secret, **kwargs: Any) -> testing.State:
    """pebble-ready, then config-changed, with the required option set."""
    config = {"tenant": "acme", **kwargs.pop("config", {})}
    st = with_secrets(settled_state(charm_dir, config=config, **kwargs), *secrets)
    return run(ctx, "config_changed", run(ctx, "pebble_ready", st))


def flask_layer(out: testing.State) -> bool:
    """Whether the charm's layer (so the app under the charm's command) is in the plan."""
    return "flask-k8s" in out.get_container("flask-app").layers


# -- options of every type -----------------------------------------------------------------------


def test_every_option_type_reaches_the_app_encoded_as_flask_options(app_ctx, charm_dir):
    config = {"greeting": "hello", "answer": "42", "ratio": 0.5, "verbose": True}

    out = settled(app_ctx, charm_dir, config=config)

    env = app_env(out)
    assert out.unit_status == testing.ActiveStatus("")
    assert env["FLASK_TENANT"] == "acme"
    assert env["FLASK_GREETING"] == "hello"
    assert env["FLASK_ANSWER"] == '"42"'  # Flask json-loads it: it stays the string "42"
    assert env["FLASK_RETRIES"] == "3"  # the default
    assert env["FLASK_RATIO"] == "0.5"
    assert env["FLASK_VERBOSE"] == "true"
    assert "FLASK_API_TOKEN" not in env  # unset: left out
    assert not any(name.startswith("FLASK_WORKER") for name in env)  # charm options: not here


def test_an_app_option_change_is_a_reload_and_an_unset_one_leaves(app_ctx, charm_dir, calls):
    out = settled(app_ctx, charm_dir, config={"greeting": "hello"})
    calls.clear()

    changed = run(app_ctx, "config_changed", with_config(out, greeting="bonjour"))
    greeting = app_env(changed)["FLASK_GREETING"]  # (the file is shared: read it now)
    unset_config = {k: v for k, v in changed.config.items() if k != "greeting"}
    unset = run(app_ctx, "config_changed", dataclasses.replace(changed, config=unset_config))

    assert greeting == "bonjour"
    assert "FLASK_GREETING" not in app_env(unset)
    assert calls.log == ["push", "reload", "push", "reload"]  # never a restart


@pytest.mark.parametrize(
    ("config", "why"),
    [
        ({"greeting": "x" * 16385}, "greeting: must be at most 16384 characters"),
        ({"greeting": "a\x00b"}, "greeting: must not contain NUL characters"),
    ],
)
def test_invalid_app_option_blocks_naming_it_and_keeps_serving(app_ctx, charm_dir, config, why):
    out = settled(app_ctx, charm_dir)

    after = run(app_ctx, "config_changed", with_config(out, **config))

    assert after.unit_status.name == "blocked"
    assert after.unit_status.message.startswith("invalid config: ")
    assert why in after.unit_status.message
    assert after.get_container("flask-app").plan == out.get_container("flask-app").plan


def test_invalid_app_and_charm_options_are_named_together(app_ctx, charm_dir):
    config = {"tenant": "acme", "greeting": "a\x00", "webserver-workers": 0}

    out = run(app_ctx, "pebble_ready", settled_state(charm_dir, config=config))

    assert out.unit_status.message == (
        "invalid config: webserver-workers: must be at least 1; "
        "greeting: must not contain NUL characters"
    )


@pytest.mark.parametrize(
    ("option", "why"),
    [
        ({"secret-key": {"type": "string"}}, "secret-key: sets FLASK_SECRET_KEY, as the charm"),
        ({"peer-fqdns": {"type": "string"}}, "peer-fqdns: sets FLASK_PEER_FQDNS, as the charm"),
        ({"Shout": {"type": "string"}}, "Shout: an app option's name must be lower-case"),
        ({"colour": {"type": "list"}}, "colour: unknown type 'list'"),
        ({"db_host": {"type": "string"}}, "db_host: an app option's name must be lower-case"),
        ({"region": {"type": "string", "optional": False, "default": "eu"}}, "region: `opt"),
    ],
)
def test_an_option_the_charm_cannot_pass_on_blocks_naming_it(tmp_path, charm_dir, option, why):
    ctx = context(charmcraft_copy(tmp_path, option))

    out = run(ctx, "pebble_ready", settled_state(charm_dir))

    assert out.unit_status.name == "blocked"
    assert why in out.unit_status.message
    assert not flask_layer(out)


def test_oauth_endpoint_options_are_the_charms_not_the_apps(tmp_path, charm_dir):
    options = {"oauth-scopes": {"type": "string"}, "oauth-redirect-path": {"type": "string"}}
    ctx = context(charmcraft_copy(tmp_path, {**options, "oauthish": {"type": "string"}}))
    config = {"oauth-scopes": "openid", "oauth-redirect-path": "/cb", "oauthish": "x"}

    out = run(ctx, "pebble_ready", settled_state(charm_dir, config=config))

    env = app_env(out)
    assert env["FLASK_OAUTHISH"] == "x"
    assert "FLASK_OAUTH_SCOPES" not in env and "FLASK_OAUTH_REDIRECT_PATH" not in env


# -- required options ----------------------------------------------------------------------------


def test_required_option_unset_blocks_and_the_app_is_not_started(app_ctx, charm_dir, calls):
    st = settled_state(charm_dir)

    out = run(app_ctx, "config_changed", run(app_ctx, "pebble_ready", st))

    assert out.unit_status == testing.BlockedStatus(
        "missing required option(s) tenant: juju config flask-k8s tenant=…"
    )
    assert not flask_layer(out)
    assert "start" not in calls.log


def test_required_option_set_later_starts_the_app(app_ctx, charm_dir, calls):
    blocked = run(app_ctx, "pebble_ready", settled_state(charm_dir))

    out = run(app_ctx, "config_changed", with_config(blocked, tenant="acme"))

    assert out.unit_status == testing.ActiveStatus("")
    assert app_env(out)["FLASK_TENANT"] == "acme"
    assert calls.log.count("start") == 1


def test_required_option_set_to_empty_is_unset(app_ctx, charm_dir):
    out = run(app_ctx, "pebble_ready", settled_state(charm_dir, config={"tenant": ""}))

    assert out.unit_status.message.startswith("missing required option(s) tenant")


def test_required_secret_option_hint_names_a_secret(tmp_path, charm_dir):
    ctx = context(charmcraft_copy(tmp_path, {"db-creds": {"type": "secret", "optional": False}}))

    out = run(ctx, "pebble_ready", settled_state(charm_dir))

    assert out.unit_status == testing.BlockedStatus(
        "missing required option(s) db-creds: juju config flask-k8s db-creds=secret:…"
    )


# -- secret options ------------------------------------------------------------------------------


def user_secret(**content: str) -> testing.Secret:
    return testing.Secret(tracked_content=content, latest_content=content)


def test_secret_option_gives_one_variable_per_key(app_ctx, charm_dir):
    secret = user_secret(username="shop", password="12345", **{"api-url": "https://x"})

    out = settled(app_ctx, charm_dir, secret, config={"api-token": secret.id})

    env = app_env(out)
    assert out.unit_status == testing.ActiveStatus("")
    assert env["FLASK_API_TOKEN_USERNAME"] == "shop"
    assert env["FLASK_API_TOKEN_PASSWORD"] == '"12345"'  # encoded as the flask-* options are
    assert env["FLASK_API_TOKEN_API_URL"] == "https://x"
    assert "FLASK_API_TOKEN" not in env


def test_secret_option_not_granted_blocks_with_the_grant_hint(app_ctx, charm_dir):
    missing = "secret:cu7fjf6qo2sc76nkn6hg"

    out = settled(app_ctx, charm_dir, config={"api-token": missing})

    assert out.unit_status == testing.BlockedStatus(
        f"api-token: secret {missing} not found or not granted: "
        f"juju grant-secret {missing} flask-k8s"
    )
    assert not flask_layer(out)


def test_secret_option_read_again_only_on_secret_changed(app_ctx, charm_dir):
    secret = user_secret(token="v1")
    out = settled(app_ctx, charm_dir, secret, config={"api-token": secret.id})
    renewed = dataclasses.replace(out.get_secret(id=secret.id), latest_content={"token": "v2"})
    st = dataclasses.replace(out, secrets={renewed})

    tools = HookToolCounter()
    with tools.installed():
        other = app_env(run(app_ctx, "config_changed", with_config(st, greeting="hi")))
    after = app_ctx.run(app_ctx.on.secret_changed(renewed), st)

    assert tools.calls["secret-get"] == 0
    assert other["FLASK_API_TOKEN_TOKEN"] == "v1"
    assert other["FLASK_GREETING"] == "hi"
    assert app_env(after)["FLASK_API_TOKEN_TOKEN"] == "v2"


def test_secret_option_pointed_at_another_secret_is_read(app_ctx, charm_dir):
    first, second = user_secret(token="one"), user_secret(token="two")
    out = settled(app_ctx, charm_dir, first, second, config={"api-token": first.id})

    after = run(app_ctx, "config_changed", with_config(out, **{"api-token": second.id}))

    assert app_env(after)["FLASK_API_TOKEN_TOKEN"] == "two"


def test_secret_option_key_clashing_with_an_option_blocks(app_ctx, charm_dir):
    options = {"api": {"type": "secret"}, "api-token-x": {"type": "string"}}
    ctx = context(charmcraft_copy(charm_dir.parent, options))
    secret = user_secret(**{"token-x": "from the secret"})
    config = {"api": secret.id, "api-token-x": "from the option"}

    out = run(ctx, "pebble_ready", with_secrets(settled_state(charm_dir, config=config), secret))

    assert out.unit_status.name == "blocked"
    assert "sets FLASK_API_TOKEN_X, as another does" in out.unit_status.message


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ({"token": "x" * 16385}, "values of at most 16384 characters, without NUL"),
        ({f"key{n:02}": "v" for n in range(65)}, "at most 64 keys"),
    ],
)
def test_secret_option_oversized_content_blocks(app_ctx, charm_dir, content, why):
    secret = user_secret(**content)

    out = settled(app_ctx, charm_dir, secret, config={"api-token": secret.id})

    assert out.unit_status == testing.BlockedStatus(
        f"api-token: secret {secret.id} must hold {why}"
    )
    assert not flask_layer(out)


# -- required relations --------------------------------------------------------------------------


@pytest.fixture
def relations_ctx(tmp_path) -> testing.Context[FlaskCharm]:
    requires = {**REQUIRED_RELATIONS, "postgresql": {"interface": "postgresql_client", "limit": 1}}
    return context(charmcraft_copy(tmp_path, {}, requires))


HINT = (
    "missing required relation(s) audit-log, postgresql, search: "
    "juju integrate flask-k8s:audit-log <syslog provider>; "
    "juju integrate flask-k8s:postgresql <postgresql_client provider>; "
    "juju integrate flask-k8s:search <opensearch_client provider>"
)


def test_required_relations_missing_block_listing_all_and_app_not_started(
    relations_ctx, charm_dir
):
    out = run(relations_ctx, "pebble_ready", settled_state(charm_dir))

    assert out.unit_status == testing.BlockedStatus(HINT)
    assert not flask_layer(out)


def test_required_relations_present_start_the_app(relations_ctx, charm_dir):
    relations = {testing.Relation("search"), testing.Relation("audit-log")}
    st = settled_state(charm_dir, relations=relations)

    out = run(relations_ctx, "pebble_ready", st)

    # postgresql (a registered integration) is still missing; the others are related
    assert out.unit_status == testing.BlockedStatus(
        "missing required relation(s) postgresql: "
        "juju integrate flask-k8s:postgresql <postgresql_client provider>"
    )
    assert not flask_layer(out)


def test_required_relation_removed_keeps_the_app_serving_blocked(tmp_path, charm_dir):
    ctx = context(charmcraft_copy(tmp_path, {}, {"search": REQUIRED_RELATIONS["search"]}))
    search = testing.Relation("search")
    out = run(
        ctx,
        "config_changed",
        run(ctx, "pebble_ready", settled_state(charm_dir, relations={search})),
    )
    assert out.unit_status == testing.ActiveStatus("")

    gone = ctx.run(ctx.on.relation_broken(out.get_relation(search.id)), out)
    left = {rel for rel in gone.relations if rel.endpoint != "search"}
    after = run(ctx, "update_status", dataclasses.replace(gone, relations=left))

    for st in (gone, after):
        assert st.unit_status == testing.BlockedStatus(
            "missing required relation(s) search: "
            "juju integrate flask-k8s:search <opensearch_client provider>"
        )
        assert st.get_container("flask-app").plan == out.get_container("flask-app").plan


def test_shipped_charm_requires_nothing():
    meta = yaml.safe_load((ROOT / "charmcraft.yaml").read_text())

    assert all(spec.get("optional") is True for spec in meta["requires"].values())


# -- peers and proxy -----------------------------------------------------------------------------


def test_peer_fqdns_list_every_unit_in_order(app_ctx, charm_dir):
    pod = "flask-k8s-{}.flask-k8s-endpoints.{}.svc.cluster.local"
    out = settled(app_ctx, charm_dir)
    alone = app_env(out)["FLASK_PEER_FQDNS"]  # (the file is shared: read it after each hook)
    peer = out.get_relations("secret-storage")[0]
    grown = dataclasses.replace(peer, peers_data={2: {}, 10: {}, 1: {}})

    after = app_ctx.run(
        app_ctx.on.relation_changed(grown, remote_unit=2),
        dataclasses.replace(out, relations={grown}),
    )
    four = app_env(after)["FLASK_PEER_FQDNS"]
    shrunk = dataclasses.replace(after.get_relation(peer.id), peers_data={10: {}})
    app_ctx.run(
        app_ctx.on.relation_departed(shrunk, remote_unit=2, departing_unit=2),
        dataclasses.replace(after, relations={shrunk}),
    )
    two = app_env(after)["FLASK_PEER_FQDNS"]

    assert alone == pod.format(0, MODEL)
    assert four == ",".join(pod.format(n, MODEL) for n in (0, 1, 2, 10))
    assert two == ",".join(pod.format(n, MODEL) for n in (0, 10))


def test_model_proxy_reaches_the_app_in_both_cases(app_ctx, charm_dir, monkeypatch, calls):
    for name, value in PROXY.items():
        monkeypatch.setenv(name, value)

    out = settled(app_ctx, charm_dir)

    env = app_env(out)
    for upper, source in workload.PROXY_SOURCES.items():
        assert env[upper] == env[upper.lower()] == PROXY[source]
    assert "start" in calls.log and "restart" not in calls.log


def test_proxy_change_is_seen_by_update_status_and_reloads(app_ctx, charm_dir, monkeypatch, calls):
    out = settled(app_ctx, charm_dir)
    assert "HTTP_PROXY" not in app_env(out)
    quiet = run(app_ctx, "update_status", out)
    calls.clear()
    monkeypatch.setenv("JUJU_CHARM_HTTP_PROXY", PROXY["JUJU_CHARM_HTTP_PROXY"])

    after = run(app_ctx, "update_status", quiet)
    proxied = app_env(after)
    monkeypatch.delenv("JUJU_CHARM_HTTP_PROXY")
    cleared = run(app_ctx, "update_status", after)

    assert proxied["http_proxy"] == PROXY["JUJU_CHARM_HTTP_PROXY"]
    assert "http_proxy" not in app_env(cleared)
    assert calls.log == ["push", "reload", "push", "reload"]


def test_proxy_peers_and_app_options_reach_the_migrate_script(tmp_path, charm_dir, monkeypatch):
    from tests.unit.charm.test_migrations import app_state, ready

    monkeypatch.setenv("JUJU_CHARM_HTTPS_PROXY", PROXY["JUJU_CHARM_HTTPS_PROXY"])
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "migrate.py").write_text("print('migrated')\n")
    ctx = context(charmcraft_copy(tmp_path, APP_OPTIONS))
    st = app_state(charm_dir, app_dir, config={"tenant": "acme", "greeting": "hi"})

    out = ready(ctx, st)

    (migration,) = ctx.exec_history["flask-app"]
    assert out.unit_status == testing.ActiveStatus("")
    assert migration.environment == app_env(out)
    for name in (
        "FLASK_TENANT",
        "FLASK_GREETING",
        "FLASK_PEER_FQDNS",
        "HTTPS_PROXY",
        "https_proxy",
    ):
        assert name in migration.environment


# -- the rendered Gunicorn config file: what the master's environment becomes ---------------------

MASTER = textwrap.dedent(
    """
    import json, os, sys
    os.environ["FLASK_GREETING"] = "stale, set by an earlier file"
    os.environ["FLASK_FROM_POD"] = "changed by an earlier file"
    os.environ["http_proxy"] = "http://old-proxy:3128"
    exec(compile(open(sys.argv[1]).read(), sys.argv[1], "exec"), {})
    names = ("FLASK_GREETING", "FLASK_FROM_POD", "FLASK_TENANT", "http_proxy", "HTTPS_PROXY")
    print(json.dumps({name: os.environ.get(name) for name in names}))
    """
)


def test_rendered_file_restores_what_pebble_gave_and_drops_what_the_charm_no_longer_sets(
    tmp_path,
):
    conf = workload.gunicorn_config(
        None, {}, {"FLASK_TENANT": "acme", "HTTPS_PROXY": "http://p:3129"}
    )
    path = tmp_path / "gunicorn.conf.py"
    path.write_text(conf)
    pod_env = {"PATH": "/usr/bin:/bin", "FLASK_FROM_POD": "from the rock"}

    result = subprocess.run(
        [sys.executable, "-c", MASTER, str(path)],
        env=pod_env,
        capture_output=True,
        text=True,
        check=True,
    )

    assert yaml.safe_load(result.stdout) == {
        "FLASK_GREETING": None,  # no longer set by the charm, not Pebble's: removed
        "FLASK_FROM_POD": "from the rock",  # Pebble's (the rock's environment): back as it was
        "FLASK_TENANT": "acme",
        "http_proxy": None,
        "HTTPS_PROXY": "http://p:3129",
    }


def test_non_gunicorn_rock_gets_app_options_in_pebble_environment(app_ctx, charm_dir):
    from tests.unit.charm.charm_state import container

    box = container(charm_dir, command="/bin/python3 /flask/app/serve.py")
    st = settled_state(charm_dir, config={"tenant": "acme"}, containers={box})

    out = run(app_ctx, "pebble_ready", st)

    env = out.get_container("flask-app").plan.services["flask"].environment
    assert env["FLASK_TENANT"] == "acme"
    assert env["FLASK_PEER_FQDNS"].startswith("flask-k8s-0.")


def test_option_declarations_parsed_once_per_charm_revision(app_ctx, charm_dir, monkeypatch):
    import app_options

    parsed: list[int] = []
    parse = app_options.parse_specs
    monkeypatch.setattr(app_options, "parse_specs", lambda *a: parsed.append(1) or parse(*a))
    out = settled(app_ctx, charm_dir)

    run(app_ctx, "config_changed", with_config(out, greeting="again"))

    assert parsed == [1]
    assert isinstance(out.unit_status, ops.ActiveStatus)
