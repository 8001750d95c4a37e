"""The charm's side of the background services (`background`): rock, placement, health.

- The rock's own background services are read once per workload container from the rock's
  layer files in the image (the plan may hold the charm's definitions by then), and remembered.
- Placement: the leader keeps the peer relation's `scheduler-unit` as `background` argues; a
  unit leaving (its own relation-departed, or stop) runs no scheduler from then on.
- Health: what Pebble shows of the services that must run, remembered between hooks so that a
  service down at two looks in a row (or failing at start) is Blocked.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import ops

import app_health
import background
import pebble_io
import workload
from secret_key import PEER
from status import StatusError

logger = logging.getLogger(__name__)

CONTAINER = "flask-app"


class Workers(ops.Object):
    """Run the rock's `*-worker` and `*-scheduler` services (see `background`)."""

    _stored = ops.StoredState()

    def __init__(self, charm: ops.CharmBase):
        super().__init__(charm, "workers")
        self._charm = charm
        # `rock`: the rock's background services (JSON), learned once per workload container;
        # `down`: the services found down at the last look; `removed`: this unit saw itself
        # depart the peer relation (it is being removed, for good).
        self._stored.set_default(rock=None, down=[], removed=False)
        self._stopping = False  # the pod is going away (stop): perhaps only to come back
        self._departed: str | None = None  # a peer leaving in this hook
        self._failed_at_start: set[str] = set()
        self._services: background.BackgroundServices | None = None  # this hook's
        on = charm.on
        # Created before the charm observes these events, so these handlers run first.
        self.framework.observe(on[PEER].relation_departed, self._on_peer_departed)
        self.framework.observe(on[CONTAINER].pebble_ready, self._on_pebble_ready)
        self.framework.observe(on.stop, self._on_stop)

    def _on_peer_departed(self, event: ops.RelationDepartedEvent) -> None:
        departing = event.departing_unit
        if departing is not None:
            self._departed = departing.name
            if departing.name == self._charm.unit.name:
                self._stored.removed = True

    def _on_pebble_ready(self, _: ops.PebbleReadyEvent) -> None:
        self._stored.rock = None  # a new container, maybe from a new image

    def _on_stop(self, _: ops.StopEvent) -> None:
        # The pod is going away: hand the schedulers over now, not when Kubernetes kills it.
        self._stopping = True
        container = self._charm.unit.get_container(CONTAINER)
        if not container.can_connect():
            return
        try:
            running = [
                name
                for name, state in _states(container).items()
                if background.is_scheduler(name) and state in background.UP_OR_RESTARTING
            ]
            if running:
                pebble_io.stop(container, running)
        except ops.pebble.Error as exc:
            logger.info("could not stop the schedulers: %s", exc)

    @property
    def _leaving(self) -> bool:
        """Whether this unit must hand the schedulers over (it is being removed or stopped)."""
        return bool(self._stored.removed) or self._stopping

    # -- what must run -----------------------------------------------------------------------

    def desired(
        self, container: ops.Container, app: workload.FlaskApp
    ) -> background.BackgroundServices:
        """This unit's background services, with the app's whole environment."""
        rock = self._rock_services(container)
        here = any(background.is_scheduler(name) for name in rock) and self._runs_schedulers()
        services = background.BackgroundServices(rock, app.environment(), here, app.rock_service)
        self._services = services
        return services

    def _rock_services(self, container: ops.Container) -> dict[str, Any]:
        if self._stored.rock is not None:
            return json.loads(self._stored.rock)
        layers = pebble_io.read_rock_layers(
            container, workload.ROCK_LAYERS_DIR, workload.DAEMON_UID
        )
        if layers:
            found = background.services_from_layers(layers)
        else:  # no trustworthy layer files: the plan's services, less their environment
            plan = container.get_plan().services
            found = background.services_from_plan({n: s.to_dict() for n, s in plan.items()})
        if found:
            logger.info("the rock's background services: %s", ", ".join(sorted(found)))
        self._stored.rock = json.dumps(found, sort_keys=True)
        return found

    def publish(self) -> None:
        """Leader: keep a unit named for the schedulers, whatever state its own workload is in.

        Only once the rock is known to have schedulers (learned from this unit's container).
        """
        rock = self._stored.rock
        if rock is None or not any(background.is_scheduler(name) for name in json.loads(rock)):
            return
        if self._charm.unit.is_leader():
            self._named()

    def _runs_schedulers(self) -> bool:
        """Whether this unit is the one named to run the schedulers, and not leaving."""
        return self._named() == self._charm.unit.name and not self._leaving

    def _named(self) -> str | None:
        """The unit named for the schedulers; the leader (re)names one first if needed."""
        peer = self._charm.model.get_relation(PEER)
        if peer is None:
            return None
        unit, app_data = self._charm.unit, peer.data[self._charm.app]
        named = app_data.get(background.SCHEDULER_UNIT_KEY) or None
        if unit.is_leader():
            present = {other.name for other in peer.units} | {unit.name}
            present -= {self._departed} if self._departed else set()
            present -= {unit.name} if self._leaving else set()
            chosen = background.choose_scheduler_unit(named, present)
            if chosen != named:
                logger.info("the schedulers run on %s (was %s)", chosen, named)
                app_data[background.SCHEDULER_UNIT_KEY] = chosen or ""
            named = chosen
        return named

    # -- applying -----------------------------------------------------------------------------

    def not_started(
        self, container: ops.Container, services: background.BackgroundServices
    ) -> tuple[str, ...]:
        """Services that must run but Pebble neither runs nor restarts (a replan starts them)."""
        if not services.rock_services:
            return ()
        return services.not_started(_states(container))

    def replan(self, container: ops.Container, services: background.BackgroundServices) -> None:
        """Replan; a background service that exits at start is judged by `check`, not raised.

        Pebble starts every service of a replan, each on its own: one failing does not stop
        the others (the app included), and Pebble keeps restarting it.
        """
        try:
            pebble_io.replan(container)
        except ops.pebble.ChangeError as exc:
            failed = background.failed_to_start(exc.err)
            if not failed or not failed <= set(services.rock_services):
                raise
            logger.warning("background services exited at start: %s", ", ".join(sorted(failed)))
            self._failed_at_start = failed

    def stop_displaced(
        self, container: ops.Container, services: background.BackgroundServices
    ) -> None:
        """Stop the schedulers this unit runs although another unit runs them now."""
        if not services.has_schedulers:
            return
        displaced = services.displaced(_states(container))
        if displaced:
            pebble_io.stop(container, displaced)

    def check(self, container: ops.Container) -> None:
        """Raise StatusError while a background service that must run is down."""
        services = self._services
        if services is None or (not services.enabled() and not self._stored.down):
            return
        states = _states(container)
        status, down = background.assess(
            states,
            services.enabled(),
            self._stored.down,
            self._failed_at_start,
            lambda name: background.error_line(app_health.read_log_lines(container, name)),
        )
        self._stored.down = list(down)
        if status is not None:
            raise StatusError(status)


def _states(container: ops.Container) -> dict[str, str]:
    """Each service's current Pebble state (`backoff` included, which ops has no enum for)."""
    return {
        name: str(getattr(info.current, "value", info.current))
        for name, info in container.get_services().items()
    }
