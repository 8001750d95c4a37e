"""Shared fixtures: the rock's Pebble layer as the flask-framework extension produces it."""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Iterator

import ops
import pytest
from ops import testing

import pebble_io
from charm import FlaskCharm

ROCK_COMMAND = "/bin/python3 -m gunicorn -c /flask/gunicorn.conf.py 'app:app' -k [ sync ]"
EXPORTER_COMMAND = (
    "/bin/statsd_exporter --statsd.mapping-config=/statsd-mapping.conf"
    " --statsd.listen-udp=localhost:9125 --statsd.listen-tcp=localhost:9125"
)
MODEL = "shop"
GEVENT_CHECK = ("/bin/python3", "-c", "import gevent")


def rock_layer(command: str = ROCK_COMMAND) -> ops.pebble.Layer:
    """Return the layer a flask-framework rock ships (`services` from the extension)."""
    return ops.pebble.Layer(
        {
            "summary": "rock",
            "services": {
                "flask": {
                    "override": "replace",
                    "startup": "enabled",
                    "after": ["statsd-exporter"],
                    "user": "_daemon_",
                    "command": command,
                },
                "statsd-exporter": {
                    "override": "merge",
                    "summary": "statsd exporter service",
                    "startup": "enabled",
                    "user": "_daemon_",
                    "command": EXPORTER_COMMAND,
                },
            },
        }
    )


@dataclasses.dataclass
class Calls:
    """What the charm did to the workload, recorded by wrapping `pebble_io`."""

    log: list[str] = dataclasses.field(default_factory=list)

    def count(self, kind: str) -> int:
        return self.log.count(kind)

    def clear(self) -> None:
        self.log.clear()


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[Calls]:
    """Record starts, restarts, reloads, pushes and execs; the real calls still happen."""
    record = Calls()
    replan, reload, push, run = pebble_io.replan, pebble_io.reload, pebble_io.push, pebble_io.run

    def spy_replan(container: ops.Container) -> None:
        running = container.get_service("flask").is_running()
        record.log.append("restart" if running else "start")
        replan(container)

    def spy_reload(container: ops.Container, service: str) -> None:
        record.log.append("reload")
        reload(container, service)

    def spy_push(container: ops.Container, path: str, content: str, owner: int) -> None:
        record.log.append("push")
        push(container, path, content, owner)

    def spy_run(container: ops.Container, argv: list[str], **kwargs: object) -> bool:
        record.log.append("exec")
        return run(container, argv, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pebble_io, "replan", spy_replan)
    monkeypatch.setattr(pebble_io, "reload", spy_reload)
    monkeypatch.setattr(pebble_io, "push", spy_push)
    monkeypatch.setattr(pebble_io, "run", spy_run)
    yield record


@pytest.fixture
def ctx() -> testing.Context[FlaskCharm]:
    return testing.Context(FlaskCharm)


@pytest.fixture
def charm_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    """Backs /flask/charm so that the charm's pushed file survives between runs."""
    path = tmp_path / "flask-charm"
    path.mkdir()
    return path


def container(
    charm_dir: pathlib.Path,
    *,
    command: str = ROCK_COMMAND,
    gevent: bool = True,
    can_connect: bool = True,
) -> testing.Container:
    """Return the workload container: rock layer, gevent check, a persistent /flask/charm."""
    return testing.Container(
        "flask-app",
        can_connect=can_connect,
        layers={"rock": rock_layer(command)},
        execs={testing.Exec(GEVENT_CHECK, return_code=0 if gevent else 1)},
        mounts={"charm": testing.Mount(location="/flask/charm", source=charm_dir)},
    )


def state(
    charm_dir: pathlib.Path,
    *,
    leader: bool = True,
    config: dict[str, str | int | bool] | None = None,
    **kwargs: object,
) -> testing.State:
    """Return a leader with the peer relation and a connectable workload container."""
    relations = kwargs.pop("relations", None) or {testing.PeerRelation("secret-storage")}
    containers = kwargs.pop("containers", None) or {container(charm_dir)}
    kwargs.setdefault("model", testing.Model(name=MODEL))
    return testing.State(
        leader=leader,
        config=config or {},
        relations=relations,  # type: ignore[arg-type]
        containers=containers,  # type: ignore[arg-type]
        **kwargs,  # type: ignore[arg-type]
    )
