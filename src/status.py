"""The exception that carries an operator-facing status out of the charm's components.

Also the one reader of a secret the operator names in an option: its failure is such a status.
"""

from __future__ import annotations

import ops


class StatusError(Exception):
    """Reconcile cannot go on; `status` says why and what the operator can do."""

    def __init__(self, status: ops.StatusBase):
        super().__init__(status.message)
        self.status = status


def operator_secret(
    model: ops.Model,
    app: str,
    option: str,
    secret_id: str,
    error: type[StatusError] = StatusError,
) -> dict[str, str]:
    """The newest content of the secret `option` names; `error` (Blocked) if we cannot read it.

    Its message tells the operator to grant the secret to `app`, and never holds the content.
    """
    try:
        return model.get_secret(id=secret_id).get_content(refresh=True)
    except ops.ModelError:  # includes SecretNotFoundError; also "permission denied"
        raise error(
            ops.BlockedStatus(
                f"{option}: secret {secret_id} not found or not granted: "
                f"juju grant-secret {secret_id} {app}"
            )
        ) from None
