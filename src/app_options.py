"""The app's own options: every config option of charmcraft.yaml the charm does not define.

A charm author adds an option to `charmcraft.yaml` (no Python) and the app gets it as
`FLASK_<OPTION>` (upper case, `-` → `_`), encoded as the `flask-*` options are
(`workload.env_value`, read back by Flask's `from_prefixed_env`). An option of type `secret`
names a Juju secret: each of its content keys becomes `FLASK_<OPTION>_<KEY>`. An option marked
`optional: false` (charmcraft's own convention, which its flask-framework extension checks) is
required: while it is unset the app is not started.

The option list comes from the charm's packed `config.yaml` (ops keeps no `optional`), parsed
only when that file changed (`ConfigCache.option_specs`). Values are checked on every
reconcile: it costs no hook tool, and a bad value must block whatever the cache holds.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any

import ops

from status import StatusError, operator_secret
from workload import RESERVED_NAMES, env_value

CHARM_OPTIONS = frozenset({"worker-type", "migration-timeout"})
CHARM_PREFIXES = ("webserver-", "flask-")
# The oauth integration's own options, per endpoint of interface `oauth`.
OAUTH_INTERFACE = "oauth"
OAUTH_SUFFIXES = ("-redirect-path", "-scopes")
ENV_PREFIX = "FLASK_"
TYPES = ("string", "int", "float", "boolean", "secret")

# Bounds. Each value becomes one environment variable: the kernel refuses a variable over
# 128 KiB (MAX_ARG_STRLEN), JSON-quoting may grow a string 6 times, and the whole environment
# shares the argument space (2 MiB or more): strings stay far below, and so does their sum.
MAX_NAME_CHARS = 64
MAX_VALUE_CHARS = 16384
MAX_SECRET_KEYS = 64
MAX_TOTAL_CHARS = 512 * 1024
_ENV_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
_OPTION_NAME = re.compile(r"[a-z][a-z0-9-]*")
MAX_LISTED = 5  # names shown in one status message


@dataclasses.dataclass(frozen=True)
class OptionSpec:
    """One app option as charmcraft.yaml declares it."""

    name: str
    type: str
    required: bool
    has_default: bool = False

    @property
    def env_name(self) -> str:
        """The variable it sets (a secret option: the prefix of its keys' variables)."""
        return env_name(self.name)


def env_name(option: str) -> str:
    """`FLASK_<OPTION>`: upper case, `-` → `_`."""
    return ENV_PREFIX + option.upper().replace("-", "_")


def is_charm_option(name: str, oauth_endpoints: Iterable[str] = ()) -> bool:
    """Whether the charm defines `name` itself (it is then no app option)."""
    if name in CHARM_OPTIONS or name.startswith(CHARM_PREFIXES):
        return True
    return any(
        name == f"{endpoint}{suffix}" for endpoint in oauth_endpoints for suffix in OAUTH_SUFFIXES
    )


def oauth_endpoints(meta: ops.CharmMeta) -> list[str]:
    """The `requires` endpoints of the oauth interface (their options are the charm's)."""
    names = {OAUTH_INTERFACE}
    names.update(
        name for name, rel in meta.requires.items() if rel.interface_name == OAUTH_INTERFACE
    )
    return sorted(names)


def parse_specs(config_yaml: str, oauth: Iterable[str] = ()) -> list[dict[str, Any]]:
    """The app options of a packed config.yaml, as JSON-able dicts (stored by the cache).

    charmcraft has checked the file's shape when packing; anything else here is reported by
    `check_specs`, never raised, so that a bad option blocks the charm with its name.
    """
    import yaml  # only when config.yaml changed

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    document = yaml.load(config_yaml, Loader=loader) or {}  # noqa: S506 (a safe loader)
    options = (document.get("options") if isinstance(document, dict) else None) or {}
    oauth = list(oauth)
    specs = []
    for name, option in options.items():
        name = str(name)
        if is_charm_option(name, oauth):
            continue
        option = option if isinstance(option, dict) else {}
        specs.append(
            {
                "name": name,
                "type": str(option.get("type", "")),
                "required": option.get("optional") is False,
                "has_default": option.get("default") is not None,
            }
        )
    return specs


def specs_from(raw: Iterable[Mapping[str, Any]]) -> list[OptionSpec]:
    """OptionSpecs from the dicts `parse_specs` produced."""
    return [
        OptionSpec(str(s["name"]), str(s["type"]), bool(s["required"]), bool(s.get("has_default")))
        for s in raw
    ]


def check_specs(specs: Iterable[OptionSpec], reserved: Iterable[str]) -> dict[str, str]:
    """Problems with the options themselves (a charm author's mistake), by option name."""
    problems: dict[str, str] = {}
    taken: dict[str, str] = dict.fromkeys(reserved, "the charm")
    for spec in specs:
        if len(spec.name) > MAX_NAME_CHARS or not _OPTION_NAME.fullmatch(spec.name):
            problems[spec.name[:MAX_NAME_CHARS]] = (
                f"an app option's name must be lower-case letters, digits and - (at most "
                f"{MAX_NAME_CHARS} characters) to become an environment variable"
            )
            continue
        if spec.type not in TYPES:
            problems[spec.name] = f"unknown type {spec.type[:20]!r}"
            continue
        if spec.required and spec.has_default:  # as charmcraft's flask-framework checks
            problems[spec.name] = "`optional: false` and a default: remove one"
            continue
        owner = taken.get(spec.env_name)
        if owner is not None:
            problems[spec.name] = f"sets {spec.env_name}, as {owner} does: rename it"
            continue
        taken[spec.env_name] = f"option {spec.name}"
    return problems


@dataclasses.dataclass(frozen=True)
class AppOptions:
    """The app options' values, checked: plain variables now, secrets to read."""

    env: dict[str, str]
    secrets: dict[str, str]  # option → secret id
    missing: tuple[str, ...]  # required options left unset


def check_values(specs: Iterable[OptionSpec], raw: Mapping[str, Any]) -> AppOptions:
    """Encode the set values; raise InvalidAppOptionsError naming every invalid one."""
    env: dict[str, str] = {}
    secrets: dict[str, str] = {}
    missing: list[str] = []
    problems: dict[str, str] = {}
    for spec in specs:
        value = raw.get(spec.name)
        if value is None or value == "":  # "" is unset, as for the flask-* options
            if spec.required:
                missing.append(spec.name)
            continue
        why = _invalid(spec.type, value)
        if why:
            problems[spec.name] = why
        elif spec.type == "secret":
            secrets[spec.name] = value
        else:
            env[spec.env_name] = env_value(value)
    total = sum(len(name) + len(value) for name, value in env.items())
    if total > MAX_TOTAL_CHARS and not problems:
        problems["app options"] = f"together at most {MAX_TOTAL_CHARS} characters"
    if problems:
        raise InvalidAppOptionsError(problems)
    return AppOptions(env, secrets, tuple(missing))


def _invalid(kind: str, value: Any) -> str | None:
    """Why a value does not fit its option's type (None: it fits)."""
    if kind == "boolean":
        return None if isinstance(value, bool) else "must be true or false"
    if kind == "int":
        return (
            None
            if isinstance(value, int) and not isinstance(value, bool)
            else "must be an integer"
        )
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "must be a number"
        return None if value == value and abs(value) != float("inf") else "must be a finite number"
    if not isinstance(value, str):
        return "must be a string"
    if len(value) > MAX_VALUE_CHARS:
        return f"must be at most {MAX_VALUE_CHARS} characters"
    if "\x00" in value:
        return "must not contain NUL characters"
    if kind == "secret" and not re.fullmatch(r"secret:[A-Za-z0-9/_.:-]{1,256}", value):
        return "must be a Juju secret URI such as secret:cu7fjf6qo2sc76nkn6hg"
    return None


class InvalidAppOptionsError(ValueError):
    """App options hold invalid values (or are themselves invalid); names each."""

    def __init__(self, problems: Mapping[str, str]):
        self.problems = dict(problems)
        listing = "; ".join(f"{name}: {why}" for name, why in sorted(self.problems.items()))
        super().__init__(f"invalid config: {listing}")


def read_secret(model: ops.Model, app: str, option: str, secret_id: str) -> dict[str, str]:
    """`FLASK_<OPTION>_<KEY>` for each key of the secret; StatusError (Blocked) if unusable."""
    content = operator_secret(model, app, option, secret_id)

    def unusable(why: str) -> StatusError:
        return StatusError(ops.BlockedStatus(f"{option}: secret {secret_id} must hold {why}"))

    if len(content) > MAX_SECRET_KEYS:
        raise unusable(f"at most {MAX_SECRET_KEYS} keys")
    env: dict[str, str] = {}
    for key, value in sorted(content.items()):
        name = f"{env_name(option)}_{key.upper().replace('-', '_')}"
        if len(key) > MAX_NAME_CHARS or not _ENV_NAME.fullmatch(name):
            raise unusable("keys of letters, digits and - only")  # Juju's own rule for keys
        if len(value) > MAX_VALUE_CHARS or "\x00" in value:
            raise unusable(f"values of at most {MAX_VALUE_CHARS} characters, without NUL")
        env[name] = env_value(value)
    return env


def secret_env(
    model: ops.Model, app: str, options: AppOptions, known: Mapping[str, Mapping[str, str]]
) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """Every secret option's variables, and what to remember of them (ids and names).

    `known` holds the variables each option gave when it named the same secret as now
    (`HookMemory.known_option_secrets`): those are not read again. A variable that another
    option (or the charm) also sets blocks, naming both.
    """
    env: dict[str, str] = {}
    remembered: dict[str, dict[str, Any]] = {}
    for option, secret_id in sorted(options.secrets.items()):
        own = dict(known.get(option) or read_secret(model, app, option, secret_id))
        for name in own:
            if name in env or name in options.env or name in RESERVED_NAMES:
                msg = f"{option}: a key of secret {secret_id} sets {name}, as another does"
                raise StatusError(ops.BlockedStatus(f"invalid config: {msg}"))
        env.update(own)
        remembered[option] = {"id": secret_id, "names": sorted(own)}
    return env, remembered


def listing(names: Iterable[str]) -> str:
    """Names for a status message, bounded: the first few and how many more."""
    names = list(names)
    shown = ", ".join(names[:MAX_LISTED])
    more = len(names) - MAX_LISTED
    return f"{shown} and {more} more" if more > 0 else shown


def missing_options_hint(app: str, specs: Iterable[OptionSpec], missing: Iterable[str]) -> str:
    """`juju config` hint for required options left unset."""
    kinds = {spec.name: spec.type for spec in specs}
    missing = list(missing)
    examples = " ".join(
        f"{name}={'secret:…' if kinds.get(name) == 'secret' else '…'}"
        for name in missing[:MAX_LISTED]
    )
    return f"missing required option(s) {listing(missing)}: juju config {app} {examples}"
