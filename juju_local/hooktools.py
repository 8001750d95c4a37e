"""Juju's hook tools, backed by the model store: one entry point, dispatched on the tool's name.

`run_tool` runs one call; the `toolserver` answers the charm's calls with it, in the process
that dispatched the hook (the charm finds small clients on PATH, as it finds Juju's), and `main`
runs one in this process from a hook's environment. The tools take the argument forms ops 3.x
passes (see `ops/hookcmds`), print JSON for `--format=json`, and fail as Juju's do:
`ERROR <message>` on stderr and a non-zero exit (2 for a usage error). The unit, relation and
action come from the `JUJU_*` environment of the hook.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from .model import (
    SETTABLE_STATUSES,
    Model,
    ModelStoreError,
    Relation,
    Secret,
    SecretConsumer,
    SecretRevision,
    State,
    Status,
    new_secret_xid,
    now_rfc3339,
    update_databag,
)

MODEL_ENV = "LOCALJUJU_MODEL"
SECRET_KEY_RE = re.compile(r"^[a-z](?:-?[a-z0-9]){2,}$")
ACTION_KEY_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
RESERVED_ACTION_KEYS = ("stdout", "stdout-encoding", "stderr", "stderr-encoding")


class ToolError(Exception):
    """The tool fails: `ERROR <message>` and exit 1, as Juju's tools do."""


class UsageError(Exception):
    """The arguments do not parse: exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


@dataclass
class Context:
    """What a hook tool knows: the store, and the hook's `JUJU_*` environment."""

    model: Model
    unit: str
    env: Mapping[str, str]
    stdin: Any

    @property
    def app(self) -> str:
        """Our application's name."""
        return self.unit.split("/")[0]

    def default_relation_id(self) -> int:
        """The relation of a relation hook (`JUJU_RELATION_ID`)."""
        value = self.env.get("JUJU_RELATION_ID", "")
        if not value:
            raise ToolError("no relation id specified")
        return int(value.rsplit(":", 1)[-1])

    def action_uuid(self) -> str:
        """The running action's id."""
        value = self.env.get("JUJU_ACTION_UUID", "")
        if not value:
            raise ToolError("not running an action")
        return value


def _parser(tool: str, *, formatted: bool = True) -> _Parser:
    parser = _Parser(prog=tool, add_help=False)
    if formatted:
        parser.add_argument("--format", default="smart")
    return parser


def _relation_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-r", "--relation", dest="relation")


def _resolve_relation(ctx: Context, state: State, ref: str | None) -> Relation:
    """The relation `-r` names (`id` or `endpoint:id`), or the hook's own."""
    if ref is None:
        return state.relation(ctx.default_relation_id())
    endpoint, _, number = ref.rpartition(":")
    try:
        relation = state.relation(int(number))
    except (ValueError, ModelStoreError):
        raise ToolError(f'invalid value "{ref}" for option -r: relation not found') from None
    if endpoint and endpoint != relation.endpoint:
        raise ToolError(f'invalid value "{ref}" for option -r: relation not found')
    return relation


def _emit(value: Any) -> str:
    return json.dumps(value)


# -- config, leadership, status, logs -----------------------------------------------------


def config_get(ctx: Context, args: Sequence[str]) -> str:
    """`config-get [--format=json] [-a|--all] [key]`."""
    parser = _parser("config-get")
    parser.add_argument("-a", "--all", action="store_true")
    parser.add_argument("key", nargs="?")
    opts = parser.parse_args(args)
    state = ctx.model.state()
    view = state.config_view()
    if opts.all:
        view = {name: view.get(name) for name in state.config_options} | view
    return _emit(view.get(opts.key) if opts.key else view)


def is_leader(ctx: Context, args: Sequence[str]) -> str:
    """`is-leader --format=json`."""
    _parser("is-leader").parse_args(args)
    return _emit(ctx.model.state().is_leader(ctx.unit))


def _status_dict(status: Status) -> dict[str, Any]:
    return {"status": status.status, "message": status.message, "status-data": {}}


def status_get(ctx: Context, args: Sequence[str]) -> str:
    """`status-get --include-data --format=json --application=<bool>`."""
    parser = _parser("status-get")
    parser.add_argument("--include-data", action="store_true")
    parser.add_argument("--application", default="false")
    opts = parser.parse_args(args)
    state = ctx.model.state()
    if not _flag(opts.application):
        return _emit(_status_dict(state.unit_status.get(ctx.unit, Status())))
    if not state.is_leader(ctx.unit):
        raise ToolError("finding application status: this unit is not the leader")
    units = {u.name: _status_dict(state.unit_status.get(u.name, Status())) for u in state.units}
    return _emit({"application-status": _status_dict(state.app_status), "units": units})


def status_set(ctx: Context, args: Sequence[str]) -> None:
    """`status-set --application=<bool> <status> [--] [message]`."""
    parser = _parser("status-set", formatted=False)
    parser.add_argument("--application", default="false")
    parser.add_argument("status")
    parser.add_argument("message", nargs="?", default="")
    opts = parser.parse_args(args)
    if opts.status not in SETTABLE_STATUSES:
        expected = " ".join(SETTABLE_STATUSES)
        raise ToolError(f'invalid status "{opts.status}", expected one of [{expected}]')
    with ctx.model.transaction() as state:
        if _flag(opts.application):
            if not state.is_leader(ctx.unit):
                raise ToolError("setting application status: this unit is not the leader")
            state.app_status = Status(opts.status, opts.message)
        else:
            state.unit_status[ctx.unit] = Status(opts.status, opts.message)


def _flag(value: str) -> bool:
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise UsageError(f'invalid boolean value "{value}"')
    return lowered == "true"


def juju_log(ctx: Context, args: Sequence[str]) -> None:
    """`juju-log [--log-level LEVEL | --debug] [--] message...`."""
    parser = _parser("juju-log")
    parser.add_argument("-l", "--log-level", default="INFO")
    parser.add_argument("--debug", action="store_true")
    parser.add_argument("message", nargs="+")
    opts = parser.parse_args(args)
    level = "DEBUG" if opts.debug else opts.log_level.upper()
    line = f"{now_rfc3339()} {level} {ctx.unit}: {' '.join(opts.message)}"
    with ctx.model.log_path.open("a") as log:
        log.write(line.replace("\n", "\n    ") + "\n")


def application_version_set(ctx: Context, args: Sequence[str]) -> None:
    """`application-version-set [--] version`."""
    parser = _parser("application-version-set", formatted=False)
    parser.add_argument("version")
    opts = parser.parse_args(args)
    with ctx.model.transaction() as state:
        state.workload_version = opts.version


# -- relations ------------------------------------------------------------------------------


def relation_ids(ctx: Context, args: Sequence[str]) -> str:
    """`relation-ids [endpoint] --format=json`."""
    parser = _parser("relation-ids")
    parser.add_argument("endpoint", nargs="?")
    opts = parser.parse_args(args)
    endpoint = opts.endpoint or ctx.env.get("JUJU_RELATION")
    if not endpoint:
        raise ToolError("no endpoint name specified")
    return _emit([r.ref for r in ctx.model.state().relations if r.endpoint == endpoint])


def relation_list(ctx: Context, args: Sequence[str]) -> str:
    """`relation-list --format=json [--app] [-r ref]`."""
    parser = _parser("relation-list")
    parser.add_argument("--app", action="store_true")
    _relation_arg(parser)
    opts = parser.parse_args(args)
    state = ctx.model.state()
    relation = _resolve_relation(ctx, state, opts.relation)
    if opts.app:
        return _emit(relation.remote_app)
    return _emit(_remote_units(state, relation, ctx.unit))


def _remote_units(state: State, relation: Relation, unit: str) -> list[str]:
    """The units on the other side: for a peer relation, our other units."""
    if relation.peer:
        return [u.name for u in state.units if u.name != unit]
    return list(relation.remote_units)


def relation_model_get(ctx: Context, args: Sequence[str]) -> str:
    """`relation-model-get --format=json [-r ref]`."""
    parser = _parser("relation-model-get")
    _relation_arg(parser)
    opts = parser.parse_args(args)
    state = ctx.model.state()
    _resolve_relation(ctx, state, opts.relation)
    return _emit({"uuid": state.model_uuid})


def relation_get(ctx: Context, args: Sequence[str]) -> str:
    """`relation-get --format=json [-r ref] [--app] [key|-] [unit-or-app]`."""
    parser = _parser("relation-get")
    _relation_arg(parser)
    parser.add_argument("--app", action="store_true")
    parser.add_argument("key", nargs="?", default="-")
    parser.add_argument("target", nargs="?")
    opts = parser.parse_args(args)
    state = ctx.model.state()
    relation = _resolve_relation(ctx, state, opts.relation)
    bag = _readable_databag(ctx, state, relation, opts.target, opts.app)
    if opts.key != "-":
        return _emit(bag.get(opts.key, ""))
    return _emit(bag)


def _readable_databag(
    ctx: Context, state: State, relation: Relation, target: str | None, app: bool
) -> dict[str, str]:
    """The databag `target` names, if this unit may read it."""
    if app:
        name = target or ctx.env.get("JUJU_REMOTE_APP") or relation.remote_app
        if name == state.app:
            if not relation.peer and not state.is_leader(ctx.unit):
                raise ToolError("permission denied")
        elif name != relation.remote_app:
            raise ToolError(f'application "{name}" is not in relation {relation.ref}')
        return relation.app_data.get(name, {})
    name = target or ctx.env.get("JUJU_REMOTE_UNIT")
    if not name:
        raise ToolError("no unit id specified")
    ours = name.split("/")[0] == state.app
    if not ours and name not in relation.remote_units:
        raise ToolError(
            f'cannot read settings for unit "{name}" in relation "{relation.ref}": '
            f'unit "{name}": settings not found'
        )
    return relation.unit_data.get(name, {})


def relation_set(ctx: Context, args: Sequence[str]) -> None:
    """`relation-set [-r ref] [--app] [--file path|-] [key=value...]`."""
    parser = _parser("relation-set")
    _relation_arg(parser)
    parser.add_argument("--app", action="store_true")
    parser.add_argument("--file")
    parser.add_argument("settings", nargs="*")
    opts = parser.parse_args(args)
    data = _settings_file(ctx, opts.file) if opts.file else {}
    for item in opts.settings:
        key, sep, value = item.partition("=")
        if not sep:
            raise ToolError(f'expected "key=value", got "{item}"')
        data[key] = value
    with ctx.model.transaction() as state:
        relation = _resolve_relation(ctx, state, opts.relation)
        if opts.app:
            if not state.is_leader(ctx.unit):
                raise ToolError("cannot write relation settings: permission denied")
            bag = relation.app_data.setdefault(state.app, {})
        else:
            bag = relation.unit_data.setdefault(ctx.unit, {})
        try:
            update_databag(bag, data)
        except ModelStoreError as error:
            raise ToolError(str(error)) from None


def _settings_file(ctx: Context, name: str) -> dict[str, str]:
    text = ctx.stdin.read() if name == "-" else Path(name).read_text()
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = _simple_yaml_mapping(text)
    if not isinstance(data, dict):
        raise ToolError(f"expected a YAML map of settings, got {type(data).__name__}")
    return {str(k): "" if v is None else str(v) for k, v in data.items()}


def _simple_yaml_mapping(text: str) -> dict[str, str]:
    """The flat `key: value` YAML relation-set also accepts (ops sends JSON)."""
    data: dict[str, str] = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition(":")
            if not sep:
                raise ToolError(f"cannot parse settings line {line!r}")
            data[key.strip()] = value.strip().strip("'\"")
    return data


# -- network and ports ----------------------------------------------------------------------


def network_get(ctx: Context, args: Sequence[str]) -> str:
    """`network-get --format=json [-r id] [--ingress-address|--bind-address|...] binding`."""
    parser = _parser("network-get")
    _relation_arg(parser)
    for flag in ("--primary-address", "--bind-address", "--ingress-address", "--egress-subnets"):
        parser.add_argument(flag, action="store_true")
    parser.add_argument("binding")
    opts = parser.parse_args(args)
    state = ctx.model.state()
    if opts.relation is not None:
        try:
            state.relation(int(opts.relation.rsplit(":", 1)[-1]))
        except ModelStoreError:
            raise ToolError(f"relation {opts.relation} not found") from None
    if state.endpoints and opts.binding not in state.endpoints:
        raise ToolError(f'no network config found for binding "{opts.binding}"')
    address = state.unit_address(ctx.unit)
    if opts.primary_address or opts.bind_address or opts.ingress_address:
        return _emit(address)
    if opts.egress_subnets:
        return _emit([f"{address}/32"])
    bind = {
        "mac-address": "",
        "interface-name": "eth0",
        "addresses": [
            {"hostname": "", "value": address, "address": address, "cidr": f"{address}/32"}
        ],
    }
    return _emit(
        {
            "bind-addresses": [bind],
            "egress-subnets": [f"{address}/32"],
            "ingress-addresses": [address],
        }
    )


def _port_spec(spec: str) -> str:
    """Normalise `8000`, `8000/tcp`, `8000-8010/udp` or `icmp` as Juju stores it."""
    if spec == "icmp":
        return spec
    ports, _, protocol = spec.partition("/")
    protocol = protocol or "tcp"
    bounds = ports.split("-")
    valid = protocol in ("tcp", "udp") and 1 <= len(bounds) <= 2
    valid = valid and all(b.isdigit() and 0 < int(b) < 65536 for b in bounds)
    if not valid:
        raise ToolError(f'invalid port or range "{spec}"')
    return f"{ports}/{protocol}"


def _ports_parser(tool: str) -> _Parser:
    parser = _parser(tool)
    parser.add_argument("--endpoints", default="")
    parser.add_argument("port")
    return parser


def open_port(ctx: Context, args: Sequence[str]) -> None:
    """`open-port [--endpoints a,b] <port>[/<protocol>] | <from>-<to>[/<protocol>] | icmp`."""
    spec = _port_spec(_ports_parser("open-port").parse_args(args).port)
    with ctx.model.transaction() as state:
        ports = state.opened_ports.setdefault(ctx.unit, [])
        if spec not in ports:
            ports.append(spec)


def close_port(ctx: Context, args: Sequence[str]) -> None:
    """`close-port` with open-port's arguments."""
    spec = _port_spec(_ports_parser("close-port").parse_args(args).port)
    with ctx.model.transaction() as state:
        ports = state.opened_ports.setdefault(ctx.unit, [])
        if spec in ports:
            ports.remove(spec)


def opened_ports(ctx: Context, args: Sequence[str]) -> str:
    """`opened-ports [--endpoints] --format=json`."""
    parser = _parser("opened-ports")
    parser.add_argument("--endpoints", action="store_true")
    opts = parser.parse_args(args)
    ports = ctx.model.state().opened_ports.get(ctx.unit, [])
    return _emit([f"{p} (*)" if opts.endpoints else p for p in ports])


# -- secrets --------------------------------------------------------------------------------


def _secret_options(parser: argparse.ArgumentParser) -> None:
    for flag in ("--label", "--description", "--expire", "--rotate"):
        parser.add_argument(flag)
    parser.add_argument("--owner", default="application", choices=("application", "unit"))


def _secret_content(items: Sequence[str]) -> dict[str, str]:
    """Parse `key=value`, `key#base64=value` and `key#file=path` arguments."""
    content: dict[str, str] = {}
    for item in items:
        spec, sep, value = item.partition("=")
        if not sep:
            raise ToolError(f'expected "key=value", got "{item}"')
        key, _, encoding = spec.partition("#")
        if not SECRET_KEY_RE.match(key):
            raise ToolError(f'invalid key "{key}"')
        if encoding == "file":
            value = Path(value).read_text()
        elif encoding == "base64":
            value = base64.b64decode(value).decode()
        elif encoding:
            raise ToolError(f'invalid key "{spec}"')
        content[key] = value
    return content


def _owns(ctx: Context, secret: Secret) -> bool:
    """Whether this unit's app (app secret) or this unit (unit secret) owns `secret`."""
    if secret.owner_kind == "application":
        return secret.owner == ctx.app
    return secret.owner_kind == "unit" and secret.owner == ctx.unit


def _manage(ctx: Context, state: State, secret: Secret) -> None:
    """Only the owner may change a secret; for an app secret, only the leader."""
    if not _owns(ctx, secret):
        raise ToolError("permission denied")
    if secret.owner_kind == "application" and not state.is_leader(ctx.unit):
        raise ToolError(f'secret "{secret.xid}": only the leader may change it: permission denied')


@contextlib.contextmanager
def _managed_secret(ctx: Context, secret_id: str) -> Iterator[tuple[State, Secret]]:
    """The secret, in a transaction, once we know this unit may change it."""
    with ctx.model.transaction() as state:
        secret = _lookup_secret(ctx, state, secret_id, None)
        _manage(ctx, state, secret)
        yield state, secret


def _find_by_label(ctx: Context, state: State, label: str) -> Secret:
    for secret in state.secrets:
        if _owns(ctx, secret) and secret.label == label:
            return secret
    for secret in state.secrets:
        consumer = secret.consumers.get(ctx.unit)
        if consumer is not None and consumer.label == label:
            return secret
    raise ToolError(f'secret with label "{label}" not found')


def _lookup_secret(ctx: Context, state: State, secret_id: str | None, label: str | None) -> Secret:
    if secret_id:
        try:
            return state.secret(secret_id)
        except ModelStoreError as error:
            raise ToolError(str(error)) from None
    if label:
        return _find_by_label(ctx, state, label)
    raise ToolError("require either a secret URI or label")


def secret_add(ctx: Context, args: Sequence[str]) -> str:
    """`secret-add [--label L] [--description D] [--expire E] [--rotate R] --owner O k#file=…`."""
    parser = _parser("secret-add")
    _secret_options(parser)
    parser.add_argument("content", nargs="*")
    opts = parser.parse_args(args)
    content = _secret_content(opts.content)
    if not content:
        raise ToolError("missing secret value or filename")
    with ctx.model.transaction() as state:
        if opts.owner == "application" and not state.is_leader(ctx.unit):
            raise ToolError("cannot create an application secret: this unit is not the leader")
        owner = ctx.app if opts.owner == "application" else ctx.unit
        if opts.label and any(s.owner == owner and s.label == opts.label for s in state.secrets):
            raise ToolError(f'secret with label "{opts.label}" already exists')
        secret = Secret(
            id=f"secret:{new_secret_xid()}",
            owner=owner,
            owner_kind=opts.owner,
            label=opts.label or "",
            description=opts.description or "",
            expire=opts.expire or "",
            rotate=opts.rotate or "",
            revisions=[SecretRevision(1, content)],
        )
        state.secrets.append(secret)
    return secret.id


def secret_get(ctx: Context, args: Sequence[str]) -> str:
    """`secret-get --format=json [id] [--label L] [--refresh | --peek]`."""
    parser = _parser("secret-get")
    parser.add_argument("id", nargs="?")
    parser.add_argument("--label")
    parser.add_argument("--refresh", action="store_true")
    parser.add_argument("--peek", action="store_true")
    opts = parser.parse_args(args)
    if opts.refresh and opts.peek:
        raise UsageError("specify one of --peek or --refresh but not both")
    with ctx.model.transaction() as state:
        secret = _lookup_secret(ctx, state, opts.id, opts.label)
        if _owns(ctx, secret):
            if opts.id and opts.label:
                secret.label = opts.label
            return _emit(secret.latest.content)
        return _emit(_consume(ctx, secret, opts.label if opts.id else None, opts))


def _consume(ctx: Context, secret: Secret, label: str | None, opts: Any) -> dict[str, str]:
    """A consumer's read: the tracked revision; `--refresh` moves on, `--peek` only looks."""
    if ctx.app not in secret.grants and ctx.unit not in secret.grants:
        raise ToolError(f'secret "{secret.xid}" not granted: permission denied')
    consumer = secret.consumers.setdefault(ctx.unit, SecretConsumer())
    if label:
        consumer.label = label
    if opts.peek:
        return secret.latest.content
    tracked = secret.revision(consumer.revision)
    if opts.refresh or tracked is None:
        consumer.revision = secret.latest.revision
        return secret.latest.content
    return tracked.content


def secret_set(ctx: Context, args: Sequence[str]) -> None:
    """`secret-set [--label L] [--description D] [--expire E] [--rotate R] id [k#file=…]`."""
    parser = _parser("secret-set")
    _secret_options(parser)
    parser.add_argument("id")
    parser.add_argument("content", nargs="*")
    opts = parser.parse_args(args)
    content = _secret_content(opts.content)
    with _managed_secret(ctx, opts.id) as (state, secret):
        for name in ("label", "description", "expire", "rotate"):
            if getattr(opts, name) is not None:
                setattr(secret, name, getattr(opts, name))
        if content and content != secret.latest.content:
            secret.revisions.append(SecretRevision(secret.latest.revision + 1, content))


def secret_info_get(ctx: Context, args: Sequence[str]) -> str:
    """`secret-info-get --format=json (id | --label L)`: owners only."""
    parser = _parser("secret-info-get")
    parser.add_argument("id", nargs="?")
    parser.add_argument("--label")
    opts = parser.parse_args(args)
    if opts.id and opts.label:
        raise UsageError("specify either a secret URI or label but not both")
    state = ctx.model.state()
    secret = _lookup_secret(ctx, state, opts.id, opts.label)
    if not _owns(ctx, secret):
        raise ToolError(f'secret "{secret.xid}" not found')
    info: dict[str, Any] = {"revision": secret.latest.revision, "owner": secret.owner_kind}
    for key, value in (
        ("label", secret.label),
        ("description", secret.description),
        ("expiry", secret.expire),
        ("rotation", secret.rotate),
    ):
        if value:
            info[key] = value
    return _emit({secret.xid: info})


def secret_ids(ctx: Context, args: Sequence[str]) -> str:
    """`secret-ids --format=json`: the secrets this unit's app (or the unit) owns."""
    _parser("secret-ids").parse_args(args)
    return _emit([s.id for s in ctx.model.state().secrets if _owns(ctx, s)])


def _grant_parser(tool: str) -> _Parser:
    parser = _parser(tool, formatted=False)
    parser.add_argument("-r", "--relation", required=tool == "secret-grant")
    parser.add_argument("--unit")
    parser.add_argument("--app")
    parser.add_argument("id")
    return parser


def _grantee(ctx: Context, state: State, opts: Any) -> tuple[str, int | None]:
    relation_id = None
    if opts.relation is not None:
        relation = _resolve_relation(ctx, state, opts.relation)
        relation_id = relation.id
        default = relation.remote_app
    else:
        default = opts.app
    grantee = opts.unit or opts.app or default
    if not grantee:
        raise ToolError("missing relation or application")
    return grantee, relation_id


def secret_grant(ctx: Context, args: Sequence[str]) -> None:
    """`secret-grant --relation N [--unit U] id`."""
    opts = _grant_parser("secret-grant").parse_args(args)
    with _managed_secret(ctx, opts.id) as (state, secret):
        grantee, relation_id = _grantee(ctx, state, opts)
        secret.grants[grantee] = relation_id


def secret_revoke(ctx: Context, args: Sequence[str]) -> None:
    """`secret-revoke [--relation N] [--app A] [--unit U] id`."""
    opts = _grant_parser("secret-revoke").parse_args(args)
    with _managed_secret(ctx, opts.id) as (state, secret):
        grantee, _ = _grantee(ctx, state, opts)
        secret.grants.pop(grantee, None)
        for unit in [u for u in secret.consumers if u.split("/")[0] == grantee or u == grantee]:
            del secret.consumers[unit]


def secret_remove(ctx: Context, args: Sequence[str]) -> None:
    """`secret-remove id [--revision N]`."""
    parser = _parser("secret-remove", formatted=False)
    parser.add_argument("id")
    parser.add_argument("--revision", type=int)
    opts = parser.parse_args(args)
    with _managed_secret(ctx, opts.id) as (state, secret):
        if opts.revision is None:
            state.secrets.remove(secret)
            return
        if secret.revision(opts.revision) is None:
            raise ToolError(f'secret revision "{secret.xid}/{opts.revision}" not found')
        secret.revisions = [r for r in secret.revisions if r.revision != opts.revision]
        if not secret.revisions:
            state.secrets.remove(secret)


# -- actions --------------------------------------------------------------------------------


def action_get(ctx: Context, args: Sequence[str]) -> str:
    """`action-get --format=json [dotted.key]`."""
    parser = _parser("action-get")
    parser.add_argument("key", nargs="?")
    opts = parser.parse_args(args)
    value: Any = ctx.model.state().action(ctx.action_uuid()).params
    for part in opts.key.split(".") if opts.key else ():
        value = value.get(part) if isinstance(value, dict) else None
    return _emit(value)


def action_set(ctx: Context, args: Sequence[str]) -> None:
    """`action-set key=value...` (dotted keys nest)."""
    parser = _parser("action-set", formatted=False)
    parser.add_argument("results", nargs="+")
    opts = parser.parse_args(args)
    pairs = []
    for item in opts.results:
        key, sep, value = item.partition("=")
        if not sep:
            raise ToolError(f'argument "{item}" must be of the form key...=value')
        parts = key.split(".")
        if not all(ACTION_KEY_RE.match(p) for p in parts):
            raise ToolError(
                f'key "{key}" must start and end with lowercase alphanumeric, and contain only '
                "lowercase alphanumeric, hyphens and periods"
            )
        if parts[0] in RESERVED_ACTION_KEYS:
            raise ToolError(f'cannot set reserved action key "{parts[0]}"')
        pairs.append((parts, value))
    with ctx.model.transaction() as state:
        results = state.action(ctx.action_uuid()).results
        for parts, value in pairs:
            node = results
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = value


def action_fail(ctx: Context, args: Sequence[str]) -> None:
    """`action-fail [--] [message]`."""
    parser = _parser("action-fail", formatted=False)
    parser.add_argument("message", nargs="?")
    opts = parser.parse_args(args)
    with ctx.model.transaction() as state:
        run = state.action(ctx.action_uuid())
        run.failed = True
        run.message = opts.message or "action failed without reason given"


def action_log(ctx: Context, args: Sequence[str]) -> None:
    """`action-log [--] message...`."""
    parser = _parser("action-log", formatted=False)
    parser.add_argument("message", nargs="+")
    opts = parser.parse_args(args)
    with ctx.model.transaction() as state:
        state.action(ctx.action_uuid()).logs.append(" ".join(opts.message))


# -- the rest -------------------------------------------------------------------------------


def resource_get(ctx: Context, args: Sequence[str]) -> str:
    """`resource-get name`: the path of the resource's file (plain text)."""
    parser = _parser("resource-get", formatted=False)
    parser.add_argument("name")
    opts = parser.parse_args(args)
    state = ctx.model.state()
    if opts.name not in state.resources:
        raise ToolError(
            f"could not download resource: HTTP request failed: "
            f"resource#{state.app}/{opts.name} not found"
        )
    return state.resources[opts.name]


def goal_state(ctx: Context, args: Sequence[str]) -> str:
    """`goal-state --format=json`: our units, and every related app and unit, all settled."""
    _parser("goal-state").parse_args(args)
    state = ctx.model.state()
    since = now_rfc3339()
    units = {u.name: {"status": "active", "since": since} for u in state.units}
    relations: dict[str, dict[str, Any]] = {}
    for relation in state.relations:
        goals = relations.setdefault(relation.endpoint, {})
        goals[relation.remote_app] = {"status": "joined", "since": since}
        for unit in _remote_units(state, relation, ctx.unit):
            goals[unit] = {"status": "active", "since": since}
    return _emit({"units": units, "relations": relations})


def state_get(ctx: Context, args: Sequence[str]) -> str:
    """`state-get --format=json [key]`."""
    parser = _parser("state-get")
    parser.add_argument("key", nargs="?")
    opts = parser.parse_args(args)
    data = ctx.model.state().unit_state.get(ctx.unit, {})
    if opts.key is None:
        return _emit(data)
    if opts.key not in data:
        raise ToolError(f'key "{opts.key}" not found')
    return _emit(data[opts.key])


def state_set(ctx: Context, args: Sequence[str]) -> None:
    """`state-set [--file path|-] [key=value...]`."""
    parser = _parser("state-set", formatted=False)
    parser.add_argument("--file")
    parser.add_argument("settings", nargs="*")
    opts = parser.parse_args(args)
    data = _settings_file(ctx, opts.file) if opts.file else {}
    data.update(dict(item.partition("=")[::2] for item in opts.settings))
    with ctx.model.transaction() as state:
        update_databag(state.unit_state.setdefault(ctx.unit, {}), data)


def state_delete(ctx: Context, args: Sequence[str]) -> None:
    """`state-delete key`."""
    parser = _parser("state-delete", formatted=False)
    parser.add_argument("key")
    opts = parser.parse_args(args)
    with ctx.model.transaction() as state:
        state.unit_state.setdefault(ctx.unit, {}).pop(opts.key, None)


def unit_get(ctx: Context, args: Sequence[str]) -> str:
    """`unit-get private-address|public-address`."""
    parser = _parser("unit-get")
    parser.add_argument("setting", choices=("private-address", "public-address"))
    parser.parse_args(args)
    return _emit(ctx.model.state().unit_address(ctx.unit))


def _refuse(message: str) -> Callable[[Context, Sequence[str]], None]:
    def tool(ctx: Context, args: Sequence[str]) -> None:
        raise ToolError(message)

    return tool


TOOLS: dict[str, Callable[[Context, Sequence[str]], str | None]] = {
    "action-fail": action_fail,
    "action-get": action_get,
    "action-log": action_log,
    "action-set": action_set,
    "application-version-set": application_version_set,
    "close-port": close_port,
    "config-get": config_get,
    "credential-get": _refuse(
        "cannot access cloud credentials: the application is not trusted (juju trust)"
    ),
    "goal-state": goal_state,
    "is-leader": is_leader,
    "juju-log": juju_log,
    "juju-reboot": _refuse("juju-reboot is not supported when running in a container"),
    "add-metric": _refuse("add-metric is not supported on Kubernetes models"),
    "pod-spec-set": _refuse("pod-spec-set is not supported for sidecar charms"),
    "network-get": network_get,
    "open-port": open_port,
    "opened-ports": opened_ports,
    "relation-get": relation_get,
    "relation-ids": relation_ids,
    "relation-list": relation_list,
    "relation-model-get": relation_model_get,
    "relation-set": relation_set,
    "resource-get": resource_get,
    "secret-add": secret_add,
    "secret-get": secret_get,
    "secret-grant": secret_grant,
    "secret-ids": secret_ids,
    "secret-info-get": secret_info_get,
    "secret-remove": secret_remove,
    "secret-revoke": secret_revoke,
    "secret-set": secret_set,
    "state-delete": state_delete,
    "state-get": state_get,
    "state-set": state_set,
    "status-get": status_get,
    "status-set": status_set,
    "unit-get": unit_get,
}


def run_tool(ctx: Context, argv: Sequence[str]) -> tuple[int, str, str]:
    """Run the tool named by `argv[0]` in `ctx`: its exit code, stdout and stderr."""
    tool = os.path.basename(argv[0]) if argv else ""
    handler = TOOLS.get(tool)
    if handler is None:
        return 2, "", f"ERROR unknown hook tool {tool!r}\n"
    try:
        output = handler(ctx, list(argv[1:]))
    except UsageError as error:
        return 2, "", f"ERROR {error}\n"
    except (ToolError, ModelStoreError) as error:
        return 1, "", f"ERROR {error}\n"
    except OSError as error:  # e.g. a --file the tool cannot read
        return 1, "", f"ERROR {error}\n"
    return 0, "" if output is None else output + "\n", ""


def main(argv: Sequence[str] | None = None) -> int:
    """Run one tool in this process, from the hook's environment (`LOCALJUJU_MODEL`)."""
    argv = list(sys.argv if argv is None else argv)
    store = os.environ.get(MODEL_ENV)
    unit = os.environ.get("JUJU_UNIT_NAME")
    if not store or not unit:
        tool = os.path.basename(argv[0]) if argv else "hook tool"
        sys.stderr.write(f"ERROR {tool} needs a hook context ({MODEL_ENV}, JUJU_UNIT_NAME)\n")
        return 1
    ctx = Context(model=Model(store), unit=unit, env=os.environ, stdin=sys.stdin)
    code, out, err = run_tool(ctx, argv)
    sys.stdout.write(out)
    sys.stderr.write(err)
    return code
