"""What the last hooks left behind, remembered (unit-local) so that quiet hooks cost little.

Under Juju every hook-tool call is a process start. The charm remembers, in StoredState:
- what its last full reconcile left when it ended Active: a fingerprint of the Pebble plan and of
  the raw config, and (leader) whether a migration lease was outstanding. update-status, and
  config-changed with the same raw config, then only check the workload through Pebble (`steady`)
  and change and set nothing when it is as left;
- the status it last set, so that collect-status calls status-set only for a new status (Juju
  keeps a unit's workload status between hooks);
- that it opened the app's port (ports stay open between hooks);
- where the secret key came from (`SecretKey.source`), so that an unchanged source reuses the
  key already in the plan instead of reading the secret again.

The state dir is the charm container's; losing it (a new pod) only costs a full hook. Events
after which Juju or another unit may have changed what is remembered forget the parts they
touch: install, start and upgrade-charm forget the status and port; secret-changed,
leader-elected, upgrade-charm and peer relation events forget the secret key's source.
"""

from __future__ import annotations

import hashlib
import json

import ops

import background
import secret_key
import workload


def plan_id(plan: ops.pebble.Plan) -> str:
    """Identify a Pebble plan (a hash: the plan holds the secret key)."""
    return hashlib.sha256(json.dumps(plan.to_dict(), sort_keys=True).encode()).hexdigest()


class HookMemory(ops.Object):
    """The charm's unit-local memory of what it last did (see the module docstring)."""

    _stored = ops.StoredState()

    def __init__(self, charm: ops.CharmBase):
        super().__init__(charm, "hook-memory")
        self._charm = charm
        self._stored.set_default(
            plan=None, config=None, lease=None, status=None, ports=None, key_source=None
        )
        on = charm.on
        for event in (on.install, on.start, on.upgrade_charm):
            self.framework.observe(event, self._forget_juju_side)
        for event in (
            on.secret_changed,
            on.leader_elected,
            on.upgrade_charm,
            on[secret_key.PEER].relation_created,
            on[secret_key.PEER].relation_changed,
            on[secret_key.PEER].relation_departed,
        ):
            self.framework.observe(event, self._forget_key_source)

    def _forget_juju_side(self, _: ops.EventBase) -> None:
        self._stored.status = self._stored.ports = None

    def _forget_key_source(self, _: ops.EventBase) -> None:
        self._stored.key_source = None

    # -- the check-only path ------------------------------------------------------------------

    def record(
        self,
        container: ops.Container,
        status: ops.StatusBase,
        config_id: str | None,
        key_source: str | None,
    ) -> None:
        """Remember what a full reconcile left; only an Active end is worth remembering.

        `key_source` names where the key in the plan came from (`SecretKey.source`).
        """
        stored = self._stored
        if not isinstance(status, ops.ActiveStatus) or config_id is None:
            stored.plan = stored.config = stored.lease = stored.key_source = None
            return
        try:
            stored.plan = plan_id(container.get_plan())
        except ops.pebble.Error:  # Pebble went away just now: remember nothing
            stored.plan = stored.config = stored.lease = stored.key_source = None
            return
        stored.config = config_id
        stored.lease = self._charm.unit.is_leader() and self._lease_outstanding()
        stored.key_source = key_source

    def steady(self, container: ops.Container, config_id: str | None) -> bool:
        """Whether all is as the last Active reconcile left it (config_id None: not compared).

        As left: the same plan, the app and its enabled background services running, no Pebble
        check down, and for a leader no migration lease that may need expiring. Pebble alone is
        asked (no hook tool).
        """
        stored = self._stored
        if stored.plan is None or (config_id is not None and config_id != stored.config):
            return False
        if self._charm.unit.is_leader() and stored.lease is not False:
            return False
        try:
            if plan_id(container.get_plan()) != stored.plan:
                return False
            services = container.get_services()
            app = services.get(workload.APP_SERVICE)
            if app is None or not app.is_running():
                return False
            if any(  # a background service down: the full reconcile says so (`workers`)
                background.is_background(name)
                and info.startup == ops.pebble.ServiceStartup.ENABLED
                and not info.is_running()
                for name, info in services.items()
            ):
                return False
            checks = container.get_checks()
        except (ops.pebble.Error, ops.ModelError):  # no Pebble, no service: reconcile
            return False
        return all(check.status != ops.pebble.CheckStatus.DOWN for check in checks.values())

    def _lease_outstanding(self) -> bool:
        from migrations import LEASE_KEY, PEER  # a full reconcile has imported it already

        peer = self._charm.model.get_relation(PEER)
        return bool(peer and peer.data[self._charm.app].get(LEASE_KEY))

    # -- status, ports, secret key ---------------------------------------------------------------

    def status_is_new(self, status: ops.StatusBase) -> bool:
        """Whether status-set is needed for `status`; remembers it as set when it is."""
        current = [status.name, status.message]
        if self._stored.status is not None and list(self._stored.status) == current:
            return False
        self._stored.status = current
        return True

    def open_port(self, port: int) -> None:
        """Open the app's port once (set_ports would ask Juju what is open on every hook)."""
        if self._stored.ports != [port]:
            self._charm.unit.open_port("tcp", port)  # idempotent in Juju
            self._stored.ports = [port]

    def known_key(self, source: str | None, plan: ops.pebble.Plan, conf: str | None) -> str | None:
        """The key the app has now when it came from this same source, else None.

        `conf` is the Gunicorn config file we pushed (None if missing or app-writable): it
        holds the app's environment, with the key as `workload.env_value` encoded it, which
        encodes that value to itself, so rendering it again gives the same file.
        """
        stored = self._stored
        if source is None or source != stored.key_source or conf is None:
            return None
        if stored.plan != plan_id(plan):
            return None
        return workload.rendered_environment(conf).get("FLASK_SECRET_KEY")
