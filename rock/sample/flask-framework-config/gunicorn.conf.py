"""Gunicorn settings baked into every flask-framework rock as /flask/gunicorn.conf.py."""

bind = ["0.0.0.0:8000"]
chdir = "/flask/app"
statsd_host = "localhost:9125"
