"""The rock's own `flask` service, and whether its Python has gevent: learned once per container.

- The service comes from the plan the first time, before the charm's layer overrides it. Once
  our layer is in, the plan shows our command: the rock's is remembered (with the command we
  rendered, to tell the two apart). If that memory is gone, it is re-derived from the rock's
  layer files in the image, never from a file the app can write.
- gevent: `worker-type=gevent` needs the rock's Python to import it; one exec per workload
  container answers it, remembered until a new container (maybe from a new image) or a new rock
  service.

The memory stays in the charm's StoredState under the keys it always had (`rock_service`,
`rendered_command`, `has_gevent`): moving it to an object of its own would change its handle
path, and an upgraded charm would not find it.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import ops

import pebble_io
import workload
from pebble_reads import PebbleReads
from status import StatusError

logger = logging.getLogger(__name__)


class RockService:
    """The rock's `flask` service and its gevent support, kept in the charm's StoredState."""

    def __init__(self, stored: ops.BoundStoredState, reads: PebbleReads, container_name: str):
        self._stored = stored
        # The rock's service (JSON), the command we rendered in its place, gevent: per container.
        self._stored.set_default(rock_service=None, rendered_command=None, has_gevent=None)
        self._reads = reads
        self._container_name = container_name

    def get(self, container: ops.Container) -> dict[str, Any]:
        """Return the rock's `flask` service, read from the plan once per workload container."""
        service = self._reads.plan(container).services.get(workload.APP_SERVICE)
        if service is None:
            raise StatusError(
                ops.BlockedStatus(
                    f"the {self._container_name} image has no `flask` Pebble service: use a "
                    "rock built with Rockcraft's flask-framework extension"
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

    def rendered(self, command: str) -> None:
        """Our layer now runs `command` in place of the rock's: the plan shows it from now on."""
        self._stored.rendered_command = command

    def new_container(self) -> None:
        """A (re)started workload container, possibly from a new image: check gevent again."""
        self._stored.has_gevent = None

    def check_gevent(
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
