"""A small Flask app used to exercise the flask-k8s rock and charm.

Routes:
    /                 index page (template + static stylesheet)
    /slow?seconds=N   sleeps N seconds (at most 30), to tell sync from async workers
    /items            reads the table that migrate.py creates
    /status/<code>    answers with the given HTTP status, for metrics and alert tests
    /secret-key-id    a fingerprint of the secret key, so tests can see it rotate
"""

import hashlib
import os
import sqlite3
import time

from flask import Flask, abort, jsonify, render_template, request

app = Flask(__name__)
# FLASK_* variables set by the charm (FLASK_SECRET_KEY, FLASK_BASE_URL, ...) become config keys.
app.config.from_prefixed_env()

MAX_SLOW_SECONDS = 30.0


def database_path() -> str:
    """Where migrate.py keeps the sample's SQLite database."""
    return os.environ.get("SAMPLE_DATABASE", "/tmp/flask-sample.sqlite3")


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


@app.route("/items")
def items():
    """List the rows of the table created by migrate.py; 503 until it has run."""
    try:
        with sqlite3.connect(f"file:{database_path()}?mode=ro", uri=True) as connection:
            rows = connection.execute("SELECT id, name FROM items ORDER BY id").fetchall()
    except sqlite3.Error as error:
        return jsonify(error=f"database not migrated: {error}"), 503
    return jsonify(items=[{"id": row[0], "name": row[1]} for row in rows])


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
