"""What the provider-side test modules share: the provider's secret, as the requirer sees it."""

from __future__ import annotations

from ops import testing


def granted_secret(out: testing.State, secret_id: str | None) -> testing.Secret | None:
    """The secret `secret_id` the provider created in `out`, copied as one granted to us."""
    if not secret_id:
        return None
    owned = next(s for s in out.secrets if s.id == secret_id)
    content = dict(owned.latest_content or owned.tracked_content)
    return testing.Secret(content, id=secret_id, label=None, owner=None)
