"""Integration tests need a Juju controller, a packed charm and a rock image in a registry.

Set FLASK_K8S_CHARM (path to the .charm) and FLASK_K8S_IMAGE (the rock's OCI image), with a
controller bootstrapped on a Kubernetes cloud. Without them the tests are skipped.
"""

import os
import shutil

import jubilant
import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip everything here when there is nothing to deploy to."""
    missing = [name for name in ("FLASK_K8S_CHARM", "FLASK_K8S_IMAGE") if not os.environ.get(name)]
    reason = None
    if shutil.which("juju") is None:
        reason = "no juju client on this machine"
    elif missing:
        reason = f"set {', '.join(missing)} to run integration tests"
    if reason:
        for item in items:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="module")
def juju():
    """A temporary model, destroyed afterwards."""
    with jubilant.temp_model() as juju:
        juju.wait_timeout = 15 * 60
        yield juju
