"""What the charm reads from the workload's Pebble, read at most once per hook.

Every read is a Pebble API call, and one reconcile needs the plan and the Gunicorn config file
we pushed in several places (the rock's service, the secret key and secret options already
applied, the layer and file to compare, what the hook memory records). So each is read on
first use and kept for the rest of the hook, until the charm's own write changes it: a new
layer forgets the plan, a push replaces the file's content with what was pushed. Nothing
outlives the hook: the next one starts from what Pebble says then.
"""

from __future__ import annotations

import ops

import pebble_io
import workload


class PebbleReads:
    """The workload's plan and our pushed Gunicorn config file, each read once per hook."""

    def __init__(self):
        self._plan: ops.pebble.Plan | None = None
        self._conf: str | None = None
        self._conf_known = False

    @property
    def cached_plan(self) -> ops.pebble.Plan | None:
        """The plan if this hook read it since our last add_layer (None: not read, no cost)."""
        return self._plan

    def plan(self, container: ops.Container) -> ops.pebble.Plan:
        """The workload's Pebble plan, read once per hook until our add_layer changes it."""
        if self._plan is None:
            self._plan = container.get_plan()
        return self._plan

    def pushed_config(self, container: ops.Container) -> str | None:
        """The Gunicorn config file we pushed (`pebble_io.pushed_content`), read once per hook."""
        if not self._conf_known:
            self._conf = pebble_io.pushed_content(
                container, workload.CHARM_GUNICORN_CONFIG, workload.DAEMON_UID
            )
            self._conf_known = True
        return self._conf

    def layer_added(self) -> None:
        """Our add_layer changed the plan: read it again when next asked."""
        self._plan = None

    def config_pushed(self, content: str) -> None:
        """We pushed the Gunicorn config file: it now holds `content`."""
        self._conf, self._conf_known = content, True

    def app_env(self, container: ops.Container) -> dict[str, str]:
        """The environment the app runs with now (integrations not ready keep theirs)."""
        service = self.plan(container).services.get(workload.APP_SERVICE)
        return dict(service.environment) if service else {}
