"""What e2e tests read back from a `juju_local` deployment."""

import yaml

from juju_local.deployment import Deployment


def unit_status(deployment: Deployment) -> tuple[str, str]:
    """The unit's workload status and message, as `juju status` shows them."""
    unit = deployment.model.status().units["flask-k8s/0"]
    return unit.status.status, unit.status.message


def service_starts(deployment: Deployment) -> int:
    """How many times the pod's Pebble has started the `flask` service."""
    return deployment.container.log_path.read_text().count('Service "flask" starting')


def service_env(deployment: Deployment, service: str = "flask") -> dict[str, str]:
    """A Pebble service's environment, as the pod's current plan has it."""
    plan = yaml.safe_load(deployment.container.pebble("plan").stdout)
    return plan["services"][service].get("environment") or {}
