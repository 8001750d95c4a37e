"""A small Flask app used to exercise the flask-k8s rock and charm.

Routes:
    /                 index page (template + static stylesheet)
    /slow?seconds=N   sleeps N seconds (at most 30), to tell sync from async workers
    /items            reads the table that migrate.py creates (POST {"name": …} adds one), in
                      the related PostgreSQL or MySQL database, else in SQLite
    /visits           counts visits in the related Redis
    /status/<code>    answers with the given HTTP status, for metrics and alert tests
    /secret-key-id    a fingerprint of the secret key, so tests can see it rotate
"""

import hashlib
import os
import time

import store
from flask import Flask, abort, jsonify, render_template, request

app = Flask(__name__)
# FLASK_* variables set by the charm (FLASK_SECRET_KEY, FLASK_BASE_URL, ...) become config keys.
app.config.from_prefixed_env()

MAX_SLOW_SECONDS = 30.0


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
        connection = store.connect(read_only=name is None)
        try:
            cursor = connection.cursor()
            if name is not None:
                cursor.execute(f"INSERT INTO items (name) VALUES ({store.placeholder()})", (name,))
                connection.commit()
            cursor.execute("SELECT id, name FROM items ORDER BY id")
            rows = cursor.fetchall()
        finally:
            connection.close()
    except store.errors() as error:
        return jsonify(error=f"database not migrated: {error}"), 503
    listed = [{"id": row[0], "name": row[1]} for row in rows]
    return jsonify(items=listed, backend=store.backend()), 201 if name is not None else 200


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


@app.route("/status/<int:code>")
def status(code: int):
    """Answer with the HTTP status asked for."""
    if not 200 <= code <= 599:
        abort(400)
    return jsonify(status=code), code


@app.route("/secret-key-id")
def secret_key_id():
    """A short fingerprint of the secret key, never the key itself."""
    key = app.config.get("SECRET_KEY") or ""
    return jsonify(sha256=hashlib.sha256(str(key).encode()).hexdigest()[:16] if key else None)
