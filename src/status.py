"""The exception that carries an operator-facing status out of the charm's components."""

from __future__ import annotations

import ops


class StatusError(Exception):
    """Reconcile cannot go on; `status` says why and what the operator can do."""

    def __init__(self, status: ops.StatusBase):
        super().__init__(status.message)
        self.status = status
