"""Database servers related to a local deployment, and the provider charms' side of the relation.

`juju-local integrate postgresql` (or `mysql`, `redis`) starts Debian's server for it (PostgreSQL,
MariaDB, redis-server) on a free port of 127.0.0.1, with its data directory under the
deployment's state (`<state>/databases/<kind>/`), and then does what the provider charm does:

- postgresql / mysql (data-platform `database` interface, v0): read the `database` our app
  asked for, create it and a user `relation-<id>` with a random password, and publish
  `endpoints`, `database`, `version` and, when our app sent `requested-secrets`, `secret-user`:
  the id of a secret owned by the provider app and granted to ours (otherwise plain `username`
  and `password` fields, as older providers do);
- redis (the redis-k8s charm's interface): the Redis unit's databag gets `hostname` and `port`.

`rotate_password` changes the user's password in the server, then publishes it as a new revision
of that secret (secret-changed), as the provider charms do. `stop_all` stops every server.

The servers never run as root: under root, each runs as `nobody` inside a mount namespace
(bubblewrap) that shows its directory at `/mnt/db`, so no directory above it need be readable by
`nobody`. They listen on 127.0.0.1 only, and also on the host's address on the pod network when
the deployment has one (more than one unit: see `network`); they then publish that address,
which every pod reaches (unit 0 too: it is the host's). A server started while the deployment
had one unit stays on 127.0.0.1, which pods added later cannot reach: scale out first.
MongoDB has no server package in Debian: it is covered by the unit tests only.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import string
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from juju_local import processes, provider_relations
from juju_local.model import SecretRevision

if TYPE_CHECKING:
    from juju_local.deployment import Deployment

INSIDE = "/mnt/db"  # where a server sees its own directory
NOBODY = 65534
START_TIMEOUT = 60.0


class DatabaseError(Exception):
    """A server did not start or did not do what was asked; the message says which."""


def random_password(length: int = 24) -> str:
    """Letters and digits only: safe inside SQL literals and URIs alike."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


class Server:
    """One local server: its directory, port, and how to start, stop and administer it."""

    kind = ""
    app = ""  # the provider application's name in the model
    endpoint = ""
    interface = ""
    version = ""

    def __init__(self, state_dir: Path):
        self.dir = state_dir / "databases" / self.kind
        self.state_dir = state_dir

    @property
    def hosts(self) -> list[str]:
        """The addresses it listens on: 127.0.0.1, and the pod network's host address if any."""
        path = self.dir / "hosts"
        if path.exists():
            return path.read_text().split()
        return ["127.0.0.1"]

    @property
    def address(self) -> str:
        """The address it publishes: the one every unit's pod reaches."""
        return self.hosts[-1]

    def _choose_hosts(self) -> None:
        from juju_local.network import PodNetwork

        network = PodNetwork(self.state_dir)
        pod_network = [network.host_address] if network.has_bridge else []
        (self.dir / "hosts").write_text(" ".join(["127.0.0.1", *pod_network]))

    @property
    def port(self) -> int:
        """The server's port, chosen once."""
        return processes.stored_port(self.dir / "port")

    @property
    def pid_path(self) -> Path:
        """Where the server writes its pid."""
        return self.dir / "server.pid"

    def pid(self) -> int | None:
        """The running server's pid, if it runs."""
        return processes.running_pid(self.pid_path)

    def run(self, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
        """Run a command as the server's user, seeing the server's directory at /mnt/db."""
        return subprocess.run(self.confined(argv), capture_output=True, text=True, **kwargs)

    def confined(self, argv: list[str]) -> list[str]:
        """`argv` as the server's user (never root), its directory at /mnt/db."""
        if os.getuid() != 0:  # already not root: bind the directory as is
            return ["bwrap", "--dev-bind", "/", "/", "--bind", str(self.dir), INSIDE, *argv]
        drop = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]
        return [
            "bwrap", "--dev-bind", "/", "/", "--tmpfs", "/mnt", "--bind", str(self.dir), INSIDE,
            "--", *drop, *argv,
        ]  # fmt: skip

    def start(self) -> None:
        """Initialise the data directory once, then start the server unless it runs."""
        if self.pid() is not None:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        port = self.port
        self._choose_hosts()
        if os.getuid() == 0:
            self.dir.chmod(0o700)
            os.chown(self.dir, NOBODY, NOBODY)
        if not (self.dir / "data").exists():
            self.initialise()
        self.admit_pods()
        log = (self.dir / "server.log").open("ab")
        try:
            subprocess.Popen(
                self.confined(self.command(port)),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives this command, until `remove`
            )
        finally:
            log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.pid() is not None and self.ready():
                return
            time.sleep(0.3)
        tail = (self.dir / "server.log").read_text(errors="replace")[-1500:]
        raise DatabaseError(f"{self.kind} did not start within {START_TIMEOUT:.0f}s:\n{tail}")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 30 s)."""
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, self.stop_signal)
        if not processes.wait_gone(pid, 30.0):
            os.kill(pid, signal.SIGKILL)
            processes.wait_gone(pid, 10.0)

    def ready(self) -> bool:
        """Whether the server accepts connections on its port."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    stop_signal = signal.SIGTERM

    # -- per kind ---------------------------------------------------------------------------

    def initialise(self) -> None:
        """Create the data directory."""
        (self.dir / "data").mkdir()
        if os.getuid() == 0:
            os.chown(self.dir / "data", NOBODY, NOBODY)

    def command(self, port: int) -> list[str]:
        """The server's command line (run in the foreground)."""
        raise NotImplementedError

    def admit_pods(self) -> None:
        """Let clients on the pod network in, where the server filters by address."""

    def create(self, database: str, user: str, password: str) -> None:
        """Create `database`, owned by a new `user` with `password`."""
        raise NotImplementedError

    def set_password(self, user: str, password: str) -> None:
        """Change `user`'s password."""
        raise NotImplementedError

    def _admin(self, argv: list[str], what: str) -> str:
        result = self.run(argv, timeout=60)
        if result.returncode != 0:
            raise DatabaseError(f"{self.kind}: {what} failed: {result.stderr.strip()[-500:]}")
        return result.stdout


def _pg_bin(name: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if not found:
        raise DatabaseError(
            "PostgreSQL is not installed: apt-get install postgresql (scripts/bootstrap does)"
        )
    return str(found[-1])


def _ident(name: str, quote: str) -> str:
    """A quoted SQL identifier (names come from the charm: refuse the quote character)."""
    if quote in name or "\0" in name:
        raise DatabaseError(f"refusing a name with {quote} in it: {name[:40]!r}")
    return f"{quote}{name}{quote}"


class PostgresServer(Server):
    """Debian's PostgreSQL, acting as postgresql-k8s does."""

    kind = app = endpoint = "postgresql"
    interface = "postgresql_client"

    @property
    def version(self) -> str:  # type: ignore[override]
        """The server's major version."""
        return Path(_pg_bin("postgres")).parts[-3]

    @property
    def pid_path(self) -> Path:
        """PostgreSQL writes its pid in its data directory."""
        return self.dir / "data" / "postmaster.pid"

    stop_signal = signal.SIGINT  # fast shutdown: ends sessions, then stops cleanly

    def initialise(self) -> None:
        """initdb: local socket connections trusted (admin), TCP needs a password."""
        self._admin(
            [
                _pg_bin("initdb"), "-D", f"{INSIDE}/data", "-U", "postgres", "-E", "UTF8",
                "--auth-local=trust", "--auth-host=scram-sha-256",
            ],
            "initdb",
        )  # fmt: skip

    def admit_pods(self) -> None:
        """pg_hba.conf: password logins from the pod network too (initdb admits loopback)."""
        hba = self.dir / "data" / "pg_hba.conf"
        rules = hba.read_text()
        for host in self.hosts[1:]:
            rule = f"host all all {host.rsplit('.', 1)[0]}.0/24 scram-sha-256\n"
            if rule not in rules:
                rules += rule
        hba.write_text(rules)

    def command(self, port: int) -> list[str]:
        """`postgres` on its hosts' port, its socket in its own directory."""
        return [
            _pg_bin("postgres"), "-D", f"{INSIDE}/data", "-p", str(port), "-k", INSIDE,
            "-c", f"listen_addresses={','.join(self.hosts)}", "-c", "max_connections=40",
        ]  # fmt: skip

    def ready(self) -> bool:
        """Whether it answers a query."""
        return super().ready() and self.run(self._psql("SELECT 1"), timeout=10).returncode == 0

    def _psql(self, sql: str) -> list[str]:
        return [
            _pg_bin("psql"), "-h", INSIDE, "-p", str(self.port), "-U", "postgres",
            "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql,
        ]  # fmt: skip

    def create(self, database: str, user: str, password: str) -> None:
        """A login role and a database it owns (idempotent for the database)."""
        role = _ident(user, '"')
        exists = self._admin(self._psql(f"SELECT 1 FROM pg_roles WHERE rolname = '{user}'"), "")
        verb = "ALTER" if exists.strip() else "CREATE"
        self._admin(self._psql(f"{verb} ROLE {role} LOGIN PASSWORD '{password}'"), "create role")
        found = self._admin(
            self._psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}'"), "list"
        )
        if not found.strip():
            db = _ident(database, '"')
            self._admin(self._psql(f"CREATE DATABASE {db} OWNER {role}"), "create database")

    def set_password(self, user: str, password: str) -> None:
        """ALTER ROLE … PASSWORD."""
        role = _ident(user, '"')
        self._admin(self._psql(f"ALTER ROLE {role} PASSWORD '{password}'"), "change password")


class MariadbServer(Server):
    """Debian's MariaDB (it speaks the MySQL protocol), acting as mysql-k8s does."""

    kind = "mariadb"
    app = endpoint = "mysql"
    interface = "mysql_client"
    version = "mariadb"

    def initialise(self) -> None:
        """mariadb-install-db: root without a password, reachable only through the socket."""
        super().initialise()
        self._admin(
            [
                "mariadb-install-db", "--no-defaults", f"--datadir={INSIDE}/data",
                "--auth-root-authentication-method=normal", "--skip-test-db",
            ],
            "mariadb-install-db",
        )  # fmt: skip

    def command(self, port: int) -> list[str]:
        """`mariadbd` on its hosts' port, small buffers."""
        return [
            "mariadbd", "--no-defaults", f"--datadir={INSIDE}/data", f"--port={port}",
            f"--bind-address={','.join(self.hosts)}", f"--socket={INSIDE}/mysqld.sock",
            f"--pid-file={INSIDE}/server.pid", "--innodb-buffer-pool-size=16M",
            "--skip-log-bin", "--max-connections=40",
        ]  # fmt: skip

    def _sql(self, sql: str) -> list[str]:
        return ["mariadb", "--no-defaults", f"--socket={INSIDE}/mysqld.sock", "-uroot", "-e", sql]

    def ready(self) -> bool:
        """Whether it answers a query."""
        return super().ready() and self.run(self._sql("SELECT 1"), timeout=10).returncode == 0

    def create(self, database: str, user: str, password: str) -> None:
        """A database and a user with every right on it, from any host."""
        db, account = _ident(database, "`"), f"{_ident(user, chr(39))}@'%'"
        self._admin(
            self._sql(
                f"CREATE DATABASE IF NOT EXISTS {db}; "
                f"CREATE USER IF NOT EXISTS {account} IDENTIFIED BY '{password}'; "
                f"ALTER USER {account} IDENTIFIED BY '{password}'; "
                f"GRANT ALL PRIVILEGES ON {db}.* TO {account}; FLUSH PRIVILEGES;"
            ),
            "create database",
        )

    def set_password(self, user: str, password: str) -> None:
        """ALTER USER … IDENTIFIED BY."""
        account = f"{_ident(user, chr(39))}@'%'"
        self._admin(self._sql(f"ALTER USER {account} IDENTIFIED BY '{password}'"), "password")


class RedisServer(Server):
    """Debian's redis-server, acting as redis-k8s does (no credentials on the relation)."""

    kind = app = endpoint = interface = "redis"

    def command(self, port: int) -> list[str]:
        """`redis-server` on its hosts' port, no persistence to disk."""
        return [
            "redis-server", "--port", str(port), "--bind", *self.hosts, "--dir", f"{INSIDE}/data",
            # Clients on the pod network are not loopback: protected mode would refuse them.
            # It listens on nothing else (the bind above), as before.
            "--protected-mode", "no",
            "--pidfile", f"{INSIDE}/server.pid", "--daemonize", "no", "--save", "",
            "--appendonly", "no",
        ]  # fmt: skip


SERVERS: dict[str, type[Server]] = {
    "postgresql": PostgresServer,
    "mysql": MariadbServer,
    "redis": RedisServer,
}


def server(state_dir: Path, endpoint: str) -> Server:
    """The server for one of our endpoints."""
    if endpoint == "mongodb":
        raise DatabaseError(
            "MongoDB has no server package in Debian: the mongodb relation is covered by the "
            "unit tests only"
        )
    return SERVERS[endpoint](state_dir)


def stop_all(state_dir: Path) -> None:
    """Stop every server the deployment started."""
    for kind in SERVERS.values():
        kind(state_dir).stop()


# -- the provider's side of the relation ------------------------------------------------------


def integrate(deployment: Deployment, endpoint: str) -> int:
    """`juju integrate app <endpoint>`: start the server, run the handshake; the relation id."""
    db = server(deployment.state_dir, endpoint)
    provider_relations.require_unrelated(deployment.model, endpoint, DatabaseError)
    db.start()
    model = deployment.model
    relation_id, unit = provider_relations.relate(deployment, endpoint, db.app, db.interface, [])
    if isinstance(db, RedisServer):
        data = {"hostname": db.address, "port": str(db.port)}
        model.set_remote_unit_data(relation_id, unit, data)
    else:
        _answer_database_request(deployment, db, relation_id)
    deployment.fire(f"{endpoint}-relation-changed", relation_id=relation_id, remote_unit=unit)
    return relation_id


def _answer_database_request(deployment: Deployment, db: Server, relation_id: int) -> None:
    model = deployment.model
    app = model.state().app
    request = model.relation(relation_id).app_data.get(app, {})
    database = request.get("database")
    if not database:
        return  # nothing asked for yet: the provider waits, as the charm does
    user, password = f"relation-{relation_id}", random_password()
    db.create(database, user, password)
    published = {
        "endpoints": f"{db.address}:{db.port}",
        "database": database,
        "version": db.version,
    }
    if "requested-secrets" in request:
        label = f"{db.endpoint}.{relation_id}.user.secret"
        credentials = {"username": user, "password": password}
        published["secret-user"] = provider_relations.grant_secret(
            model, db.app, label, credentials, relation_id
        )
    else:
        published.update(username=user, password=password)
    model.set_remote_app_data(relation_id, published)


def relation_id(deployment: Deployment, endpoint: str) -> int:
    """The id of the relation on `endpoint` (there is at most one)."""
    return provider_relations.the_relation(deployment.model, endpoint, DatabaseError).id


def rotate_password(deployment: Deployment, endpoint: str) -> None:
    """The provider rotates our user's password: in the server, then in the secret."""
    db = server(deployment.state_dir, endpoint)
    rid = relation_id(deployment, endpoint)
    remote = deployment.model.relation(rid).app_data.get(db.app, {})
    password = random_password()
    secret_id = remote.get("secret-user")
    if secret_id:
        with deployment.model.transaction() as state:
            secret = state.secret(secret_id)
            content = {**secret.latest.content, "password": password}
            db.set_password(content["username"], password)
            secret.revisions.append(SecretRevision(secret.latest.revision + 1, content))
        deployment.fire("secret-changed", secret_id=secret_id)
    elif remote.get("username"):
        db.set_password(remote["username"], password)
        deployment.model.set_remote_app_data(rid, {"password": password})
        deployment.fire(f"{endpoint}-relation-changed", relation_id=rid, remote_unit=f"{db.app}/0")
    else:
        raise DatabaseError(f"the {endpoint} relation has no user to rotate the password of")


def remove_relation(deployment: Deployment, endpoint: str) -> None:
    """`juju remove-relation app <endpoint>` (the server keeps running until `remove`)."""
    deployment.remove_relation(relation_id(deployment, endpoint))


def describe(state_dir: Path) -> list[str]:
    """One line per running server, for `status`."""
    lines = []
    for kind in SERVERS.values():
        db = kind(state_dir)
        if db.pid() is not None:
            lines.append(f"  {db.kind + ':':<11} {db.address}:{db.port}   (data: {db.dir})")
    return lines
