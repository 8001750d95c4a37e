"""What the emulated providers share: one relation an endpoint, granted secrets, ports, pids."""

import os
import subprocess

import pytest

from juju_local import processes, provider_relations
from juju_local.model import Model


class RefusedError(Exception):
    """The error type a provider module raises, passed through by the helpers."""


@pytest.fixture
def model(tmp_path) -> Model:
    return Model.create(tmp_path / "model.json", "flask-k8s")


def test_a_second_relation_on_an_endpoint_is_refused_in_the_callers_error_type(model):
    provider_relations.require_unrelated(model, "s3", RefusedError)  # none yet: allowed
    relation_id = model.add_relation("s3", "s3-integrator", [], "s3")

    with pytest.raises(RefusedError, match="s3 is already related"):
        provider_relations.require_unrelated(model, "s3", RefusedError)
    assert provider_relations.the_relation(model, "s3", RefusedError).id == relation_id


def test_no_relation_to_remove_names_the_endpoint(model):
    with pytest.raises(RefusedError, match="nothing is related on smtp: integrate it first"):
        provider_relations.the_relation(model, "smtp", RefusedError)


def test_granted_secret_is_owned_by_the_provider_and_granted_to_our_app(model):
    relation_id = model.add_relation("smtp", "smtp-integrator", [], "smtp")

    secret_id = provider_relations.grant_secret(
        model, "smtp-integrator", "password-secret", {"password": "pw"}, relation_id
    )

    (secret,) = [s for s in model.state().secrets if s.id == secret_id]
    assert (secret.owner, secret.owner_kind, secret.label) == (
        "smtp-integrator",
        "application",
        "password-secret",
    )
    assert secret.latest.content == {"password": "pw"}
    assert secret.grants == {"flask-k8s": relation_id}


def test_stored_port_is_chosen_once_and_kept(tmp_path):
    path = tmp_path / "server" / "port"

    first = processes.stored_port(path)

    assert 0 < first < 65536
    assert processes.stored_port(path) == first == int(path.read_text())


def test_running_pid_only_for_a_live_process_and_a_readable_file(tmp_path):
    pid_path = tmp_path / "server.pid"
    assert processes.running_pid(pid_path) is None  # no file
    pid_path.write_text("")
    assert processes.running_pid(pid_path) is None  # empty
    pid_path.write_text("not-a-pid")
    assert processes.running_pid(pid_path) is None
    pid_path.write_text(f"{os.getpid()} extra words\n")
    assert processes.running_pid(pid_path) == os.getpid()


def test_tree_holds_the_process_and_its_children():
    child = subprocess.Popen(["sleep", "30"])
    try:
        assert processes.tree(os.getpid())[0] == os.getpid()
        assert child.pid in processes.tree(os.getpid())
    finally:
        child.kill()
        child.wait()
