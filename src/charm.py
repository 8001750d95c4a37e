#!/usr/bin/env python3
"""Kubernetes charm running any flask-framework rock: ops glue around `workload`.

Every state-changing event runs one idempotent `_reconcile()`: read (config, the rock's `flask`
service, secret key, ingress URL) → compute (`workload.FlaskApp`) → apply only what differs
(layer → one replan; Gunicorn config file only → push and SIGHUP; nothing → nothing). Status is
set only in collect-status, from what the reconcile found. pydantic (via `config`) is imported
inside the functions that read config, to keep hook start-up cheap.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

import ops

import integrations
import migrations
import observability
import pebble_io
import secret_key
import workload
from charms.flask_k8s.v0.ingress import IngressRequirer
from secret_key import SecretKeyError
from status import StatusError

if TYPE_CHECKING:
    from config import FlaskConfig  # pydantic: imported only when config is read

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
        self.ingress = IngressRequirer(self, "ingress", port=workload.APP_PORT, strip_prefix=True)
        self._status: ops.StatusBase | None = None
        self._config: FlaskConfig | None = None
        self._integrations: integrations.Found | None = None
        self.secret_key = secret_key.SecretKey(self)
        self.observability = observability.Observability(self)
        self.migrations = migrations.Migrations(self)
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

    def _on_state_changed(self, _: ops.EventBase) -> None:
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
        # An event that did not reconcile (an action, stop, …) still gets a true status.
        event.add_status(self._status or self._reconcile())

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
                "result": "secret key rotated; every unit restarts the app with it"
                + (" once flask-secret-key(-id) is unset" if overridden else "")
            }
        )

    def _on_run_migrations_action(self, event: ops.ActionEvent) -> None:
        container = self.unit.get_container(CONTAINER)
        try:
            report = self.migrations.run_action(container, self._desired_app(container))
        except StatusError as exc:
            event.fail(f"cannot run migrations: {exc.status.message}")
            return
        except migrations.MigrationActionError as exc:
            event.fail(str(exc))
            return
        event.set_results(report.results)
        if report.failure:
            event.fail(report.failure)
        self._reconcile()

    def _reconcile(self, upgrading: bool = False) -> ops.StatusBase:
        """Bring the workload and relation data to the desired state; return the status."""
        self.unit.set_ports(workload.APP_PORT)  # the app's port on the Kubernetes service
        self.ingress.publish()
        self.observability.publish()
        integrations.publish(self)
        if self.unit.is_leader():
            self.migrations.coordinate(self._migration_timeout())
        container = self.unit.get_container(CONTAINER)
        try:
            app = self._desired_app(container)
            # A new database (endpoint or name, not a password) is new code to migrate for.
            moved = integrations.identity_of(app.integration_env) != integrations.identity_of(
                _plan_env(container)
            )
            self.migrations.gate(container, app, upgrading=upgrading or moved)
            self._apply(container, app)
        except StatusError as exc:  # incl. secret key and migration waits
            self._status = exc.status
            self._sync_log_targets(container)  # logs still flow where the relations say
        except ops.pebble.ConnectionError:  # the workload container went away mid-hook
            self._status = ops.WaitingStatus(f"waiting for Pebble in the {CONTAINER} container")
        else:
            url = self.ingress.url
            waiting = self._integrations.status if self._integrations else None
            self._status = waiting or ops.ActiveStatus(f"serving at {url}" if url else "")
        return self._status

    def _desired_app(self, container: ops.Container) -> workload.FlaskApp:
        """Read every input and compute the app; raise StatusError saying what is missing."""
        from config import InvalidConfigError

        if not container.can_connect():
            msg = f"waiting for Pebble in the {CONTAINER} container"
            raise StatusError(ops.WaitingStatus(msg))
        rock_service = self._rock_service(container)
        try:
            cfg = self._load_config()
        except InvalidConfigError as exc:
            raise StatusError(ops.BlockedStatus(str(exc))) from None
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
        key = self.secret_key.get(cfg)
        base_url = self.ingress.url or (
            f"http://{self.app.name}.{self.model.name}:{workload.APP_PORT}"
        )
        self._integrations = integrations.collect(self, lambda: _plan_env(container))
        return workload.FlaskApp(
            rock_service, cfg, key, base_url, integration_env=self._integrations.env
        )

    def _migration_timeout(self) -> int:
        from config import DEFAULT_MIGRATION_TIMEOUT, InvalidConfigError

        try:
            return self._load_config().migration_timeout
        except InvalidConfigError:
            return DEFAULT_MIGRATION_TIMEOUT

    def _load_config(self) -> FlaskConfig:
        """The validated config, parsed once per hook (InvalidConfigError if it is invalid)."""
        from config import load

        if self._config is None:
            self._config = load(self.config)
        return self._config

    def _rock_service(self, container: ops.Container) -> dict[str, Any]:
        """Return the rock's `flask` service, read from the plan once per workload container."""
        service = container.get_plan().services.get(workload.APP_SERVICE)
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
        found: dict[str, Any] | None = dict(service.to_dict())
        if workload.CHARM_GUNICORN_CONFIG in service.command:
            # Our own command, but our memory of the rock's is gone: recover it from our file.
            found = workload.rock_service_from_config(self._pull(container) or "")
        if found is None:
            raise StatusError(ops.BlockedStatus("cannot recover the rock's flask command"))
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

    def _apply(self, container: ops.Container, app: workload.FlaskApp) -> None:
        """Change only what differs: layer → replan; config file alone → push and SIGHUP.

        Log targets alone only take a new layer: Pebble's log manager follows the plan, and a
        replan restarts only services whose definition changed.
        """
        plan = container.get_plan().to_dict()
        log_targets = self.observability.log_targets(plan.get("log-targets") or {})
        layer = workload.pebble_layer(app, log_targets)
        layer_changed = not workload.plan_has(plan, layer)
        targets_changed = not workload.plan_has(plan, layer, workload.LOG_SECTIONS)
        conf = app.gunicorn_config()
        conf_changed = self._pull(container) != conf
        if conf_changed:
            pebble_io.push(container, workload.CHARM_GUNICORN_CONFIG, conf, workload.DAEMON_UID)
        if layer_changed or targets_changed:
            container.add_layer(LAYER_LABEL, layer, combine=True)
        if layer_changed:
            self._stored.rendered_command = app.command()
        running = container.get_service(workload.APP_SERVICE).is_running()
        try:
            if layer_changed or not running:  # starts it, or restarts it if it changed
                pebble_io.replan(container)
            elif conf_changed:
                pebble_io.reload(container, workload.APP_SERVICE)
        except ops.pebble.ChangeError as exc:
            msg = f"the flask service failed to start ({exc.err}): see `pebble logs flask`"
            raise StatusError(ops.BlockedStatus(msg)) from None

    def _sync_log_targets(self, container: ops.Container) -> None:
        """Apply the log targets alone, for when the app's layer cannot be computed."""
        if not container.can_connect():
            return
        try:
            plan = container.get_plan().to_dict()
            targets = self.observability.log_targets(plan.get("log-targets") or {})
            layer = workload.log_targets_layer(targets)
            if not workload.plan_has(plan, layer, workload.LOG_SECTIONS):
                container.add_layer(LAYER_LABEL, layer, combine=True)
        except ops.pebble.ConnectionError:
            logger.info("Pebble went away before the log targets could be applied")

    @staticmethod
    def _pull(container: ops.Container) -> str | None:
        try:
            return container.pull(workload.CHARM_GUNICORN_CONFIG).read()
        except (ops.pebble.PathError, ops.pebble.APIError):
            return None


def _plan_env(container: ops.Container) -> dict[str, str]:
    """The environment the app runs with now (integrations not ready keep theirs)."""
    service = container.get_plan().services.get(workload.APP_SERVICE)
    return dict(service.environment) if service else {}


if __name__ == "__main__":  # pragma: nocover
    ops.main(FlaskCharm)
