"""The Flask secret key: the operator's, or one the leader generates and shares.

The generated key lives in an application-owned Juju secret (content key `value`); the secret's
id (not secret) sits in the `secret-storage` peer application databag so every unit can find it.
The key itself is never written to a databag or a log.

Units of the owning application get no `secret-changed` when the leader sets new content, so a
rotation also bumps `secret-key-generation` in the peer databag: the other units see
relation-changed, reconcile, and read the new revision.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING

import ops

from status import StatusError, operator_secret

if TYPE_CHECKING:
    from config import FlaskConfig

logger = logging.getLogger(__name__)

PEER = "secret-storage"
SECRET_ID_KEY = "secret-key-id"
GENERATION_KEY = "secret-key-generation"
# What Juju writes as a secret id (`secret:<xid>` or `secret://<model-uuid>/<xid>`), bounded.
_SECRET_ID = re.compile(r"secret:[A-Za-z0-9/_.:-]{1,256}")
# The key goes into FLASK_SECRET_KEY: far below the kernel's 128 KiB limit per variable.
MAX_KEY_CHARS = 4096


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
        secret_id = _secret_id(peer.data[self._app]) if peer else None
        if peer is None or not secret_id:
            msg = "no secret key has been generated yet; wait for the leader to settle"
            raise SecretKeyError(ops.WaitingStatus(msg))
        key = secrets.token_urlsafe(32)
        try:
            self._model.get_secret(id=secret_id).set_content({"value": key})
        except ops.ModelError:  # gone: the next reconcile generates a new one
            msg = "the generated secret key is missing; wait for the leader to replace it"
            raise SecretKeyError(ops.WaitingStatus(msg)) from None
        self._just_set = key
        generation = (_generation(peer.data[self._app]) or 0) + 1
        peer.data[self._app][GENERATION_KEY] = str(generation)

    def audit_peer_data(self) -> list[str]:
        """Name the malformed secret-key values of the peer data; the leader repairs them.

        A malformed `secret-key-id` is replaced by the leader with a new generated key (see
        `get`); a malformed generation counter is reset, which also tells the other units to
        re-read the key.
        """
        peer = self._model.get_relation(PEER)
        if peer is None:
            return []
        data = peer.data[self._app]
        problems = []
        if data.get(SECRET_ID_KEY) and _secret_id(data) is None:
            problems.append(f"{PEER}: malformed `{SECRET_ID_KEY}`")
        if data.get(GENERATION_KEY) and _generation(data) is None:
            problems.append(f"{PEER}: malformed `{GENERATION_KEY}`")
            if self._unit.is_leader():
                data[GENERATION_KEY] = "1"
        return problems

    def _user_key(self, secret_id: str) -> str:
        content = operator_secret(
            self._model, self._app.name, "flask-secret-key-id", secret_id, SecretKeyError
        )
        value = content.get("value")
        if not value:
            raise SecretKeyError(
                ops.BlockedStatus(
                    f"flask-secret-key-id: secret {secret_id} has no `value` key: "
                    f"juju update-secret {secret_id} value=<key>"
                )
            )
        if len(value) > MAX_KEY_CHARS or "\x00" in value:
            raise SecretKeyError(
                ops.BlockedStatus(
                    f"flask-secret-key-id: the `value` of secret {secret_id} must be at most "
                    f"{MAX_KEY_CHARS} characters, without NUL"
                )
            )
        return value

    def _generated_key(self) -> str:
        if self._just_set:
            return self._just_set
        peer = self._model.get_relation(PEER)
        if peer is None:
            raise SecretKeyError(ops.WaitingStatus(f"waiting for the {PEER} peer relation"))
        secret_id = _secret_id(peer.data[self._app])
        if secret_id:
            try:
                return self._model.get_secret(id=secret_id).get_content(refresh=True)["value"]
            except (ops.ModelError, KeyError):
                if not self._unit.is_leader():
                    msg = "waiting for the leader to repair the generated secret key"
                    raise SecretKeyError(ops.WaitingStatus(msg)) from None
                # The leader replaces a secret that vanished or lost its `value`.
        elif not self._unit.is_leader():  # (a malformed id is named by `audit_peer_data`)
            msg = "waiting for the leader to generate the secret key"
            raise SecretKeyError(ops.WaitingStatus(msg))
        key = secrets.token_urlsafe(32)
        secret = self._app.add_secret({"value": key}, description="Flask secret key")
        peer.data[self._app][SECRET_ID_KEY] = secret.id or ""
        self._just_set = key
        return key


def _secret_id(data: Mapping[str, str]) -> str | None:
    """The generated key's secret id from the peer data, or None when absent or malformed."""
    raw = data.get(SECRET_ID_KEY)
    if raw and _SECRET_ID.fullmatch(raw):
        return raw
    if raw:
        logger.warning("%s: ignoring malformed %s %r", PEER, SECRET_ID_KEY, raw[:80])
    return None


def _generation(data: Mapping[str, str]) -> int | None:
    """The rotation counter from the peer data (0 when absent), or None when malformed."""
    raw = data.get(GENERATION_KEY)
    if not raw:
        return 0
    if len(raw) <= 18 and raw.isascii() and raw.isdigit():
        return int(raw)
    logger.warning("%s: ignoring malformed %s %r", PEER, GENERATION_KEY, raw[:80])
    return None
