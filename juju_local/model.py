"""A small persistent Juju model: one JSON file, changed under an `fcntl` lock, atomically.

It holds what a unit agent and the controller would keep for one application: units and
leadership, charm config, relations and their databags, secrets, statuses, opened ports, the
workload version, action runs and resources. The hook tools (`hooktools`) and the tests both go
through `Model`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import fcntl
import json
import os
import secrets
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SETTABLE_STATUSES = ("maintenance", "blocked", "waiting", "active")
_XID_ALPHABET = "0123456789abcdefghijklmnopqrstuv"  # what Juju's xid ids are made of


class ModelStoreError(Exception):
    """A request the model refuses, worded as Juju words it (without the `ERROR ` prefix)."""


def now_rfc3339() -> str:
    """The current UTC time as Juju prints it."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_secret_xid() -> str:
    """A fresh 20-character lowercase alphanumeric id, shaped like Juju's secret ids."""
    return "".join(secrets.choice(_XID_ALPHABET) for _ in range(20))


def secret_xid(secret_id: str) -> str:
    """The bare id of `secret:<xid>`, `secret://<model-uuid>/<xid>` or `<xid>`."""
    value = secret_id.strip()
    if value.startswith("secret:"):
        value = value[len("secret:") :]
    return value.rstrip("/").rsplit("/", 1)[-1]


@dataclass
class Unit:
    """A unit of the application."""

    name: str
    leader: bool = False
    agent_error: str = ""  # set while the last hook failed: Juju shows the unit in error
    address: str = ""  # its pod's address; "" for the model's default (`State.address`)

    @property
    def number(self) -> int:
        """The unit's number: 1 for `app/1`."""
        return int(self.name.rsplit("/", 1)[1])


@dataclass
class Status:
    """A workload status with its message."""

    status: str = "unknown"
    message: str = ""
    since: str = field(default_factory=now_rfc3339)


@dataclass
class Relation:
    """One relation of our application, with every databag Juju keeps for it."""

    id: int
    endpoint: str
    interface: str
    remote_app: str
    remote_units: list[str] = field(default_factory=list)
    app_data: dict[str, dict[str, str]] = field(default_factory=dict)  # app name -> databag
    unit_data: dict[str, dict[str, str]] = field(default_factory=dict)  # unit name -> databag
    peer: bool = False

    @property
    def ref(self) -> str:
        """The relation as hook tools name it: `endpoint:id`."""
        return f"{self.endpoint}:{self.id}"


@dataclass
class SecretRevision:
    """One revision of a secret's content."""

    revision: int
    content: dict[str, str]
    created: str = field(default_factory=now_rfc3339)


@dataclass
class SecretConsumer:
    """What one consumer unit knows of a secret: the revision it tracks and its own label."""

    revision: int = 0
    label: str = ""


@dataclass
class Secret:
    """A secret owned by the application, one of its units, or the operator (a user secret)."""

    id: str  # secret:<xid>
    owner: str  # app name, unit name, or "model" for user secrets
    owner_kind: str  # "application", "unit" or "user"
    label: str = ""  # the owner's label
    description: str = ""
    expire: str = ""
    rotate: str = ""
    revisions: list[SecretRevision] = field(default_factory=list)
    consumers: dict[str, SecretConsumer] = field(default_factory=dict)  # unit name -> view
    grants: dict[str, int | None] = field(default_factory=dict)  # app/unit -> relation id

    @property
    def xid(self) -> str:
        """The bare id."""
        return secret_xid(self.id)

    @property
    def latest(self) -> SecretRevision:
        """The newest revision."""
        return self.revisions[-1]

    def revision(self, number: int) -> SecretRevision | None:
        """The given revision, if it still exists."""
        return next((r for r in self.revisions if r.revision == number), None)


@dataclass
class ActionRun:
    """One run of an action, as `juju show-operation` would report it."""

    uuid: str
    name: str
    unit: str
    params: dict[str, Any] = field(default_factory=dict)
    status: str = "running"  # running, completed, failed
    message: str = ""
    results: dict[str, Any] = field(default_factory=dict)
    logs: list[str] = field(default_factory=list)
    failed: bool = False  # action-fail was called


@dataclass
class State:
    """Everything the store holds."""

    model_name: str
    model_uuid: str
    app: str
    units: list[Unit]
    config_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)  # values the operator set
    endpoints: list[str] = field(default_factory=list)  # empty: any binding name is valid
    address: str = "127.0.0.1"  # a unit's address unless it has its own (`Unit.address`)
    next_unit: int = 0  # Juju never reuses a unit number
    relations: list[Relation] = field(default_factory=list)
    next_relation_id: int = 0
    secrets: list[Secret] = field(default_factory=list)
    app_status: Status = field(default_factory=Status)
    unit_status: dict[str, Status] = field(default_factory=dict)
    opened_ports: dict[str, list[str]] = field(default_factory=dict)  # unit -> ["8000/tcp"]
    workload_version: str = ""
    actions: list[ActionRun] = field(default_factory=list)
    resources: dict[str, str] = field(default_factory=dict)  # name -> path
    unit_state: dict[str, dict[str, str]] = field(default_factory=dict)  # state-get/-set

    # -- lookups shared by the API and the hook tools --------------------------------------

    def unit(self, name: str) -> Unit:
        """The unit called `name`."""
        for unit in self.units:
            if unit.name == name:
                return unit
        raise ModelStoreError(f'unit "{name}" not found')

    def unit_address(self, unit: str) -> str:
        """The address `network-get` and `unit-get` give `unit`: its pod's."""
        return self.unit(unit).address or self.address

    def is_leader(self, unit: str) -> bool:
        """Whether `unit` holds leadership."""
        return self.unit(unit).leader

    def relation(self, relation_id: int) -> Relation:
        """The relation with this id; Juju's words when there is none."""
        for relation in self.relations:
            if relation.id == relation_id:
                return relation
        raise ModelStoreError("relation not found")

    def secret(self, secret_id: str) -> Secret:
        """The secret with this id, in any of the forms Juju accepts."""
        xid = secret_xid(secret_id)
        for secret in self.secrets:
            if secret.xid == xid:
                return secret
        raise ModelStoreError(f'secret "{xid}" not found')

    def config_view(self) -> dict[str, Any]:
        """`config-get`'s view: defaults overlaid with set values; unset-no-default left out."""
        merged = {
            name: option["default"]
            for name, option in self.config_options.items()
            if option.get("default") is not None
        }
        merged.update({k: v for k, v in self.config.items() if v is not None})
        return merged

    def action(self, action_uuid: str) -> ActionRun:
        """The action run with this id."""
        for run in self.actions:
            if run.uuid == action_uuid:
                return run
        raise ModelStoreError(f'action "{action_uuid}" not found')


def _from_dict(cls: Any, data: Mapping[str, Any]) -> Any:
    """Rebuild a (nested) dataclass from what `dataclasses.asdict` wrote."""
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        kwargs[f.name] = _convert(_NESTED.get((cls.__name__, f.name)), data[f.name])
    return cls(**kwargs)


def _convert(spec: tuple[str, Any] | None, value: Any) -> Any:
    if spec is None:
        return value
    kind, cls = spec
    if kind == "one":
        return _from_dict(cls, value)
    if kind == "list":
        return [_from_dict(cls, item) for item in value]
    return {key: _from_dict(cls, item) for key, item in value.items()}


_NESTED: dict[tuple[str, str], tuple[str, Any]] = {
    ("State", "units"): ("list", Unit),
    ("State", "relations"): ("list", Relation),
    ("State", "secrets"): ("list", Secret),
    ("State", "app_status"): ("one", Status),
    ("State", "unit_status"): ("dict", Status),
    ("State", "actions"): ("list", ActionRun),
    ("Secret", "revisions"): ("list", SecretRevision),
    ("Secret", "consumers"): ("dict", SecretConsumer),
}


def _check_databag(data: Mapping[str, Any]) -> None:
    for key, value in data.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ModelStoreError(
                f"relation data must be strings, got {key!r}: {type(value).__name__}"
            )


def update_databag(bag: dict[str, str], data: Mapping[str, str]) -> None:
    """Merge `data` into `bag` as relation-set does: an empty value deletes the key."""
    _check_databag(data)
    for key, value in data.items():
        if value == "":
            bag.pop(key, None)
        else:
            bag[key] = value


class Model:
    """The store at `path`, with the operations the tests, commands and hook tools need."""

    def __init__(self, path: Path | str):
        self.path = Path(path)

    # -- the file ---------------------------------------------------------------------------

    @property
    def log_path(self) -> Path:
        """Where juju-log lines go (one line each: time, level, unit, message)."""
        return self.path.with_suffix(".log")

    @classmethod
    def create(
        cls,
        path: Path | str,
        app: str,
        model_name: str = "local",
        charm_config_options: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        units: int = 1,
        endpoints: list[str] | None = None,
        model_uuid: str | None = None,
    ) -> Model:
        """Create (or overwrite) the store for `app` with `units` units; the first leads."""
        model = cls(path)
        model.path.parent.mkdir(parents=True, exist_ok=True)
        state = State(
            model_name=model_name,
            model_uuid=model_uuid or str(uuid.uuid4()),
            app=app,
            units=[Unit(f"{app}/{n}", leader=n == 0) for n in range(units)],
            config_options={k: dict(v) for k, v in (charm_config_options or {}).items()},
            endpoints=list(endpoints or []),
        )
        with model._locked():
            model._write(state)
        model.log_path.touch()
        return model

    @contextlib.contextmanager
    def _locked(self, shared: bool = False) -> Iterator[None]:
        lock_path = self.path.with_name(self.path.name + ".lock")
        with lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self) -> State:
        return _from_dict(State, json.loads(self.path.read_text()))

    def _write(self, state: State) -> None:
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        with os.fdopen(fd, "w") as out:
            json.dump(dataclasses.asdict(state), out, indent=1, sort_keys=True)
        os.replace(tmp, self.path)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[State]:
        """Read the state under an exclusive lock; write it back if the block succeeds."""
        with self._locked():
            state = self._read()
            yield state
            self._write(state)

    def state(self) -> State:
        """A consistent snapshot of the whole state (changes to it are not saved)."""
        with self._locked(shared=True):
            return self._read()

    def snapshot(self) -> dict[str, Any]:
        """The raw state, for `rollback` after a failed hook."""
        return dataclasses.asdict(self.state())

    def rollback(self, snapshot: Mapping[str, Any]) -> None:
        """Undo a failed hook's changes, as Juju discards an errored hook's context.

        Statuses, action results and logs were reported as they happened, so they stay.
        """
        before: State = _from_dict(State, snapshot)
        with self.transaction() as state:
            for name in ("relations", "next_relation_id", "secrets", "opened_ports"):
                setattr(state, name, getattr(before, name))
            state.workload_version = before.workload_version
            state.unit_state = before.unit_state

    # -- units, config, resources ---------------------------------------------------------

    @property
    def app(self) -> str:
        """The application's name."""
        return self.state().app

    def units(self) -> list[Unit]:
        """The application's units."""
        return self.state().units

    def leader(self) -> str:
        """The leader unit's name."""
        leader = next((u.name for u in self.state().units if u.leader), None)
        if leader is None:
            raise ModelStoreError("the application has no leader")
        return leader

    def add_unit(self, address: str = "") -> str:
        """Add a unit (not the leader) and return its name: the next number never used."""
        with self.transaction() as state:
            number = max(state.next_unit, 1 + max((u.number for u in state.units), default=-1))
            state.next_unit = number + 1
            name = f"{state.app}/{number}"
            state.units.append(Unit(name, address=address))
            for relation in state.relations:
                relation.unit_data.setdefault(name, {})
        return name

    def remove_unit(self, name: str) -> bool:
        """Forget a unit that has gone (its databags, statuses, ports and state); True if it led.

        Leadership is not moved: `set_leader` does that, as Juju elects after the lease expires.
        """
        with self.transaction() as state:
            unit = state.unit(name)
            state.units.remove(unit)
            state.next_unit = max(state.next_unit, unit.number + 1)
            for relation in state.relations:
                relation.unit_data.pop(name, None)
            for per_unit in (state.unit_status, state.opened_ports, state.unit_state):
                per_unit.pop(name, None)
            for secret in state.secrets:
                secret.consumers.pop(name, None)
        return unit.leader

    def set_leader(self, unit: str) -> None:
        """Move leadership to `unit`."""
        with self.transaction() as state:
            state.unit(unit)
            for each in state.units:
                each.leader = each.name == unit

    def set_agent_error(self, unit: str, message: str) -> None:
        """Record (or with "" clear) a failed hook, which Juju shows as the unit's status."""
        with self.transaction() as state:
            state.unit(unit).agent_error = message

    def set_config(self, values: Mapping[str, Any] | None = None, /, **kv: Any) -> None:
        """Set config as `juju config app k=v` does; a None value resets the option."""
        changes = {**(values or {}), **kv}
        with self.transaction() as state:
            for key, value in changes.items():
                if state.config_options and key not in state.config_options:
                    raise ModelStoreError(f'unknown option "{key}"')
                if value is None:
                    state.config.pop(key, None)
                else:
                    state.config[key] = _typed_config(state.config_options.get(key), key, value)

    def refresh_charm(self, config_options: Mapping[str, Mapping[str, Any]]) -> None:
        """A new charm revision's options, as `juju refresh` takes them: values of gone ones go."""
        with self.transaction() as state:
            state.config_options = {k: dict(v) for k, v in config_options.items()}
            state.config = {k: v for k, v in state.config.items() if k in config_options}

    def reset_config(self, *keys: str) -> None:
        """Forget the operator's value for `keys`, as `juju config --reset` does."""
        self.set_config(dict.fromkeys(keys))

    def config(self) -> dict[str, Any]:
        """The config the charm sees (`config-get`)."""
        return self.state().config_view()

    def set_resource(self, name: str, path: Path | str) -> None:
        """Make `resource-get name` answer `path`."""
        with self.transaction() as state:
            state.resources[name] = str(path)

    def set_address(self, address: str) -> None:
        """The unit's address as network-get reports it."""
        with self.transaction() as state:
            state.address = address

    # -- relations --------------------------------------------------------------------------

    def add_relation(
        self,
        endpoint: str,
        remote_app: str,
        remote_units: list[str] | tuple[str, ...] = (),
        interface: str = "",
        *,
        peer: bool = False,
    ) -> int:
        """Add a relation on `endpoint` with `remote_app` and return its id.

        For a peer relation, `remote_app` is our own app and the remote units are our other units.
        """
        with self.transaction() as state:
            relation_id = state.next_relation_id
            state.next_relation_id += 1
            if peer:  # the other side is our own app; `relation-list` names our other units
                remote_app, remote_units = state.app, ()
            relation = Relation(
                id=relation_id,
                endpoint=endpoint,
                interface=interface,
                remote_app=remote_app,
                remote_units=list(remote_units),
                peer=peer,
            )
            relation.app_data = {state.app: {}, remote_app: {}}
            relation.unit_data = {u.name: {} for u in state.units}
            relation.unit_data.update({u: {} for u in remote_units})
            state.relations.append(relation)
        return relation_id

    def add_peer_relation(self, endpoint: str, interface: str = "") -> int:
        """Add the peer relation Juju creates for `endpoint` at deploy time."""
        return self.add_relation(endpoint, "", (), interface, peer=True)

    def add_remote_unit(self, relation_id: int, unit: str) -> None:
        """A remote unit joins the relation."""
        with self.transaction() as state:
            relation = state.relation(relation_id)
            if unit not in relation.remote_units:
                relation.remote_units.append(unit)
            relation.unit_data.setdefault(unit, {})

    def remove_remote_unit(self, relation_id: int, unit: str) -> None:
        """A remote unit departs: it leaves `relation-list` (its databag goes too)."""
        with self.transaction() as state:
            relation = state.relation(relation_id)
            if unit in relation.remote_units:
                relation.remote_units.remove(unit)
            if not relation.peer:
                relation.unit_data.pop(unit, None)

    def remove_relation(self, relation_id: int) -> None:
        """Remove the relation and its databags; grants made over it go too."""
        with self.transaction() as state:
            relation = state.relation(relation_id)
            state.relations.remove(relation)
            for secret in state.secrets:
                secret.grants = {k: v for k, v in secret.grants.items() if v != relation_id}

    def set_remote_app_data(self, relation_id: int, data: Mapping[str, str]) -> None:
        """Update the remote app's databag (an empty value deletes the key)."""
        with self.transaction() as state:
            relation = state.relation(relation_id)
            update_databag(relation.app_data.setdefault(relation.remote_app, {}), data)

    def set_remote_unit_data(self, relation_id: int, unit: str, data: Mapping[str, str]) -> None:
        """Update a remote unit's databag (an empty value deletes the key)."""
        with self.transaction() as state:
            relation = state.relation(relation_id)
            if unit not in relation.remote_units:
                raise ModelStoreError(f'unit "{unit}" is not in relation {relation.ref}')
            update_databag(relation.unit_data.setdefault(unit, {}), data)

    def relation(self, relation_id: int) -> Relation:
        """The relation with this id."""
        return self.state().relation(relation_id)

    def relations(self, endpoint: str | None = None) -> list[Relation]:
        """All relations, or those on `endpoint`."""
        return [r for r in self.state().relations if endpoint in (None, r.endpoint)]

    def relation_data(self, relation_id: int) -> dict[str, dict[str, str]]:
        """Every databag of the relation, keyed by app or unit name."""
        relation = self.relation(relation_id)
        return {**relation.app_data, **relation.unit_data}

    # -- secrets ----------------------------------------------------------------------------

    def add_user_secret(
        self, content: Mapping[str, str], *, grant_to_app: bool = True, description: str = ""
    ) -> str:
        """Create a secret as `juju add-secret` does (and grant it, as `juju grant-secret`)."""
        _check_databag(content)
        with self.transaction() as state:
            secret = Secret(
                id=f"secret:{new_secret_xid()}",
                owner="model",
                owner_kind="user",
                description=description,
                revisions=[SecretRevision(1, dict(content))],
            )
            if grant_to_app:
                secret.grants[state.app] = None
            state.secrets.append(secret)
        return secret.id

    def update_user_secret(self, secret_id: str, content: Mapping[str, str]) -> int:
        """Add a revision to a user secret (`juju update-secret`); return its number."""
        _check_databag(content)
        with self.transaction() as state:
            secret = state.secret(secret_id)
            secret.revisions.append(SecretRevision(secret.latest.revision + 1, dict(content)))
            return secret.latest.revision

    def grant_secret(self, secret_id: str, app: str) -> None:
        """Grant a user secret to an application (`juju grant-secret`)."""
        with self.transaction() as state:
            state.secret(secret_id).grants[app] = None

    def revoke_secret(self, secret_id: str, app: str) -> None:
        """Revoke a user secret from an application (`juju revoke-secret`)."""
        with self.transaction() as state:
            state.secret(secret_id).grants.pop(app, None)

    def secret(self, secret_id: str) -> Secret:
        """The secret with this id (any form)."""
        return self.state().secret(secret_id)

    def secrets(self) -> list[Secret]:
        """Every secret in the model."""
        return self.state().secrets

    # -- status, ports, actions, logs -----------------------------------------------------

    def status(self) -> ModelStatus:
        """What `juju status` would show for the application."""
        state = self.state()
        units = {}
        for unit in state.units:
            status = state.unit_status.get(unit.name, Status())
            if unit.agent_error:
                status = Status("error", unit.agent_error, status.since)
            units[unit.name] = UnitView(
                status=status,
                leader=unit.leader,
                ports=list(state.opened_ports.get(unit.name, [])),
                address=state.unit_address(unit.name),
            )
        return ModelStatus(
            model=state.model_name,
            app=state.app,
            app_status=state.app_status,
            workload_version=state.workload_version,
            units=units,
        )

    def opened_ports(self, unit: str | None = None) -> list[str]:
        """The ports a unit opened, as `8000/tcp` strings."""
        state = self.state()
        return list(state.opened_ports.get(unit or state.units[0].name, []))

    def start_action(self, name: str, params: Mapping[str, Any], unit: str) -> str:
        """Record a new action run and return its id."""
        with self.transaction() as state:
            state.unit(unit)
            run = ActionRun(uuid=str(len(state.actions) + 1), name=name, unit=unit)
            run.params = dict(params)
            state.actions.append(run)
        return run.uuid

    def finish_action(self, action_uuid: str, returncode: int) -> ActionRun:
        """Settle an action run's status from action-fail and the process's exit code."""
        with self.transaction() as state:
            run = state.action(action_uuid)
            if run.failed:
                run.status = "failed"
            elif returncode != 0:
                run.status, run.message = "failed", f"exit status {returncode}"
            else:
                run.status = "completed"
        return run

    def action(self, action_uuid: str) -> ActionRun:
        """An action run, with its results, logs and status."""
        return self.state().action(action_uuid)

    def log_lines(self) -> list[str]:
        """Every juju-log line so far."""
        return self.log_path.read_text().splitlines() if self.log_path.exists() else []


@dataclass
class UnitView:
    """A unit as `juju status` shows it."""

    status: Status
    leader: bool
    ports: list[str]
    address: str


# How Juju ranks unit statuses when it derives an application's status from its units.
_SEVERITY = {"unknown": 0, "active": 1, "waiting": 2, "maintenance": 3, "blocked": 4, "error": 5}


@dataclass
class ModelStatus:
    """The application as `juju status` shows it."""

    model: str
    app: str
    app_status: Status
    workload_version: str
    units: dict[str, UnitView]

    def shown_app_status(self) -> Status:
        """The app status `juju status` shows: the charm's own, else the worst unit status."""
        if self.app_status.status != "unknown" or not self.units:
            return self.app_status
        return max(
            (unit.status for unit in self.units.values()),
            key=lambda status: _SEVERITY.get(status.status, 0),
        )

    def describe(self) -> str:
        """A short human-readable rendering, like `juju status`'s application and unit rows."""
        app_status = self.shown_app_status()
        lines = [
            f"Model {self.model}",
            f"App {self.app} {self.workload_version or '-'} "
            f"{app_status.status} {app_status.message}".rstrip(),
        ]
        for name, unit in self.units.items():
            star = "*" if unit.leader else ""
            ports = ",".join(unit.ports)
            lines.append(
                f"Unit {name}{star} {unit.status.status} {unit.address} {ports} "
                f"{unit.status.message}".rstrip()
            )
        return "\n".join(lines)


def _typed_config(option: Mapping[str, Any] | None, key: str, value: Any) -> Any:
    """Coerce an operator's value to the option's type, as `juju config` does."""
    kind = (option or {}).get("type", "string")
    text = str(value)
    try:
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "boolean":
            if isinstance(value, bool):
                return value
            if text.lower() in ("true", "false"):
                return text.lower() == "true"
            raise ValueError(text)
    except ValueError:
        raise ModelStoreError(f'option "{key}" expected {kind}, got "{text}"') from None
    return text
