#!/usr/bin/env python3
"""Kubernetes charm running any flask-framework rock: ops glue around `workload`.

Every state-changing event runs one idempotent `_reconcile()`: read (config and the app's own
options, required relations, the rock's `flask` service, secret key, ingress URL, peers, proxy)
→ compute (`workload.FlaskApp`) → apply only what differs (layer → one replan; Gunicorn config
file only → push and SIGHUP; nothing → nothing). Status is set only in collect-status, from
what the reconcile found, and only when it changed. Hooks that find all as the last Active
reconcile left it (update-status, config-changed with the same config) only check Pebble: see
`hook_memory`. pydantic (via `config`) is imported only when the raw config changed
(`config_cache`), to keep hook start-up cheap.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from typing import TYPE_CHECKING, Any

import ops

import app_health
import app_options
import config_cache
import hook_memory
import integrations
import observability
import pebble_io
import required_relations
import secret_key
import workers
import workload
from charms.flask_k8s.v0.ingress import IngressRequirer
from secret_key import SecretKeyError
from status import StatusError

if TYPE_CHECKING:
    from config import FlaskConfig  # pydantic: imported only when config is read
    from migrations import Migrations

logger = logging.getLogger(__name__)

CONTAINER = "flask-app"
LAYER_LABEL = "flask-k8s"


class FlaskCharm(ops.CharmBase):
    """Run a flask-framework rock, configured from charm config and relations."""

    _stored = ops.StoredState()

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        # The rock's own `flask` service (JSON) and whether its Python has gevent, both learned
        # once per workload container; `rendered_command` tells our command from the rock's.
        self._stored.set_default(rock_service=None, rendered_command=None, has_gevent=None)
        # The app's last error line while it keeps exiting (None once it answers HTTP): a crash
        # loop stays Blocked between its restarts, when Pebble briefly shows the service up.
        self._stored.set_default(app_crash=None)
        # When a hook last saw the app answer HTTP (`app_health.AppHealth.verified_at`).
        self._stored.set_default(app_verified=None)
        self.ingress = IngressRequirer(self, "ingress", port=workload.APP_PORT, strip_prefix=True)
        self._status: ops.StatusBase | None = None
        self._config: FlaskConfig | None = None
        self._quiet = False  # this hook found all as left: it changes and sets nothing
        self._key_source: str | None = None
        # {option: {"id": secret id, "names": [...]}} of the secret app options applied now.
        self._option_secrets: dict[str, dict[str, Any]] = {}
        self.config_cache = config_cache.ConfigCache(self)
        self.memory = hook_memory.HookMemory(self)
        self._integrations: integrations.Found | None = None
        # Read from Pebble once per hook (each read is an API call): the plan until our own
        # add_layer changes it, the Gunicorn config file we pushed until we push it again.
        self._plan_now: ops.pebble.Plan | None = None
        self._conf_now: str | None = None
        self._conf_known = False
        # Before the observers below: a relation-created or -broken updates it first.
        self.related_endpoints = integrations.RelatedEndpoints(self)
        self.secret_key = secret_key.SecretKey(self)
        self.workers = workers.Workers(self)  # `*-worker`/`*-scheduler` services: background
        self.observability = observability.Observability(self)
        on = self.on
        for event in (
            on.install,
            on.start,
            on.config_changed,
            on.update_status,
            on.secret_changed,
            on[secret_key.PEER].relation_created,
            on[secret_key.PEER].relation_changed,
            on[secret_key.PEER].relation_departed,
            on["ingress"].relation_joined,
            on["ingress"].relation_changed,
            on["ingress"].relation_departed,
            on["ingress"].relation_broken,
            on[observability.METRICS_RELATION].relation_joined,
            on[observability.METRICS_RELATION].relation_changed,
            on[observability.LOGGING_RELATION].relation_joined,
            on[observability.LOGGING_RELATION].relation_changed,
            on[observability.LOGGING_RELATION].relation_departed,
            on[observability.LOGGING_RELATION].relation_broken,
            on[CONTAINER].pebble_check_failed,
            on[CONTAINER].pebble_check_recovered,
            *integrations.events(on),  # databases and the like: src/integrations/
        ):
            framework.observe(event, self._on_state_changed)
        # Grafana re-reads dashboards only when told to (a new `uuid`): these events re-send.
        for event in (
            on.upgrade_charm,
            on.leader_elected,
            on[observability.DASHBOARD_RELATION].relation_created,
        ):
            framework.observe(event, self._on_dashboards_stale)
        framework.observe(on[CONTAINER].pebble_ready, self._on_pebble_ready)
        framework.observe(on.secret_remove, self._on_secret_remove)
        framework.observe(on.collect_unit_status, self._on_collect_unit_status)
        framework.observe(on.rotate_secret_key_action, self._on_rotate_secret_key_action)
        framework.observe(on.run_migrations_action, self._on_run_migrations_action)

    @functools.cached_property
    def migrations(self) -> Migrations:
        """The migrations coordinator, imported on first use: a quiet hook needs none."""
        from migrations import Migrations

        return Migrations(self)

    def _on_state_changed(self, event: ops.EventBase) -> None:
        if isinstance(event, ops.UpdateStatusEvent):
            self.ingress.publish(app=False)  # a moved pod's address still reaches ingress
            self._quiet = self.memory.steady(self.unit.get_container(CONTAINER), None)
        elif isinstance(event, ops.ConfigChangedEvent):
            config_id = self.config_cache.fingerprint()
            self._quiet = self.memory.steady(self.unit.get_container(CONTAINER), config_id)
        if not self._quiet:
            self._reconcile()

    def _on_dashboards_stale(self, event: ops.EventBase) -> None:
        self.observability.refresh_dashboards()
        # upgrade-charm also means new code: it may need its migration (see `migrations`).
        self._reconcile(upgrading=isinstance(event, ops.UpgradeCharmEvent))

    def _on_pebble_ready(self, _: ops.PebbleReadyEvent) -> None:
        # A (re)started workload container, possibly from a new image: check gevent again.
        self._stored.has_gevent = None
        self._reconcile()

    def _on_secret_remove(self, event: ops.SecretRemoveEvent) -> None:
        # After a rotation, drop the revision no unit tracks any more.
        event.secret.remove_revision(event.revision)

    def _on_collect_unit_status(self, event: ops.CollectStatusEvent) -> None:
        if self._quiet:
            return  # all as left: Juju keeps showing the status we set then
        # An event that did not reconcile (an action, stop, …) still gets a true status.
        status = self._status or self._reconcile()
        if self.memory.status_is_new(status):  # Juju keeps a status between hooks
            event.add_status(status)

    def _on_rotate_secret_key_action(self, event: ops.ActionEvent) -> None:
        if not self.unit.is_leader():
            event.fail(
                "only the leader unit can rotate the secret key; run it on the leader unit: "
                f"juju run {self.app.name}/leader rotate-secret-key"
            )
            return
        try:
            self.secret_key.rotate()
        except SecretKeyError as exc:
            event.fail(exc.status.message)
            return
        self._reconcile()
        overridden = self.config.get("flask-secret-key") or self.config.get("flask-secret-key-id")
        event.set_results(
            {
                "result": "secret key rotated; every unit reloads the app with it"
                + (" once flask-secret-key(-id) is unset" if overridden else "")
            }
        )

    def _on_run_migrations_action(self, event: ops.ActionEvent) -> None:
        from migrations import MigrationActionError

        container = self.unit.get_container(CONTAINER)
        try:
            report = self.migrations.run_action(container, self._desired_app(container))
        except StatusError as exc:
            event.fail(f"cannot run migrations: {exc.status.message}")
            return
        except MigrationActionError as exc:
            event.fail(str(exc))
            return
        event.set_results(report.results)
        if report.failure:
            event.fail(report.failure)
        self._reconcile()

    def _reconcile(self, upgrading: bool = False) -> ops.StatusBase:
        """Bring the workload and relation data to the desired state; return the status."""
        self.memory.open_port(workload.APP_PORT)  # the app's port on the Kubernetes service
        self.ingress.publish()
        self.observability.publish()
        integrations.publish(self, self.related_endpoints.names())
        self.workers.publish()  # the leader names the unit for the schedulers
        container = self.unit.get_container(CONTAINER)
        bad_data = (
            self.secret_key.audit_peer_data()
            + self.ingress.problems()
            + self.observability.problems()
        )
        try:
            self.migrations.coordinate(container)  # every hook: the leader arbitrates
            app = self._desired_app(container)
            # A new database (endpoint or name, not a password) is new code to migrate for.
            moved = integrations.identity_of(app.integration_env) != integrations.identity_of(
                _plan_env(self._plan(container))
            )
            self.migrations.gate(container, app, upgrading=upgrading or moved)
            started = self._apply(container, app)
            self._check_health(container, app, started)
            self.workers.check(container)  # the app serves: are its workers up?
        except StatusError as exc:  # incl. secret key and migration waits
            self._status = exc.status
            self._sync_log_targets(container)  # logs still flow where the relations say
        except ops.pebble.ConnectionError:  # the workload container went away mid-hook
            self._status = ops.WaitingStatus(f"waiting for Pebble in the {CONTAINER} container")
        else:
            url = self.ingress.url
            waiting = self._integrations.status if self._integrations else None
            self._status = waiting or ops.ActiveStatus(f"serving at {url}" if url else "")
        if bad_data:  # a relation does not work: the operator must act on the other side
            listing = f"ignoring {'; '.join(bad_data)} (see juju debug-log)"
            if isinstance(self._status, ops.ActiveStatus):
                self._status = ops.BlockedStatus(listing)
            else:
                self._status = type(self._status)(f"{self._status.message}; {listing}")
        active = isinstance(self._status, ops.ActiveStatus)
        config_id = self.config_cache.fingerprint() if active else None
        self.memory.record(
            container,
            self._status,
            config_id,
            self._key_source,
            self._option_secrets,
            plan=self._plan_now,
        )
        return self._status

    def _desired_app(self, container: ops.Container) -> workload.FlaskApp:
        """Read every input and compute the app; raise StatusError saying what is missing."""
        if not container.can_connect():
            msg = f"waiting for Pebble in the {CONTAINER} container"
            raise StatusError(ops.WaitingStatus(msg))
        rock_service = self._rock_service(container)
        cfg, options = self._load_all_config()
        try:
            rock = workload.RockCommand.parse(rock_service.get("command", ""))
        except workload.CommandError as exc:
            raise StatusError(ops.BlockedStatus(str(exc))) from None
        if not rock.runs_gunicorn and (cfg.worker_type or cfg.gunicorn_settings()):
            raise StatusError(
                ops.BlockedStatus(
                    "worker-type and webserver-* need Gunicorn, but the rock's flask command "
                    "does not run it: reset them (juju config <app> --reset <option>)"
                )
            )
        if cfg.worker_type == "gevent" and rock.default_worker != "gevent":
            self._check_gevent(container, rock, rock_service.get("user"))
        # The key already in the plan when its source is unchanged: no secret-get.
        source = self.secret_key.source(cfg)
        known = self.memory.known_key(source, self._plan(container), self._pull(container))
        key = known or self.secret_key.get(cfg)
        self._key_source = self.secret_key.source(cfg)  # a key generated just now has one
        base_url = self.ingress.url or (
            f"http://{self.app.name}.{self.model.name}:{workload.APP_PORT}"
        )
        self._integrations = integrations.collect(
            self, lambda: _plan_env(self._plan(container)), self.related_endpoints.names()
        )
        peer = self.model.get_relation(secret_key.PEER)
        units = [self.unit.name, *(unit.name for unit in (peer.units if peer else ()))]
        return workload.FlaskApp(
            rock_service,
            cfg,
            key,
            base_url,
            integration_env=self._integrations.env,
            app_env={**options.env, **self._secret_options_env(container, options)},
            peer_fqdns=workload.peer_fqdns(self.app.name, self.model.name, units),
            proxy_env=workload.proxy_environment(os.environ),
        )

    def _load_all_config(self) -> tuple[FlaskConfig, app_options.AppOptions]:
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
        specs = self.config_cache.option_specs()
        bad = app_options.check_specs(specs, workload.RESERVED_NAMES)
        options = app_options.AppOptions({}, {}, ())
        try:
            options = app_options.check_values(
                [s for s in specs if s.name not in bad], self.config
            )
        except app_options.InvalidAppOptionsError as exc:
            bad.update(exc.problems)
        problems += [f"{name}: {why}" for name, why in sorted(bad.items())]
        if problems or cfg is None:
            raise StatusError(ops.BlockedStatus(f"invalid config: {'; '.join(problems)}"))
        missing = []
        if options.missing:
            missing.append(app_options.missing_options_hint(self.app.name, specs, options.missing))
        relations = required_relations.missing(
            self, self.related_endpoints.names(), integrations.REGISTRY
        )
        if relations:
            missing.append(required_relations.hint(self, relations))
        if missing:
            raise StatusError(ops.BlockedStatus("; ".join(missing)))
        return cfg, options

    def _secret_options_env(
        self, container: ops.Container, options: app_options.AppOptions
    ) -> dict[str, str]:
        """The secret app options' variables: read from Juju only when they may have changed."""
        known = None
        if options.secrets:
            plan, conf = self._plan(container), self._pull(container)
            known = self.memory.known_option_secrets(options.secrets, plan, conf)
        env, self._option_secrets = app_options.secret_env(
            self.model, self.app.name, options, known or {}
        )
        return env

    def _load_config(self) -> FlaskConfig:
        """The validated config, parsed once per hook (InvalidConfigError if it is invalid)."""
        if self._config is None:
            self._config = self.config_cache.load()  # pydantic only if the raw config changed
        return self._config

    def _rock_service(self, container: ops.Container) -> dict[str, Any]:
        """Return the rock's `flask` service, read from the plan once per workload container."""
        service = self._plan(container).services.get(workload.APP_SERVICE)
        if service is None:
            raise StatusError(
                ops.BlockedStatus(
                    f"the {CONTAINER} image has no `flask` Pebble service: use a rock built "
                    "with Rockcraft's flask-framework extension"
                )
            )
        stored = self._stored.rock_service
        if stored is not None and service.command == self._stored.rendered_command:
            return json.loads(stored)
        found: dict[str, Any] = dict(service.to_dict())
        if workload.CHARM_GUNICORN_CONFIG in service.command:
            # Our own command, but our memory of the rock's is gone: re-derive it from the
            # rock's layer files in the image, never from a file the app can write.
            layers = pebble_io.read_rock_layers(
                container, workload.ROCK_LAYERS_DIR, workload.DAEMON_UID
            )
            try:
                found = workload.rock_service_from_layers(layers)
            except workload.RockLayerError as exc:
                msg = f"cannot recover the rock's flask service: {exc}"
                raise StatusError(ops.BlockedStatus(msg)) from None
        found_json = json.dumps(found, sort_keys=True)
        if found_json != stored:
            logger.info("rock's flask command: %s", found.get("command"))
            self._stored.rock_service = found_json
            self._stored.has_gevent = None
        return found

    def _check_gevent(
        self, container: ops.Container, rock: workload.RockCommand, user: str | None
    ) -> None:
        """Block unless the rock's Python can import gevent (checked once per container)."""
        if self._stored.has_gevent is None:
            argv = [rock.interpreter, "-c", "import gevent"]
            try:
                self._stored.has_gevent = pebble_io.run(
                    container, argv, user=user, working_dir=workload.APP_DIR
                )
            except (ops.pebble.Error, TimeoutError) as exc:
                msg = f"could not check whether the rock has gevent ({exc}); retrying"
                raise StatusError(ops.WaitingStatus(msg)) from None
        if not self._stored.has_gevent:
            raise StatusError(
                ops.BlockedStatus(
                    "worker-type=gevent but the rock has no gevent: add gevent to the rock's "
                    "requirements.txt and rebuild it, or set worker-type to sync or gthread"
                )
            )

    def _apply(self, container: ops.Container, app: workload.FlaskApp) -> bool:
        """Change only what differs: layer → replan; config file alone → push and SIGHUP.

        Return whether the app was (re)started.

        Log targets alone only take a new layer: Pebble's log manager follows the plan, and a
        replan restarts only services whose definition changed.
        """
        plan = self._plan(container).to_dict()
        log_targets = self.observability.log_targets(plan.get("log-targets") or {})
        background = self.workers.desired(container, app)
        layer = workload.pebble_layer(app, log_targets, background.services())
        app_changed = not workload.plan_has(plan, workload.pebble_layer(app, log_targets))
        layer_changed = not workload.plan_has(plan, layer)
        targets_changed = not workload.plan_has(plan, layer, workload.LOG_SECTIONS)
        conf = app.gunicorn_config()
        conf_changed = self._pull(container) != conf
        if conf_changed:  # never logged: it holds the secret key
            pebble_io.push(container, workload.CHARM_GUNICORN_CONFIG, conf, workload.DAEMON_UID)
            self._conf_now, self._conf_known = conf, True
        if layer_changed or targets_changed:
            container.add_layer(LAYER_LABEL, layer, combine=True)
            self._plan_now = None
        if app_changed:
            self._stored.rendered_command = app.command()
        # In backoff, Pebble restarts the app itself: a replan would only restart it sooner.
        current = container.get_service(workload.APP_SERVICE).current
        running = getattr(current, "value", current) in ("active", "backoff")
        restarts_app = app_changed or not running
        try:
            # Starts what is not running, restarts what changed (the app, or workers whose
            # environment changed): a replan for the workers alone leaves the app running.
            if restarts_app or layer_changed or self.workers.not_started(container, background):
                self.workers.replan(container, background)
            if conf_changed and not restarts_app:
                pebble_io.reload(container, workload.APP_SERVICE)
        except ops.pebble.ChangeError as exc:  # it exited within Pebble's okay-delay
            if app_health.pebble_is_stopping_it(exc.err):  # on-check-failure: not a crash
                raise StatusError(app_health.restarting_status(workload.APP_PORT)) from None
            health = self._health(container, app)
            status = health.crashed(exc.err.splitlines())
            self._stored.app_crash = health.crash
            self._stored.app_verified = None
            raise StatusError(status) from None
        self.workers.stop_displaced(container, background)
        return restarts_app

    def _check_health(self, container: ops.Container, app: workload.FlaskApp, started: bool):
        """Raise StatusError unless the app answers HTTP (see `app_health`)."""
        health = self._health(container, app)
        problem = health.assess(started)
        self._stored.app_crash = health.crash
        self._stored.app_verified = health.verified_at
        if problem is not None:
            raise StatusError(problem)

    def _health(self, container: ops.Container, app: workload.FlaskApp) -> app_health.AppHealth:
        return app_health.AppHealth(
            container,
            app.rock_command.interpreter,
            app.rock_service.get("user"),
            crash=self._stored.app_crash,
            verified_at=self._stored.app_verified,
            service=workload.APP_SERVICE,
            check_name=workload.APP_CHECK,
            port=workload.APP_PORT,
        )

    def _sync_log_targets(self, container: ops.Container) -> None:
        """Apply the log targets alone, for when the app's layer cannot be computed."""
        if not container.can_connect():
            return
        try:
            plan = self._plan(container).to_dict()
            targets = self.observability.log_targets(plan.get("log-targets") or {})
            layer = workload.log_targets_layer(targets)
            if not workload.plan_has(plan, layer, workload.LOG_SECTIONS):
                container.add_layer(LAYER_LABEL, layer, combine=True)
                self._plan_now = None
        except ops.pebble.ConnectionError:
            logger.info("Pebble went away before the log targets could be applied")

    def _plan(self, container: ops.Container) -> ops.pebble.Plan:
        """The workload's Pebble plan, read once per hook until our add_layer changes it."""
        if self._plan_now is None:
            self._plan_now = container.get_plan()
        return self._plan_now

    def _pull(self, container: ops.Container) -> str | None:
        """The Gunicorn config file we pushed (`pebble_io.pushed_content`), read once per hook."""
        if not self._conf_known:
            self._conf_now = pebble_io.pushed_content(
                container, workload.CHARM_GUNICORN_CONFIG, workload.DAEMON_UID
            )
            self._conf_known = True
        return self._conf_now


def _plan_env(plan: ops.pebble.Plan) -> dict[str, str]:
    """The environment the app runs with now (integrations not ready keep theirs)."""
    service = plan.services.get(workload.APP_SERVICE)
    return dict(service.environment) if service else {}


if __name__ == "__main__":  # pragma: nocover
    ops.main(FlaskCharm)
