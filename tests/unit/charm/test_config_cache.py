"""The validated-config cache: the same values as validation, nothing secret stored."""

from __future__ import annotations

import dataclasses
import json
import pathlib

import pytest
from ops import testing

import config
import config_cache
from tests.unit.charm.charm_state import app_env, state

RAW_CONFIGS = [
    {},
    {"flask-preferred-url-scheme": "http", "flask-env": "", "webserver-workers": 3},
    {"worker-type": "gthread", "webserver-threads": 4, "flask-debug": True},
    {"flask-secret-key": "s3cret", "flask-application-root": "/shop", "migration-timeout": 60},
]


@pytest.mark.parametrize("raw", RAW_CONFIGS)
def test_cached_values_are_the_validated_ones(raw):
    model = config.load(raw)
    entry = json.loads(json.dumps(config_cache.to_entry(model, raw, "id")))  # as stored

    cached = config_cache.from_entry(entry, raw, "id")

    assert cached is not None
    for name in type(model).model_fields:
        assert getattr(cached, name) == getattr(model, name), name
    assert cached.gunicorn_settings() == model.gunicorn_settings()


def test_another_fingerprint_misses():
    raw = {"webserver-workers": 3}
    entry = config_cache.to_entry(config.load(raw), raw, "old")

    assert config_cache.from_entry(entry, raw, "new") is None


def test_new_validation_rules_change_the_fingerprint(tmp_path, monkeypatch):
    raw = {"webserver-workers": 3}
    before = config_cache.fingerprint(raw)
    rules = tmp_path / "config.py"
    rules.write_text(config_cache.CONFIG_SOURCE.read_text() + "\n# a new rule\n")
    monkeypatch.setattr(config_cache, "CONFIG_SOURCE", rules)

    assert config_cache.fingerprint(raw) != before


def test_no_secret_key_in_stored_state(ctx, charm_dir: pathlib.Path):
    out = ctx.run(ctx.on.config_changed(), state(charm_dir, config={"flask-secret-key": "s3cret"}))
    again = ctx.run(ctx.on.config_changed(), out)

    assert app_env(again)["FLASK_SECRET_KEY"] == "s3cret"  # served from the cache, by reference
    assert "s3cret" not in repr([s.content for s in again.stored_states])


def test_changed_config_is_validated_again(ctx, charm_dir: pathlib.Path):
    out = ctx.run(ctx.on.config_changed(), state(charm_dir, config={"webserver-workers": 2}))

    invalid = ctx.run(
        ctx.on.config_changed(), dataclasses.replace(out, config={"webserver-workers": 0})
    )

    assert invalid.unit_status == testing.BlockedStatus(
        "invalid config: webserver-workers: must be at least 1"
    )
