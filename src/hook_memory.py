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
  key already in the plan instead of reading the secret again; likewise which secrets the
  secret app options named, and the variables each gave;
- Juju's model proxy settings, which reach hooks only through their environment (Juju fires no
  event when they change): a hook that sees other ones is not quiet.

The state dir is the charm container's; losing it (a new pod) only costs a full hook. Events
after which Juju or another unit may have changed what is remembered forget the parts they
touch: install, start and upgrade-charm forget the status and port; secret-changed,
leader-elected, upgrade-charm and peer relation events forget the secret key's source;
secret-changed and upgrade-charm forget the app options' secrets.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping

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
        self._stored.set_default(option_secrets=None, proxy=None)
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
        for event in (on.secret_changed, on.upgrade_charm):
            self.framework.observe(event, self._forget_option_secrets)

    def _forget_juju_side(self, _: ops.EventBase) -> None:
        self._stored.status = self._stored.ports = None

    def _forget_key_source(self, _: ops.EventBase) -> None:
        self._stored.key_source = None

    def _forget_option_secrets(self, _: ops.EventBase) -> None:
        self._stored.option_secrets = None

    # -- the check-only path ------------------------------------------------------------------

    def record(
        self,
        container: ops.Container,
        status: ops.StatusBase,
        config_id: str | None,
        key_source: str | None,
        option_secrets: Mapping[str, Mapping[str, object]] | None = None,
        plan: ops.pebble.Plan | None = None,
    ) -> None:
        """Remember what a full reconcile left; only an Active end is worth remembering.

        `key_source` names where the key in the plan came from (`SecretKey.source`);
        `option_secrets` which secret each secret app option named and the variables it gave
        ({option: {"id": secret id, "names": [...]}}); `plan` the plan now, if known (else it
        is read).
        """
        stored = self._stored
        if not isinstance(status, ops.ActiveStatus) or config_id is None:
            self._forget_all()
            return
        try:
            stored.plan = plan_id(plan if plan is not None else container.get_plan())
        except ops.pebble.Error:  # Pebble went away just now: remember nothing
            self._forget_all()
            return
        stored.config = config_id
        stored.lease = self._charm.unit.is_leader() and self._lease_outstanding()
        stored.key_source = key_source
        stored.option_secrets = json.dumps(option_secrets or {}, sort_keys=True)
        stored.proxy = proxy_id()

    def _forget_all(self) -> None:
        stored = self._stored
        stored.plan = stored.config = stored.lease = stored.key_source = None
        stored.option_secrets = stored.proxy = None

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
        if stored.proxy != proxy_id():  # the model's proxy changed: no event says so
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

    def known_option_secrets(
        self, secrets: Mapping[str, str], plan: ops.pebble.Plan, conf: str | None
    ) -> dict[str, dict[str, str]] | None:
        """The variables each secret app option gave the app, if they named these same secrets.

        `secrets` is {option: secret id}; `conf` the Gunicorn config file we pushed, which holds
        the app's variables. None: read the secrets (something changed, or nothing is known).
        """
        stored = self._stored
        if stored.option_secrets is None or conf is None or stored.plan != plan_id(plan):
            return None
        known = json.loads(stored.option_secrets)
        if {option: entry["id"] for option, entry in known.items()} != dict(secrets):
            return None
        rendered = workload.rendered_environment(conf)
        names = [name for entry in known.values() for name in entry["names"]]
        if any(name not in rendered for name in names):
            return None
        return {
            option: {name: rendered[name] for name in entry["names"]}
            for option, entry in known.items()
        }


def proxy_id() -> str:
    """Identify the model's proxy settings this hook was given."""
    proxy = workload.proxy_environment(os.environ)
    return hashlib.sha256(json.dumps(proxy, sort_keys=True).encode()).hexdigest()
