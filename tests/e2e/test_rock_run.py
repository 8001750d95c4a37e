"""`flask_rock run rock/sample`: the sample rock served by real Pebble, gunicorn and statsd."""

import re

from tests.e2e import rock_runner
from tests.e2e.rock_runner import RunningRock


def test_run_serves_sample_with_gevent_workers(sample_rock: RunningRock):
    status, body = rock_runner.get("/")
    assert status == 200
    assert "flask-k8s sample" in body
    assert rock_runner.worker_class_from_log(sample_rock) == "gevent"
    masters = rock_runner.gunicorn_master_cmdlines()
    assert masters and all(line.endswith("-k gevent") for line in masters), masters


def test_run_serves_static_files_and_runs_as_daemon_user(sample_rock: RunningRock):
    status, body = rock_runner.get("/static/style.css")
    assert status == 200
    assert "font-family" in body
    services = sample_rock.pebble("services")
    assert re.search(r"^flask\s+enabled\s+active", services, re.MULTILINE), services
    assert re.search(r"^statsd-exporter\s+enabled\s+active", services, re.MULTILINE), services


def test_run_metrics_count_requests_exactly(sample_rock: RunningRock):
    requests_before = rock_runner.settled_metric("flask_requests")
    created_before = rock_runner.settled_metric("flask_response_code", 'status="201"')
    sent = 7

    for _ in range(sent):
        assert rock_runner.get("/status/201")[0] == 201

    created = rock_runner.wait_for_metric("flask_response_code", 'status="201"', sent)
    requests = rock_runner.wait_for_metric("flask_requests", "", requests_before + sent)
    assert created - created_before == sent
    assert requests - requests_before == sent
    assert rock_runner.settled_metric("flask_requests") == requests  # and no more arrive


def test_run_metrics_count_200_responses_exactly(sample_rock: RunningRock):
    ok_before = rock_runner.settled_metric("flask_response_code", 'status="200"')
    duration_before = rock_runner.settled_metric("flask_request_duration_count")
    sent = 5

    for _ in range(sent):
        assert rock_runner.get("/")[0] == 200

    ok = rock_runner.wait_for_metric("flask_response_code", 'status="200"', ok_before + sent)
    assert ok - ok_before == sent
    duration_count = rock_runner.wait_for_metric(
        "flask_request_duration_count", "", duration_before + sent
    )
    assert duration_count - duration_before == sent
