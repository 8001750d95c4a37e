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

import pebble_io
import workload
from charms.flask_k8s.v0.ingress import IngressRequirer

if TYPE_CHECKING:
    from config import FlaskConfig

logger = logging.getLogger(__name__)

CONTAINER = "flask-app"
PEER = "secret-storage"
SECRET_ID_KEY = "secret-key-id"
GENERATION_KEY = "secret-key-generation"
SECRET_LABEL = "flask-secret-key"
LAYER_LABEL = "flask-k8s"


class _NotReadyError(Exception):
    """Reconcile stopped early; `status` says why and what to do."""

    def __init__(self, status: ops.StatusBase):
        super().__init__(status.message)
        self.status = status


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
        self._new_secret_key: str | None = None
        on = self.on
        for event in (
            on.install,
            on.start,
            on.upgrade_charm,
            on.leader_elected,
            on.config_changed,
            on.update_status,
            on.secret_changed,
            on[PEER].relation_created,
            on[PEER].relation_changed,
            on["ingress"].relation_joined,
            on["ingress"].relation_changed,
            on["ingress"].relation_departed,
            on["ingress"].relation_broken,
        ):
            framework.observe(event, self._on_state_changed)
        framework.observe(on[CONTAINER].pebble_ready, self._on_pebble_ready)
        framework.observe(on.secret_remove, self._on_secret_remove)
        framework.observe(on.collect_unit_status, self._on_collect_unit_status)
        framework.observe(on.rotate_secret_key_action, self._on_rotate_secret_key_action)
        framework.observe(on.run_migrations_action, self._on_run_migrations_action)

    def _on_state_changed(self, _: ops.EventBase) -> None:
        self._reconcile()

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
        peer = self.model.get_relation(PEER)
        secret_id = peer.data[self.app].get(SECRET_ID_KEY) if peer else None
        if not secret_id:
            event.fail("no secret key has been generated yet; wait for the unit to settle")
            return
        import secrets

        key = secrets.token_urlsafe(32)
        self.model.get_secret(id=secret_id).set_content({"value": key})
        self._new_secret_key = key  # Juju commits the new revision only when this hook ends
        # Units of the owning app get no secret-changed: a peer-data bump tells them instead.
        generation = int(peer.data[self.app].get(GENERATION_KEY) or 0) + 1  # type: ignore[union-attr]
        peer.data[self.app][GENERATION_KEY] = str(generation)  # type: ignore[union-attr]
        self._reconcile()
        overridden = self.config.get("flask-secret-key") or self.config.get("flask-secret-key-id")
        event.set_results(
            {
                "result": "secret key rotated; every unit restarts the app with it"
                + (" once flask-secret-key(-id) is unset" if overridden else "")
            }
        )

    def _on_run_migrations_action(self, event: ops.ActionEvent) -> None:
        event.fail(
            "run-migrations is not available in this revision: migrations land with issue 6 "
            "(discovery, coordination and execution of the rock's migrate script)"
        )

    def _reconcile(self) -> ops.StatusBase:
        """Bring the workload and relation data to the desired state; return the status."""
        self.ingress.publish()
        try:
            container = self.unit.get_container(CONTAINER)
            self._apply(container, self._desired_app(container))
        except _NotReadyError as exc:
            self._status = exc.status
        else:
            url = self.ingress.url
            self._status = ops.ActiveStatus(f"serving at {url}" if url else "")
        return self._status

    def _desired_app(self, container: ops.Container) -> workload.FlaskApp:
        """Read every input and compute the app; raise _NotReadyError saying what is missing."""
        from config import InvalidConfigError, load

        if not container.can_connect():
            msg = f"waiting for Pebble in the {CONTAINER} container"
            raise _NotReadyError(ops.WaitingStatus(msg))
        rock_service = self._rock_service(container)
        try:
            cfg = load(self.config)
        except InvalidConfigError as exc:
            raise _NotReadyError(ops.BlockedStatus(str(exc))) from None
        try:
            rock = workload.RockCommand.parse(rock_service.get("command", ""))
        except workload.CommandError as exc:
            raise _NotReadyError(ops.BlockedStatus(str(exc))) from None
        if not rock.runs_gunicorn and (cfg.worker_type or cfg.gunicorn_settings()):
            raise _NotReadyError(
                ops.BlockedStatus(
                    "worker-type and webserver-* need Gunicorn, but the rock's flask command "
                    "does not run it: reset them (juju config <app> --reset <option>)"
                )
            )
        if cfg.worker_type == "gevent" and rock.default_worker != "gevent":
            self._check_gevent(container, rock, rock_service.get("user"))
        secret_key = self._secret_key(cfg)
        base_url = self.ingress.url or (
            f"http://{self.app.name}.{self.model.name}:{workload.APP_PORT}"
        )
        return workload.FlaskApp(rock_service, cfg, secret_key, base_url)

    def _rock_service(self, container: ops.Container) -> dict[str, Any]:
        """Return the rock's `flask` service, read from the plan once per workload container."""
        service = container.get_plan().services.get(workload.APP_SERVICE)
        if service is None:
            raise _NotReadyError(
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
            raise _NotReadyError(ops.BlockedStatus("cannot recover the rock's flask command"))
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
                raise _NotReadyError(ops.WaitingStatus(msg)) from None
        if not self._stored.has_gevent:
            raise _NotReadyError(
                ops.BlockedStatus(
                    "worker-type=gevent but the rock has no gevent: add gevent to the rock's "
                    "requirements.txt and rebuild it, or set worker-type to sync or gthread"
                )
            )

    def _secret_key(self, cfg: FlaskConfig) -> str:
        """Return the Flask secret key: the operator's, or the one the leader generated."""
        if cfg.flask_secret_key and cfg.flask_secret_key_id:
            raise _NotReadyError(
                ops.BlockedStatus(
                    "flask-secret-key and flask-secret-key-id are both set: keep one, e.g. "
                    f"juju config {self.app.name} --reset flask-secret-key"
                )
            )
        if cfg.flask_secret_key:
            return cfg.flask_secret_key
        if cfg.flask_secret_key_id:
            return self._user_secret_key(cfg.flask_secret_key_id)
        return self._generated_secret_key()

    def _user_secret_key(self, secret_id: str) -> str:
        try:
            content = self.model.get_secret(id=secret_id).get_content(refresh=True)
        except (ops.SecretNotFoundError, ops.ModelError):
            raise _NotReadyError(
                ops.BlockedStatus(
                    f"flask-secret-key-id: secret {secret_id} not found or not granted: "
                    f"juju grant-secret {secret_id} {self.app.name}"
                )
            ) from None
        if not content.get("value"):
            raise _NotReadyError(
                ops.BlockedStatus(
                    f"flask-secret-key-id: secret {secret_id} has no `value` key: "
                    f"juju update-secret {secret_id} value=<key>"
                )
            )
        return content["value"]

    def _generated_secret_key(self) -> str:
        """Return the app's generated key; the leader creates it on first need."""
        if self._new_secret_key:
            return self._new_secret_key
        peer = self.model.get_relation(PEER)
        if peer is None:
            raise _NotReadyError(ops.WaitingStatus(f"waiting for the {PEER} peer relation"))
        secret_id = peer.data[self.app].get(SECRET_ID_KEY)
        if secret_id:
            return self.model.get_secret(id=secret_id).get_content(refresh=True)["value"]
        if not self.unit.is_leader():
            msg = "waiting for the leader to generate the secret key"
            raise _NotReadyError(ops.WaitingStatus(msg))
        import secrets

        key = secrets.token_urlsafe(32)
        secret = self.app.add_secret({"value": key}, label=SECRET_LABEL)
        peer.data[self.app][SECRET_ID_KEY] = secret.id or ""
        self._new_secret_key = key
        return key

    def _apply(self, container: ops.Container, app: workload.FlaskApp) -> None:
        """Change only what differs: layer → replan; config file alone → push and SIGHUP."""
        layer = workload.pebble_layer(app)
        layer_changed = not _plan_has(container.get_plan(), layer)
        conf = app.gunicorn_config()
        conf_changed = self._pull(container) != conf
        if conf_changed:
            pebble_io.push(container, workload.CHARM_GUNICORN_CONFIG, conf, workload.DAEMON_UID)
        if layer_changed:
            container.add_layer(LAYER_LABEL, layer, combine=True)
            pebble_io.replan(container)
        elif conf_changed:
            if container.get_service(workload.APP_SERVICE).is_running():
                pebble_io.reload(container, workload.APP_SERVICE)
            else:
                pebble_io.replan(container)
        self._stored.rendered_command = app.command()

    @staticmethod
    def _pull(container: ops.Container) -> str | None:
        try:
            return container.pull(workload.CHARM_GUNICORN_CONFIG).read()
        except (ops.pebble.PathError, ops.pebble.APIError):
            return None


def _plan_has(plan: ops.pebble.Plan, layer: ops.pebble.LayerDict) -> bool:
    """Whether the plan already holds every service and check of our layer, as we define them."""
    wanted: list[tuple[Any, dict[str, Any]]] = [
        (plan.services.get(name), dict(spec)) for name, spec in layer.get("services", {}).items()
    ]
    wanted += [
        (plan.checks.get(name), dict(spec)) for name, spec in layer.get("checks", {}).items()
    ]
    for current, spec in wanted:
        if current is None:
            return False
        have = current.to_dict()
        if any(have.get(key) != value for key, value in spec.items() if key != "override"):
            return False
    return True


if __name__ == "__main__":  # pragma: nocover
    ops.main(FlaskCharm)
