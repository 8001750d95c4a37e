"""The sample project's pack-ready rockcraft.yaml is current and self-contained."""

from pathlib import Path

import yaml

from flask_rock.expand import CONFIG_FILES_DIR, check_project, expand_project

SAMPLE = Path(__file__).parents[3] / "rock" / "sample"
VENDORED = "flask-framework-config"
REGENERATE = (
    "regenerate it: PYTHONPATH=rock python3 -m flask_rock expand rock/sample "
    f"--file rockcraft.short.yaml --vendor-config {VENDORED} -o rock/sample/rockcraft.yaml"
)


def test_sample_short_form_passes_check():
    assert check_project(SAMPLE, "rockcraft.short.yaml") == []


def test_sample_rockcraft_yaml_is_generated_from_short_form():
    committed = yaml.safe_load((SAMPLE / "rockcraft.yaml").read_text())
    expected = expand_project(SAMPLE, "rockcraft.short.yaml", VENDORED)
    assert committed == expected, REGENERATE


def test_sample_vendored_config_files_match_shipped_ones():
    shipped = {path.name: path.read_bytes() for path in CONFIG_FILES_DIR.iterdir()}
    vendored = {path.name: path.read_bytes() for path in (SAMPLE / VENDORED).iterdir()}
    assert vendored == shipped, REGENERATE


def test_sample_part_sources_lie_inside_the_project():
    document = yaml.safe_load((SAMPLE / "rockcraft.yaml").read_text())
    local_sources = [
        part["source"]
        for part in document["parts"].values()
        if "source" in part and "://" not in part["source"]
    ]
    assert local_sources, "the sample's parts name no local source"
    for source in local_sources:
        resolved = (SAMPLE / source).resolve()
        assert resolved.is_relative_to(SAMPLE.resolve()) and resolved.is_dir(), source


def test_sample_default_worker_is_gevent():
    document = yaml.safe_load((SAMPLE / "rockcraft.yaml").read_text())
    assert document["services"]["flask"]["command"].endswith("'app:app' -k [ gevent ]")
