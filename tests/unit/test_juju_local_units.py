"""The model side of more than one unit: numbers, leadership, addresses, what a gone unit leaves.

The pods themselves (namespaces, Pebble, hooks) are covered end to end in
tests/e2e/test_multi_unit.py.
"""

import io
import json

import pytest

from juju_local import cli
from juju_local.hooktools import Context, run_tool
from juju_local.model import Model, ModelStoreError


@pytest.fixture
def model(tmp_path) -> Model:
    created = Model.create(tmp_path / "model.json", "app", units=2)
    created.add_peer_relation("peers", "peers")
    return created


def _tool(model: Model, unit: str, *argv: str) -> str:
    code, out, err = run_tool(Context(model, unit, {}, io.StringIO()), list(argv))
    assert code == 0, err
    return out


def test_unit_numbers_are_never_reused(model):
    added = model.add_unit()
    model.remove_unit(added)

    assert added == "app/2"
    assert model.add_unit() == "app/3"


def test_a_removed_unit_takes_its_databag_status_ports_and_state_along(model):
    with model.transaction() as state:
        state.relations[0].unit_data["app/1"] = {"k": "v"}
        state.opened_ports["app/1"] = ["8000/tcp"]
        state.unit_state["app/1"] = {"x": "y"}

    assert model.remove_unit("app/1") is False  # it did not lead

    state = model.state()
    assert [unit.name for unit in state.units] == ["app/0"]
    assert "app/1" not in state.relations[0].unit_data
    assert "app/1" not in state.opened_ports and "app/1" not in state.unit_state


def test_removing_the_leader_leaves_no_leader_until_one_is_elected(model):
    assert model.remove_unit("app/0") is True
    with pytest.raises(ModelStoreError, match="no leader"):
        model.leader()

    model.set_leader("app/1")

    assert model.leader() == "app/1"
    assert _tool(model, "app/1", "is-leader", "--format=json").strip() == "true"


def test_each_unit_sees_its_own_address_and_its_peers(model):
    with model.transaction() as state:
        state.unit("app/1").address = "10.64.1.11"

    assert json.loads(_tool(model, "app/1", "unit-get", "private-address")) == "10.64.1.11"
    bind = json.loads(_tool(model, "app/1", "network-get", "--bind-address", "peers"))
    assert bind == "10.64.1.11"
    assert json.loads(_tool(model, "app/0", "unit-get", "private-address")) == "127.0.0.1"
    peers = json.loads(_tool(model, "app/1", "relation-list", "-r", "peers:0", "--format=json"))
    assert peers == ["app/0"]
    shown = model.status().units
    assert (shown["app/0"].address, shown["app/1"].address) == ("127.0.0.1", "10.64.1.11")


def test_remove_unit_takes_names_or_a_count_not_both():
    parser = cli.build_parser()

    assert parser.parse_args(["remove-unit", "app/0"]).units == ["app/0"]
    assert parser.parse_args(["remove-unit", "-n", "2"]).num_units == 2
    assert parser.parse_args(["deploy", "--num-units", "3"]).num_units == 3
    with pytest.raises(cli.UsageError, match="not both"):
        cli._scale(None, parser.parse_args(["remove-unit", "app/0", "-n", "1"]))  # type: ignore[arg-type]
