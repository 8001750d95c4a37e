"""Typed charm configuration.

`load()` turns Juju's raw config mapping into a frozen `FlaskConfig`, or raises
`InvalidConfigError` whose message names every invalid option and why, ready to be the Blocked
status. This module imports pydantic, which costs about 0.1-0.2 s: the charm imports it only on
paths that read config.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

import pydantic
from pydantic import AfterValidator, ConfigDict, Field, StringConstraints
from pydantic_core import PydanticCustomError

_STRICT = ConfigDict(frozen=True, strict=True, extra="ignore", populate_by_name=False)

DEFAULT_MIGRATION_TIMEOUT = 300

# Every bound is what the app can really take, so that a value that validates also runs.
# Each FLASK_* string becomes one environment variable: the kernel refuses to start a process
# with a variable over 128 KiB (MAX_ARG_STRLEN), and JSON-quoting (`workload.env_value`) can
# grow a string up to 6 times, so strings stay far below that.
MAX_WORKERS = 128  # processes: beyond this, memory runs out long before throughput grows
MAX_THREADS = 256  # per worker
MAX_WEBSERVER_TIMEOUT = 3600
MAX_KEEPALIVE = 600
# Flask adds the lifetime to the current time for every session cookie: beyond datetime's
# year 9999 it overflows and every request with a session answers 500. 100 years is far
# below that, and beyond any browser's own cap on cookie lifetimes.
MAX_SESSION_LIFETIME = 100 * 365 * 24 * 3600
MAX_ENV_CHARS = 256
MAX_SECRET_KEY_CHARS = 4096
MAX_PATH_CHARS = 2048


def _no_nul(value: str) -> str:
    # A NUL cannot be passed in an environment variable: Pebble could not start the app.
    if "\x00" in value:
        raise PydanticCustomError("nul_char", "must not contain NUL characters")
    return value


_NoNul = AfterValidator(_no_nul)
_EnvText = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ENV_CHARS), _NoNul]
_KeyText = Annotated[str, StringConstraints(min_length=1, max_length=MAX_SECRET_KEY_CHARS), _NoNul]
_SecretUri = Annotated[
    str, StringConstraints(max_length=MAX_PATH_CHARS, pattern=r"^secret:\S+$"), _NoNul
]
_UrlPath = Annotated[str, StringConstraints(max_length=MAX_PATH_CHARS, pattern=r"^/\S*$"), _NoNul]


_Workers = Annotated[int, Field(ge=1, le=MAX_WORKERS)]
_Threads = Annotated[int, Field(ge=1, le=MAX_THREADS)]


class InvalidConfigError(Exception):
    """The charm config holds invalid values; the message names each option."""

    def __init__(self, problems: dict[str, str]):
        self.problems = problems
        listing = "; ".join(f"{name}: {why}" for name, why in sorted(problems.items()))
        super().__init__(f"invalid config: {listing}")


class FlaskConfig(pydantic.BaseModel):
    """The charm's configuration, as the operator set it (None = unset)."""

    model_config = _STRICT

    worker_type: Literal["sync", "gevent", "gthread"] | None = Field(None, alias="worker-type")
    webserver_workers: _Workers | None = Field(None, alias="webserver-workers")
    webserver_threads: _Threads | None = Field(None, alias="webserver-threads")
    webserver_timeout: Annotated[int, Field(ge=0, le=MAX_WEBSERVER_TIMEOUT)] | None = Field(
        None, alias="webserver-timeout"
    )
    webserver_keepalive: Annotated[int, Field(ge=0, le=MAX_KEEPALIVE)] | None = Field(
        None, alias="webserver-keepalive"
    )
    flask_env: _EnvText | None = Field(None, alias="flask-env")
    flask_debug: bool | None = Field(None, alias="flask-debug")
    flask_secret_key: _KeyText | None = Field(None, alias="flask-secret-key")
    flask_secret_key_id: _SecretUri | None = Field(None, alias="flask-secret-key-id")
    flask_permanent_session_lifetime: (
        Annotated[int, Field(ge=1, le=MAX_SESSION_LIFETIME)] | None
    ) = Field(None, alias="flask-permanent-session-lifetime")
    flask_preferred_url_scheme: Literal["HTTP", "HTTPS"] = Field(
        "HTTPS", alias="flask-preferred-url-scheme"
    )
    flask_application_root: _UrlPath | None = Field(None, alias="flask-application-root")
    flask_session_cookie_secure: bool | None = Field(None, alias="flask-session-cookie-secure")
    migration_timeout: Annotated[int, Field(ge=1, le=86400)] = Field(
        DEFAULT_MIGRATION_TIMEOUT, alias="migration-timeout"
    )

    @pydantic.field_validator("flask_preferred_url_scheme", mode="before")
    @classmethod
    def _upper_scheme(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @pydantic.field_validator(
        "flask_env", "flask_secret_key", "flask_application_root", mode="before"
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    def gunicorn_settings(self) -> dict[str, int]:
        """Gunicorn settings the operator set, by Gunicorn's own setting names."""
        settings = {
            "workers": self.webserver_workers,
            "threads": self.webserver_threads,
            "timeout": self.webserver_timeout,
            "keepalive": self.webserver_keepalive,
        }
        return {name: value for name, value in settings.items() if value is not None}


# Operator-facing reasons, by pydantic error type: pydantic's own wording names Python types.
_REASONS = {
    "literal_error": "must be one of {expected}",
    "int_type": "must be an integer",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "greater_than_equal": "must be at least {ge}",
    "less_than_equal": "must be at most {le}",
    "string_too_short": "must not be empty",
    "string_too_long": "must be at most {max_length} characters",
}
_PATTERN_REASONS = {
    "flask-secret-key-id": "must be a Juju secret URI such as secret:cu7fjf6qo2sc76nkn6hg",
    "flask-application-root": "must be a path starting with / and holding no spaces",
}


def _reason(error: Any) -> str:
    """Say why one value is invalid, in words an operator can act on."""
    option = str(error["loc"][0]) if error["loc"] else ""
    kind = error["type"]
    if kind == "string_pattern_mismatch":
        return _PATTERN_REASONS.get(option, "has an invalid format")
    template = _REASONS.get(kind)
    if template is None:
        return error["msg"]
    context = {k: str(v).replace("'", "") for k, v in (error.get("ctx") or {}).items()}
    try:
        return template.format(**context)
    except KeyError:
        return error["msg"]


def load(raw: Mapping[str, Any]) -> FlaskConfig:
    """Validate Juju's raw config; raise InvalidConfigError naming every invalid option."""
    try:
        return FlaskConfig.model_validate(dict(raw))
    except pydantic.ValidationError as exc:
        problems: dict[str, str] = {}
        for error in exc.errors():
            option = str(error["loc"][0]) if error["loc"] else "config"
            # Union members each report an error; the first one says it best.
            problems.setdefault(option, _reason(error))
        raise InvalidConfigError(problems) from None
