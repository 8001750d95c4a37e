"""Small helpers the flask_k8s interface libraries share for reading and writing relation data.

Remote data (another application's databags, and peer data other units wrote) is untrusted:
`parse_json` is the one way our code decodes it. It never raises anything but `MalformedDataError`,
whatever the value (deep nesting, huge size, wrong types), so a bad value can be logged and
skipped instead of failing every hook.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections.abc import Mapping
from typing import Any

import ops

logger = logging.getLogger(__name__)


def update(databag: ops.RelationDataContent, wanted: Mapping[str, str]) -> None:
    """Write only the keys whose value differs, so a no-op event leaves the relation quiet."""
    for key, value in wanted.items():
        if databag.get(key) != value:
            databag[key] = value


def bind_address(charm: ops.CharmBase, relation: ops.Relation) -> str | None:
    """This unit's address on `relation`, or None while the pod has none yet."""
    try:
        binding = charm.model.get_binding(relation)
        address = binding.network.bind_address if binding else None
    except ops.ModelError as exc:  # network-get can fail while the pod is starting
        logger.info("no bind address yet on %s: %s", relation.name, exc)
        return None
    return str(address) if address is not None else None


# Bigger than any value our interfaces carry; bounds the work a hostile value can cause.
MAX_VALUE_CHARS = 64 * 1024
# Longer URLs are refused: a URL ends up in an environment variable and a log target.
MAX_URL_CHARS = 2048


class MalformedDataError(ValueError):
    """A remote value could not be decoded; the message says why, without echoing it."""


def parse_json(raw: str, *, max_chars: int = MAX_VALUE_CHARS) -> Any:
    """Decode a JSON value from relation data; raise MalformedDataError, never anything else."""
    if not isinstance(raw, str):
        raise MalformedDataError(f"not a string but {type(raw).__name__}")
    if len(raw) > max_chars:
        raise MalformedDataError(f"{len(raw)} characters, more than {max_chars}")
    try:
        return json.loads(raw)
    except RecursionError:  # `[[[[…` deeper than the interpreter's stack
        raise MalformedDataError("JSON nested too deeply") from None
    except (ValueError, TypeError) as exc:
        raise MalformedDataError(f"not JSON ({exc.__class__.__name__})") from None


def describe(raw: object, limit: int = 80) -> str:
    """A short, printable rendering of an untrusted value, safe for a log line."""
    text = raw if isinstance(raw, str) else repr(raw)
    shown = repr(text[:limit])
    return shown + (f" (+{len(text) - limit} chars)" if len(text) > limit else "")


def url_field(raw: str | None) -> str | None:
    """The http(s) `url` of a JSON object such as `{"url": "http://…"}`, or None if malformed."""
    if not raw:
        return None
    try:
        value = parse_json(raw)
    except MalformedDataError:
        return None
    url = value.get("url") if isinstance(value, dict) else None
    if not isinstance(url, str) or len(url) > MAX_URL_CHARS or not url.isprintable():
        return None
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:  # e.g. a malformed IPv6 host
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or " " in url:
        return None
    return url
