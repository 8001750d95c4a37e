"""`juju-local integrate s3`: moto's S3 server, and the s3-integrator's side of the relation.

The server runs from `.cache/servers-venv` as `nobody` on a free port of 127.0.0.1 (see
`venv_server`), its pid and log in `<state>/databases/s3/`; it keeps objects in memory until
`remove`. It checks every request's signature: when it starts, an admin user is created
(its keys in `admin.json` there, readable by root only), and each relation gets its own IAM user
`relation-<id>` allowed only on its bucket.

The provider's side, as a v1 `s3` provider answers: it creates the bucket our app asked for
(`bucket`), and publishes `bucket`, `endpoint`, `region`, `s3-uri-style: path` and
`s3-api-version: 4`, with the keys in a secret it owns and grants to us (`secret-extra`, content
`access-key` and `secret-key`) when our app sent `requested-secrets`, else as plain fields.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from juju_local import provider_relations, venv_server
from juju_local.databases import DatabaseError

if TYPE_CHECKING:
    from juju_local.deployment import Deployment

REGION = "us-east-1"


class S3Server(venv_server.VenvServer):
    """moto's server, authenticating every request against its IAM users."""

    kind = endpoint = interface = "s3"
    app = "s3-integrator"

    @property
    def url(self) -> str:
        """Where it serves."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_path(self) -> Path:
        """The admin user's keys (created when the server starts)."""
        return self.dir / "admin.json"

    def start(self) -> None:
        """Start it unless it runs; a new server (empty memory) gets a new admin user."""
        if self.pid() is not None:
            return
        self.admin_path.unlink(missing_ok=True)
        super().start()
        keys = self._s3_admin({"action": "bootstrap"})
        self.admin_path.touch(mode=0o600)
        if os.getuid() == 0:
            os.chown(self.admin_path, 0, 0)
        self.admin_path.write_text(json.dumps(keys))

    def provision(self, user: str, bucket: str) -> dict[str, str]:
        """A user with a new key pair, allowed only on `bucket` (created if missing)."""
        admin = json.loads(self.admin_path.read_text())
        return self._s3_admin(
            {"action": "provision", "user": user, "bucket": bucket, "keys": admin}
        )

    def get_object(self, keys: dict[str, str], bucket: str, key: str) -> str:
        """An object's content, read with `keys` (for tests: what the app stored)."""
        request = {"action": "get", "keys": keys, "bucket": bucket, "key": key}
        return self._s3_admin(request)["body"]

    def _s3_admin(self, request: dict) -> dict:
        return venv_server.run_main(["s3-admin"], {**request, "endpoint": self.url})


def answer(deployment: Deployment, server: S3Server, relation_id: int) -> None:
    """Create the bucket our app asked for and publish it, with the keys, as s3-integrator does."""
    model = deployment.model
    app = model.state().app
    request = model.relation(relation_id).app_data.get(app, {})
    bucket = request.get("bucket")
    if not bucket:
        return  # nothing asked for yet: the provider waits
    keys = server.provision(f"relation-{relation_id}", bucket)
    published = {
        "bucket": bucket,
        "endpoint": server.url,
        "region": REGION,
        "s3-uri-style": "path",
        "s3-api-version": "4",
    }
    if "requested-secrets" in request:
        label = f"s3.{relation_id}.extra.secret"
        published["secret-extra"] = provider_relations.grant_secret(
            model, server.app, label, keys, relation_id
        )
    else:
        published.update(keys)
    model.set_remote_app_data(relation_id, published)


def published_keys(deployment: Deployment, relation_id: int) -> dict[str, str]:
    """The keys the provider published on the relation (from its secret, or plain)."""
    relation = deployment.model.relation(relation_id)
    data = relation.app_data.get(relation.remote_app, {})
    if data.get("secret-extra"):
        return dict(deployment.model.secret(data["secret-extra"]).latest.content)
    if "access-key" in data:
        return {key: data[key] for key in ("access-key", "secret-key")}
    raise DatabaseError(f"the s3 relation {relation_id} has no keys published")
