"""Background services: the rock's `*-worker` and `*-scheduler` Pebble services, run by the charm.

Pure: nothing here talks to Juju or Pebble (`workers.py` is the glue).

A rock declares its background processes as Pebble services, and their names say where they run
(case-insensitive, as paas-charm matches them):
- `<name>-worker` runs on every unit (a Celery worker, a queue consumer);
- `<name>-scheduler` runs on exactly one unit at a time (Celery beat, a cron-like loop): two of
  them would enqueue every periodic job twice.

The charm replaces each with the rock's own definition (command, user, …) plus the app's whole
environment (`FlaskApp.environment()`: the rock's, the integrations', FLASK_*, the secret key),
`working-dir` /flask/app unless the rock sets one, and `startup: enabled`, or `disabled` for a
scheduler on any unit but the chosen one. A definition changes only when that environment (or
the rock) does, and Pebble's replan restarts exactly the services whose definition changed:
workers restart when the app's environment changes, and at no other time. (Replan does not stop
a running service that became `disabled`: the charm stops a displaced scheduler itself.)

## Which unit runs the schedulers

The leader names one unit in the peer relation's application data (`SCHEDULER_UNIT_KEY`); a unit
runs the schedulers iff it is the unit named there and it is not leaving (`choose_scheduler_unit`
is the leader's rule: keep the named unit while it is in the peer relation, else name the
lowest-numbered unit present, the leader included).

- Leadership changes do not move the schedulers: the name stays in the application data, and a
  new leader keeps it while that unit is there. (The rule "run on the leader" would: Juju has no
  "leadership lost" hook, so a deposed leader keeps its scheduler until its next hook.)
- Units added later never take over: Juju never reuses unit numbers, and a named unit is kept.
  (The rule "lowest-numbered unit a unit can see" would not be safe: a new unit sees no peers
  before its relation-joined hooks, and would run a second scheduler meanwhile.)
- Removing the named unit moves them: the leader's relation-departed hook names another unit,
  whose relation-changed hook starts them. (paas-charm's rule, "unit 0", would leave none.)

Each unit acts only on the name it reads. So two schedulers can run only while the name moves
away from a removed unit: from the new unit's relation-changed hook until the old unit has
stopped its own, which it does in its relation-departed hook (it sees itself departing) and its
stop hook, before Kubernetes deletes its pod. That window is the lag between those hooks on the
two units: seconds. There is no scheduler from the removal until the new unit's hook (longer if
the leader was removed too: until Juju elects the next one), and at deployment until the
leader's first hook with Pebble up.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import ops

import app_health

if TYPE_CHECKING:
    from ops.pebble import ServiceDict

WORKER_SUFFIX = "-worker"
SCHEDULER_SUFFIX = "-scheduler"
SCHEDULER_UNIT_KEY = "scheduler-unit"  # peer relation, application data: who runs schedulers
APP_DIR = "/flask/app"
USER_KEYS = ("user", "user-id", "group", "group-id")
# Pebble states in which a service is up or about to be restarted by Pebble itself.
UP_OR_RESTARTING = ("active", "backoff")


def is_worker(name: str) -> bool:
    """Whether a service runs on every unit."""
    return name.lower().endswith(WORKER_SUFFIX)


def is_scheduler(name: str) -> bool:
    """Whether a service runs on exactly one unit."""
    return name.lower().endswith(SCHEDULER_SUFFIX)


def is_background(name: str) -> bool:
    """Whether the charm runs a service as a background process."""
    return is_worker(name) or is_scheduler(name)


def unit_number(unit_name: str) -> int:
    """The number in `app/N` (a name without one sorts last)."""
    number = unit_name.rpartition("/")[2]
    return int(number) if number.isdigit() else sys.maxsize


def choose_scheduler_unit(named: str | None, present: Iterable[str]) -> str | None:
    """The leader's choice: the named unit while it is present, else the lowest-numbered one."""
    units = set(present)
    if named in units:
        return named
    return min(units, key=lambda unit: (unit_number(unit), unit), default=None)


def _layer_order(name: str) -> tuple[str, str]:
    return (name.split("-", 1)[0], name)


def services_from_layers(layers: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """The rock's background services from its layer files ({file name: YAML}), combined.

    Layers combine in their `NNN-` order as Pebble combines them; a file that is not a layer,
    or a service without a command, is left out (the rock's `flask` service is checked
    elsewhere).
    """
    import yaml  # ops depends on PyYAML; imported only when the rock's layers are read

    from workload import _merge_service  # noqa: PLC2701 - Pebble's combining rule, shared

    found: dict[str, dict[str, Any]] = {}
    for name in sorted(layers, key=_layer_order):
        try:
            layer = yaml.safe_load(layers[name])
        except yaml.YAMLError:
            continue
        services = layer.get("services") if isinstance(layer, dict) else None
        for service, spec in (services if isinstance(services, dict) else {}).items():
            if isinstance(service, str) and is_background(service) and isinstance(spec, dict):
                found[service] = _merge_service(found.get(service, {}), spec)
    return {name: spec for name, spec in found.items() if isinstance(spec.get("command"), str)}


def services_from_plan(services: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The background services of a plan, without their environment.

    For a rock whose layer files cannot be read: the plan may already hold the charm's
    definitions, whose environment is the app's (possibly stale), not the rock's.
    """
    return {
        name: {key: value for key, value in spec.items() if key != "environment"}
        for name, spec in services.items()
        if is_background(name) and isinstance(spec.get("command"), str)
    }


@dataclasses.dataclass(frozen=True)
class BackgroundServices:
    """The background services of one unit: the rock's, with the app's environment.

    `app_user` holds the `flask` service's user keys: a background service that names no user
    runs as the app does, never as root by default.
    """

    rock_services: Mapping[str, Mapping[str, Any]]
    environment: Mapping[str, str]
    runs_schedulers: bool
    app_user: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def has_schedulers(self) -> bool:
        """Whether the rock defines any scheduler."""
        return any(is_scheduler(name) for name in self.rock_services)

    def runs_here(self, name: str) -> bool:
        """Whether this unit runs the service."""
        return is_worker(name) or self.runs_schedulers

    def enabled(self) -> tuple[str, ...]:
        """The services that must run on this unit."""
        return tuple(sorted(name for name in self.rock_services if self.runs_here(name)))

    def idle(self) -> tuple[str, ...]:
        """The schedulers this unit must not run."""
        return tuple(sorted(name for name in self.rock_services if not self.runs_here(name)))

    def service(self, name: str) -> ServiceDict:
        """The charm's definition of one background service."""
        rock = self.rock_services[name]
        service: dict[str, Any] = {
            key: value for key, value in rock.items() if key not in ("environment", "override")
        }
        if rock.get("user") is None and rock.get("user-id") is None:
            service.update({key: self.app_user[key] for key in USER_KEYS if key in self.app_user})
        service.update(
            {
                "override": "replace",
                "startup": "enabled" if self.runs_here(name) else "disabled",
                "environment": {**(rock.get("environment") or {}), **self.environment},
            }
        )
        if not service.get("working-dir"):
            service["working-dir"] = APP_DIR
        return service  # type: ignore[return-value]  # a ServiceDict, built key by key

    def services(self) -> dict[str, ServiceDict]:
        """Every background service, for the charm's layer."""
        return {name: self.service(name) for name in sorted(self.rock_services)}

    def not_started(self, states: Mapping[str, str]) -> tuple[str, ...]:
        """Services that must run but are neither up nor being restarted by Pebble."""
        return tuple(name for name in self.enabled() if states.get(name) not in UP_OR_RESTARTING)

    def displaced(self, states: Mapping[str, str]) -> tuple[str, ...]:
        """Schedulers running here although another unit runs them (to stop)."""
        return tuple(name for name in self.idle() if states.get(name) in UP_OR_RESTARTING)


# -- health ---------------------------------------------------------------------------------

_FAILED_START = re.compile(r'Start service "([^"]+)"')


def failed_to_start(change_error: str) -> set[str]:
    """The services a failed Pebble change names (`- Start service "x" (…)` lines)."""
    return set(_FAILED_START.findall(change_error))


def error_line(lines: list[str]) -> str | None:
    """Why a service stopped, from its last lines of output (untrusted: bounded, cleaned).

    `app_health.last_error_line`'s pick; a bare label (Celery's `Error:`) takes the lines that
    follow it, which say what the error is.
    """
    stripped = [line.strip() for line in lines if line.strip()]
    picked = app_health.last_error_line(stripped)
    if picked is not None and picked.endswith(":"):
        for index in range(len(stripped) - 1, -1, -1):
            if app_health.printable_line(stripped[index]) == picked:
                return app_health.printable_line(" ".join(stripped[index:]))
    return picked


def failing_status(name: str, error_line: str | None, others: int) -> ops.BlockedStatus:
    """A background service keeps exiting: the operator must look at its logs."""
    said = f": {error_line}" if error_line else ""
    more = f" (and {others} more)" if others else ""
    return ops.BlockedStatus(
        f"background service {name}{more} keeps failing{said} (see `pebble logs {name}`)"
    )


def restarting_status(name: str, others: int) -> ops.MaintenanceStatus:
    """A background service stopped once: Pebble restarts it by itself."""
    more = f" (and {others} more)" if others else ""
    return ops.MaintenanceStatus(
        f"background service {name}{more} stopped; Pebble is restarting it "
        f"(see `pebble logs {name}`)"
    )


def assess(
    states: Mapping[str, str],
    enabled: Iterable[str],
    down_before: Collection[str],
    failed_at_start: Collection[str],
    error_line: Callable[[str], str | None],
) -> tuple[ops.StatusBase | None, tuple[str, ...]]:
    """Judge the background services from Pebble's view; return (status, the ones down now).

    Down is any state but `active`. A service that failed to start in this hook, or that was
    already down at the previous look, keeps failing (Blocked, with its last error line); one
    down for the first time is being restarted by Pebble (Maintenance). Only `error_line` reads
    logs, and only for a Blocked status.
    """
    down = tuple(name for name in enabled if states.get(name) != "active")
    failing = [name for name in down if name in failed_at_start or name in down_before]
    if failing:
        return failing_status(failing[0], error_line(failing[0]), len(failing) - 1), down
    if down:
        return restarting_status(down[0], len(down) - 1), down
    return None, down
