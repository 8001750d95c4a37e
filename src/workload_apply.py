"""Apply a computed `workload.FlaskApp` to the workload's Pebble, changing only what differs.

- The layer (the app, its workers, the log targets) differs from the plan → one add_layer and
  one replan, which restarts only the services whose definition changed.
- Only the Gunicorn config file differs → push it and SIGHUP the app: Gunicorn reloads its
  workers with the new settings, without a restart.
- Nothing differs → no write at all.

Then the app must answer HTTP (`app_health`). What the health probe learns (the app's last error
line while it crash-loops, when it last answered) stays in the charm's StoredState under the keys
it always had (`app_crash`, `app_verified`), so that an upgraded charm finds it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import ops

import app_health
import pebble_io
import workload
from pebble_reads import PebbleReads
from rock_service import RockService
from status import StatusError

if TYPE_CHECKING:
    from observability import Observability
    from workers import Workers

logger = logging.getLogger(__name__)

LAYER_LABEL = "flask-k8s"


class WorkloadApplier:
    """Writes the app's layer and Gunicorn config to Pebble, then checks the app serves."""

    def __init__(
        self,
        stored: ops.BoundStoredState,
        reads: PebbleReads,
        rock: RockService,
        observability: Observability,
        workers: Workers,
    ):
        self._stored = stored
        # The app's last error line while it keeps exiting (None once it answers HTTP): a crash
        # loop stays Blocked between its restarts, when Pebble briefly shows the service up.
        self._stored.set_default(app_crash=None)
        # When a hook last saw the app answer HTTP (`app_health.AppHealth.verified_at`).
        self._stored.set_default(app_verified=None)
        self._reads = reads
        self._rock = rock
        self._observability = observability
        self._workers = workers

    def apply(self, container: ops.Container, app: workload.FlaskApp) -> bool:
        """Change only what differs: layer → replan; config file alone → push and SIGHUP.

        Return whether the app was (re)started.

        Log targets alone only take a new layer: Pebble's log manager follows the plan, and a
        replan restarts only services whose definition changed.
        """
        plan = self._reads.plan(container).to_dict()
        log_targets = self._observability.log_targets(plan.get("log-targets") or {})
        background = self._workers.desired(container, app)
        layer = workload.pebble_layer(app, log_targets, background.services())
        app_changed = not workload.plan_has(plan, workload.pebble_layer(app, log_targets))
        layer_changed = not workload.plan_has(plan, layer)
        targets_changed = not workload.plan_has(plan, layer, workload.LOG_SECTIONS)
        conf = app.gunicorn_config()
        conf_changed = self._reads.pushed_config(container) != conf
        if conf_changed:  # never logged: it holds the secret key
            pebble_io.push(container, workload.CHARM_GUNICORN_CONFIG, conf, workload.DAEMON_UID)
            self._reads.config_pushed(conf)
        if layer_changed or targets_changed:
            container.add_layer(LAYER_LABEL, layer, combine=True)
            self._reads.layer_added()
        if app_changed:
            self._rock.rendered(app.command())
        # In backoff, Pebble restarts the app itself: a replan would only restart it sooner.
        current = container.get_service(workload.APP_SERVICE).current
        running = getattr(current, "value", current) in ("active", "backoff")
        restarts_app = app_changed or not running
        try:
            # Starts what is not running, restarts what changed (the app, or workers whose
            # environment changed): a replan for the workers alone leaves the app running.
            if restarts_app or layer_changed or self._workers.not_started(container, background):
                self._workers.replan(container, background)
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
        self._workers.stop_displaced(container, background)
        return restarts_app

    def check_health(self, container: ops.Container, app: workload.FlaskApp, started: bool):
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

    def sync_log_targets(self, container: ops.Container) -> None:
        """Apply the log targets alone, for when the app's layer cannot be computed."""
        if not container.can_connect():
            return
        try:
            plan = self._reads.plan(container).to_dict()
            targets = self._observability.log_targets(plan.get("log-targets") or {})
            layer = workload.log_targets_layer(targets)
            if not workload.plan_has(plan, layer, workload.LOG_SECTIONS):
                container.add_layer(LAYER_LABEL, layer, combine=True)
                self._reads.layer_added()
        except ops.pebble.ConnectionError:
            logger.info("Pebble went away before the log targets could be applied")
