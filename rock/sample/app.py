"""A small Flask app used to exercise the flask-k8s rock and charm.

Routes:
    /                 index page (template + static stylesheet)
    /slow?seconds=N   sleeps N seconds (at most 30), to tell sync from async workers
    /items            reads the table that migrate.py creates (POST {"name": …} adds one), in
                      the related PostgreSQL or MySQL database, else in SQLite
    /visits           counts visits in the related Redis
    /rabbitmq         publishes a message to a queue of the related RabbitMQ and gets it back
    /status/<code>    answers with the given HTTP status, for metrics and alert tests
    /secret-key-id    a fingerprint of the secret key, so tests can see it rotate
    /objects/<name>   PUT stores the body in the related S3 bucket, GET reads it back
    /mail             POST {"to": …, "subject": …, "body": …} sends a mail through the related
                      SMTP relay
    /config/<NAME>    one setting of app.config, e.g. a charm option set as FLASK_<NAME>
    /tasks            POST {"text": …} enqueues a Celery task on the related Redis: 202 {"id"}
    /tasks/<id>       the task's state, and its result once the Celery worker has run it
    /ticks            how often the Celery beat schedule has run its `tick` task

Background processes (the rock's Pebble services, see rockcraft.short.yaml): `celery-worker`
runs this module's tasks, `celery-scheduler` is Celery beat, which enqueues `tick` every
TICK_SECONDS. Both use the related Redis (`REDIS_DB_CONNECT_STRING`) as broker and result
store. Without Redis they have nothing to do: they wait, idle, on Celery's in-memory broker (so
they do not fail and restart in a loop) until the charm restarts them with Redis, and the task
routes answer 503.
"""

import functools
import hashlib
import os
import re
import sqlite3
import sys
import time

from flask import Flask, abort, jsonify, render_template, request

app = Flask(__name__)
# FLASK_* variables set by the charm (FLASK_SECRET_KEY, FLASK_BASE_URL, ...) become config keys.
app.config.from_prefixed_env()

MAX_SLOW_SECONDS = 30.0

# -- where the items live: the related database, else a local SQLite file ---------------------
# The flask-k8s charm passes a related database as `<DB>_DB_CONNECT_STRING` (and its parts);
# PostgreSQL wins over MySQL when both are related. (One file: the flask-framework extension
# ships app.py and migrate.py, not other modules beside them.)

SEED = ["apple", "banana", "cherry"]


def backend() -> str:
    """Which database the environment points at: postgresql, mysql or sqlite."""
    if os.environ.get("POSTGRESQL_DB_CONNECT_STRING"):
        return "postgresql"
    if os.environ.get("MYSQL_DB_HOSTNAME"):
        return "mysql"
    return "sqlite"


def sqlite_path() -> str:
    """Where the SQLite fallback lives."""
    return os.environ.get("SAMPLE_DATABASE", "/tmp/flask-sample.sqlite3")


def connect(read_only: bool = False):
    """A DB-API connection to the current backend."""
    kind = backend()
    if kind == "postgresql":
        import psycopg2

        return psycopg2.connect(os.environ["POSTGRESQL_DB_CONNECT_STRING"], connect_timeout=5)
    if kind == "mysql":
        import pymysql

        return pymysql.connect(
            host=os.environ["MYSQL_DB_HOSTNAME"],
            port=int(os.environ.get("MYSQL_DB_PORT", "3306")),
            user=os.environ.get("MYSQL_DB_USERNAME"),
            password=os.environ.get("MYSQL_DB_PASSWORD", ""),
            database=os.environ.get("MYSQL_DB_NAME"),
            connect_timeout=5,
        )
    if read_only:
        return sqlite3.connect(f"file:{sqlite_path()}?mode=ro", uri=True)
    return sqlite3.connect(sqlite_path())


def errors() -> tuple[type[Exception], ...]:
    """The exceptions the current backend's driver raises."""
    kind = backend()
    if kind == "postgresql":
        import psycopg2

        return (psycopg2.Error,)
    if kind == "mysql":
        import pymysql

        return (pymysql.Error,)
    return (sqlite3.Error,)


def placeholder() -> str:
    """The driver's parameter marker."""
    return "?" if backend() == "sqlite" else "%s"


SCHEMA = {
    "postgresql": [
        "CREATE TABLE IF NOT EXISTS items (id SERIAL PRIMARY KEY, name TEXT UNIQUE NOT NULL)",
        "INSERT INTO items (name) VALUES (%s) ON CONFLICT (name) DO NOTHING",
    ],
    "mysql": [
        "CREATE TABLE IF NOT EXISTS items "
        "(id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(200) UNIQUE NOT NULL)",
        "INSERT IGNORE INTO items (name) VALUES (%s)",
    ],
    "sqlite": [
        "CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL)",
        "INSERT OR IGNORE INTO items (name) VALUES (?)",
    ],
}


def migrate() -> str:
    """Create the items table if needed and add any missing seed rows; say where."""
    kind = backend()
    create, insert = SCHEMA[kind]
    connection = connect()
    try:
        cursor = connection.cursor()
        cursor.execute(create)
        cursor.executemany(insert, [(name,) for name in SEED])
        connection.commit()
    finally:
        connection.close()
    return kind if kind != "sqlite" else sqlite_path()


@app.route("/")
def index():
    """Render the index page."""
    return render_template("index.html", base_url=app.config.get("BASE_URL", ""))


@app.route("/slow")
def slow():
    """Hold the worker for a while: a sync worker serves nothing else meanwhile."""
    seconds = min(max(request.args.get("seconds", 1.0, type=float), 0.0), MAX_SLOW_SECONDS)
    time.sleep(seconds)
    return jsonify(slept=seconds, pid=os.getpid())


@app.route("/items", methods=["GET", "POST"])
def items():
    """List (or add to) the rows of the table created by migrate.py; 503 until it has run."""
    name = (request.get_json(silent=True) or {}).get("name") if request.method == "POST" else None
    if request.method == "POST" and (not isinstance(name, str) or not 0 < len(name) <= 200):
        return jsonify(error="POST a JSON object with a `name` of 1-200 characters"), 400
    try:
        connection = connect(read_only=name is None)
        try:
            cursor = connection.cursor()
            if name is not None:
                cursor.execute(f"INSERT INTO items (name) VALUES ({placeholder()})", (name,))
                connection.commit()
            cursor.execute("SELECT id, name FROM items ORDER BY id")
            rows = cursor.fetchall()
        finally:
            connection.close()
    except errors() as error:
        return jsonify(error=f"database not migrated: {error}", backend=backend()), 503
    listed = [{"id": row[0], "name": row[1]} for row in rows]
    return jsonify(items=listed, backend=backend()), 201 if name is not None else 200


@app.route("/visits")
def visits():
    """Count this visit in the related Redis; 503 when none is related."""
    url = os.environ.get("REDIS_DB_CONNECT_STRING")
    if not url:
        return jsonify(error="no Redis is related"), 503
    import redis

    try:
        count = redis.Redis.from_url(url, socket_timeout=5).incr("sample:visits")
    except redis.RedisError as error:
        return jsonify(error=f"redis: {error}"), 503
    return jsonify(visits=count)


@app.route("/rabbitmq")
def rabbitmq():
    """Publish a message to the related RabbitMQ and get it back; 503 when none is related."""
    url = os.environ.get("RABBITMQ_CONNECT_STRING")
    if not url:
        return jsonify(error="no RabbitMQ is related"), 503
    import pika

    sent = os.urandom(8).hex()
    try:
        parameters = pika.URLParameters(f"{url}?connection_attempts=1&socket_timeout=5")
        connection = pika.BlockingConnection(parameters)
        try:
            channel = connection.channel()
            channel.queue_declare(queue="sample")
            channel.basic_publish(exchange="", routing_key="sample", body=sent.encode())
            received = None
            for _ in range(50):  # the broker routes the message asynchronously
                _method, _properties, body = channel.basic_get(queue="sample", auto_ack=True)
                if body is not None:
                    received = body.decode()
                    break
                connection.sleep(0.1)
        finally:
            connection.close()
    except pika.exceptions.AMQPError as error:
        return jsonify(error=f"rabbitmq: {error!r}"), 503
    return jsonify(sent=sent, received=received, vhost=os.environ.get("RABBITMQ_VHOST"))


@app.route("/status/<int:code>")
def status(code: int):
    """Answer with the HTTP status asked for."""
    if not 200 <= code <= 599:
        abort(400)
    return jsonify(status=code), code


@app.route("/config/<name>")
def config_value(name: str):
    """One of the app's settings, e.g. a charm option given as FLASK_<NAME>; never a secret."""
    if any(word in name.upper() for word in ("SECRET", "PASSWORD", "TOKEN", "KEY")):
        abort(403)
    if name not in app.config:
        abort(404)
    value = app.config[name]
    shown = value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
    return jsonify({name: shown})


@app.route("/secret-key-id")
def secret_key_id():
    """A short fingerprint of the secret key, never the key itself."""
    key = app.config.get("SECRET_KEY") or ""
    return jsonify(sha256=hashlib.sha256(str(key).encode()).hexdigest()[:16] if key else None)


# -- object storage and mail: the related S3 bucket and SMTP relay (S3_*, SMTP_* variables) ----

OBJECT_NAME = re.compile(r"^[A-Za-z0-9._-]{1,200}$")


def s3_client():
    """A boto3 client for the related bucket, or None when no S3 is related."""
    if not os.environ.get("S3_BUCKET"):
        return None
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=os.environ.get("S3_ENDPOINT") or None,
        region_name=os.environ.get("S3_REGION") or None,
        aws_access_key_id=os.environ["S3_ACCESS_KEY"],
        aws_secret_access_key=os.environ["S3_SECRET_KEY"],
        config=Config(s3={"addressing_style": os.environ.get("S3_ADDRESSING_STYLE", "auto")}),
    )


@app.route("/objects/<name>", methods=["GET", "PUT"])
def objects(name: str):
    """Store (PUT) or read (GET) an object in the related bucket; 503 when none is related."""
    client = s3_client()
    if client is None:
        return jsonify(error="no S3 is related"), 503
    if not OBJECT_NAME.match(name):
        abort(400)
    import botocore.exceptions

    bucket, key = os.environ["S3_BUCKET"], os.environ.get("S3_PATH", "") + name
    try:
        if request.method == "PUT":
            client.put_object(Bucket=bucket, Key=key, Body=request.get_data())
            return jsonify(stored=key), 201
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        return body, 200, {"Content-Type": "application/octet-stream"}
    except client.exceptions.NoSuchKey:
        return jsonify(error=f"no object {name}"), 404
    except botocore.exceptions.BotoCoreError as error:
        return jsonify(error=f"s3: {error}"), 503
    except botocore.exceptions.ClientError as error:
        return jsonify(error=f"s3: {error.response['Error'].get('Code')}"), 503


@app.route("/mail", methods=["POST"])
def mail():
    """Send a mail through the related SMTP relay; 503 when none is related."""
    host = os.environ.get("SMTP_HOST")
    if not host:
        return jsonify(error="no SMTP relay is related"), 503
    import smtplib
    import ssl
    from email.message import EmailMessage

    fields = request.get_json(silent=True) or {}
    message = EmailMessage()
    message["From"] = f"sample@{os.environ.get('SMTP_DOMAIN') or 'localhost'}"
    message["To"] = str(fields.get("to", "someone@example.com"))
    message["Subject"] = str(fields.get("subject", "hello"))
    message.set_content(str(fields.get("body", "")))
    security = os.environ.get("SMTP_TRANSPORT_SECURITY", "none")
    context = ssl.create_default_context()
    if os.environ.get("SMTP_SKIP_SSL_VERIFY") == "True":
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    port = int(os.environ.get("SMTP_PORT", "25"))
    try:
        if security == "tls":
            relay = smtplib.SMTP_SSL(host, port, timeout=10, context=context)
        else:
            relay = smtplib.SMTP(host, port, timeout=10)
        with relay:
            if security == "starttls":
                relay.starttls(context=context)
            if os.environ.get("SMTP_USER") and os.environ.get("SMTP_PASSWORD"):
                relay.login(os.environ["SMTP_USER"], os.environ["SMTP_PASSWORD"])
            relay.send_message(message)
    except (OSError, smtplib.SMTPException) as error:
        return jsonify(error=f"smtp: {type(error).__name__}"), 503
    return jsonify(sent=message["To"]), 202


# -- background tasks: Celery on the related Redis ---------------------------------------------

TICK_SECONDS = 2.0
TICKS_KEY = "sample:ticks"
MAX_TEXT = 200
TASK_ID = re.compile(r"[0-9A-Za-z-]{1,64}")


def redis_url() -> str | None:
    """The related Redis (the charm's `REDIS_DB_CONNECT_STRING`), if any."""
    return os.environ.get("REDIS_DB_CONNECT_STRING") or None


def shout(text: str) -> dict:
    """The task the app enqueues: work the worker does, and says it did."""
    return {"shouted": text.upper() + "!", "worker_pid": os.getpid()}


def tick() -> int:
    """The beat schedule's task: count one more tick in Redis."""
    import redis

    return int(redis.Redis.from_url(redis_url() or "", socket_timeout=5).incr(TICKS_KEY))


def say_why_idle(**_: object) -> None:
    """Tell the operator, once per start, why a worker or beat does nothing."""
    if redis_url() is None:
        print(
            "no Redis is related (REDIS_DB_CONNECT_STRING is unset): idle until it is",
            file=sys.stderr,
            flush=True,
        )


@functools.cache
def make_celery():
    """Celery on the related Redis; without one, an idle in-memory broker and no schedule.

    Made on first use, not at import: Gunicorn's web workers then boot without Celery (each
    graceful reload starts them all again), and import it only for a task route.
    """
    from celery import Celery, signals

    url = redis_url()
    celery = Celery("flask-sample", broker=url or "memory://", backend=url)
    celery.conf.update(
        broker_connection_retry_on_startup=True,
        result_expires=3600,
        beat_schedule={"tick": {"task": "sample.tick", "schedule": TICK_SECONDS}} if url else {},
    )
    celery.task(name="sample.shout")(shout)
    celery.task(name="sample.tick")(tick)
    signals.celeryd_init.connect(say_why_idle, weak=False)
    signals.beat_init.connect(say_why_idle, weak=False)
    return celery


def __getattr__(name: str):
    """`app:celery_app`, what the rock's `celery -A` services load (PEP 562: made when asked)."""
    if name == "celery_app":
        return make_celery()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def no_redis():
    """The answer of the task routes while no Redis is related."""
    return jsonify(error="no Redis is related: juju integrate <app> redis-k8s"), 503


@app.route("/tasks", methods=["POST"])
def enqueue():
    """Enqueue `shout` for the Celery worker; answer its id."""
    if redis_url() is None:
        return no_redis()
    text = (request.get_json(silent=True) or {}).get("text")
    if not isinstance(text, str) or not 0 < len(text) <= MAX_TEXT:
        return jsonify(error=f"POST a JSON object with a `text` of 1-{MAX_TEXT} characters"), 400
    try:
        result = make_celery().tasks["sample.shout"].apply_async((text,), retry=False)
    except Exception as error:  # noqa: BLE001 - kombu raises several kinds when Redis is down
        return jsonify(error=f"cannot enqueue: {error}"), 503
    return jsonify(id=result.id), 202


@app.route("/tasks/<task_id>")
def task_result(task_id: str):
    """A task's state (PENDING until a worker has run it) and its result."""
    if redis_url() is None:
        return no_redis()
    if not TASK_ID.fullmatch(task_id):
        return jsonify(error="not a task id"), 400
    import redis

    result = make_celery().AsyncResult(task_id)
    try:
        state = result.state
        value = result.result if state == "SUCCESS" else None
    except redis.RedisError as error:
        return jsonify(error=f"redis: {error}"), 503
    return jsonify(id=task_id, state=state, result=value)


@app.route("/ticks")
def ticks():
    """How many times the beat schedule's `tick` has run (on whichever unit's worker)."""
    url = redis_url()
    if url is None:
        return no_redis()
    import redis

    try:
        count = redis.Redis.from_url(url, socket_timeout=5).get(TICKS_KEY)
    except redis.RedisError as error:
        return jsonify(error=f"redis: {error}"), 503
    return jsonify(ticks=int(count or 0), every_seconds=TICK_SECONDS)
