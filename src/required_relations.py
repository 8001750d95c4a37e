"""Relations the app cannot run without: `requires` endpoints not marked `optional: true`.

Juju's metadata (and ops, `RelationMeta.optional`) make an endpoint required unless it says
`optional: true`; Juju itself enforces nothing, so the charm does: while one has no relation,
the app is not started (Blocked, with the `juju integrate` hint). An app already serving when
such a relation is removed keeps serving as it was (nothing is applied until the relation is
back) so that a mistaken `juju remove-relation` does not take the site down; status says
Blocked meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterable

import ops

import app_options


def missing(charm: ops.CharmBase, related_registered: Iterable[str], registered: Iterable[str]):
    """The required endpoints without a relation, by name.

    `related_registered`: the integrations' endpoints known to have a relation (remembered
    between hooks, see `integrations.RelatedEndpoints`); other endpoints are asked of Juju.
    """
    related, known = set(related_registered), set(registered)
    names = []
    for name, relation in charm.meta.requires.items():
        if relation.optional:
            continue
        has = name in related if name in known else bool(charm.model.relations.get(name))
        if not has:
            names.append(name)
    return sorted(names)


def hint(charm: ops.CharmBase, endpoints: Iterable[str]) -> str:
    """`juju integrate` hints for required endpoints without a relation."""
    endpoints = list(endpoints)
    hints = []
    for name in endpoints[: app_options.MAX_LISTED]:
        interface = charm.meta.requires[name].interface_name
        hints.append(f"juju integrate {charm.app.name}:{name} <{interface} provider>")
    return f"missing required relation(s) {app_options.listing(endpoints)}: {'; '.join(hints)}"
