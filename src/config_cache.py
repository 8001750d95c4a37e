"""The validated config, remembered so that a hook whose config did not change skips pydantic.

Importing pydantic (through `config`) costs more than importing ops, on every hook that reads
config. So the charm keeps, in its unit-local StoredState, a fingerprint of the raw config (and
of `config.py` itself, so that new validation rules in a new charm revision re-validate) next to
the values `config.load` produced from it. When the fingerprint matches, the values are served
from there without importing `config`; otherwise `config.load` validates and the entry is
replaced. `config.FlaskConfig` stays the only validator: every entry is its output. Invalid
config is not remembered (it is validated again on each hook, to report it).

The app options' declarations (`app_options`), parsed from the charm's packed config.yaml, are
kept the same way, by a hash of that file: they change only with the charm.

Nothing secret is written: a validated value equal to the raw value (a secret key, say) is
stored as a reference to its option and read back from the raw config on a hit; only values
validation changed ("" made unset, a scheme upper-cased, defaults) are stored as such.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

import ops

import app_options

if TYPE_CHECKING:
    from config import FlaskConfig

CONFIG_SOURCE = pathlib.Path(__file__).with_name("config.py")
APP_OPTIONS_SOURCE = pathlib.Path(__file__).with_name("app_options.py")
# FlaskConfig methods (no arguments) whose results the cache keeps alongside the fields.
DERIVED = ("gunicorn_settings",)


class InvalidConfigError(ValueError):
    """The raw config is invalid; the message (config.InvalidConfigError's) names each option.

    Raised in place of config's own error so that callers can catch it without importing
    pydantic.
    """


class CachedConfig:
    """A validated FlaskConfig rebuilt from the cache: its fields and its DERIVED methods."""

    def __init__(self, fields: Mapping[str, Any], derived: Mapping[str, Any]):
        self._fields = dict(fields)
        self._derived = dict(derived)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._fields:
            return self._fields[name]
        if name in self._derived:
            result = json.dumps(self._derived[name])
            return lambda: json.loads(result)  # a fresh copy per call, as a method would give
        raise AttributeError(name)


def fingerprint(raw: Mapping[str, Any]) -> str:
    """Identify the raw config and the rules that validate it."""
    digest = hashlib.sha256(CONFIG_SOURCE.read_bytes())
    digest.update(json.dumps(dict(raw), sort_keys=True).encode())
    return digest.hexdigest()


def to_entry(model: FlaskConfig, raw: Mapping[str, Any], config_id: str) -> dict[str, Any]:
    """The cache entry for a validated model: values equal to the raw ones by reference."""
    fields: dict[str, Any] = {}
    for name, field in type(model).model_fields.items():
        option = field.alias or name
        value = getattr(model, name)
        given = raw.get(option, _MISSING)
        if type(given) is type(value) and given == value:
            fields[name] = {"option": option}
        else:
            fields[name] = {"value": value}
    derived = {method: getattr(model, method)() for method in DERIVED}
    return {"fingerprint": config_id, "fields": fields, "derived": derived}


def from_entry(
    entry: Mapping[str, Any] | None, raw: Mapping[str, Any], config_id: str
) -> CachedConfig | None:
    """The cached values for this fingerprint, or None on a miss."""
    if not entry or entry.get("fingerprint") != config_id:
        return None
    fields = {}
    for name, stored in entry["fields"].items():
        fields[name] = raw[stored["option"]] if "option" in stored else stored["value"]
    return CachedConfig(fields, entry["derived"])


_MISSING = object()


class ConfigCache(ops.Object):
    """Serve the validated config, validating (with pydantic) only when the raw config changed."""

    _stored = ops.StoredState()

    def __init__(self, charm: ops.CharmBase):
        super().__init__(charm, "config-cache")
        self._charm = charm
        self._stored.set_default(entry=None)  # JSON of the last valid config's entry
        self._stored.set_default(specs=None)  # JSON: {"id": config.yaml hash, "specs": [...]}
        self._fingerprint: str | None = None

    def fingerprint(self) -> str:
        """This hook's raw config fingerprint (one config-get per hook, cached by ops)."""
        if self._fingerprint is None:
            self._fingerprint = fingerprint(self._charm.config)
        return self._fingerprint

    def load(self) -> FlaskConfig:
        """The validated config; raise InvalidConfigError if it is invalid."""
        raw = dict(self._charm.config)
        config_id = self.fingerprint()
        stored = self._stored.entry
        cached = from_entry(json.loads(stored) if stored else None, raw, config_id)
        if cached is not None:
            # Read like a FlaskConfig (attributes and DERIVED methods), which is all we use.
            return cast("FlaskConfig", cached)
        import config  # pydantic: only when the raw config changed

        try:
            model = config.load(raw)
        except config.InvalidConfigError as exc:
            raise InvalidConfigError(str(exc)) from None
        self._stored.entry = json.dumps(to_entry(model, raw, config_id), sort_keys=True)
        return model

    def option_specs(self) -> list[app_options.OptionSpec]:
        """The app options charmcraft.yaml declares, parsed once per charm revision."""
        path = pathlib.Path(self._charm.charm_dir) / "config.yaml"
        try:
            text = path.read_text()
        except OSError:  # a charm without options
            return []
        source_id = hashlib.sha256(text.encode() + APP_OPTIONS_SOURCE.read_bytes()).hexdigest()
        stored = json.loads(self._stored.specs) if self._stored.specs else None
        if stored is None or stored.get("id") != source_id:
            oauth = app_options.oauth_endpoints(self._charm.meta)
            stored = {"id": source_id, "specs": app_options.parse_specs(text, oauth)}
            self._stored.specs = json.dumps(stored, sort_keys=True)
        return app_options.specs_from(stored["specs"])
