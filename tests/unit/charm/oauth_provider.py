"""The provider side of the oauth relation, played by the identity team's packaged library.

`oauth_provider` runs `charmlibs.interfaces.oauth.OAuthProvider` in a small provider charm
under ops.testing, as hydra does: its app databag already holds the server's endpoints; fed
what our charm wrote, the library validates it against the interface's JSON schema and, if
valid, asks the charm to create a client, whose id and secret (in a secret granted over the
relation) it publishes. What it writes is then handed to our charm as the remote side.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import ops
from charmlibs.interfaces.oauth import ClientCreatedEvent, OAuthProvider
from ops import testing

from tests.unit.charm.provider_answer import granted_secret

ISSUER = "https://iam.example.com"
ENDPOINTS = {
    "issuer_url": ISSUER,
    "authorization_endpoint": f"{ISSUER}/oauth2/auth",
    "token_endpoint": f"{ISSUER}/oauth2/token",
    "introspection_endpoint": f"{ISSUER}/admin/oauth2/introspect",
    "userinfo_endpoint": f"{ISSUER}/userinfo",
    "jwks_endpoint": f"{ISSUER}/.well-known/jwks.json",
    "scope": "openid profile email phone",
}


@dataclasses.dataclass(frozen=True)
class Answer:
    """What the provider publishes, the secret as granted to us, and the client it registered."""

    app_data: dict[str, str]
    secret: testing.Secret | None
    client: dict[str, object]


class _Hydra(ops.CharmBase):
    """hydra reduced to its relation handling: it registers every valid client."""

    client_secret = ""
    seen: dict[str, object] = {}  # replaced per run: the client the library asked for

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.oauth = OAuthProvider(self)
        framework.observe(self.oauth.on.client_created, self._on_client_created)

    def _on_client_created(self, event: ClientCreatedEvent) -> None:
        self.seen.update(
            redirect_uri=event.redirect_uri,
            scope=event.scope,
            grant_types=event.grant_types,
            audience=event.audience,
            token_endpoint_auth_method=event.token_endpoint_auth_method,
        )
        self.oauth.set_client_credentials_in_relation_data(
            event.relation_id, "client-1234", self.client_secret
        )


def oauth_provider(request: Mapping[str, str], *, client_secret: str = "s3cret") -> Answer:
    """Let OAuthProvider answer `request` (our app databag)."""
    meta = {"name": "hydra", "provides": {"oauth": {"interface": "oauth"}}}
    seen: dict[str, object] = {}
    charm = type("Hydra", (_Hydra,), {"client_secret": client_secret, "seen": seen})
    ctx = testing.Context(charm, meta=meta)
    relation = testing.Relation(
        "oauth",
        remote_app_name="flask-k8s",
        remote_app_data=dict(request),
        local_app_data=dict(ENDPOINTS),
    )
    out = ctx.run(
        ctx.on.relation_changed(relation, remote_unit=0),
        testing.State(leader=True, relations={relation}),
    )
    app_data = dict(out.get_relation(relation.id).local_app_data)
    secret = granted_secret(out, app_data.get("client_secret_id"))
    return Answer(app_data, secret, seen)
