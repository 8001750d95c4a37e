"""A reconciling hook reads each thing from Pebble once: every read is an API call."""

from __future__ import annotations

import collections
import dataclasses
import functools

import pytest
from ops import testing
from scenario.mocking import _MockPebbleClient

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
