"""The Flask secret key: the operator's, or one the leader generates and shares.

The generated key lives in an application-owned Juju secret (content key `value`); the secret's
id (not secret) sits in the `secret-storage` peer application databag so every unit can find it.
The key itself is never written to a databag or a log.

Units of the owning application get no `secret-changed` when the leader sets new content, so a
rotation also bumps `secret-key-generation` in the peer databag: the other units see
relation-changed, reconcile, and read the new revision.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

import ops

from status import StatusError

if TYPE_CHECKING:
    from config import FlaskConfig

PEER = "secret-storage"
SECRET_ID_KEY = "secret-key-id"
GENERATION_KEY = "secret-key-generation"


class SecretKeyError(StatusError):
    """No usable key; `status` tells the operator why and what to do."""


class SecretKey:
    """Find, generate and rotate the app's Flask secret key."""

    def __init__(self, charm: ops.CharmBase):
        self._model = charm.model
        self._app = charm.app
        self._unit = charm.unit
        # Juju commits a new secret or revision only when the hook ends: remember what we set.
        self._just_set: str | None = None

    def get(self, cfg: FlaskConfig) -> str:
        """Return the key to use; raise SecretKeyError if there is none."""
        if cfg.flask_secret_key and cfg.flask_secret_key_id:
            raise SecretKeyError(
                ops.BlockedStatus(
                    "flask-secret-key and flask-secret-key-id are both set: keep one, e.g. "
                    f"juju config {self._app.name} --reset flask-secret-key"
                )
            )
        if cfg.flask_secret_key:
            return cfg.flask_secret_key
        if cfg.flask_secret_key_id:
            return self._user_key(cfg.flask_secret_key_id)
        return self._generated_key()

    def source(self, cfg: FlaskConfig) -> str | None:
        """Name the key's current revision without reading a secret (None: nothing to name).

        A user secret's new revision comes with secret-changed; a rotation of the generated
        key bumps the generation in the peer databag. So while this name stays the same, so
        does the key, and the charm may reuse the key it already put in the plan.
        """
        if cfg.flask_secret_key:
            return None  # from config: no secret to read
        if cfg.flask_secret_key_id:
            return f"user {cfg.flask_secret_key_id}"
        peer = self._model.get_relation(PEER)
        secret_id = peer.data[self._app].get(SECRET_ID_KEY) if peer else None
        if peer is None or not secret_id:
            return None
        return f"generated {secret_id} {peer.data[self._app].get(GENERATION_KEY) or 0}"

    def rotate(self) -> None:
        """Give the generated key new content (leader only); raise SecretKeyError if none yet."""
        peer = self._model.get_relation(PEER)
        secret_id = peer.data[self._app].get(SECRET_ID_KEY) if peer else None
        if peer is None or not secret_id:
            msg = "no secret key has been generated yet; wait for the leader to settle"
            raise SecretKeyError(ops.WaitingStatus(msg))
        key = secrets.token_urlsafe(32)
        self._model.get_secret(id=secret_id).set_content({"value": key})
        self._just_set = key
        generation = int(peer.data[self._app].get(GENERATION_KEY) or 0) + 1
        peer.data[self._app][GENERATION_KEY] = str(generation)

    def _user_key(self, secret_id: str) -> str:
        try:
            content = self._model.get_secret(id=secret_id).get_content(refresh=True)
        except ops.ModelError:  # includes SecretNotFoundError; also "permission denied"
            raise SecretKeyError(
                ops.BlockedStatus(
                    f"flask-secret-key-id: secret {secret_id} not found or not granted: "
                    f"juju grant-secret {secret_id} {self._app.name}"
                )
            ) from None
        if not content.get("value"):
            raise SecretKeyError(
                ops.BlockedStatus(
                    f"flask-secret-key-id: secret {secret_id} has no `value` key: "
                    f"juju update-secret {secret_id} value=<key>"
                )
            )
        return content["value"]

    def _generated_key(self) -> str:
        if self._just_set:
            return self._just_set
        peer = self._model.get_relation(PEER)
        if peer is None:
            raise SecretKeyError(ops.WaitingStatus(f"waiting for the {PEER} peer relation"))
        secret_id = peer.data[self._app].get(SECRET_ID_KEY)
        if secret_id:
            try:
                return self._model.get_secret(id=secret_id).get_content(refresh=True)["value"]
            except (ops.ModelError, KeyError):
                if not self._unit.is_leader():
                    msg = "waiting for the leader to repair the generated secret key"
                    raise SecretKeyError(ops.WaitingStatus(msg)) from None
                # The leader replaces a secret that vanished or lost its `value`.
        elif not self._unit.is_leader():
            msg = "waiting for the leader to generate the secret key"
            raise SecretKeyError(ops.WaitingStatus(msg))
        key = secrets.token_urlsafe(32)
        secret = self._app.add_secret({"value": key}, description="Flask secret key")
        peer.data[self._app][SECRET_ID_KEY] = secret.id or ""
        self._just_set = key
        return key
