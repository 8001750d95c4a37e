"""A reconciling hook reads each thing from Pebble once: every read is an API call."""

from __future__ import annotations

import collections
import dataclasses
import functools

import ops
import pytest
from ops import testing
from scenario.mocking import _MockPebbleClient

import pebble_io
from tests.unit.charm.charm_state import state

READS = ("get_plan", "pull", "list_files")
# ops.testing's client implements these with its own reads, which real Pebble does not make.
COMPOSITE = ("send_signal", "replan_services", "push", "add_layer")


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> collections.Counter[str]:
    """Counts the charm's own calls of READS (outermost calls only)."""
    counts: collections.Counter[str] = collections.Counter()
    depth = [0]
    for name in READS + COMPOSITE:
        method = getattr(_MockPebbleClient, name)

        @functools.wraps(method)
        def counted(self, *args, _name=name, _method=method, **kwargs):
            if depth[0] == 0 and _name in READS:
                counts[_name] += 1
            depth[0] += 1
            try:
                return _method(self, *args, **kwargs)
            finally:
                depth[0] -= 1

        monkeypatch.setattr(_MockPebbleClient, name, counted)
    return counts


def test_a_gunicorn_setting_change_reads_the_plan_and_the_pushed_file_once(ctx, charm_dir, reads):
    st = state(charm_dir)
    st = ctx.run(ctx.on.pebble_ready(st.get_container("flask-app")), st)
    st = dataclasses.replace(st, config={"webserver-keepalive": 3})
    reads.clear()

    out = ctx.run(ctx.on.config_changed(), st)

    assert out.unit_status == testing.ActiveStatus("")
    # The plan, for everything (no layer changed); the config file: its directory and itself
    # checked, read; the migrate-script lookup and push's directory check list files too.
    assert reads == {"get_plan": 1, "pull": 1, "list_files": 4}


class _SignalRefused:
    """A container whose Pebble refuses a signal with `message`."""

    def __init__(self, message: str):
        self.message = message

    def send_signal(self, signal: str, service: str) -> None:
        raise ops.pebble.APIError({}, 500, "Internal Server Error", self.message)


@pytest.mark.parametrize(
    "message",
    [
        'cannot send signal to "flask": service is not running',  # in backoff
        # Gunicorn's master died a moment ago and Pebble has not seen it yet (seen in CI when
        # back-to-back reloads killed the master in its own logging).
        'cannot send signal to "flask": no such process',
    ],
)
def test_a_reload_of_a_service_pebble_is_restarting_is_skipped_not_a_hook_error(message):
    container = _SignalRefused(message)

    assert pebble_io.reload(container, "flask") is False  # type: ignore[arg-type]


def test_a_reload_refused_for_another_reason_still_fails_the_hook():
    container = _SignalRefused("permission denied")

    with pytest.raises(ops.pebble.APIError):
        pebble_io.reload(container, "flask")  # type: ignore[arg-type]
