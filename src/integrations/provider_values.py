"""Checks the integrations share for what a provider publishes: plain fields and secrets.

Every message names the relation and never holds the value: a provider's value may be a
credential, and the messages end up in status and logs.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping

import ops

from charms.flask_k8s.v0.database_requires import BadDataError, NotReadyError, secret_content

MAX_URL_CHARS = 2048
MAX_VALUE_CHARS = 4096


FIX = "fix or replace the provider, or remove the relation"


def required(data: Mapping[str, str], keys: tuple[str, ...], relation_name: str) -> None:
    """NotReadyError naming the relation and the missing keys, unless all are set."""
    missing = [key for key in keys if not data.get(key)]
    if missing:
        raise NotReadyError(
            f"waiting for the {relation_name} relation to publish {', '.join(missing)}"
        )


def word(value: str, key: str, relation_name: str, max_chars: int = MAX_VALUE_CHARS) -> str:
    """A single printable word (an id, a token, a client id): BadDataError otherwise."""
    if len(value) > max_chars or not value.isprintable() or any(c.isspace() for c in value):
        raise BadDataError(f"the {relation_name} relation published an unusable {key}: {FIX}")
    return value


def url(value: str, key: str, relation_name: str, schemes: tuple[str, ...] = ()) -> str:
    """A URL with a host, of one of `schemes`; any scheme or none (`host:port`) without them.

    BadDataError otherwise.
    """
    word(value, key, relation_name, MAX_URL_CHARS)
    bare = not schemes and "://" not in value
    try:
        parts = urllib.parse.urlsplit("//" + value if bare else value)
        usable = bool(parts.hostname) and (not schemes or parts.scheme in schemes)
    except ValueError:  # e.g. a malformed IPv6 host
        usable = False
    if not usable:
        wanted = " or ".join(f"{scheme}://" for scheme in schemes) or "scheme://host"
        raise BadDataError(
            f"the {relation_name} relation published an invalid {key} (want a {wanted} URL): {FIX}"
        )
    return value


def secret_field(model: ops.Model, secret_id: str, field: str, relation_name: str) -> str:
    """The newest `field` of a secret the provider granted us (NotReady until it has)."""
    content = secret_content(model, secret_id, relation_name, what="secret")
    value = content.get(field)
    if not value:
        raise BadDataError(
            f"the secret the {relation_name} relation names has no {field!r}: {FIX}"
        )
    return value
