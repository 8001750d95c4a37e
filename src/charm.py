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

The read side is `config_loader`, `rock_service`, `secret_key` and `integrations`; the write
side is `workload_apply` (with `pebble_reads` keeping each Pebble read to one per hook).
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from typing import TYPE_CHECKING

import ops

import config_cache
import config_loader
import hook_memory
import integrations
import observability
import pebble_reads
import rock_service
import secret_key
import workers
import workload
import workload_apply
from charms.flask_k8s.v0.ingress import IngressRequirer
from secret_key import SecretKeyError
from status import StatusError

if TYPE_CHECKING:
    from migrations import Migrations

CONTAINER = "flask-app"


class FlaskCharm(ops.CharmBase):
    """Run a flask-framework rock, configured from charm config and relations."""

    _stored = ops.StoredState()

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.ingress = IngressRequirer(self, "ingress", port=workload.APP_PORT, strip_prefix=True)
        self._status: ops.StatusBase | None = None
        self._quiet = False  # this hook found all as left: it changes and sets nothing
        self._key_source: str | None = None
        self.config_cache = config_cache.ConfigCache(self)
        self.memory = hook_memory.HookMemory(self)
        self._integrations: integrations.Found | None = None
        self._reads = pebble_reads.PebbleReads()  # the plan and our config file, once per hook
        # Before the observers below: a relation-created or -broken updates it first.
        self.related_endpoints = integrations.RelatedEndpoints(self)
        self.secret_key = secret_key.SecretKey(self)
        self.workers = workers.Workers(self)  # `*-worker`/`*-scheduler` services: background
        self.observability = observability.Observability(self)
        # Plain helpers, not ops.Objects: their memory stays in this charm's StoredState under
        # its old keys, where an upgraded charm finds it.
        self._config_loader = config_loader.ConfigLoader(
            self, self.config_cache, self.related_endpoints, self.memory, self._reads
        )
        self._rock = rock_service.RockService(self._stored, self._reads, CONTAINER)
        self._workload = workload_apply.WorkloadApplier(
            self._stored, self._reads, self._rock, self.observability, self.workers
        )
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
        self._rock.new_container()  # possibly from a new image: check gevent again
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
                self._reads.app_env(container)
            )
            self.migrations.gate(container, app, upgrading=upgrading or moved)
            started = self._workload.apply(container, app)
            self._workload.check_health(container, app, started)
            self.workers.check(container)  # the app serves: are its workers up?
        except StatusError as exc:  # incl. secret key and migration waits
            self._status = exc.status
            self._workload.sync_log_targets(container)  # logs still flow where the relations say
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
            self._config_loader.option_secrets,
            plan=self._reads.cached_plan,
        )
        return self._status

    def _desired_app(self, container: ops.Container) -> workload.FlaskApp:
        """Read every input and compute the app; raise StatusError saying what is missing."""
        if not container.can_connect():
            msg = f"waiting for Pebble in the {CONTAINER} container"
            raise StatusError(ops.WaitingStatus(msg))
        service = self._rock.get(container)
        cfg, options = self._config_loader.load()
        try:
            rock = workload.RockCommand.parse(service.get("command", ""))
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
            self._rock.check_gevent(container, rock, service.get("user"))
        # The key already in the plan when its source is unchanged: no secret-get.
        source = self.secret_key.source(cfg)
        known = self.memory.known_key(
            source, self._reads.plan(container), self._reads.pushed_config(container)
        )
        key = known or self.secret_key.get(cfg)
        self._key_source = self.secret_key.source(cfg)  # a key generated just now has one
        base_url = self.ingress.url or (
            f"http://{self.app.name}.{self.model.name}:{workload.APP_PORT}"
        )
        self._integrations = integrations.collect(
            self, lambda: self._reads.app_env(container), self.related_endpoints.names()
        )
        peer = self.model.get_relation(secret_key.PEER)
        units = [self.unit.name, *(unit.name for unit in (peer.units if peer else ()))]
        return workload.FlaskApp(
            service,
            cfg,
            key,
            base_url,
            integration_env=self._integrations.env,
            app_env={**options.env, **self._config_loader.secret_options_env(container, options)},
            peer_fqdns=workload.peer_fqdns(self.app.name, self.model.name, units),
            proxy_env=workload.proxy_environment(os.environ),
        )


def main() -> None:
    """Run this hook's event, then end the process without Python's teardown."""
    # The charm ships no pydantic plugin: spare every hook that validates config pydantic's
    # search of all installed distributions for one (about 20 ms).
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    ops.main(FlaskCharm)
    # Juju starts a new process for every hook, and by now ops has committed its state and
    # logged through juju-log. Python's teardown (freeing every module and pydantic's schemas
    # one object at a time) would only add 0.05-0.1 s, while Gunicorn's new workers boot.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":  # pragma: nocover
    main()
