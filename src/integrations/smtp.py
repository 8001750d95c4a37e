"""The `smtp` endpoint (interface `smtp`, as smtp-integrator provides it).

Wire format (the smtp-integrator's library, v0): we publish nothing. The provider's app databag
holds `host`, `port`, `auth_type` (`none`, `not_provided` or `plain`), `transport_security`
(`none`, `starttls` or `tls`), and optionally `user`, `domain`, `skip_ssl_verify` (`True` or
`False`, Python's spelling) and the password: `password_id` = the id of a secret (granted to us)
whose `password` field holds it, or, from providers without secrets, a plain `password`.

The variables are paas-charm's: `SMTP_HOST`, `SMTP_PORT`, `SMTP_SKIP_SSL_VERIFY` (`True` or
`False`), and when set `SMTP_USER`, `SMTP_PASSWORD`, `SMTP_DOMAIN`, `SMTP_AUTH_TYPE` and
`SMTP_TRANSPORT_SECURITY` (those two are left out when `none`, as paas-charm does).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import ops

from charms.flask_k8s.v0.database_requires import (
    BadDataError,
    NotReadyError,
    provider_app_data,
    secret_content,
)

ENDPOINT = "smtp"
ENV_PREFIX = "SMTP_"
REQUIRED = ("host", "port", "auth_type", "transport_security")
AUTH_TYPES = ("none", "not_provided", "plain")
TRANSPORT_SECURITIES = ("none", "starttls", "tls")
# A DNS name or an IP address (v4, or v6 with or without brackets): nothing else.
_HOST = re.compile(r"^[A-Za-z0-9._-]{1,253}$|^\[?[0-9A-Fa-f:.]{2,45}\]?$")
MAX_CHARS = 1024


@dataclass(frozen=True)
class SmtpData:
    """Where and how to send mail."""

    host: str
    port: int
    auth_type: str
    transport_security: str
    skip_ssl_verify: bool = False
    user: str | None = None
    password: str | None = None
    domain: str | None = None


def read(charm: ops.CharmBase, relation: ops.Relation) -> SmtpData:
    """The relay the provider published (NotReadyError/BadDataError until usable)."""
    name = relation.name
    remote = provider_app_data(relation)
    missing = [field for field in REQUIRED if not remote.get(field)]
    if missing:
        raise NotReadyError(f"waiting for the {name} relation to publish its {', '.join(missing)}")
    host, port = remote["host"], remote["port"]
    if not _HOST.match(host) or not port.isdigit() or not 0 < int(port) < 65536:
        raise _invalid("host or port", name)
    auth_type, security = remote["auth_type"], remote["transport_security"]
    if auth_type not in AUTH_TYPES:
        raise _invalid("auth_type", name, f"want one of {', '.join(AUTH_TYPES)}")
    if security not in TRANSPORT_SECURITIES:
        raise _invalid(
            "transport_security", name, f"want one of {', '.join(TRANSPORT_SECURITIES)}"
        )
    password = _password(charm.model, remote, name)
    user = _optional(remote, "user", name)
    if auth_type == "plain" and not (user and password):
        raise _invalid("login", name, "auth_type plain needs a user and a password")
    return SmtpData(
        host=host,
        port=int(port),
        auth_type=auth_type,
        transport_security=security,
        skip_ssl_verify=_flag(remote.get("skip_ssl_verify"), name),
        user=user,
        password=password,
        domain=_optional(remote, "domain", name),
    )


def env(value: SmtpData) -> dict[str, str]:
    """The `SMTP_*` variables."""
    variables = {
        "SMTP_HOST": value.host,
        "SMTP_PORT": str(value.port),
        "SMTP_SKIP_SSL_VERIFY": str(value.skip_ssl_verify),
    }
    optional = {
        "SMTP_USER": value.user,
        "SMTP_PASSWORD": value.password,
        "SMTP_DOMAIN": value.domain,
        "SMTP_AUTH_TYPE": value.auth_type if value.auth_type != "none" else None,
        "SMTP_TRANSPORT_SECURITY": (
            value.transport_security if value.transport_security != "none" else None
        ),
    }
    variables.update((key, text) for key, text in optional.items() if text)
    return variables


def _password(model: ops.Model, remote: ops.RelationDataContent, name: str) -> str | None:
    secret_id = remote.get("password_id")
    if not secret_id:
        return _optional(remote, "password", name)
    password = secret_content(model, secret_id, name).get("password")
    if not password:
        raise _invalid("password secret", name, "it has no password field")
    return _checked(password, "password", name)


def _flag(raw: str | None, name: str) -> bool:
    if not raw:
        return False
    if raw.lower() not in ("true", "false"):
        raise _invalid("skip_ssl_verify", name, "want True or False")
    return raw.lower() == "true"


def _optional(remote: ops.RelationDataContent, field: str, name: str) -> str | None:
    value = remote.get(field)
    return _checked(value, field, name) if value else None


def _checked(value: str, field: str, name: str) -> str:
    if not value.isprintable() or len(value) > MAX_CHARS:
        raise _invalid(field, name)
    return value


def _invalid(field: str, name: str, want: str = "") -> BadDataError:
    # Never the value itself: it may be the password, and status messages are public.
    want = f" ({want})" if want else ""
    return BadDataError(
        f"the {name} relation published an invalid {field}{want}: fix the provider's "
        f"settings, or remove the relation"
    )
