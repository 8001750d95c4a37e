"""Count what a hook costs as Juju and Pebble would see it, under ops.testing.

Hook-tool calls. Under Juju every hook tool (config-get, relation-get, is-leader, juju-log, …)
is a process start; ops runs each through one `ops.model._ModelBackend` method (in ops 3.9 the
method calls `ops.hookcmds`, which runs the tool). ops.testing replaces that backend with
`scenario.mocking._MockModelBackend`, which overrides the same methods but never runs a tool.
`HookToolCounter` wraps those overriding methods and counts one call per outermost call, which is
what the real backend would run, with the two places where the real backend runs nothing made
the same here: `is-leader` is cached for Juju's 30 s lease (`_ModelBackend.is_leader`), and the
remote app of the event's own relation comes from the environment
(`_ModelBackend.relation_remote_app_name`). What ops itself caches per hook (config, relation
data, relation lists) sits above the backend, so it is counted as Juju would see it. Log lines
of ops.testing itself (its `ops-scenario` logger) are no juju-log under Juju: not counted.

Pebble. `PebbleCounter` wraps the ops.testing Pebble client and counts, per service, the starts
and restarts a real Pebble would do: a replan starts every enabled service that is not running
and restarts a running one whose definition changed since it started (ops.testing's Pebble
starts only). It also counts layers added, replans, signals, execs and pushes.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from ops import pebble
from ops.log import JujuLogHandler
from scenario.mocking import _MockModelBackend, _MockPebbleClient

# Backend method -> the hook tool the real backend runs for it.
HOOK_TOOLS = {
    "relation_ids": "relation-ids",
    "relation_list": "relation-list",
    "relation_remote_app_name": "relation-list",  # relation-list --app
    "relation_get": "relation-get",
    "relation_set": "relation-set",
    "relation_model_get": "relation-model-get",
    "config_get": "config-get",
    "is_leader": "is-leader",
    "resource_get": "resource-get",
    "pod_spec_set": "pod-spec-set",
    "status_get": "status-get",
    "status_set": "status-set",
    "storage_list": "storage-list",
    "storage_get": "storage-get",
    "storage_add": "storage-add",
    "action_get": "action-get",
    "action_set": "action-set",
    "action_log": "action-log",
    "action_fail": "action-fail",
    "application_version_set": "application-version-set",
    "juju_log": "juju-log",
    "network_get": "network-get",
    "add_metrics": "add-metric",
    "planned_units": "goal-state",
    "secret_get": "secret-get",
    "secret_info_get": "secret-info-get",
    "secret_set": "secret-set",
    "secret_add": "secret-add",
    "secret_grant": "secret-grant",
    "secret_revoke": "secret-revoke",
    "secret_remove": "secret-remove",
    "open_port": "open-port",
    "close_port": "close-port",
    "opened_ports": "opened-ports",
    "credential_get": "credential-get",
}
JUJU_LOG = "juju-log"


@contextlib.contextmanager
def _wrapped(cls: type, wrappers: dict[str, Callable[[Callable[..., Any]], Callable[..., Any]]]):
    """Replace methods of `cls` by wrappers of themselves for the block; then restore them."""
    own = {name: cls.__dict__.get(name) for name in wrappers}
    for name, make in wrappers.items():
        original = getattr(cls, name)
        setattr(cls, name, functools.wraps(original)(make(original)))
    try:
        yield
    finally:
        for name, method in own.items():
            if method is None:
                delattr(cls, name)
            else:
                setattr(cls, name, method)


class HookToolCounter:
    """Count hook-tool calls by tool name; `juju-log` (one per log line) is counted apart."""

    def __init__(self) -> None:
        self.calls: collections.Counter[str] = collections.Counter()
        self._depth = 0

    @property
    def tools(self) -> int:
        """Hook-tool calls other than juju-log."""
        return sum(n for tool, n in self.calls.items() if tool != JUJU_LOG)

    @property
    def log_lines(self) -> int:
        return self.calls[JUJU_LOG]

    def _would_run(self, backend: Any, method: str, args: tuple[Any, ...]) -> bool:
        """Whether the real backend would run a hook tool for this call."""
        if method == "is_leader":
            return backend._cached_leadership() is None
        if method == "relation_remote_app_name":
            ctx = backend._juju_context
            return not (ctx.remote_app_name is not None and args and args[0] == ctx.relation_id)
        return True

    def _wrap(self, method: str, tool: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def make(original: Callable[..., Any]) -> Callable[..., Any]:
            def counting(backend: Any, *args: Any, **kwargs: Any) -> Any:
                if self._depth:  # the mock calling its own methods: no extra tool
                    return original(backend, *args, **kwargs)
                if self._would_run(backend, method, args):
                    self.calls[tool] += 1
                self._depth += 1
                try:
                    result = original(backend, *args, **kwargs)
                finally:
                    self._depth -= 1
                if method == "is_leader":  # the real backend's lease cache
                    backend._is_leader, backend._leader_check_time = result, time.monotonic()
                return result

            return counting

        return make

    @contextlib.contextmanager
    def installed(self) -> Iterator[HookToolCounter]:
        """Count while the block runs (ctx.run calls inside it)."""
        wrappers = {method: self._wrap(method, tool) for method, tool in HOOK_TOOLS.items()}
        with _wrapped(_MockModelBackend, wrappers), _wrapped(JujuLogHandler, {"emit": self._emit}):
            yield self

    def _emit(self, original: Callable[..., Any]) -> Callable[..., Any]:
        """ops.testing's own log lines (its warnings) are no juju-log under Juju: skip them."""

        def emit(handler: Any, record: logging.LogRecord) -> Any:
            if not record.name.startswith(("ops-scenario", "scenario")):
                return original(handler, record)
            self._depth += 1  # reaches the backend uncounted
            try:
                return original(handler, record)
            finally:
                self._depth -= 1

        return emit


class PebbleCounter:
    """Count layers, replans, per-service starts/restarts, signals, execs and pushes."""

    def __init__(self) -> None:
        self.calls: collections.Counter[str] = collections.Counter()
        # service -> its definition when it last (re)started: Pebble restarts on a change
        self.started_with: dict[str, dict[str, Any]] = {}

    def _running(self, client: Any) -> dict[str, dict[str, Any]]:
        plan = client.get_plan().services
        return {
            info.name: plan[info.name].to_dict() if info.name in plan else {}
            for info in client.get_services()
            if info.current == pebble.ServiceStatus.ACTIVE
        }

    def _remember_running(self, client: Any) -> None:
        for name, definition in self._running(client).items():
            self.started_with.setdefault(name, definition)

    def _replan(self, client: Any) -> None:
        running = self._running(client)
        for name, service in client.get_plan().services.items():
            if service.startup != pebble.ServiceStartup.ENABLED.value:
                continue
            definition = service.to_dict()
            if name not in running:
                self.calls[f"start {name}"] += 1
            elif self.started_with.get(name, definition) != definition:
                self.calls[f"restart {name}"] += 1
            else:
                continue
            self.started_with[name] = definition

    def _counting(self, kind: str, before: Callable[..., None] | None = None) -> Any:
        """A wrapper maker: count `kind`, run `before(client, *args)`, then the call itself."""

        def make(original: Callable[..., Any]) -> Callable[..., Any]:
            def counting(client: Any, *args: Any, **kwargs: Any) -> Any:
                self.calls[kind] += 1
                if before is not None:
                    before(client, *args)
                return original(client, *args, **kwargs)

            return counting

        return make

    def _signalled(self, client: Any, sig: Any, services: Any, *_: Any) -> None:
        for name in services:
            self.calls[f"{sig} {name}"] += 1

    @contextlib.contextmanager
    def installed(self) -> Iterator[PebbleCounter]:
        """Count while the block runs (ctx.run calls inside it)."""
        wrappers = {
            # Services running before a new layer run the definition they had before it.
            "add_layer": self._counting("add_layer", lambda c, *_: self._remember_running(c)),
            "replan_services": self._counting("replan", lambda c, *_: self._replan(c)),
            "send_signal": self._counting("signal", self._signalled),
            "exec": self._counting("exec"),
            "push": self._counting("push"),
        }
        with _wrapped(_MockPebbleClient, wrappers):
            yield self
