"""Run a staged charm's hooks and actions as Juju's unit agent does.

`./dispatch` runs in the charm directory with the `JUJU_*` environment ops reads and the hook
tools first on PATH, inside a bubblewrap mount namespace laid out as a Juju sidecar pod's charm
container: the charm at `/var/lib/juju/agents/unit-<app>-<n>/charm`, and each workload
container's Pebble socket directory at `/charm/containers/<container>/`. Nothing is written to
the host's `/`, and ops is not patched. The tools are clients of a `ToolServer` this process runs
for the hook, so the store itself stays out of the sandbox.

The hook runs as the user the charm's `charm-user` names, with Juju's uids: root, 171 (sudoer)
or 170 (non-root); the charm directory is that user's, and the workload's Pebble grants it admin
access (see `workload_container`). When we are not root, the hook runs as our own user.

Like the agent, a hook that exits non-zero leaves no relation, secret or port changes behind
(the store is rolled back) and puts the unit in error until a later hook succeeds; statuses,
logs and action results are kept.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask_rock import rootfs

from .charm_stage import CHARM_USERS, default_python, load, stage
from .model import ActionRun, Model
from .toolserver import ToolServer, write_client

JUJU_VERSION = "3.6.8"
SANDBOX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
RELATION_KINDS = ("created", "joined", "changed", "departed", "broken")
SECRET_EVENTS = ("secret-changed", "secret-rotate", "secret-remove", "secret-expired")
WORKLOAD_SUFFIXES = (
    "-pebble-ready",
    "-pebble-custom-notice",
    "-pebble-check-failed",
    "-pebble-check-recovered",
)
HOOK_TIMEOUT = 300.0
# What `juju deploy` fires on a sidecar unit, before each container's <name>-pebble-ready.
DEPLOY_EVENTS = ("install", "leader-elected", "config-changed", "start")


@dataclass
class HookResult:
    """How a hook (or action) run went."""

    name: str
    returncode: int
    stdout: str
    stderr: str
    logs: list[str] = field(default_factory=list)  # juju-log lines written during the run

    @property
    def ok(self) -> bool:
        """Whether the charm exited 0."""
        return self.returncode == 0

    def describe(self) -> str:
        """Everything a developer needs when the run did not go as expected."""
        logs = "\n".join(self.logs)
        return (
            f"--- {self.name}: exit {self.returncode} ---\n--- juju-log ---\n{logs}\n"
            f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"
        )


@dataclass
class ActionResult(HookResult):
    """An action run: the hook's outcome plus what the action reported."""

    uuid: str = ""
    status: str = ""  # completed or failed
    message: str = ""
    results: dict[str, Any] = field(default_factory=dict)
    action_logs: list[str] = field(default_factory=list)  # action-log messages


@dataclass
class Runner:
    """Runs hooks and actions of the charm staged in `charm_dir` against the store `model`.

    `containers` maps each workload container to the host directory holding its
    `pebble.socket`; it appears in the hook at `/charm/containers/<name>/`.
    """

    charm_dir: Path
    model: Model
    containers: dict[str, Path] = field(default_factory=dict)
    python: Path = field(default_factory=default_python)
    tools_dir: Path | None = None  # default: next to the store
    timeout: float = HOOK_TIMEOUT
    juju_version: str = JUJU_VERSION
    charm_uid: int | None = None  # who the charm runs as; default: its `charm-user`
    unit: str | None = None  # whose charm this is (each unit has its own); default: the leader

    def __post_init__(self) -> None:
        self.charm_dir = Path(self.charm_dir).resolve()
        if self.charm_uid is None:
            self.charm_uid = CHARM_USERS[load(self.charm_dir).charm_user]
        tools = self.tools_dir or self.model.path.resolve().parent / "hooktools"
        self._bin = write_client(tools)

    @property
    def uid(self) -> int:
        """The uid the charm's hooks run as (0: root)."""
        return self.charm_uid or 0

    # -- public ---------------------------------------------------------------------------

    def run_hook(
        self, hook: str, *, unit: str | None = None, env: Mapping[str, str] | None = None
    ) -> HookResult:
        """Dispatch `hooks/<hook>` with `env` (the event's own JUJU_* variables) added."""
        unit = unit or self.unit or self.model.leader()
        context = {"JUJU_DISPATCH_PATH": f"hooks/{hook}", "JUJU_HOOK_NAME": hook, **(env or {})}
        snapshot = self.model.snapshot()
        result = self._dispatch(hook, unit, context)
        if not result.ok:
            self.model.rollback(snapshot)
        self.model.set_agent_error(unit, "" if result.ok else f'hook failed: "{hook}"')
        return result

    def run_action(
        self, name: str, params: Mapping[str, Any] | None = None, *, unit: str | None = None
    ) -> ActionResult:
        """Run action `name` as `juju run <unit> <name> k=v…` does."""
        unit = unit or self.unit or self.model.leader()
        full_params = self._action_params(name, dict(params or {}))
        action_uuid = self.model.start_action(name, full_params, unit)
        context = {
            "JUJU_DISPATCH_PATH": f"actions/{name}",
            "JUJU_HOOK_NAME": "",
            "JUJU_ACTION_NAME": name,
            "JUJU_ACTION_UUID": action_uuid,
        }
        snapshot = self.model.snapshot()
        hook = self._dispatch(f"action {name}", unit, context)
        if not hook.ok:
            self.model.rollback(snapshot)
        run: ActionRun = self.model.finish_action(action_uuid, hook.returncode)
        return ActionResult(
            **vars(hook),
            uuid=action_uuid,
            status=run.status,
            message=run.message,
            results=run.results,
            action_logs=run.logs,
        )

    def fire(self, event: str, *, unit: str | None = None, **context: Any) -> HookResult:
        """Fire a Juju event by hook name, with the context Juju would give it.

        Relation events take `relation_id` (or find the endpoint's only relation) and
        `remote_unit`; `-relation-departed` removes the remote unit first (and takes
        `departing_unit` when it is not the remote one: the departing unit's own hook) and
        `-relation-broken` removes the relation afterwards, as Juju does, unless
        `keep_relation` (other units still have to see it break). Secret events take
        `secret_id` (and `revision` for secret-remove/-expired). Workload events take the
        container from the event name, and `notice_id`/`notice_type`/`notice_key` or
        `check_name` where they need them.
        """
        kind = event.rsplit("-relation-", 1)[-1] if "-relation-" in event else ""
        if kind in RELATION_KINDS:
            return self._fire_relation(event, kind, unit, context)
        if event in SECRET_EVENTS:
            return self.run_hook(event, unit=unit, env=self._secret_env(event, unit, context))
        for suffix in WORKLOAD_SUFFIXES:
            if event.endswith(suffix):
                env = {"JUJU_WORKLOAD_NAME": event[: -len(suffix)]}
                env.update(_workload_extras(context))
                return self.run_hook(event, unit=unit, env=env)
        if context:
            raise TypeError(f"{event} takes no context, got {sorted(context)}")
        return self.run_hook(event, unit=unit)

    # -- events -----------------------------------------------------------------------------

    def _fire_relation(
        self, event: str, kind: str, unit: str | None, context: dict[str, Any]
    ) -> HookResult:
        endpoint = event[: -len(f"-relation-{kind}")]
        relation_id = context.pop("relation_id", None)
        if relation_id is None:
            candidates = self.model.relations(endpoint)
            if len(candidates) != 1:
                raise ValueError(f"{event}: pass relation_id ({len(candidates)} relations)")
            relation_id = candidates[0].id
        relation = self.model.relation(relation_id)
        remote_unit = context.pop("remote_unit", None)
        departing_unit = context.pop("departing_unit", None) or remote_unit
        keep_relation = context.pop("keep_relation", False)
        if context:
            raise TypeError(f"{event} got unexpected context {sorted(context)}")
        if kind in ("joined", "departed") and remote_unit is None:
            raise ValueError(f"{event}: pass remote_unit")
        env = {
            "JUJU_RELATION": relation.endpoint,
            "JUJU_RELATION_ID": relation.ref,
            "JUJU_REMOTE_APP": relation.remote_app,
        }
        if remote_unit and kind in ("joined", "changed", "departed"):
            env["JUJU_REMOTE_UNIT"] = remote_unit
        if kind == "joined" and not relation.peer:
            self.model.add_remote_unit(relation_id, remote_unit or "")
        if kind == "departed":
            env["JUJU_DEPARTING_UNIT"] = departing_unit or ""
            if not relation.peer:
                self.model.remove_remote_unit(relation_id, remote_unit or "")
        result = self.run_hook(event, unit=unit, env=env)
        if kind == "broken" and not keep_relation:
            self.model.remove_relation(relation_id)
        return result

    def _secret_env(self, event: str, unit: str | None, context: dict[str, Any]) -> dict[str, str]:
        secret = self.model.secret(str(context.pop("secret_id")))
        revision = context.pop("revision", None)
        if context:
            raise TypeError(f"{event} got unexpected context {sorted(context)}")
        label = secret.label
        if event == "secret-changed":  # a consumer's event: its own label
            consumer = secret.consumers.get(unit or self.unit or self.model.leader())
            label = consumer.label if consumer else ""
        env = {"JUJU_SECRET_ID": secret.id}
        if label:
            env["JUJU_SECRET_LABEL"] = label
        if event in ("secret-remove", "secret-expired"):
            env["JUJU_SECRET_REVISION"] = str(revision or secret.latest.revision)
        return env

    def _action_params(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        """Check params against actions.yaml and add the schema's defaults, as Juju does."""
        actions = load(self.charm_dir, self.python).actions
        if name not in actions:
            raise ValueError(f'action "{name}" not defined')
        spec = actions[name] or {}
        declared = spec.get("params") or {}
        unknown = set(params) - set(declared)
        if unknown and spec.get("additionalProperties", True) is False:
            raise ValueError(f"action {name}: unknown parameters {sorted(unknown)}")
        missing = set(spec.get("required") or []) - set(params)
        if missing:
            raise ValueError(f"action {name}: missing required parameters {sorted(missing)}")
        defaults = {k: v["default"] for k, v in declared.items() if "default" in (v or {})}
        return {**defaults, **params}

    # -- the process --------------------------------------------------------------------------

    def _environment(self, unit: str, context: Mapping[str, str]) -> dict[str, str]:
        state = self.model.state()
        inside = self._inside_charm_dir(unit)
        agent = f"unit-{unit.replace('/', '-')}"
        env = {
            "PATH": f"{self._bin}:{SANDBOX_PATH}",
            "LANG": "C.UTF-8",
            "HOME": "/root" if self.uid == 0 else "/tmp",
            "JUJU_CHARM_DIR": inside,
            "CHARM_DIR": inside,
            "JUJU_CONTEXT_ID": f"{unit}-{context.get('JUJU_HOOK_NAME') or 'run'}-{_nonce()}",
            "JUJU_MODEL_NAME": state.model_name,
            "JUJU_MODEL_UUID": state.model_uuid,
            "JUJU_UNIT_NAME": unit,
            "JUJU_PRINCIPAL_UNIT": "",
            "JUJU_VERSION": self.juju_version,
            "JUJU_AGENT_SOCKET_ADDRESS": f"@/var/lib/juju/agents/{agent}/agent.socket",
            "JUJU_AGENT_SOCKET_NETWORK": "unix",
        }
        return {**env, **context}

    @staticmethod
    def _inside_charm_dir(unit: str) -> str:
        return f"/var/lib/juju/agents/unit-{unit.replace('/', '-')}/charm"

    def sandbox_argv(self, unit: str, env: Mapping[str, str], command: list[str]) -> list[str]:
        """The bubblewrap command line that runs `command` in the unit's charm container."""
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            raise RuntimeError("bubblewrap is not installed: apt-get install bubblewrap")
        argv = [bwrap, "--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
        argv += rootfs.system_binds()
        host_bin = Path("/bin")
        if host_bin.is_symlink():
            argv += ["--symlink", os.readlink(host_bin), "/bin"]
        else:
            argv += ["--ro-bind", "/bin", "/bin"]
        argv += ["--ro-bind", "/etc", "/etc", "--proc", "/proc", "--dev", "/dev"]
        argv += ["--perms", "1777", "--tmpfs", "/tmp", "--perms", "0700", "--dir", "/root"]
        # The hook tools' client only: the store stays outside, as Juju's does.
        argv += rootfs.bind(self._bin, str(self._bin), read_only=True)
        interpreter = self.python.resolve().parent.parent
        if not interpreter.is_relative_to("/usr"):
            argv += rootfs.bind(interpreter, str(interpreter), read_only=True)
        inside = self._inside_charm_dir(unit)
        argv += rootfs.bind(self.charm_dir, inside)
        for name, host in sorted(self.containers.items()):
            target = f"/charm/containers/{name}"
            argv += rootfs.bind(Path(host).resolve(), target)
        argv += ["--clearenv", "--chdir", inside]
        for key, value in env.items():
            argv += ["--setenv", key, value]
        return [*argv, *self._as_charm_user(), *command]

    def _as_charm_user(self) -> list[str]:
        """What runs the command as the charm's user, as Juju's charm container does."""
        if self.uid == 0 or os.geteuid() != 0:
            return []  # root; or we are not root, and the hook runs as our own user
        uid = str(self.uid)
        return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"]

    def _own_charm_dir(self) -> None:
        """Let the charm's user write its state next to the code (ops' `.unit-state.db`)."""
        if self.uid == 0 or os.geteuid() != 0:
            return
        for path in (self.charm_dir, *self.charm_dir.glob(".unit-state.db*")):
            os.chown(path, self.uid, self.uid)

    def _dispatch(self, name: str, unit: str, context: Mapping[str, str]) -> HookResult:
        env = self._environment(unit, context)
        log_start = self.model.log_path.stat().st_size if self.model.log_path.exists() else 0
        self._own_charm_dir()
        with ToolServer(self.model, unit, env) as tools:
            argv = self.sandbox_argv(unit, {**env, **tools.client_env}, ["./dispatch"])
            process = subprocess.Popen(
                argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                text=True,
                start_new_session=True,
            )
            try:
                stdout, stderr = process.communicate(timeout=self.timeout)
                returncode = process.returncode
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                stdout, stderr = process.communicate()
                stderr += f"\n[juju-local] {name} killed after {self.timeout:.0f}s"
                returncode = -signal.SIGKILL
        with self.model.log_path.open() as log:
            log.seek(log_start)
            logs = log.read().splitlines()
        return HookResult(name, returncode, stdout, stderr, logs)


def _nonce() -> int:
    return uuid.uuid4().int % 10**19


def _workload_extras(context: dict[str, Any]) -> dict[str, str]:
    names = {
        "notice_id": "JUJU_NOTICE_ID",
        "notice_type": "JUJU_NOTICE_TYPE",
        "notice_key": "JUJU_NOTICE_KEY",
        "check_name": "JUJU_PEBBLE_CHECK_NAME",
    }
    unknown = set(context) - set(names)
    if unknown:
        raise TypeError(f"unexpected workload event context {sorted(unknown)}")
    return {names[k]: str(v) for k, v in context.items()}


def run_hook(
    charm_dir: Path,
    model: Model,
    hook: str,
    *,
    containers: Mapping[str, Path] | None = None,
    unit: str | None = None,
    env: Mapping[str, str] | None = None,
) -> HookResult:
    """One-off `Runner(...).run_hook(...)`."""
    return Runner(charm_dir, model, dict(containers or {})).run_hook(hook, unit=unit, env=env)


def run_action(
    charm_dir: Path,
    model: Model,
    name: str,
    params: Mapping[str, Any] | None = None,
    *,
    containers: Mapping[str, Path] | None = None,
    unit: str | None = None,
) -> ActionResult:
    """One-off `Runner(...).run_action(...)`."""
    return Runner(charm_dir, model, dict(containers or {})).run_action(name, params, unit=unit)


def prepare(
    project: Path,
    state_dir: Path,
    *,
    app: str | None = None,
    model_name: str = "local",
    containers: Mapping[str, Path] | None = None,
    config: Mapping[str, Any] | None = None,
    units: int = 1,
    dependencies: list[str] | None = None,
) -> Runner:
    """Do what `juju deploy` does before the first hook; fire nothing.

    Stages `project` into `state_dir/charm`, creates the store `state_dir/model/model.json`
    with the charm's config options, endpoints and peer relations, and applies `config`.
    Fire `DEPLOY_EVENTS` and then `<container>-pebble-ready` to finish the deployment.
    """
    staged = stage(project, state_dir / "charm", dependencies=dependencies)
    model = Model.create(
        state_dir / "model" / "model.json",
        app or staged.name,
        model_name,
        staged.config_options,
        units=units,
        endpoints=staged.endpoints,
    )
    for endpoint, interface in staged.peer_relations().items():
        model.add_peer_relation(endpoint, interface)
    if config:
        model.set_config(config)
    return Runner(staged.path, model, dict(containers or {}), python=staged.python)
