"""What the integration tests share: a provider related with its answer, its hooks, read-backs."""

from __future__ import annotations

import dataclasses
import pathlib

import ops
import pytest
from ops import testing

from tests.unit.charm.test_charm import flask_service, settled_state


def app_vars(out: testing.State, prefix: str) -> dict[str, str]:
    """The app service's environment variables whose names start with `prefix`."""
    env = flask_service(out).environment
    return {key: value for key, value in env.items() if key.startswith(prefix)}


def related(
    charm_dir: pathlib.Path,
    endpoint: str,
    remote_app: str,
    app_data: dict[str, str],
    *secrets: testing.Secret | None,
    **kwargs,
) -> testing.State:
    """A settled state whose `endpoint` relation holds the provider's `app_data` and secrets."""
    relation = testing.Relation(endpoint, remote_app_name=remote_app, remote_app_data=app_data)
    relations = {relation, *kwargs.pop("relations", ())}
    st = settled_state(charm_dir, relations=relations, **kwargs)
    return dataclasses.replace(st, secrets={*st.secrets, *(s for s in secrets if s)})


def our_request(ctx, charm_dir: pathlib.Path, endpoint: str, **kwargs) -> dict[str, str]:
    """What our unit writes into its app databag when the `endpoint` relation is created."""
    relation = testing.Relation(endpoint)
    relations = {relation, *kwargs.pop("relations", ())}
    out = ctx.run(
        ctx.on.relation_created(relation), settled_state(charm_dir, relations=relations, **kwargs)
    )
    return dict(out.get_relation(relation.id).local_app_data)


def changed(ctx, st: testing.State, endpoint: str) -> testing.State:
    """relation-changed on the state's `endpoint` relation."""
    return ctx.run(ctx.on.relation_changed(st.get_relations(endpoint)[0]), st)


def removed(ctx, st: testing.State, endpoint: str) -> testing.State:
    """relation-broken on the state's `endpoint` relation."""
    return ctx.run(ctx.on.relation_broken(st.get_relations(endpoint)[0]), st)


def rotated(
    st: testing.State, secret: testing.Secret, content: dict[str, str]
) -> tuple[testing.State, testing.Secret]:
    """`st` with the provider's `secret` at a new revision holding `content`."""
    new = dataclasses.replace(secret, latest_content=content)
    return dataclasses.replace(
        st, secrets={*(s for s in st.secrets if s.id != secret.id), new}
    ), new


def withdrawn(st: testing.State, endpoint: str) -> tuple[testing.State, testing.Relation]:
    """`st` with the provider's app databag on `endpoint` emptied."""
    relation = st.get_relations(endpoint)[0]
    assert isinstance(relation, testing.Relation), "a peer or subordinate has no app databag"
    relation = dataclasses.replace(relation, remote_app_data={})
    others = {rel for rel in st.relations if rel.id != relation.id}
    return dataclasses.replace(st, relations={*others, relation}), relation


def secret_not_granted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading any secret fails as Juju fails it before the owner grants it."""

    def not_granted(*_: object, **__: object) -> dict[str, str]:
        raise ops.ModelError("ERROR permission denied")

    monkeypatch.setattr(ops.Secret, "get_content", not_granted)


def leaks(ctx, out: testing.State, *secrets: str) -> list[str]:
    """The juju-log lines, status message and databags we wrote that hold any of `secrets`."""
    texts = [line.message for line in ctx.juju_log] + [out.unit_status.message]
    for relation in out.relations:
        texts += [str(dict(relation.local_app_data)), str(dict(relation.local_unit_data))]
    return [text for text in texts if any(secret in text for secret in secrets)]
