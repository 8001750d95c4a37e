"""The charm on a real Juju: deploy the sample rock, change the worker type."""

import os

import jubilant

APP = "flask-k8s"


def test_deploy_sample_is_active(juju: jubilant.Juju):
    juju.deploy(
        os.environ["FLASK_K8S_CHARM"],
        APP,
        resources={"flask-app-image": os.environ["FLASK_K8S_IMAGE"]},
    )
    status = juju.wait(jubilant.all_active)
    assert status.apps[APP].units[f"{APP}/0"].workload_status.current == "active"


def test_worker_type_sync_reaches_gunicorn(juju: jubilant.Juju):
    juju.config(APP, {"worker-type": "sync"})
    juju.wait(jubilant.all_active)
    command = juju.ssh(f"{APP}/0", "pebble plan", container="flask-app")
    assert "-k sync" in command
