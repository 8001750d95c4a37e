"""Integrations that hand the app its settings as environment variables, one module per kind.

Each kind's module (`postgresql`, `redis`, …) offers:
- `ENDPOINT` and `ENV_PREFIX`;
- `read(charm, relation)`: the relation read into a typed value, raising `NotReadyError` or
  `BadDataError` (from `charms.flask_k8s.v0.database_requires`) whose messages name the relation;
- `env(value)`: a pure function from that value to environment variables;
- optionally `request(charm, relation)` (the leader's side of the handshake) and
  `identity(env)`: what, in those variables, makes a *different* backend for the migrations
  (endpoint and database name, never a credential).

`REGISTRY` names the modules without importing them: a hook on a charm with no such relation
imports nothing more than this file. Adding an integration is one new module, one line here,
and its endpoint in charmcraft.yaml.

While a related provider has not published (or published something unusable), the app keeps
the variables it runs with (read back from the current plan): a live app keeps serving with
what it had, a fresh pod starts without them. Status then says Waiting or Blocked.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import ops

logger = logging.getLogger(__name__)


class Kind(NamedTuple):
    """Where an endpoint's module is (imported only when needed) and its variables' prefix."""

    module: str
    env_prefix: str


REGISTRY: dict[str, Kind] = {
    "postgresql": Kind("integrations.postgresql", "POSTGRESQL_DB_"),
    "mysql": Kind("integrations.mysql", "MYSQL_DB_"),
    "mongodb": Kind("integrations.mongodb", "MONGODB_DB_"),
    "redis": Kind("integrations.redis", "REDIS_DB_"),
    "s3": Kind("integrations.s3", "S3_"),
    "smtp": Kind("integrations.smtp", "SMTP_"),
    "rabbitmq": Kind("integrations.rabbitmq", "RABBITMQ_"),
    "openfga": Kind("integrations.openfga", "FGA_"),
    "oauth": Kind("integrations.oauth", "FLASK_OAUTH_"),
    "saml": Kind("integrations.saml", "SAML_"),
    "tracing": Kind("integrations.tracing", "OTEL_"),
}
RELATION_EVENTS = ("relation_created", "relation_joined", "relation_changed", "relation_broken")


def events(on: ops.CharmEvents) -> list[ops.BoundEvent]:
    """The relation events of every registered endpoint (each one reconciles)."""
    return [getattr(on[endpoint], kind) for endpoint in REGISTRY for kind in RELATION_EVENTS]


@dataclass(frozen=True)
class Found:
    """What the related integrations give the app, and what they still lack."""

    env: dict[str, str]
    problems: tuple[ops.StatusBase, ...] = ()

    @property
    def status(self) -> ops.StatusBase | None:
        """The first Blocked problem, else the first Waiting one, else None."""
        blocked = [status for status in self.problems if status.name == "blocked"]
        return (blocked or list(self.problems) or [None])[0]


def _module(endpoint: str) -> Any:
    return importlib.import_module(REGISTRY[endpoint].module)


class RelatedEndpoints(ops.Object):
    """Which registered endpoints have a relation, remembered between hooks.

    Asking Juju costs one `relation-ids` call per endpoint per hook. A relation appears only
    with relation-created (Juju fires it after install for relations that already exist) and
    goes only with relation-broken, so the unit remembers the answer, and asks again only
    after such an event or an upgrade (an older revision kept no such memory). Create it before
    observing the same events elsewhere: observers run in the order they were added.
    """

    _stored = ops.StoredState()

    def __init__(self, charm: ops.CharmBase):
        super().__init__(charm, "related-endpoints")
        self._charm = charm
        self._stored.set_default(related_endpoints=None)
        observe = charm.framework.observe
        for endpoint in REGISTRY:
            observe(charm.on[endpoint].relation_created, self._on_changed)
            observe(charm.on[endpoint].relation_broken, self._on_changed)
        observe(charm.on.upgrade_charm, self._on_changed)
        observe(charm.on.install, self._on_install)

    def _on_install(self, _: ops.EventBase) -> None:
        self._stored.related_endpoints = []  # relation-created follows for any relation

    def _on_changed(self, _: ops.EventBase) -> None:
        self._stored.related_endpoints = None  # ask Juju once, in this hook

    def names(self) -> list[str]:
        """The registered endpoints that have a relation now."""
        if self._stored.related_endpoints is None:
            relations = self._charm.model.relations
            self._stored.related_endpoints = [e for e in REGISTRY if relations.get(e)]
        return list(self._stored.related_endpoints)


def _related(
    charm: ops.CharmBase, endpoints: Iterable[str] = REGISTRY
) -> list[tuple[Any, ops.Relation]]:
    """(module, relation) for each of `endpoints` that has a relation (limit 1 each)."""
    found = []
    for endpoint in endpoints:
        relations = charm.model.relations.get(endpoint) or []
        if relations:
            found.append((_module(endpoint), relations[0]))
    return found


def publish(charm: ops.CharmBase, endpoints: Iterable[str] = REGISTRY) -> None:
    """The leader's side of each handshake (e.g. ask for a database); idempotent."""
    import ops

    if not charm.unit.is_leader():
        return
    for module, relation in _related(charm, endpoints):
        request = getattr(module, "request", None)
        if request is None:
            continue
        try:
            request(charm, relation)
        except ops.ModelError as exc:  # e.g. the relation went away mid-hook
            logger.info("could not write the %s request: %s", relation.name, exc)


def collect(
    charm: ops.CharmBase,
    current_env: Callable[[], Mapping[str, str]],
    endpoints: Iterable[str] = REGISTRY,
) -> Found:
    """Read every related integration; keep the current variables of those not ready."""
    import ops

    from charms.flask_k8s.v0.database_requires import BadDataError, NotReadyError

    env: dict[str, str] = {}
    problems: list[ops.StatusBase] = []
    for module, relation in _related(charm, endpoints):
        try:
            own = module.env(module.read(charm, relation))
        except NotReadyError as exc:
            problems.append(ops.WaitingStatus(str(exc)))
            own = _kept(module, current_env())
        except BadDataError as exc:
            problems.append(ops.BlockedStatus(str(exc)))
            own = _kept(module, current_env())
        except ops.ModelError as exc:  # a hook tool failed: transient, the next event retries
            logger.info("could not read the %s relation: %s", relation.name, type(exc).__name__)
            problems.append(ops.WaitingStatus(f"could not read the {relation.name} relation"))
            own = _kept(module, current_env())
        env.update(own)
    return Found(env, tuple(problems))


def identity_of(env: Mapping[str, str]) -> str:
    """Which backends the variables point at (no credential): new ones mean new code.

    Joins each present integration's `identity(env)`; "" when none is present, so that a
    charm without integrations migrates for exactly the code id it always had.
    """
    parts = []
    for endpoint, kind in REGISTRY.items():
        own = {key: value for key, value in env.items() if key.startswith(kind.env_prefix)}
        identify = getattr(_module(endpoint), "identity", None) if own else None
        if identify is not None:
            parts.append(identify(own))
    return "\n".join(parts)


def _kept(module: Any, current: Mapping[str, str]) -> dict[str, str]:
    return {key: value for key, value in current.items() if key.startswith(module.ENV_PREFIX)}
