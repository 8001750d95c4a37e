"""A RabbitMQ broker related to a local deployment, and the rabbitmq-k8s charm's side of it.

`juju-local integrate rabbitmq` starts Debian's `rabbitmq-server` with its data, logs and
Erlang cookie under the deployment's state (`<state>/databases/rabbitmq/`), then does what
rabbitmq-k8s does on the `rabbitmq` interface: it reads the `username` and `vhost` our app
asked for, creates that user with a random password and every permission on the vhost, and
publishes `hostname` and `password` in its app databag. `remove-relation rabbitmq` deletes
the user, as the charm does; `remove` stops the broker and its Erlang port mapper.

The interface carries no port (clients use AMQP's 5672), so the broker listens on 5672 of a
loopback address of its own (127.x.y.z, which Linux routes to `lo` without setup), free of any
other broker on the machine. Everything else is private: Erlang's port mapper (`ERL_EPMD_PORT`),
the node's distribution port and the CLI's (`RABBITMQ_DIST_PORT`, `RABBITMQ_CTL_DIST_PORT_*`),
all on 127.0.0.1 and chosen free once. As the database servers, it never runs as root: as
`nobody`, in a mount namespace that shows its directory at `/mnt/db` (`databases.Server`).
Passwords reach `rabbitmqctl` on its standard input, never on a command line.
"""

from __future__ import annotations

import json
import random
import socket
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from juju_local import databases, provider_relations
from juju_local.databases import INSIDE, DatabaseError, random_password
from juju_local.processes import free_port

if TYPE_CHECKING:
    from juju_local.deployment import Deployment

ENDPOINT = "rabbitmq"
APP = "rabbitmq-k8s"
AMQP_PORT = 5672
RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")  # the scripts themselves: /usr/sbin's refuse nobody
LOCALHOST_ONLY = "-kernel inet_dist_use_interface {127,0,0,1}"


class RabbitMQError(DatabaseError):
    """The broker did not start or did not do what was asked; the message says which."""


def _free_loopback_address() -> str:
    """A 127.x.y.z address whose AMQP port nothing listens on."""
    for _ in range(50):
        address = f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
        with socket.socket() as sock:
            try:
                sock.bind((address, AMQP_PORT))
            except OSError:
                continue
            return address
    raise RabbitMQError(f"no loopback address with port {AMQP_PORT} free")


class RabbitServer(databases.Server):
    """Debian's rabbitmq-server, acting as rabbitmq-k8s does."""

    kind = endpoint = interface = ENDPOINT
    app = APP

    @property
    def settings(self) -> dict[str, str | int]:
        """Its address and private ports, chosen once."""
        path = self.dir / "network.json"
        if not path.exists():
            self.dir.mkdir(parents=True, exist_ok=True)
            chosen = {
                "address": _free_loopback_address(),
                "dist": free_port(),
                "epmd": free_port(),
                "ctl": free_port(),
            }
            path.write_text(json.dumps(chosen))
        return json.loads(path.read_text())

    @property
    def address(self) -> str:
        """The loopback address the broker listens on (port 5672)."""
        return str(self.settings["address"])

    @property
    def port(self) -> int:
        """AMQP's own port: the interface has no port field."""
        return AMQP_PORT

    def environment(self) -> list[str]:
        """The broker's and the CLI's settings, as `env` arguments."""
        net = self.settings
        return [
            f"HOME={INSIDE}",  # the Erlang cookie: private to this broker
            "RABBITMQ_NODENAME=rabbit@localhost",
            f"RABBITMQ_NODE_IP_ADDRESS={net['address']}",
            f"RABBITMQ_NODE_PORT={AMQP_PORT}",
            f"RABBITMQ_DIST_PORT={net['dist']}",
            f"RABBITMQ_CTL_DIST_PORT_MIN={net['ctl']}",
            f"RABBITMQ_CTL_DIST_PORT_MAX={net['ctl']}",
            f"ERL_EPMD_PORT={net['epmd']}",
            "ERL_EPMD_ADDRESS=127.0.0.1",
            f"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS={LOCALHOST_ONLY}",
            f"RABBITMQ_CTL_ERL_ARGS={LOCALHOST_ONLY}",
            f"RABBITMQ_MNESIA_BASE={INSIDE}/data/mnesia",
            f"RABBITMQ_LOG_BASE={INSIDE}/log",
            f"RABBITMQ_PID_FILE={INSIDE}/server.pid",
            # No system-wide file: /etc/rabbitmq's would apply to this broker otherwise.
            f"RABBITMQ_CONF_ENV_FILE={INSIDE}/rabbitmq-env.conf",
            f"RABBITMQ_CONFIG_FILE={INSIDE}/rabbitmq",
            f"RABBITMQ_ENABLED_PLUGINS_FILE={INSIDE}/enabled_plugins",
        ]

    def command(self, port: int) -> list[str]:
        """`rabbitmq-server` in the foreground (the pid file names the Erlang VM)."""
        return ["env", *self.environment(), str(RABBITMQ_BIN / "rabbitmq-server")]

    def ready(self) -> bool:
        """Whether the broker accepts AMQP connections (its listener starts last)."""
        try:
            with socket.create_connection((self.address, AMQP_PORT), timeout=1):
                return True
        except OSError:
            return False

    def start(self) -> None:
        """Start the broker unless it runs; the first time, drop its default `guest` user."""
        first = not (self.dir / "data").exists()
        if not RABBITMQ_BIN.is_dir():
            raise RabbitMQError(
                "RabbitMQ is not installed: apt-get install rabbitmq-server "
                "(scripts/bootstrap does)"
            )
        super().start()
        if first:
            self.ctl(["delete_user", "guest"], "delete the guest user")

    def stop(self) -> None:
        """Stop the broker, then the port mapper its Erlang VM started."""
        super().stop()
        if (self.dir / "network.json").exists():
            epmd = ["env", *self.environment(), "epmd", "-port", str(self.settings["epmd"])]
            self.run([*epmd, "-kill"], timeout=30)

    def ctl(self, argv: list[str], what: str, stdin: str | None = None) -> str:
        """Run `rabbitmqctl` against the broker."""
        command = ["env", *self.environment(), str(RABBITMQ_BIN / "rabbitmqctl"), "-q", *argv]
        result = subprocess.run(
            self.confined(command), input=stdin, capture_output=True, text=True, timeout=120
        )
        if result.returncode != 0:
            raise RabbitMQError(f"rabbitmq: {what} failed: {result.stderr.strip()[-500:]}")
        return result.stdout

    def users(self) -> list[str]:
        """The broker's users."""
        listed = self.ctl(["list_users", "--formatter=json"], "list users")
        return [user["user"] for user in json.loads(listed)]

    def create(self, database: str, user: str, password: str) -> None:
        """Create (or reset the password of) `user`, with every permission on vhost `database`."""
        if user in self.users():
            self.ctl(["change_password", user], "change the password", stdin=password)
        else:
            self.ctl(["add_user", user], "add the user", stdin=password)
        if database != "/":  # the default vhost always exists
            vhosts = self.ctl(["list_vhosts", "--formatter=json"], "list vhosts")
            if database not in [vhost["name"] for vhost in json.loads(vhosts)]:
                self.ctl(["add_vhost", database], "add the vhost")
        self.ctl(["set_permissions", "-p", database, user, ".*", ".*", ".*"], "set permissions")

    def delete_user(self, user: str) -> None:
        """Delete `user` if it exists."""
        if user in self.users():
            self.ctl(["delete_user", user], "delete the user")


def integrate(deployment: Deployment) -> int:
    """`juju integrate app rabbitmq-k8s`: start the broker, run the handshake; the relation id."""
    model = deployment.model
    provider_relations.require_unrelated(model, ENDPOINT, RabbitMQError)
    broker = RabbitServer(deployment.state_dir)
    broker.start()
    relation_id, unit = provider_relations.relate(deployment, ENDPOINT, APP, "rabbitmq", [])
    request = model.relation(relation_id).app_data.get(model.state().app, {})
    username, vhost = request.get("username"), request.get("vhost")
    if username and vhost:  # otherwise the provider waits, as the charm does
        password = random_password()
        broker.create(vhost, username, password)
        model.set_remote_app_data(relation_id, {"hostname": broker.address, "password": password})
    deployment.fire(f"{ENDPOINT}-relation-changed", relation_id=relation_id, remote_unit=unit)
    return relation_id


def remove_relation(deployment: Deployment) -> None:
    """`juju remove-relation app rabbitmq`: the hooks, then the provider deletes the user."""
    relation = provider_relations.the_relation(deployment.model, ENDPOINT, RabbitMQError)
    username = relation.app_data.get(deployment.model.state().app, {}).get("username")
    deployment.remove_relation(relation.id)
    if username:
        RabbitServer(deployment.state_dir).delete_user(username)


def stop(state_dir: Path) -> None:
    """Stop the broker (for `remove`)."""
    RabbitServer(state_dir).stop()


def describe(state_dir: Path) -> list[str]:
    """A line for `status` while the broker runs."""
    broker = RabbitServer(state_dir)
    if broker.pid() is None:
        return []
    return [f"  {'rabbitmq:':<11} {broker.address}:{AMQP_PORT}   (data: {broker.dir})"]
