"""More than one unit: `juju add-unit` and `juju remove-unit`, as Juju runs them on Kubernetes.

Each unit is a pod of its own: its own workload container (Pebble as pid 1) in its own network
namespace (`network`), and its own copy of the charm with its own `.unit-state.db`, dispatched
as that unit. Hooks run one unit at a time.

- A new unit: install, `<peer>-relation-created`, config-changed, start, pebble-ready, and
  created/joined/changed for the relations the application already has; then it and every
  other unit see each other join the peer relation (joined, changed) with per-unit databags.
- A removed unit: leaves its peers (`-relation-departed` for each other unit), then stop and
  remove; its pod, namespace and state go; the others see it depart. When it led, the lowest
  remaining unit is elected (`leader-elected`), as Juju does once the lease runs out.
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

from juju_local import charm_stage
from juju_local.model import Relation

if TYPE_CHECKING:
    from juju_local.deployment import Deployment


def add_unit(deployment: Deployment) -> str:
    """Add a unit in a new pod, run its deploy hooks and the peers' joins; its name."""
    from juju_local.deployment import CONTAINER, unit_number

    deployment.require_pod()
    template = deployment.charm_dir(deployment.leader)  # the revision the others run
    name = deployment.model.add_unit()
    number = unit_number(name)
    try:
        address = deployment.network.create(number)
    except Exception:
        deployment.model.remove_unit(name)
        raise
    with deployment.model.transaction() as state:
        state.unit(name).address = address
    charm_stage.clone(template, deployment.charm_dir(name))
    deployment.pod(number).start(deployment.charm_uid())
    relations = deployment.model.relations()
    peers = [relation for relation in relations if relation.peer]
    events: list[tuple[str, dict]] = [("install", {})]
    for relation in peers:
        events.append((f"{relation.endpoint}-relation-created", {"relation_id": relation.id}))
    events += [("config-changed", {}), ("start", {}), (f"{CONTAINER}-pebble-ready", {})]
    for relation in relations:
        if not relation.peer:
            events += _joins_of_existing(relation)
    for event, context in events:
        deployment.fire(event, unit=name, **context)
    others = [other for other in deployment.unit_names() if other != name]
    for relation in peers:
        for other in others:
            _join(deployment, relation, unit=name, remote=other)
            _join(deployment, relation, unit=other, remote=name)
    return name


def remove_unit(deployment: Deployment, name: str) -> None:
    """Remove `name`: it departs its peers and stops; its pod goes; a new leader if it led."""
    from juju_local.deployment import DeploymentError, unit_number

    names = deployment.unit_names()
    if name not in names:
        raise DeploymentError(f'unit "{name}" not found (units: {", ".join(names)})')
    if len(names) == 1:
        raise DeploymentError(f"{name} is the last unit: `remove` removes the application")
    others = [other for other in names if other != name]
    peers = [relation for relation in deployment.model.relations() if relation.peer]
    number = unit_number(name)
    if deployment.pod(number).running:
        for relation in peers:
            for other in others:
                deployment.fire(
                    f"{relation.endpoint}-relation-departed",
                    unit=name,
                    relation_id=relation.id,
                    remote_unit=other,
                    departing_unit=name,
                )
        for event in ("stop", "remove"):
            deployment.fire(event, unit=name)
    deployment.pod(number).stop()
    deployment.network.delete(number)
    was_leader = deployment.model.remove_unit(name)
    _forget(deployment, number)
    for relation in peers:
        for other in others:
            deployment.fire(
                f"{relation.endpoint}-relation-departed",
                unit=other,
                relation_id=relation.id,
                remote_unit=name,
            )
    if was_leader:
        deployment.model.set_leader(others[0])
        deployment.fire("leader-elected", unit=others[0])


def _joins_of_existing(relation: Relation) -> list[tuple[str, dict]]:
    """What a new unit sees of a relation its application already has."""
    events: list[tuple[str, dict]] = [
        (f"{relation.endpoint}-relation-created", {"relation_id": relation.id})
    ]
    for remote in relation.remote_units:
        for kind in ("joined", "changed"):
            context = {"relation_id": relation.id, "remote_unit": remote}
            events.append((f"{relation.endpoint}-relation-{kind}", context))
    return events


def _join(deployment: Deployment, relation: Relation, *, unit: str, remote: str) -> None:
    for kind in ("joined", "changed"):
        deployment.fire(
            f"{relation.endpoint}-relation-{kind}",
            unit=unit,
            relation_id=relation.id,
            remote_unit=remote,
        )


def _forget(deployment: Deployment, number: int) -> None:
    """Delete a removed unit's charm copy and pod state."""
    if number:
        shutil.rmtree(deployment.unit_dir(number), ignore_errors=True)
    else:  # unit 0 lives at the top of the state directory
        for name in ("charm", "pod"):
            shutil.rmtree(deployment.state_dir / name, ignore_errors=True)
