"""The charm's config and the app's own options, checked together into what the app needs.

One place decides whether the operator's configuration is usable, so the Blocked message names
every problem at once: each invalid charm option (`config`, via `config_cache`), each invalid
app option or option declaration (`app_options`); only when all are valid, each required app
option left unset and each required relation missing (`required_relations`). Whatever is
wrong, nothing is applied: an app already running keeps serving as it was.

The secret app options' values come from Juju secrets: they are read only when the plan and
the Gunicorn config file do not already show the same secrets applied (`hook_memory`), since
each read is a secret-get.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ops

import app_options
import config_cache
import integrations
import required_relations
import workload
from status import StatusError

if TYPE_CHECKING:
    from config import FlaskConfig  # pydantic: imported only when config is read
    from hook_memory import HookMemory
    from pebble_reads import PebbleReads


class ConfigLoader:
    """Loads and checks the config and app options once per hook; StatusError if unusable."""

    def __init__(
        self,
        charm: ops.CharmBase,
        cache: config_cache.ConfigCache,
        related: integrations.RelatedEndpoints,
        memory: HookMemory,
        reads: PebbleReads,
    ):
        self._charm = charm
        self._cache = cache
        self._related = related
        self._memory = memory
        self._reads = reads
        self._config: FlaskConfig | None = None
        # {option: {"id": secret id, "names": [...]}} of the secret app options applied now.
        self.option_secrets: dict[str, dict[str, Any]] = {}

    def load(self) -> tuple[FlaskConfig, app_options.AppOptions]:
        """The charm's config and the app options, checked; StatusError (Blocked) if unusable.

        Every invalid option is named at once; then every required option and relation that
        is missing. Either way the app is not (re)configured: a running one keeps serving.
        """
        problems: list[str] = []
        cfg = None
        try:
            cfg = self._load_config()
        except config_cache.InvalidConfigError as exc:
            problems.append(str(exc).removeprefix("invalid config: "))
        specs = self._cache.option_specs()
        bad = app_options.check_specs(specs, workload.RESERVED_NAMES)
        options = app_options.AppOptions({}, {}, ())
        try:
            options = app_options.check_values(
                [s for s in specs if s.name not in bad], self._charm.config
            )
        except app_options.InvalidAppOptionsError as exc:
            bad.update(exc.problems)
        problems += [f"{name}: {why}" for name, why in sorted(bad.items())]
        if problems or cfg is None:
            raise StatusError(ops.BlockedStatus(f"invalid config: {'; '.join(problems)}"))
        missing = []
        app_name = self._charm.app.name
        if options.missing:
            missing.append(app_options.missing_options_hint(app_name, specs, options.missing))
        relations = required_relations.missing(
            self._charm, self._related.names(), integrations.REGISTRY
        )
        if relations:
            missing.append(required_relations.hint(self._charm, relations))
        if missing:
            raise StatusError(ops.BlockedStatus("; ".join(missing)))
        return cfg, options

    def secret_options_env(
        self, container: ops.Container, options: app_options.AppOptions
    ) -> dict[str, str]:
        """The secret app options' variables: read from Juju only when they may have changed."""
        known = None
        if options.secrets:
            plan, conf = self._reads.plan(container), self._reads.pushed_config(container)
            known = self._memory.known_option_secrets(options.secrets, plan, conf)
        env, self.option_secrets = app_options.secret_env(
            self._charm.model, self._charm.app.name, options, known or {}
        )
        return env

    def _load_config(self) -> FlaskConfig:
        """The validated config, parsed once per hook (InvalidConfigError if it is invalid)."""
        if self._config is None:
            self._config = self._cache.load()  # pydantic only if the raw config changed
        return self._config
