"""What every emulated provider does alike.

One relation per endpoint, the handshake's start, and credentials in a secret granted to our app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from juju_local.model import Secret, SecretRevision, new_secret_xid

if TYPE_CHECKING:
    from juju_local.deployment import Deployment
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


def relate(
    deployment: Deployment, endpoint: str, provider: str, interface: str, units: list[str]
) -> tuple[int, str]:
    """Add the relation to `provider` (with `units`) and fire created and joined for its unit 0.

    Returns the relation id and that unit's name, for the provider's answer and relation-changed.
    """
    unit = f"{provider}/0"
    relation_id = deployment.model.add_relation(endpoint, provider, units, interface)
    deployment.fire(f"{endpoint}-relation-created", relation_id=relation_id)
    deployment.fire(f"{endpoint}-relation-joined", relation_id=relation_id, remote_unit=unit)
    return relation_id, unit


def grant_secret(
    model: Model, owner: str, label: str, content: dict[str, str], relation_id: int
) -> str:
    """A new secret that provider app `owner` holds, granted to our app on the relation; its id."""
    with model.transaction() as state:
        secret = Secret(
            id=f"secret:{new_secret_xid()}",
            owner=owner,
            owner_kind="application",
            label=label,
            revisions=[SecretRevision(1, content)],
            grants={state.app: relation_id},
        )
        state.secrets.append(secret)
    return secret.id
