"""Reading a credentials secret that a provider owns and granted to us.

Its messages name the relation and never hold the secret's content.
"""

from __future__ import annotations

import logging

import ops

from charms.flask_k8s.v0.database_requires import BadDataError, NotReadyError

logger = logging.getLogger(__name__)


def content(model: ops.Model, secret_id: str, relation_name: str) -> dict[str, str]:
    """The secret's newest content (tracked, so a rotation fires secret-changed)."""
    try:
        return model.get_secret(id=secret_id).get_content(refresh=True)
    except ops.SecretNotFoundError:
        raise BadDataError(
            f"the credentials secret of the {relation_name} relation does not exist: remove "
            f"the relation and integrate again"
        ) from None
    except ops.ModelError as exc:
        # Most often not granted to us yet: the provider grants it, then tells us again.
        logger.info("cannot read the %s credentials secret yet: %s", relation_name, type(exc))
        raise NotReadyError(
            f"waiting for access to the credentials secret of the {relation_name} relation "
            f"(the provider must grant it)"
        ) from None
