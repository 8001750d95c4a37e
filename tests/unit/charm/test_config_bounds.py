"""Every option is bounded by what the app can take.

Beyond a bound, Blocked names the option and the running app keeps serving.
"""

from __future__ import annotations

import dataclasses
import datetime

import pytest
from ops import testing

import config
import workload
from tests.unit.charm.test_charm import run, settled_state

MAX_ARG_STRLEN = 131072  # the kernel's limit for one argv or environment string, NUL included

# option: (largest valid value, smallest invalid value above it)
BOUNDS = {
    "webserver-workers": (config.MAX_WORKERS, config.MAX_WORKERS + 1),
    "webserver-threads": (config.MAX_THREADS, config.MAX_THREADS + 1),
    "webserver-timeout": (config.MAX_WEBSERVER_TIMEOUT, config.MAX_WEBSERVER_TIMEOUT + 1),
    "webserver-keepalive": (config.MAX_KEEPALIVE, config.MAX_KEEPALIVE + 1),
    "flask-permanent-session-lifetime": (
        config.MAX_SESSION_LIFETIME,
        86_399_999_999_999 + 1,  # the value: Flask answers 500 with a session
    ),
    "flask-env": ("e" * config.MAX_ENV_CHARS, "e" * (config.MAX_ENV_CHARS + 1)),
    "flask-secret-key": (
        "k" * config.MAX_SECRET_KEY_CHARS,
        "k" * (128 * 1024 + 1),  # the value: over MAX_ARG_STRLEN, Pebble cannot start
    ),
    "flask-application-root": (
        "/" + "a" * (config.MAX_PATH_CHARS - 1),
        "/" + "a" * config.MAX_PATH_CHARS,
    ),
}


@pytest.mark.parametrize("option", sorted(BOUNDS))
def test_largest_valid_value_is_accepted(option):
    largest, _ = BOUNDS[option]
    config.load({option: largest})


@pytest.mark.parametrize("option", sorted(BOUNDS))
def test_beyond_the_bound_blocks_naming_the_option_and_the_app_keeps_serving(
    ctx, charm_dir, calls, option
):
    served = run(ctx, "pebble_ready", settled_state(charm_dir))
    plan = served.get_container("flask-app").plan.to_dict()
    calls.clear()

    _, too_big = BOUNDS[option]
    out = run(ctx, "config_changed", dataclasses.replace(served, config={option: too_big}))

    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert out.unit_status.message.startswith(f"invalid config: {option}: must be at most")
    assert len(out.unit_status.message) < 200  # the value itself is never echoed
    assert out.get_container("flask-app").plan.to_dict() == plan
    assert calls.log == []  # no restart, no reload, no push: the app keeps serving


@pytest.mark.parametrize("option", ["flask-env", "flask-secret-key", "flask-application-root"])
def test_nul_in_a_string_blocks_naming_the_option(option):
    with pytest.raises(config.InvalidConfigError, match=f"{option}: must not contain NUL"):
        config.load({option: "/a\x00b"})


def test_longest_session_lifetime_does_not_overflow_a_cookie_expiry():
    # Flask sets a permanent session's cookie to expire at now + lifetime.
    expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(
        seconds=config.MAX_SESSION_LIFETIME
    )
    assert expires.year < 9000


@pytest.mark.parametrize(
    "value",
    [
        "k" * config.MAX_SECRET_KEY_CHARS,
        # JSON that Flask would read as a list: quoted with every non-ASCII char escaped (an
        # emoji grows from 1 character to 12 bytes).
        '["' + "\U0001f600" * (config.MAX_SECRET_KEY_CHARS - 4) + '"]',
        '"' + '\\"' * ((config.MAX_SECRET_KEY_CHARS - 2) // 2) + '"',
    ],
)
def test_longest_strings_fit_in_one_environment_variable(value):
    assert len(value) <= config.MAX_SECRET_KEY_CHARS
    encoded = f"FLASK_SECRET_KEY={workload.env_value(value)}".encode() + b"\0"
    assert len(encoded) <= MAX_ARG_STRLEN
