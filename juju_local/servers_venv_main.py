"""What runs inside `.cache/servers-venv` (moto, aiosmtpd, boto3): never imported by juju_local.

    python servers_venv_main.py s3 PORT DIR        moto's S3 (and IAM) server on 127.0.0.1:PORT
    python servers_venv_main.py smtp PORT DIR      an SMTP server on 127.0.0.1:PORT
    python servers_venv_main.py s3-admin < JSON    one administrative step against the S3 server

Each server writes its pid to DIR/server.pid first (so juju_local can stop it). The S3 server
checks every request's signature against the IAM users' keys (moto's IAM authentication), so a
wrong key is refused as real S3 refuses it; only its first ADMIN_BOOTSTRAP_ACTIONS requests,
which create the admin user, pass unchecked. The SMTP server requires AUTH (PLAIN or LOGIN)
with the user and password in DIR/login (two lines), and stores each mail it accepts in the
Maildir DIR/mail.
"""
# pyright: reportMissingImports=false, reportMissingModuleSource=false

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path

ADMIN_BOOTSTRAP_ACTIONS = 3  # CreateUser, CreateAccessKey, PutUserPolicy (see `_s3_admin`)
REGION = "us-east-1"


def _write_pid(directory: Path) -> None:
    (directory / "server.pid").write_text(f"{os.getpid()}\n")


def serve_s3(port: int, directory: Path) -> None:
    """Moto's server (every service; we use S3 and IAM), authenticating requests."""
    _write_pid(directory)
    os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = str(ADMIN_BOOTSTRAP_ACTIONS)
    from moto import server

    server.main(["-H", "127.0.0.1", "-p", str(port)])


def serve_smtp(port: int, directory: Path) -> None:
    """aiosmtpd, AUTH required (no TLS: it listens on 127.0.0.1 only), mail kept in a Maildir."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Mailbox
    from aiosmtpd.smtp import AuthResult, LoginPassword

    _write_pid(directory)
    user, password = (directory / "login").read_text().splitlines()[:2]

    def authenticate(_server, _session, _envelope, _mechanism, data) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            user.encode(),
            password.encode(),
        )
        return AuthResult(success=ok, handled=False)

    controller = Controller(
        Mailbox(directory / "mail"),
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticate,
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    stopped.wait()
    controller.stop()


def _s3_admin(request: dict) -> dict:
    """`bootstrap` (the admin user), `provision` (a user, its key and bucket) or `get`."""
    import boto3
    from botocore.config import Config

    endpoint, keys = request["endpoint"], request.get("keys") or {}
    session = {"endpoint_url": endpoint, "region_name": REGION}
    credentials = {
        "aws_access_key_id": keys.get("access-key", "bootstrap"),
        "aws_secret_access_key": keys.get("secret-key", "bootstrap"),
    }
    iam = boto3.client("iam", **session, **credentials)
    path_style = Config(s3={"addressing_style": "path"})
    s3 = boto3.client("s3", **session, **credentials, config=path_style)
    if request["action"] == "get":
        body = s3.get_object(Bucket=request["bucket"], Key=request["key"])["Body"].read()
        return {"body": body.decode()}
    user = "admin" if request["action"] == "bootstrap" else request["user"]
    resources = (
        "*" if user == "admin" else [f"arn:aws:s3:::{request['bucket']}{s}" for s in ("", "/*")]
    )
    if user == "admin" or user not in {found["UserName"] for found in iam.list_users()["Users"]}:
        iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    statement = {"Effect": "Allow", "Action": "*" if user == "admin" else "s3:*"}
    policy = {"Version": "2012-10-17", "Statement": [{**statement, "Resource": resources}]}
    iam.put_user_policy(UserName=user, PolicyName="access", PolicyDocument=json.dumps(policy))
    if request["action"] == "provision":
        existing = {bucket["Name"] for bucket in s3.list_buckets()["Buckets"]}
        if request["bucket"] not in existing:
            s3.create_bucket(Bucket=request["bucket"])
    return {"access-key": key["AccessKeyId"], "secret-key": key["SecretAccessKey"]}


def main(argv: list[str]) -> int:
    """Run a server, or one admin step (JSON in on stdin, JSON out on stdout)."""
    if argv[0] == "s3-admin":
        print(json.dumps(_s3_admin(json.load(sys.stdin))))
        return 0
    port, directory = int(argv[1]), Path(argv[2])
    {"s3": serve_s3, "smtp": serve_smtp}[argv[0]](port, directory)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
