"""The background services' pure rules: naming, placement choice, definitions, health."""

from __future__ import annotations

from typing import Any

import ops
import pytest

import background
from background import BackgroundServices

WORKER = {"override": "replace", "command": "/bin/python3 -m celery -A app worker"}
SCHEDULER = {
    "override": "replace",
    "command": "/bin/python3 -m celery -A app beat",
    "user": "beat-user",
    "working-dir": "/srv",
    "environment": {"ROCK_ONLY": "1", "SHARED": "rock"},
}
APP_SERVICE = {"command": "gunicorn", "user": "_daemon_", "group": "_daemon_"}
ENV = {"FLASK_SECRET_KEY": "k", "REDIS_DB_CONNECT_STRING": "redis://r:6379", "SHARED": "app"}
# What Pebble 1.32 answers to a replan whose service exits at once (seen with a real Pebble).
PEBBLE_START_ERROR = (
    "cannot perform the following tasks:\n"
    '- Start service "celery-worker" (service start attempt: exited quickly with code 1, '
    "will restart)"
)


def services(runs_schedulers: bool = True) -> BackgroundServices:
    rock = {"celery-worker": WORKER, "celery-scheduler": SCHEDULER}
    return BackgroundServices(rock, ENV, runs_schedulers, APP_SERVICE)


@pytest.mark.parametrize(
    ("name", "worker", "scheduler"),
    [
        ("celery-worker", True, False),
        ("Celery-WORKER", True, False),
        ("celery-scheduler", False, True),
        ("worker", False, False),  # the suffix includes the dash
        ("flask", False, False),
        ("statsd-exporter", False, False),
    ],
)
def test_service_kind_comes_from_its_name_suffix(name, worker, scheduler):
    assert (background.is_worker(name), background.is_scheduler(name)) == (worker, scheduler)


# -- placement --------------------------------------------------------------------------------


def test_named_unit_keeps_the_schedulers_while_present():
    assert background.choose_scheduler_unit("app/3", {"app/1", "app/3"}) == "app/3"


def test_lowest_numbered_present_unit_is_named_when_the_named_one_is_gone():
    chosen = background.choose_scheduler_unit("app/0", {"app/10", "app/2", "app/7"})

    assert chosen == "app/2"  # numbers, not strings: app/10 > app/2


def test_no_unit_present_names_none():
    assert background.choose_scheduler_unit("app/0", set()) is None


# -- definitions -------------------------------------------------------------------------------


def test_worker_gets_rock_command_app_user_whole_env_and_app_dir():
    worker = services().service("celery-worker")

    assert worker == {
        "override": "replace",
        "command": WORKER["command"],
        "startup": "enabled",
        "user": "_daemon_",  # the rock names none: the app's, never root by default
        "group": "_daemon_",
        "environment": ENV,
        "working-dir": "/flask/app",
    }


def test_scheduler_keeps_rock_user_and_dir_and_app_env_wins_over_rock_env():
    scheduler: dict[str, Any] = dict(services().service("celery-scheduler"))

    assert scheduler["user"] == "beat-user" and "group" not in scheduler
    assert scheduler["working-dir"] == "/srv"
    assert scheduler["environment"] == {**ENV, "ROCK_ONLY": "1", "SHARED": "app"}


def test_scheduler_on_another_unit_is_disabled_and_worker_still_runs():
    here = services(runs_schedulers=False)

    assert here.service("celery-scheduler").get("startup") == "disabled"
    assert (here.enabled(), here.idle()) == (("celery-worker",), ("celery-scheduler",))


def test_only_idle_running_schedulers_are_displaced_and_stopped_enabled_ones_started():
    here = services(runs_schedulers=False)
    states = {"celery-worker": "inactive", "celery-scheduler": "backoff"}

    assert here.displaced(states) == ("celery-scheduler",)
    assert here.not_started(states) == ("celery-worker",)
    assert here.not_started({"celery-worker": "backoff"}) == ()  # Pebble restarts it itself


def test_changed_environment_changes_only_the_background_definitions():
    before = services().services()
    after = BackgroundServices(
        services().rock_services, {**ENV, "FLASK_ENV": "x"}, True, APP_SERVICE
    ).services()

    assert all(before[name] != after[name] for name in before)
    assert services().services() == before  # the same inputs render the same: no restart


def test_rock_layers_combine_background_services_in_order_and_skip_others():
    layers = {
        "002-more.yaml": "services:\n  celery-worker:\n    override: merge\n"
        "    environment: {B: '2'}\n",
        "001-rock.yaml": "services:\n  flask: {command: gunicorn}\n"
        "  celery-worker: {override: replace, command: run, environment: {A: '1'}}\n"
        "  broken-scheduler: {override: replace}\n",
        "003-bad.yaml": ": not yaml : [",
    }

    found = background.services_from_layers(layers)

    worker = {"override": "replace", "command": "run", "environment": {"A": "1", "B": "2"}}
    assert found == {"celery-worker": worker}


def test_plan_services_lose_their_environment():
    plan = {"celery-worker": {"command": "run", "environment": {"FLASK_SECRET_KEY": "old"}}}

    assert background.services_from_plan(plan) == {"celery-worker": {"command": "run"}}


# -- health ------------------------------------------------------------------------------------


def test_pebble_failed_start_names_the_service():
    assert background.failed_to_start(PEBBLE_START_ERROR) == {"celery-worker"}


def judge(states, down_before=(), failed=()):
    return background.assess(
        states, ("celery-scheduler", "celery-worker"), down_before, failed, lambda _: "boom"
    )


def test_all_active_is_healthy():
    assert judge({"celery-worker": "active", "celery-scheduler": "active"}) == (None, ())


def test_first_look_down_is_pebble_restarting_it():
    status, down = judge({"celery-worker": "backoff", "celery-scheduler": "active"})

    assert status == ops.MaintenanceStatus(
        "background service celery-worker stopped; Pebble is restarting it "
        "(see `pebble logs celery-worker`)"
    )
    assert down == ("celery-worker",)


def test_down_at_two_looks_or_failed_at_start_keeps_failing():
    states = {"celery-worker": "backoff", "celery-scheduler": "error"}

    again, _ = judge(states, down_before=("celery-worker",))
    at_start, _ = judge(states, failed=("celery-scheduler",))

    assert again == ops.BlockedStatus(
        "background service celery-worker keeps failing: boom (see `pebble logs celery-worker`)"
    )
    assert isinstance(at_start, ops.BlockedStatus)
    assert at_start.message.startswith("background service celery-scheduler keeps failing")


def test_several_down_are_counted():
    status, _ = judge({"celery-worker": "error", "celery-scheduler": "error"})

    assert status is not None and "celery-scheduler (and 1 more)" in status.message


def test_error_line_is_the_exception_or_what_follows_a_bare_label():
    celery_usage_error = [
        "Usage: python -m celery [OPTIONS] [COMMAND] [ARGS]...",
        "Try 'python -m celery --help' for help.",
        "",
        "Error: ",
        "Unable to load celery application.",
        "The module app:no_such_app was not found.",
    ]
    traceback = ["Traceback (most recent call last):", '  File "x.py"', "KeyError: 'REDIS'"]

    assert background.error_line(celery_usage_error * 2) == (
        "Error: Unable to load celery application. The module app:no_such_app was not found."
    )
    assert background.error_line(traceback) == "KeyError: 'REDIS'"
    assert background.error_line([]) is None
