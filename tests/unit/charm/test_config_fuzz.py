"""Arbitrary config values never raise and always end Active or Blocked naming an option."""

from __future__ import annotations

import pathlib
import tempfile
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ops import testing

from charm import FlaskCharm
from tests.unit.charm.charm_state import container, state

OPTIONS: dict[str, dict[str, Any]] = yaml.safe_load(
    (pathlib.Path(__file__).parents[3] / "charmcraft.yaml").read_text()
)["config"]["options"]

_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["sync", "gevent", "gthread", "HTTP", "https", "/", "/x y", "secret:abc"]),
)
_ints = st.one_of(st.integers(), st.integers(min_value=-5, max_value=5000))
# Juju itself only accepts a secret URI for a `secret` option.
_secret_ids = st.text("0123456789abcdefghijklmnopqrstuv", min_size=20, max_size=20).map(
    "secret:".__add__
)
_BY_TYPE = {"string": _text, "secret": _secret_ids, "int": _ints, "boolean": st.booleans()}
_ANY = st.one_of(_text, _ints, st.booleans(), st.floats(allow_nan=True), st.none())


def _config(values: st.SearchStrategy[Any] | None = None) -> st.SearchStrategy[dict[str, Any]]:
    """Draw a value (of the option's Juju type unless `values` is given) for any options."""
    return st.fixed_dictionaries(
        {},
        optional={
            name: values if values is not None else _BY_TYPE[option["type"]]
            for name, option in OPTIONS.items()
        },
    )


def _assert_active_or_blocked_naming_an_option(config: dict[str, Any]) -> None:
    ctx = testing.Context(FlaskCharm)
    charm_dir = pathlib.Path(tempfile.mkdtemp())
    st_in = state(charm_dir, config=config, containers={container(charm_dir, gevent=False)})

    out = ctx.run(ctx.on.config_changed(), st_in)

    status = out.unit_status
    if isinstance(status, testing.ActiveStatus):
        return
    assert isinstance(status, testing.BlockedStatus), status
    assert any(name in status.message for name in OPTIONS), status.message


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=_config())
def test_config_arbitrary_values_of_juju_types_end_active_or_blocked(config):
    _assert_active_or_blocked_naming_an_option(config)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=_config(_ANY))
def test_config_arbitrary_values_of_any_type_end_active_or_blocked(config):
    # Juju never sends a value of the wrong type; the charm must still not crash if one came.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SCENARIO_SKIP_CONSISTENCY_CHECKS", "1")
        _assert_active_or_blocked_naming_an_option(config)
