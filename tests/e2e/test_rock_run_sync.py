"""`flask_rock run rock/sample --args flask sync`: the Docker-style override of the worker."""

from tests.e2e import rock_runner
from tests.e2e.rock_runner import RunningRock


def test_run_args_flask_sync_gives_sync_workers(sample_rock_sync: RunningRock):
    assert rock_runner.get("/")[0] == 200
    assert rock_runner.worker_class_from_log(sample_rock_sync) == "sync"
    masters = rock_runner.gunicorn_master_cmdlines()
    assert masters and all(line.endswith("-k sync") for line in masters), masters
