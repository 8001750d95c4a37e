"""S3 and SMTP end to end: the sample deployed with the charm, related to real local servers.

`juju-local integrate s3` runs moto's S3 server (it checks every request's signature against
the keys it issued) and `integrate smtp` an SMTP server that requires a login and keeps every
mail it accepts; each acts as the provider charm (s3-integrator, smtp-integrator), the
credentials in a Juju secret. One deployment serves the module; the tests run in order.
"""

import json
import urllib.error
import urllib.request
import uuid

import pytest

from juju_local import mail_relay, object_storage, processes, providers, venv_server
from juju_local.databases import DatabaseError
from juju_local.deployment import Deployment
from tests.e2e import deployment_state, rock_runner

READY = 60.0
pytestmark = pytest.mark.skipif(
    not (venv_server.VENV / "bin" / "python").exists(),
    reason="moto and aiosmtpd are needed in .cache/servers-venv (scripts/bootstrap)",
)


def _send(method: str, path: str, body: bytes, content_type: str) -> tuple[int, str]:
    request = urllib.request.Request(
        rock_runner.APP_URL + path,
        data=body,
        method=method,
        headers={"Content-Type": content_type},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _mail(subject: str) -> tuple[int, str]:
    fields = {"to": "ops@example.com", "subject": subject, "body": "sent by the e2e test"}
    return _send("POST", "/mail", json.dumps(fields).encode(), "application/json")


def _assert_secret_kept(deployment: Deployment, secret: str) -> None:
    logs = "\n".join(str(line) for line in deployment.model.log_lines())
    assert secret not in logs
    assert secret not in deployment_state.unit_status(deployment)[1]
    ours = deployment.model.state().app
    for relation in deployment.model.relations():
        ours_bags = [relation.app_data.get(ours, {})] + list(relation.unit_data.values())
        assert secret not in json.dumps(ours_bags)


def test_without_relations_the_routes_say_so(deployment):
    assert rock_runner.wait_for_http_ok("/", READY)
    status, body = rock_runner.get("/objects/greeting")
    assert (status, json.loads(body)["error"]) == (503, "no S3 is related")
    status, body = _mail("nothing related")
    assert (status, json.loads(body)["error"]) == (503, "no SMTP relay is related")


def test_s3_the_sample_stores_and_reads_an_object(deployment):
    providers.integrate(deployment, "s3")

    assert deployment_state.unit_status(deployment) == ("active", "")
    env = deployment_state.service_env(deployment)
    assert env["S3_BUCKET"] == "flask-k8s"  # the bucket our app asked for
    assert env["S3_ADDRESSING_STYLE"] == "path"
    content = f"stored {uuid.uuid4()}".encode()
    assert _send("PUT", "/objects/greeting", content, "text/plain")[0] == 201
    assert rock_runner.get("/objects/greeting") == (200, content.decode())
    # The object is in the server's bucket, read back by another client with the same keys.
    server = object_storage.S3Server(deployment.state_dir)
    keys = object_storage.published_keys(deployment, deployment.model.relations("s3")[0].id)
    assert keys == {"access-key": env["S3_ACCESS_KEY"], "secret-key": env["S3_SECRET_KEY"]}
    assert server.get_object(keys, "flask-k8s", "greeting") == content.decode()
    _assert_secret_kept(deployment, env["S3_SECRET_KEY"])


def test_s3_server_refuses_a_wrong_key(deployment):
    server = object_storage.S3Server(deployment.state_dir)
    keys = object_storage.published_keys(deployment, deployment.model.relations("s3")[0].id)
    with pytest.raises(DatabaseError, match="SignatureDoesNotMatch"):
        server.get_object({**keys, "secret-key": "not-the-key"}, "flask-k8s", "greeting")


def test_smtp_the_server_receives_the_mail_the_sample_sends(deployment):
    providers.integrate(deployment, "smtp")

    assert deployment_state.unit_status(deployment) == ("active", "")
    env = deployment_state.service_env(deployment)
    assert env["SMTP_AUTH_TYPE"] == "plain"
    subject = f"hello {uuid.uuid4()}"
    assert _mail(subject)[0] == 202
    server = mail_relay.SmtpServer(deployment.state_dir)
    received = [mail for mail in server.mails() if mail["Subject"] == subject]
    assert len(received) == 1
    assert received[0]["From"] == f"sample@{mail_relay.DOMAIN}"
    assert received[0]["To"] == "ops@example.com"
    _assert_secret_kept(deployment, env["SMTP_PASSWORD"])


@pytest.mark.parametrize(("endpoint", "path"), [("s3", "/objects/greeting"), ("smtp", "/mail")])
def test_remove_relation_drops_variables_with_one_restart(deployment, endpoint, path):
    starts = deployment_state.service_starts(deployment)

    providers.remove_relation(deployment, endpoint)

    prefix = f"{endpoint.upper()}_"
    assert not [key for key in deployment_state.service_env(deployment) if key.startswith(prefix)]
    assert deployment_state.service_starts(deployment) == starts + 1
    assert deployment_state.unit_status(deployment) == ("active", "")
    assert rock_runner.wait_until(lambda: rock_runner.get_or_none("/") == 200, READY)
    status = rock_runner.get(path)[0] if path != "/mail" else _mail("after removal")[0]
    assert status == 503


def test_remove_stops_both_servers(deployment):
    servers = [kind(deployment.state_dir) for kind in providers.SERVERS.values()]
    pids = [server.pid() for server in servers]
    assert all(pids)

    deployment.remove()

    assert not any(processes.alive(pid) for pid in pids if pid)
    assert not deployment.state_dir.exists()
