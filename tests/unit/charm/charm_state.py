"""Test inputs: the rock's Pebble layer as the flask-framework extension produces it, states."""

from __future__ import annotations

import ast
import dataclasses
import pathlib
from collections.abc import Iterable, Mapping
from typing import Any

import ops
from ops import testing

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


def app_env(out: testing.State) -> dict[str, str]:
    """The FLASK_* variables the charm's Gunicorn config file gives the app ({} if none).

    The charm delivers them in that file (a reload), not in the Pebble service (a restart).
    """
    flask_root = out.get_container("flask-app").mounts["flask"].source
    config = pathlib.Path(flask_root) / "charm" / "gunicorn.conf.py"
    if not config.exists():
        return {}
    prefix = "_os.environ.update("
    for line in config.read_text().splitlines():
        if line.startswith(prefix):
            return ast.literal_eval(line[len(prefix) : -1])
    return {}


@dataclasses.dataclass
class Calls:
    """What the charm did to the workload, recorded by wrapping `pebble_io`."""

    log: list[str] = dataclasses.field(default_factory=list)

    def count(self, kind: str) -> int:
        return self.log.count(kind)

    def clear(self) -> None:
        self.log.clear()


def container(
    charm_dir: pathlib.Path,
    *,
    command: str = ROCK_COMMAND,
    gevent: bool = True,
    can_connect: bool = True,
    app_dir: pathlib.Path | None = None,
    execs: Iterable[testing.Exec] = (),
) -> testing.Container:
    """Return the workload container: rock layer, gevent check, a persistent /flask/charm.

    `charm_dir` is `<dir>/flask/charm`: `<dir>/flask` backs /flask (so /flask/charm is a real
    directory, as in a container), and the rock's layer file goes in `<dir>/rock-layers`, which
    backs the image's /var/lib/pebble/default/layers. `app_dir` backs /flask/app (the rock's
    app, where migrate scripts live); `execs` adds mocked commands (a migrate script's run).
    """
    layers_dir = charm_dir.parent.parent / "rock-layers"
    layers_dir.mkdir(exist_ok=True)
    (layers_dir / "001-rock.yaml").write_text(rock_layer(command).to_yaml())
    mounts = {
        "flask": testing.Mount(location="/flask", source=charm_dir.parent),
        "layers": testing.Mount(location="/var/lib/pebble/default/layers", source=layers_dir),
    }
    if app_dir is not None:  # in the /flask mount: a mount of its own would nest in that one
        link = charm_dir.parent / "app"
        if not link.is_symlink():
            link.symlink_to(app_dir)
    return testing.Container(
        "flask-app",
        can_connect=can_connect,
        layers={"rock": rock_layer(command)},
        execs={testing.Exec(GEVENT_CHECK, return_code=0 if gevent else 1), *execs},
        mounts=mounts,
    )


def state(
    charm_dir: pathlib.Path,
    *,
    leader: bool = True,
    config: Mapping[str, str | int | bool] | None = None,
    **kwargs: object,
) -> testing.State:
    """Return a leader with the peer relation and a connectable workload container."""
    relations = set(kwargs.pop("relations", None) or ())  # type: ignore[arg-type]
    if not any(isinstance(rel, testing.PeerRelation) for rel in relations):
        relations.add(testing.PeerRelation("secret-storage"))
    containers = kwargs.pop("containers", None) or {container(charm_dir)}
    kwargs.setdefault("model", testing.Model(name=MODEL))
    return testing.State(
        leader=leader,
        config=dict(config or {}),
        relations=relations,  # type: ignore[arg-type]
        containers=containers,  # type: ignore[arg-type]
        **kwargs,  # type: ignore[arg-type]
    )


def cos_and_ingress_relations() -> set[testing.RelationBase]:
    """Every relation a full deployment has: ingress with a URL, metrics, logging, dashboards."""
    return {
        testing.Relation(
            "ingress",
            remote_app_data={"ingress": '{"url": "http://ingress/shop-flask-k8s"}'},
            remote_units_data={0: {}},
        ),
        testing.Relation("metrics-endpoint", remote_units_data={0: {}}),
        testing.Relation(
            "logging",
            remote_units_data={0: {"endpoint": '{"url": "http://loki:3100/loki/api/v1/push"}'}},
        ),
        testing.Relation("grafana-dashboard", remote_units_data={0: {}}),
    }


# The event storm, as (ops.testing event name, config during that event); the storm
# test and bench/charm_storm.py both run it.
STORM: list[tuple[str, dict[str, Any]]] = [
    ("install", {}),
    ("leader_elected", {}),
    ("config_changed", {}),
    ("pebble_ready", {}),
    ("update_status", {}),
    ("update_status", {}),
    ("update_status", {}),
    ("config_changed", {}),
    ("config_changed", {"webserver-timeout": 60}),
    ("config_changed", {"webserver-timeout": 60, "worker-type": "gthread"}),
]


def before_storm_step(st: testing.State, event_name: str, config: dict[str, Any]) -> testing.State:
    """The state a storm event meets: leadership from leader-elected, Pebble from pebble-ready."""
    if event_name == "leader_elected":
        st = dataclasses.replace(st, leader=True)
    if event_name == "pebble_ready":
        ready = dataclasses.replace(st.get_container("flask-app"), can_connect=True)
        st = dataclasses.replace(st, containers={ready})
    return dataclasses.replace(st, config=config)
