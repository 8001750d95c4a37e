"""juju_local: a tiny ops charm staged, dispatched in a sandbox, talking to the hook tools.

No workload here: these tests prove that the hook tools speak ops' protocol and that the store
ends up as Juju's would. The charm under test is written into tmp_path.
"""

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

from juju_local import charm_stage
from juju_local.dispatch import DEPLOY_EVENTS, HookResult, Runner, prepare
from juju_local.model import Model, ModelStatus, Status, UnitView
from juju_local.toolserver import CLIENT, ToolServer, client_program, write_client

REPO = Path(__file__).resolve().parents[2]

CHARMCRAFT = """
name: tiny
type: charm
base: ubuntu@24.04
platforms:
  amd64:
parts:
  charm:
    plugin: charm
assumes: [k8s-api]
containers:
  app:
    resource: app-image
resources:
  app-image:
    type: oci-image
peers:
  peer:
    interface: tiny-peer
provides:
  web:
    interface: http
config:
  options:
    colour: {type: string, default: blue}
    size: {type: int}
    key-id: {type: secret}
actions:
  greet:
    params:
      name: {type: string, default: world}
  explode:
    additionalProperties: false
  whoami:
    description: Who the hooks run as, and whether the charm may write its own directory.
"""

CHARM = '''
#!/usr/bin/env python3
"""A charm that touches every hook tool the real one uses."""
import os

import ops


class Tiny(ops.CharmBase):
    def __init__(self, framework):
        super().__init__(framework)
        for event in (self.on.install, self.on.config_changed, self.on.leader_elected):
            framework.observe(event, self._on_config)
        framework.observe(self.on.web_relation_changed, self._on_web)
        framework.observe(self.on.app_pebble_ready, self._on_ready)
        framework.observe(self.on.greet_action, self._on_greet)
        framework.observe(self.on.explode_action, self._on_explode)
        framework.observe(self.on.whoami_action, self._on_whoami)
        framework.observe(self.on.secret_changed, self._on_secret_changed)
        framework.observe(self.on.update_status, self._on_update_status)

    def _on_config(self, event):
        self.unit.open_port("tcp", 8000)
        self.unit.set_workload_version("1.2.3")
        message = f"colour={self.config['colour']} size={self.config.get('size')}"
        if self.config.get("key-id"):
            secret = self.model.get_secret(id=self.config["key-id"])
            message += f" key={secret.get_content()['value']}"
        self.unit.status = ops.ActiveStatus(message)
        if not self.unit.is_leader():
            return
        self.app.status = ops.ActiveStatus("leading")
        peer = self.model.get_relation("peer")
        if "secret-id" not in peer.data[self.app]:
            secret = self.app.add_secret({"token": "s3cret"}, label="tok")
            peer.data[self.app]["secret-id"] = secret.id
        token = self.model.get_secret(label="tok").get_content()["token"]
        info = self.model.get_secret(label="tok").get_info()
        self.unit.status = ops.ActiveStatus(f"{message} token={token} rev={info.revision}")

    def _on_web(self, event):
        wanted = event.relation.data[event.app].get("want", "")
        address = self.model.get_binding(event.relation).network.bind_address
        event.relation.data[self.unit]["address"] = str(address)
        event.relation.data[self.app]["url"] = f"http://{address}/{wanted}"
        secret = self.model.get_secret(label="tok")
        secret.grant(event.relation)
        event.relation.data[self.app]["token-id"] = secret.id

    def _on_ready(self, event):
        listing = ",".join(sorted(os.listdir("/charm/containers/app")))
        self.unit.status = ops.ActiveStatus(f"sees {listing}")

    def _on_greet(self, event):
        event.log("greeting")
        event.set_results({"greeting": f"hello {event.params['name']}", "nested": {"a": "b"}})

    def _on_explode(self, event):
        event.fail("boom")

    def _on_whoami(self, event):
        writable = os.access(self.charm_dir, os.W_OK)
        event.set_results({"uid": os.getuid(), "gid": os.getgid(), "writable": writable})

    def _on_secret_changed(self, event):
        value = event.secret.get_content(refresh=True)["value"]
        self.unit.status = ops.ActiveStatus(f"key now {value}")

    def _on_update_status(self, event):
        peer = self.model.get_relation("peer")
        peer.data[self.app]["touched"] = "yes"
        raise RuntimeError("update-status fails on purpose")


if __name__ == "__main__":
    ops.main(Tiny)
'''.lstrip()


@pytest.fixture(scope="module")
def staged(tmp_path_factory) -> charm_stage.StagedCharm:
    project = tmp_path_factory.mktemp("project")
    (project / "charmcraft.yaml").write_text(CHARMCRAFT)
    (project / "src").mkdir()
    (project / "src" / "charm.py").write_text(CHARM)
    (project / "lib").mkdir()
    deps = charm_stage.runtime_dependencies(REPO)
    return charm_stage.stage(project, project / "charm", dependencies=deps)


@pytest.fixture
def model(tmp_path, staged) -> Model:
    model = Model.create(
        tmp_path / "model" / "model.json",
        "tiny",
        "test",
        staged.config_options,
        endpoints=staged.endpoints,
    )
    for endpoint, interface in staged.peer_relations().items():
        model.add_peer_relation(endpoint, interface)
    return model


@pytest.fixture
def runner(staged, model) -> Runner:
    return Runner(staged.path, model)


def _ok(result: HookResult) -> HookResult:
    assert result.ok, result.describe()
    return result


def test_stage_splits_charmcraft_and_writes_dispatch(staged):
    metadata = staged.metadata
    assert metadata["name"] == "tiny" and "parts" not in metadata and "config" not in metadata
    assert metadata["containers"] == {"app": {"resource": "app-image"}}
    assert staged.config_options["colour"]["default"] == "blue"
    assert set(staged.actions) == {"greet", "explode", "whoami"}
    dispatch = (staged.path / "dispatch").read_text()
    assert 'JUJU_DISPATCH_PATH="${JUJU_DISPATCH_PATH:-$0}" PYTHONPATH=lib:venv' in dispatch
    assert (staged.path / "venv" / "ops").is_dir()
    # Bytecode for the base's Python, as a packed charm ships it (a uid-170 hook cannot write it)
    assert list((staged.path / "venv" / "ops" / "__pycache__").glob("__init__.cpython-*.pyc"))
    assert (staged.path / "src" / "charm.py").stat().st_mode & 0o111


def test_restage_keeps_unit_state(staged, runner):
    _ok(runner.fire("install"))
    assert (staged.path / ".unit-state.db").exists()
    project = staged.path.parent
    charm_stage.stage(project, staged.path, dependencies=charm_stage.runtime_dependencies(REPO))
    assert (staged.path / ".unit-state.db").exists()
    _ok(runner.fire("upgrade-charm"))


def test_config_status_ports_version_and_own_secret(runner, model):
    model.set_config({"size": "3"})
    result = _ok(runner.fire("config-changed"))
    status = model.status()
    unit = status.units["tiny/0"]
    assert unit.status.status == "active"
    assert unit.status.message == "colour=blue size=3 token=s3cret rev=1", result.describe()
    assert status.app_status.message == "leading"
    assert unit.ports == ["8000/tcp"]
    assert status.workload_version == "1.2.3"
    [secret] = model.secrets()
    assert secret.owner == "tiny" and secret.label == "tok"
    peer = model.relations("peer")[0]
    assert model.relation_data(peer.id)["tiny"]["secret-id"] == secret.id
    assert any("Emitting Juju event config_changed" in line for line in result.logs)


def test_relation_data_network_and_secret_grant(runner, model):
    _ok(runner.fire("config-changed"))
    rel = model.add_relation("web", "client", ["client/0"], "http")
    model.set_remote_app_data(rel, {"want": "shop"})
    model.set_remote_unit_data(rel, "client/0", {"hello": "there"})
    _ok(runner.fire("web-relation-created", relation_id=rel))
    _ok(runner.fire("web-relation-joined", relation_id=rel, remote_unit="client/0"))
    _ok(runner.fire("web-relation-changed", relation_id=rel, remote_unit="client/0"))
    data = model.relation_data(rel)
    assert data["tiny/0"] == {"address": "127.0.0.1"}
    assert data["tiny"]["url"] == "http://127.0.0.1/shop"
    secret = model.secret(data["tiny"]["token-id"])
    assert secret.grants == {"client": rel}
    _ok(runner.fire("web-relation-departed", relation_id=rel, remote_unit="client/0"))
    assert model.relation(rel).remote_units == []
    _ok(runner.fire("web-relation-broken", relation_id=rel))
    assert model.relations("web") == []
    assert model.secret(secret.id).grants == {}


def test_user_secret_from_config_and_secret_changed(runner, model):
    _ok(runner.fire("install"))
    secret_id = model.add_user_secret({"value": "one"})
    model.set_config({"key-id": secret_id})
    _ok(runner.fire("config-changed"))
    assert "key=one" in model.status().units["tiny/0"].status.message
    model.update_user_secret(secret_id, {"value": "two"})
    _ok(runner.fire("config-changed"))  # still tracking revision 1
    assert "key=one" in model.status().units["tiny/0"].status.message
    _ok(runner.fire("secret-changed", secret_id=secret_id))
    assert model.status().units["tiny/0"].status.message == "key now two"
    assert model.secret(secret_id).consumers["tiny/0"].revision == 2


def test_ungranted_user_secret_is_an_error_the_charm_sees(runner, model):
    secret_id = model.add_user_secret({"value": "one"}, grant_to_app=False)
    model.set_config({"key-id": secret_id})
    result = runner.fire("config-changed")
    assert not result.ok
    assert any("permission denied" in line for line in result.logs), result.describe()
    assert model.status().units["tiny/0"].status.status == "error"


def test_failed_hook_rolls_back_and_puts_the_unit_in_error(runner, model):
    _ok(runner.fire("config-changed"))
    result = runner.fire("update-status")
    assert not result.ok
    assert any("update-status fails on purpose" in line for line in result.logs)
    peer = model.relations("peer")[0]
    assert "touched" not in model.relation_data(peer.id)["tiny"]
    unit = model.status().units["tiny/0"]
    assert (unit.status.status, unit.status.message) == ("error", 'hook failed: "update-status"')
    _ok(runner.fire("config-changed"))
    assert model.status().units["tiny/0"].status.status == "active"


def test_actions_results_logs_and_failure(runner, model):
    _ok(runner.fire("install"))
    greet = runner.run_action("greet", {"name": "juju"})
    assert greet.ok and greet.status == "completed", greet.describe()
    assert greet.results == {"greeting": "hello juju", "nested": {"a": "b"}}
    assert greet.action_logs == ["greeting"]
    assert runner.run_action("greet").results["greeting"] == "hello world"
    explode = runner.run_action("explode")
    assert (explode.status, explode.message) == ("failed", "boom")
    with pytest.raises(ValueError, match="unknown parameters"):
        runner.run_action("explode", {"x": 1})


def test_follower_cannot_write_app_data(runner, model):
    _ok(runner.fire("install"))
    follower = model.add_unit()
    _ok(runner.fire("install", unit=follower))
    status = model.status()
    assert status.units[follower].status.message == "colour=blue size=None"
    assert not status.units[follower].leader


def test_prepare_and_deploy_with_a_container_dir_at_juju_path(staged, tmp_path):
    pebble_dir = tmp_path / "pebble"
    pebble_dir.mkdir()
    (pebble_dir / "pebble.socket").write_text("")  # a stand-in: only the path matters here
    runner = prepare(
        staged.path.parent,
        tmp_path / "deployment",
        containers={"app": pebble_dir},
        config={"colour": "red"},
        dependencies=charm_stage.runtime_dependencies(REPO),
    )
    for event in DEPLOY_EVENTS:
        assert runner.fire(event).ok
    assert "colour=red" in runner.model.status().units["tiny/0"].status.message
    _ok(runner.fire("app-pebble-ready"))
    assert runner.model.status().units["tiny/0"].status.message == "sees pebble.socket"


# -- the hook tools' error protocol, called directly ----------------------------------------


@pytest.fixture(params=["c", "bash"])
def client(request) -> bytes:
    """Each hook-tool client: the C program juju-local builds, and its bash fallback."""
    if request.param == "bash":
        return CLIENT.encode()
    program = client_program()
    assert program != CLIENT.encode(), "no C compiler: the C client was not built"
    return program


def _tool(model: Model, client: bytes, *argv: str, stdin: str = "", cwd: Path | None = None):
    """Call a hook tool as a charm does: the client on PATH, answered by a ToolServer."""
    bin_dir = write_client(model.path.parent / "hooktools", client)
    hook_env = {"JUJU_UNIT_NAME": "tiny/0"}
    with ToolServer(model, "tiny/0", hook_env) as server:
        env = {"PATH": f"{bin_dir}:/usr/bin:/bin", **hook_env, **server.client_env}
        done = subprocess.run(
            argv, input=stdin, env=env, capture_output=True, text=True, timeout=30, cwd=cwd
        )
    return done.returncode, done.stdout, done.stderr


def test_tool_errors_use_the_words_ops_maps(model, client):
    code, _, err = _tool(model, client, "relation-get", "-r", "web:42", "-", "x/0")
    assert code == 1 and err.startswith("ERROR ") and "relation not found" in err
    code, _, err = _tool(model, client, "secret-get", "secret:nope", "--format=json")
    assert code == 1 and "not found" in err
    code, _, err = _tool(model, client, "status-set", "--application=False", "bad")
    assert code == 1 and "invalid status" in err
    code, _, err = _tool(model, client, "config-get", "--bogus")
    assert code == 2


def test_tools_read_and_write_relation_data(model, client, tmp_path):
    rel = model.add_relation("web", "client", ["client/0"], "http")
    code, _, err = _tool(
        model, client, "relation-set", "-r", f"web:{rel}", "--app", "--file", "-",
        stdin=json.dumps({"a": "1", "b": "2"}),
    )  # fmt: skip
    assert code == 0, err
    _tool(model, client, "relation-set", "-r", str(rel), "--app", "b=")
    code, out, _ = _tool(
        model, client, "relation-get", "--format=json", "-r", str(rel), "--app",
        "-", "tiny",
    )  # fmt: skip
    assert json.loads(out) == {"a": "1"}
    (tmp_path / "settings.yaml").write_text("c: three\nd: four\n")
    # A file the charm names relative to where it runs: the client sends its content.
    code, _, err = _tool(
        model, client, "relation-set", "-r", str(rel), "--app", "--file", "settings.yaml",
        cwd=tmp_path,
    )  # fmt: skip
    assert code == 0, err
    code, out, _ = _tool(
        model, client, "relation-get", "--format=json", "-r", str(rel), "--app", "c", "tiny"
    )
    assert json.loads(out) == "three"
    model.set_leader("tiny/0")  # still the leader
    code, out, _ = _tool(model, client, "config-get", "--format=json")
    assert json.loads(out) == {"colour": "blue"}
    code, out, _ = _tool(model, client, "network-get", "--format=json", "web")
    assert json.loads(out)["ingress-addresses"] == ["127.0.0.1"]
    code, _, err = _tool(model, client, "network-get", "--format=json", "nope")
    assert code == 1 and "no network config" in err


def test_tools_send_files_and_large_values_whole(model, client, tmp_path):
    rel = model.add_relation("web", "client", ["client/0"], "http")
    big = "".join(chr(0x20 + n % 90) for n in range(300_000))  # > any one socket read
    (tmp_path / "big.yaml").write_text(json.dumps({"big": big, "note": "é ✓"}))
    code, _, err = _tool(
        model, client, "relation-set", "-r", str(rel), "--app", f"--file={tmp_path / 'big.yaml'}"
    )
    assert code == 0, err
    code, out, _ = _tool(model, client, "relation-get", "--format=json", "-r", str(rel), "--app",
                         "-", "tiny")  # fmt: skip
    assert json.loads(out) == {"big": big, "note": "é ✓"}
    code, _, err = _tool(
        model, client, "relation-set", "-r", str(rel), "--app", "--file", str(tmp_path / "nope")
    )
    assert code == 1 and "nope" in err
    assert json.loads(_tool(model, client, "relation-get", "--format=json", "-r", str(rel),
                            "--app", "note", "tiny")[1]) == "é ✓"  # fmt: skip


def test_tools_secret_lifecycle(model, client, tmp_path):
    (tmp_path / "token").write_text("one")
    code, out, err = _tool(
        model, client, "secret-add", "--label", "tok", "--owner", "application",
        f"token#file={tmp_path / 'token'}",
    )  # fmt: skip
    assert code == 0, err
    secret_id = out.strip()
    assert secret_id.startswith("secret:") and len(secret_id) == len("secret:") + 20
    _tool(model, client, "secret-set", "--owner", "application", secret_id, "token=two")
    code, out, _ = _tool(model, client, "secret-info-get", "--format=json", "--label", "tok")
    [(xid, info)] = json.loads(out).items()
    assert secret_id.endswith(xid) and info["revision"] == 2 and info["label"] == "tok"
    code, out, _ = _tool(model, client, "secret-get", "--format=json", "--label", "tok")
    assert json.loads(out) == {"token": "two"}
    _tool(model, client, "secret-remove", secret_id, "--revision", "1")
    assert [r.revision for r in model.secret(secret_id).revisions] == [2]
    code, out, _ = _tool(model, client, "secret-ids", "--format=json")
    assert json.loads(out) == [secret_id]
    _tool(model, client, "secret-remove", secret_id)
    code, _, err = _tool(model, client, "secret-get", secret_id, "--format=json")
    assert code == 1 and "not found" in err


def test_tool_server_answers_only_its_hook(model, client):
    """The server listens on loopback, which the workload shares: a wrong token gets nothing."""
    with ToolServer(model, "tiny/0", {"JUJU_UNIT_NAME": "tiny/0"}) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as stranger:
            stranger.sendall(b"not-the-token\0status-set\x001\0active\x000\0")
            assert stranger.recv(100) == b""
        bin_dir = write_client(model.path.parent / "hooktools", client)
        env = {"PATH": f"{bin_dir}:/usr/bin:/bin", **server.client_env}
        env["LOCALJUJU_TOOLS_TOKEN"] = "0" * 32
        done = subprocess.run(
            ["status-set", "active"], env=env, capture_output=True, text=True, timeout=30
        )
    assert done.returncode == 1 and "no answer" in done.stderr
    assert model.status().units["tiny/0"].status.status == "unknown"


@pytest.fixture(scope="module")
def staged_non_root(tmp_path_factory) -> charm_stage.StagedCharm:
    """The tiny charm declaring `charm-user: non-root`, as Juju 3.6 lets a charm do."""
    project = tmp_path_factory.mktemp("project-non-root")
    (project / "charmcraft.yaml").write_text(CHARMCRAFT + "charm-user: non-root\n")
    (project / "src").mkdir()
    (project / "src" / "charm.py").write_text(CHARM)
    (project / "lib").mkdir()
    deps = charm_stage.runtime_dependencies(REPO)
    return charm_stage.stage(project, project / "charm", dependencies=deps)


def test_root_charm_runs_as_root(runner):
    whoami = runner.run_action("whoami")
    assert whoami.ok, whoami.describe()
    assert whoami.results["uid"] == str(os.getuid())


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to Juju's uid 170 needs root")
def test_non_root_charm_runs_its_hooks_as_juju_uid_170(staged_non_root, tmp_path):
    model = Model.create(
        tmp_path / "model" / "model.json", "tiny", "test", staged_non_root.config_options,
        endpoints=staged_non_root.endpoints,
    )  # fmt: skip
    for endpoint, interface in staged_non_root.peer_relations().items():
        model.add_peer_relation(endpoint, interface)
    runner = Runner(staged_non_root.path, model)
    assert runner.uid == 170
    for event in DEPLOY_EVENTS:  # secrets, relation data, ports, status: all through the tools
        _ok(runner.fire(event))
    assert model.status().units["tiny/0"].status.message.endswith("token=s3cret rev=1")
    whoami = runner.run_action("whoami")
    assert whoami.ok, whoami.describe()
    assert whoami.results == {"uid": "170", "gid": "170", "writable": "True"}
    assert (staged_non_root.path / ".unit-state.db").stat().st_uid == 170


def test_charm_user_must_be_one_juju_knows(tmp_path):
    (tmp_path / "charmcraft.yaml").write_text(CHARMCRAFT + "charm-user: admin\n")
    with pytest.raises(charm_stage.StageError, match="charm-user must be one of"):
        charm_stage.stage(tmp_path, tmp_path / "charm", dependencies=[])


def test_status_derives_the_app_status_from_the_worst_unit_when_the_charm_sets_none():
    units = {
        "app/0": UnitView(Status("active"), True, [], "127.0.0.1"),
        "app/1": UnitView(Status("blocked", "fix me"), False, [], "127.0.0.1"),
    }
    shown = ModelStatus("m", "app", Status(), "", units).shown_app_status()
    assert (shown.status, shown.message) == ("blocked", "fix me")
    own = ModelStatus("m", "app", Status("active", "ok"), "", units).shown_app_status()
    assert (own.status, own.message) == ("active", "ok")
