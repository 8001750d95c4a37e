"""Fixtures for end-to-end tests: every test here runs real processes."""

import pytest

from juju_local.deployment import Deployment
from tests.e2e import rock_runner


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/e2e is an e2e test."""
    for item in items:
        item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """On failure, attach what the running rock shows, not only the assertion."""
    report = yield
    if report.failed:
        for attribute in ("running_rock", "deployment"):
            subject = getattr(item, attribute, None)
            if subject is not None:
                report.sections.append((f"{attribute} state", subject.describe()))
    return report


def _run(request: pytest.FixtureRequest, tmp_path_factory, *service_args: str):
    running = rock_runner.start(tmp_path_factory.mktemp("rock"), *service_args)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def sample_rock(request, tmp_path_factory):
    """The sample rock, run as `flask_rock run rock/sample`."""
    yield from _run(request, tmp_path_factory)


@pytest.fixture(scope="module")
def sample_rock_sync(request, tmp_path_factory):
    """The sample rock, run with `--args flask sync`."""
    yield from _run(request, tmp_path_factory, "flask", "sync")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    """The sample rock deployed with the charm; removed (with its servers) after the module.

    A module needing another rock, config or unit count defines its own `deployment`.
    """
    deployed = Deployment(tmp_path_factory.mktemp("local-juju") / "default")
    deployed.deploy()
    yield deployed
    deployed.remove()


@pytest.fixture(autouse=True)
def _attach_running_rock(request: pytest.FixtureRequest):
    """Let the report hook find whichever rock the test uses."""
    for name in ("sample_rock", "sample_rock_sync"):
        if name in request.fixturenames:
            request.node.running_rock = request.getfixturevalue(name)
    if "deployment" in request.fixturenames:
        request.node.deployment = request.getfixturevalue("deployment")
