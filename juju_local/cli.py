"""`scripts/juju-local`: deploy the flask-k8s charm with a rock on this machine, Juju-style.

    juju-local deploy [ROCK_DIR] [--config K=V …] [-n N] [--charm DIR]
                                                    install → … → start → pebble-ready
                                                    (DIR: the charm project, default this one)
    juju-local add-unit [-n N]                      more units, each its own pod and address
    juju-local remove-unit UNIT … | -n N            e.g. flask-k8s/0 (a new leader is elected);
                                                    -n: the N highest-numbered, as on k8s
    juju-local config K=V … [--reset K …]           config-changed (on every unit)
    juju-local run-action NAME [K=V …] [--unit U]   an action (on the leader), with its results
    juju-local integrate prometheus                 metrics-endpoint, and a real Prometheus
    juju-local integrate loki URL                   logging: Pebble pushes the app's logs to URL
    juju-local integrate postgresql|mysql|redis     a local PostgreSQL, MariaDB or Redis server
    juju-local integrate s3|smtp                    a local S3 (moto) or SMTP (aiosmtpd) server
    juju-local integrate rabbitmq                   a local RabbitMQ broker
    juju-local integrate tracing                    a local OTLP/HTTP receiver recording spans
    juju-local rotate-password postgresql|mysql     the provider rotates the app's password
    juju-local remove-relation ENDPOINT             e.g. postgresql: relation-departed, -broken
    juju-local upgrade                              refresh: new charm code and options, new pods
    juju-local status | remove

No Juju and no Kubernetes: the charm runs as Juju dispatches it, against a real Pebble running
the rock's files. The deployment stays up between commands until `remove`.

Each unit is a pod: unit 0 on the host's network (127.0.0.1), every other unit in a network
namespace of its own (10.x.y.(10+n), reachable from this machine and the other pods; needs
root). `status` shows each unit's address. Database servers integrated after scaling out also
listen on the pod network, so integrate once the deployment has more than one unit (the S3,
SMTP, RabbitMQ and tracing servers listen on this machine's loopback only: unit 0 reaches them).
"""

import argparse
import functools
import os
import sys
from pathlib import Path
from typing import NoReturn

# Each command is a process of its own, and `config` and `status` pay for every import: only
# what they need is imported here. The database servers are imported by the commands that
# use them, the rock's layout code by `deploy` and `upgrade` (see `workload_container`).
from flask_rock.errors import ProjectError
from juju_local.charm_stage import REPO, StageError
from juju_local.controller_client import DEFAULT_STATE, FORWARDED, STATE_ENV
from juju_local.deployment import SAMPLE, Deployment, DeploymentError
from juju_local.model import ModelStoreError
from juju_local.prometheus import URL as PROMETHEUS_URL

DEBUG_ENV = "JUJU_LOCAL_DEBUG"  # set to 1 for the traceback of an unexpected error
# `juju_local.databases.SERVERS`, named here so that parsing the command line imports no
# server code (a unit test keeps the two equal).
DATABASES = ("postgresql", "mysql", "redis")
# The other providers juju-local runs, and the module that runs each (imported when used).
OTHER_SERVERS = {
    "s3": "providers",
    "smtp": "providers",
    "rabbitmq": "rabbitmq",
    "tracing": "otlp_receiver",
}
# What the user can fix: a bad value, a missing directory, a hook that failed (and
# `databases.DatabaseError`, which only a command that imported it can raise).
USER_ERRORS = (DeploymentError, ModelStoreError, StageError, ProjectError, ValueError, OSError)


class UsageError(Exception):
    """The command line does not parse."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 1 like every other error."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _pairs(items: list[str]) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"expected KEY=VALUE, got {item!r}")
        pairs[key] = value
    return pairs


def endpoints(deployment: Deployment) -> str:
    """Where the deployment can be reached, and how to stop it."""
    lines = [f"  rock:       {deployment.meta['rock']}"]
    for unit in deployment.model.units():
        address = deployment.model.state().unit_address(unit.name)
        lines.append(f"  {unit.name}: app http://{address}:8000/  metrics :9102/metrics")
    if deployment.prometheus.pid_path.exists():
        lines.append(f"  prometheus: {PROMETHEUS_URL}/graph?g0.expr=flask_requests")
    from juju_local import databases, otlp_receiver, providers, rabbitmq

    lines += databases.describe(deployment.state_dir)
    lines += providers.describe(deployment.state_dir)
    lines += rabbitmq.describe(deployment.state_dir)
    lines += otlp_receiver.describe(deployment.state_dir)
    lines.append(f"Stop it with: scripts/juju-local remove   (state: {deployment.state_dir})")
    return "\n".join(lines)


DATABASE_COMMANDS = ("rotate-password", "remove-relation")
SERVERS = (*DATABASES, *OTHER_SERVERS)  # what `integrate` starts a server for


def _scale(deployment: Deployment, options: argparse.Namespace) -> str:
    """deploy, add-unit, remove-unit."""
    from juju_local import units

    if options.command == "deploy":
        deployment.deploy(
            Path(options.rock_dir),
            _pairs(options.config),
            charm=Path(options.charm),
            num_units=options.num_units,
        )
    elif options.command == "add-unit":
        if options.num_units < 1:
            raise UsageError(f"add-unit: --num-units must be at least 1, got {options.num_units}")
        for _ in range(options.num_units):
            units.add_unit(deployment)
    else:
        if bool(options.units) == bool(options.num_units):
            raise UsageError("remove-unit takes unit names or --num-units N, not both")
        names = options.units or _highest(deployment, options.num_units)
        for name in names:
            units.remove_unit(deployment, name)
    return f"{deployment.status()}\n\n{endpoints(deployment)}"


def _highest(deployment: Deployment, count: int) -> list[str]:
    """The `count` highest-numbered units: what scaling a Kubernetes application down removes."""
    ordered = sorted(deployment.model.units(), key=lambda unit: unit.number)
    return [unit.name for unit in ordered[::-1][:count]]


def _database_command(deployment: Deployment, options: argparse.Namespace) -> str:
    """The commands of a relation whose provider juju-local runs (a database, a broker, …)."""
    endpoint = vars(options).get("remote") or options.endpoint
    if endpoint in OTHER_SERVERS:
        return _server_command(deployment, options.command, endpoint)
    from juju_local import databases

    if options.command == "integrate":
        databases.integrate(deployment, endpoint)
        return f"{deployment.status()}\n\n{endpoints(deployment)}"
    if options.command == "rotate-password":
        databases.rotate_password(deployment, endpoint)
    else:
        databases.remove_relation(deployment, endpoint)
    return deployment.status()


def _server_command(deployment: Deployment, command: str, endpoint: str) -> str:
    """`integrate` or `remove-relation` of s3, smtp, rabbitmq or tracing (no rotate-password)."""
    import importlib

    module = importlib.import_module(f"juju_local.{OTHER_SERVERS[endpoint]}")
    integrate = command == "integrate"
    run = module.integrate if integrate else module.remove_relation
    if module.__name__ == "juju_local.providers":  # one module for s3 and smtp
        run(deployment, endpoint)
    else:
        run(deployment)
    status = deployment.status()
    return f"{status}\n\n{endpoints(deployment)}" if integrate else status


def _command(deployment: Deployment, options: argparse.Namespace) -> str:
    if options.command in ("deploy", "add-unit", "remove-unit"):
        return _scale(deployment, options)
    if options.command == "config":
        values: dict = {**_pairs(options.pairs), **dict.fromkeys(options.reset)}
        deployment.config(values)
        return deployment.status()
    if options.command == "run-action":
        result = deployment.run_action(options.name, _pairs(options.params), options.unit)
        outcome = f"{result.status}: {result.message}" if result.message else result.status
        return f"{outcome}\n{result.results}"
    if options.command == "integrate" and options.remote == "loki":
        if not options.url:
            raise UsageError(
                "integrate loki needs the push URL, e.g. http://127.0.0.1:3100/loki/api/v1/push"
            )
        deployment.integrate_loki(options.url)
        return deployment.status()
    if options.command in DATABASE_COMMANDS or getattr(options, "remote", "") in SERVERS:
        return _database_command(deployment, options)
    if options.command == "integrate":
        deployment.integrate_prometheus()
        return f"{deployment.status()}\n\n{endpoints(deployment)}"
    if options.command == "upgrade":
        deployment.upgrade()
        return deployment.status()
    if options.command == "status":
        return f"{deployment.status()}\n\n{endpoints(deployment)}"
    deployment.remove()
    return "removed"


@functools.cache  # the controller parses every command it runs with the same parser
def build_parser() -> argparse.ArgumentParser:
    """The `juju-local` command line."""
    parser = _Parser(
        prog="juju-local", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path(os.environ.get(STATE_ENV, DEFAULT_STATE)),
        help="where the deployment's state lives (default: %(default)s)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    deploy = commands.add_parser("deploy", help="deploy the charm with a rock")
    deploy.add_argument("rock_dir", nargs="?", default=str(SAMPLE), metavar="ROCK_DIR")
    deploy.add_argument("--config", action="append", default=[], metavar="K=V")
    deploy.add_argument("-n", "--num-units", type=int, default=1, metavar="N")
    deploy.add_argument(
        "--charm",
        default=str(REPO),
        metavar="DIR",
        help="the charm project (default: %(default)s)",
    )
    add_unit = commands.add_parser("add-unit", help="add units, each in a pod of its own")
    add_unit.add_argument("-n", "--num-units", type=int, default=1, metavar="N")
    remove_unit = commands.add_parser("remove-unit", help="remove units (by name, or -n N)")
    remove_unit.add_argument("units", nargs="*", metavar="UNIT")
    remove_unit.add_argument("-n", "--num-units", type=int, default=0, metavar="N")
    config = commands.add_parser("config", help="set (or --reset) charm config")
    config.add_argument("pairs", nargs="*", metavar="K=V")
    config.add_argument("--reset", action="append", default=[], metavar="K")
    action = commands.add_parser("run-action", help="run an action on the unit")
    action.add_argument("name")
    action.add_argument("params", nargs="*", metavar="K=V")
    action.add_argument("--unit", help="the unit to run it on (default: the leader)")
    integrate = commands.add_parser(
        "integrate", help="integrate with a local Prometheus, database or other server, or Loki"
    )
    integrate.add_argument("remote", choices=["prometheus", "loki", *SERVERS])
    integrate.add_argument("url", nargs="?", help="loki: the push URL Pebble posts logs to")
    commands.add_parser("rotate-password").add_argument("endpoint", choices=list(DATABASES))
    commands.add_parser("remove-relation").add_argument("endpoint", choices=list(SERVERS))
    for name in ("upgrade", "status", "remove"):
        commands.add_parser(name)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command, one at a time per deployment; an error is one line, never a traceback.

    A failed hook also shows what the charm said (its log, stdout and stderr).
    """
    command = "juju-local"
    try:
        options = build_parser().parse_args(argv)
        command = f"juju-local {options.command}"
        deployment = Deployment(options.state_dir)
        with deployment.lock():
            if options.command not in ("deploy", "remove") and not deployment.exists:
                raise UsageError(f"nothing deployed in {options.state_dir}: run `deploy` first")
            print(_command(deployment, options))
        if options.command in ("deploy", *FORWARDED) and deployment.exists:
            from juju_local import controller

            controller.start(options.state_dir.absolute())  # the next `config` skips our imports
    except (UsageError, *USER_ERRORS, *_database_errors()) as error:
        print(f"{command}: error: {_one_line(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # a bug of ours: still one line, the traceback on request
        if os.environ.get(DEBUG_ENV):
            import traceback

            traceback.print_exc()
        print(
            f"{command}: internal error: {type(error).__name__}: {_one_line(error)} "
            f"(set {DEBUG_ENV}=1 for the traceback)",
            file=sys.stderr,
        )
        return 1
    return 0


def _database_errors() -> tuple[type[Exception], ...]:
    """The servers' errors, of those a command imported (a module not imported raised none)."""
    errors = []
    databases = sys.modules.get("juju_local.databases")  # also S3, SMTP and RabbitMQ's base
    if databases:
        errors.append(databases.DatabaseError)
    receiver = sys.modules.get("juju_local.otlp_receiver")
    if receiver:
        errors.append(receiver.ReceiverError)
    return tuple(errors)


def _one_line(error: BaseException) -> str:
    """The error's message; a failed hook's details follow on later lines."""
    if isinstance(error, ProjectError):
        return "; ".join(error.problems)
    if isinstance(error, OSError) and error.strerror:
        return f"{error.strerror}: {error.filename}" if error.filename else error.strerror
    return str(error) or type(error).__name__


if __name__ == "__main__":
    sys.exit(main())
