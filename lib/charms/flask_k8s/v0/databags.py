"""Small helpers the flask_k8s interface libraries share for writing relation data."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

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


def url_field(raw: str | None) -> str | None:
    """The http(s) `url` of a JSON object such as `{"url": "http://…"}`, or None if malformed."""
    if not raw:
        return None
    try:
        url = json.loads(raw).get("url")
    except (ValueError, AttributeError):
        return None
    if not isinstance(url, str) or not url.startswith(("http://", "https://")) or " " in url:
        return None
    return url
