"""The one-relation-per-endpoint rule each emulated provider keeps (integrate, remove)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from juju_local.model import Model, Relation


def require_unrelated(model: Model, endpoint: str, error: type[Exception]) -> None:
    """Raise `error` if `endpoint` already has its one relation."""
    if model.relations(endpoint):
        raise error(f"{endpoint} is already related (limit 1): remove-relation first")


def the_relation(model: Model, endpoint: str, error: type[Exception]) -> Relation:
    """The relation on `endpoint` (there is at most one); `error` if there is none."""
    relations = model.relations(endpoint)
    if not relations:
        raise error(f"nothing is related on {endpoint}: integrate it first")
    return relations[0]
