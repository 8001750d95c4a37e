"""The expanded document: whole documents per base, install-app modes, merging with the user."""

from pathlib import Path
from typing import Any

import pytest

from flask_rock.expand import CONFIG_FILES_DIR, check_project, expand_project
from tests.unit.rock.flask_rock_helpers import FLASK_APP, ProjectFactory, short_form

DAEMON = 584792
INSTALL_APP = "flask-framework/install-app"
STATSD_COMMAND = (
    "/bin/statsd_exporter --statsd.mapping-config=/statsd-mapping.conf "
    "--statsd.listen-udp=localhost:9125 --statsd.listen-tcp=localhost:9125"
)


def common_parts(config_source: str) -> dict[str, Any]:
    """Return the parts identical on every base."""
    return {
        "flask-framework/config-files": {
            "plugin": "dump",
            "source": config_source,
            "organize": {"gunicorn.conf.py": "flask/gunicorn.conf.py"},
            "permissions": [{"path": "flask/gunicorn.conf.py", "owner": DAEMON, "group": DAEMON}],
        },
        "flask-framework/statsd-exporter": {
            "build-snaps": ["go"],
            "source-tag": "v0.26.0",
            "plugin": "go",
            "source": "https://github.com/prometheus/statsd_exporter.git",
        },
        "flask-framework/logging": {
            "plugin": "nil",
            "override-build": (
                "craftctl default\n"
                "mkdir -p $CRAFT_PART_INSTALL/opt/promtail\n"
                "mkdir -p $CRAFT_PART_INSTALL/etc/promtail\n"
                "mkdir -p $CRAFT_PART_INSTALL/var/log/flask"
            ),
            "permissions": [
                {"path": "opt/promtail", "owner": DAEMON, "group": DAEMON},
                {"path": "etc/promtail", "owner": DAEMON, "group": DAEMON},
                {"path": "var/log/flask", "owner": DAEMON, "group": DAEMON},
            ],
        },
    }


def services(command: str) -> dict[str, Any]:
    return {
        "flask": {
            "override": "replace",
            "startup": "enabled",
            "after": ["statsd-exporter"],
            "user": "_daemon_",
            "command": command,
        },
        "statsd-exporter": {
            "override": "merge",
            "command": STATSD_COMMAND,
            "summary": "statsd exporter service",
            "startup": "enabled",
            "user": "_daemon_",
        },
    }


def test_ubuntu_22_04_project_expands_completely(make_project: ProjectFactory):
    files = {
        "app.py": FLASK_APP,
        "requirements.txt": "Flask==3.0\ngevent\n",
        "migrate.py": "print('migrating')\n",
        "static/style.css": "",
        "templates/index.html": "",
        "README.md": "not shipped by default",
        "tests/test_app.py": "",
    }
    root = make_project(files, short_form(base="ubuntu@22.04"))
    expanded = expand_project(root, config_files_source="/cfg")
    assert expanded == {
        "name": "my-app",
        "base": "ubuntu@22.04",
        "version": "0.1",
        "summary": "A Flask app",
        "description": "A Flask app.",
        "platforms": {"amd64": None},
        "run-user": "_daemon_",
        "services": services(
            "/bin/python3 -m gunicorn -c /flask/gunicorn.conf.py 'app:app' -k [ gevent ]"
        ),
        "parts": {
            "flask-framework/dependencies": {
                "plugin": "python",
                "stage-packages": ["python3-venv"],
                "source": ".",
                "python-packages": ["gunicorn~=23.0"],
                "python-requirements": ["requirements.txt"],
                "build-environment": [],
                "stage": ["-etc/ssl/certs/ca-certificates.crt"],
            },
            INSTALL_APP: {
                "plugin": "dump",
                "source": ".",
                "organize": {
                    "app.py": "flask/app/app.py",
                    "migrate.py": "flask/app/migrate.py",
                    "static": "flask/app/static",
                    "templates": "flask/app/templates",
                },
                "stage": [
                    "flask/app/app.py",
                    "flask/app/migrate.py",
                    "flask/app/static",
                    "flask/app/templates",
                ],
                "prime": [
                    "flask/app/app.py",
                    "flask/app/migrate.py",
                    "flask/app/static",
                    "flask/app/templates",
                ],
                "permissions": [{"owner": DAEMON, "group": DAEMON}],
            },
            **common_parts("/cfg"),
            "flask-framework/runtime": {
                "plugin": "nil",
                "stage-packages": ["ca-certificates_data"],
            },
        },
    }


def test_ubuntu_24_04_project_with_user_parts_and_services(make_project: ProjectFactory):
    files = {
        "pyproject.toml": '[project]\nname = "web"\ndependencies = ["flask>=3"]\n',
        "src/__init__.py": "def create_app():\n    return None\n",
        "migrate.sh": "#!/bin/sh\n",
    }
    document = short_form(
        base="ubuntu@24.04",
        parts={
            "flask-framework/dependencies": {"stage-packages": ["libpq-dev", "python3-venv"]},
            "extra": {"plugin": "nil"},
        },
        services={"worker": {"command": "/bin/true", "override": "replace"}},
    )
    expanded = expand_project(make_project(files, document), config_files_source="/cfg")
    assert expanded == {
        "name": "my-app",
        "base": "ubuntu@24.04",
        "version": "0.1",
        "summary": "A Flask app",
        "description": "A Flask app.",
        "platforms": {"amd64": None},
        "parts": {
            "flask-framework/dependencies": {
                "stage-packages": ["python3-venv", "libpq-dev"],
                "plugin": "python",
                "source": ".",
                "python-packages": ["gunicorn~=23.0"],
                "python-requirements": [],
                "build-environment": [],
                "stage": ["-etc/ssl/certs/ca-certificates.crt"],
            },
            "extra": {"plugin": "nil"},
            INSTALL_APP: {
                "plugin": "dump",
                "source": ".",
                "organize": {"src": "flask/app/src", "migrate.sh": "flask/app/migrate.sh"},
                "stage": ["flask/app/src", "flask/app/migrate.sh"],
                "prime": ["flask/app/src", "flask/app/migrate.sh"],
                "permissions": [{"owner": DAEMON, "group": DAEMON}],
            },
            **common_parts("/cfg"),
            "flask-framework/runtime": {
                "plugin": "nil",
                "stage-packages": ["ca-certificates_data"],
            },
        },
        "services": {
            "worker": {"command": "/bin/true", "override": "replace"},
            **services(
                "/bin/python3 -m gunicorn -c /flask/gunicorn.conf.py 'src:create_app()' "
                "-k [ sync ]"
            ),
        },
        "run-user": "_daemon_",
    }


def test_bare_project_expands_completely(tmp_path: Path, make_project: ProjectFactory):
    files = {
        "requirements.txt": "flask\n",
        "my_app/main.py": "from .web import application\n",
        ".env": "X=1\n",
        "my_app/web.py": "",
    }
    document = short_form(
        base="bare",
        **{"build-base": "ubuntu@24.04"},
        parts={INSTALL_APP: {"prime": ["-flask/app/.env"]}},
    )
    root = make_project(files, document)
    expanded = expand_project(root, config_files_source="/cfg")
    assert expanded == {
        "name": "my-app",
        "base": "bare",
        "build-base": "ubuntu@24.04",
        "version": "0.1",
        "summary": "A Flask app",
        "description": "A Flask app.",
        "platforms": {"amd64": None},
        "parts": {
            INSTALL_APP: {
                "prime": ["-flask/app/.env"],
                "plugin": "dump",
                "source": ".",
                "organize": {
                    ".env": "flask/app/.env",
                    "my_app": "flask/app/my_app",
                    "requirements.txt": "flask/app/requirements.txt",
                    "rockcraft.yaml": "flask/app/rockcraft.yaml",
                },
                "stage": [
                    "flask/app/.env",
                    "flask/app/my_app",
                    "flask/app/requirements.txt",
                    "flask/app/rockcraft.yaml",
                ],
                "permissions": [{"owner": DAEMON, "group": DAEMON}],
            },
            "flask-framework/dependencies": {
                "plugin": "python",
                "stage-packages": ["python3.12-venv_ensurepip"],
                "source": ".",
                "python-packages": ["gunicorn~=23.0"],
                "python-requirements": ["requirements.txt"],
                "build-environment": [{"PARTS_PYTHON_INTERPRETER": "python3.12"}],
            },
            **common_parts("/cfg"),
            "flask-framework/runtime": {
                "plugin": "nil",
                "override-build": (
                    "mkdir -m 777 ${CRAFT_PART_INSTALL}/tmp\n"
                    "ln -sf /usr/bin/bash ${CRAFT_PART_INSTALL}/usr/bin/sh"
                ),
                "stage-packages": ["bash_bins", "coreutils_bins", "ca-certificates_data"],
            },
            "flask-framework/runtime-libs": {"plugin": "nil", "stage-packages": ["libstdc++6"]},
        },
        "run-user": "_daemon_",
        "services": services(
            "/bin/python3 -m gunicorn -c /flask/gunicorn.conf.py 'my_app.main:application' "
            "-k [ sync ]"
        ),
    }


@pytest.mark.parametrize(
    ("build_base", "python"),
    [
        ("ubuntu@22.04", "3.10"),
        ("ubuntu:22.04", "3.10"),
        ("ubuntu@24.04", "3.12"),
    ],
)
def test_bare_python_version_follows_build_base(
    make_project: ProjectFactory, build_base: str, python: str
):
    root = make_project(document=short_form(base="bare", **{"build-base": build_base}))
    part = expand_project(root)["parts"]["flask-framework/dependencies"]
    assert part["stage-packages"] == [f"python{python}-venv_ensurepip"]
    assert part["build-environment"] == [{"PARTS_PYTHON_INTERPRETER": f"python{python}"}]
    assert "stage" not in part


@pytest.mark.parametrize("base", ["ubuntu@22.04", "ubuntu:22.04", "ubuntu@24.04"])
def test_ubuntu_bases_share_one_layout(make_project: ProjectFactory, base: str):
    parts = expand_project(make_project(document=short_form(base=base)))["parts"]
    assert parts["flask-framework/dependencies"]["stage-packages"] == ["python3-venv"]
    assert parts["flask-framework/dependencies"]["stage"] == ["-etc/ssl/certs/ca-certificates.crt"]
    assert "flask-framework/runtime-libs" not in parts
    assert "override-build" not in parts["flask-framework/runtime"]


def test_ubuntu_26_04_expands_like_24_04_with_the_experimental_switch(
    make_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("ROCKCRAFT_ENABLE_EXPERIMENTAL_EXTENSIONS", "1")
    noble = expand_project(make_project(document=short_form(base="ubuntu@24.04")))
    resolute = expand_project(make_project(document=short_form(base="ubuntu@26.04")))
    assert resolute.pop("base") == "ubuntu@26.04"
    noble.pop("base")
    assert resolute == noble


# Install-app part


def install_app(make_project: ProjectFactory, files: dict, prime: list | None = None) -> dict:
    overrides = {} if prime is None else {"parts": {INSTALL_APP: {"prime": prime}}}
    root = make_project({"requirements.txt": "flask", **files}, short_form(**overrides))
    return expand_project(root)["parts"][INSTALL_APP]


ALL_DEFAULTS = {
    "app/__init__.py": "app = 1",
    "app.py": "app = 1",
    "main.py": "",
    "src/x.py": "",
    "migrate/x.sql": "",
    "migrate.sh": "",
    "migrate.py": "",
    "static/a.css": "",
    "templates/a.html": "",
}


def test_default_prime_order_covers_every_default(make_project: ProjectFactory):
    part = install_app(make_project, {"zzz.py": "", **ALL_DEFAULTS})
    names = ["app", "app.py", "main.py", "src", "migrate", "migrate.sh", "migrate.py"]
    names += ["static", "templates"]
    assert part["prime"] == [f"flask/app/{n}" for n in names]
    assert part["stage"] == part["prime"]
    assert part["organize"] == {n: f"flask/app/{n}" for n in names}


def test_default_prime_lists_only_existing_files(make_project: ProjectFactory):
    part = install_app(make_project, {"main.py": "app = 1", "templates": None})
    assert part["prime"] == ["flask/app/main.py", "flask/app/templates"]


def test_include_mode_organizes_from_the_user_list(make_project: ProjectFactory):
    prime = [
        "flask/app/app.py",
        "flask/app/.env",
        "flask/app/webapp/",
        "flask/app/requirements.txt",
    ]
    part = install_app(make_project, {"app.py": FLASK_APP}, prime)
    assert part["prime"] == prime
    assert part["organize"] == {
        "app.py": "flask/app/app.py",
        ".env": "flask/app/.env",
        "webapp": "flask/app/webapp/",
        "requirements.txt": "flask/app/requirements.txt",
    }
    assert part["stage"] == prime


def test_include_mode_relpath_of_literal_prefix_entries(make_project: ProjectFactory):
    prime = ["flask/application.py", "flask/app", "flask/app/a/../b"]
    part = install_app(make_project, {"app.py": FLASK_APP}, prime)
    assert part["organize"] == {
        "../application.py": "flask/application.py",
        ".": "flask/app",
        "b": "flask/app/a/../b",
    }


def test_include_mode_duplicates_collapse(make_project: ProjectFactory):
    prime = ["flask/app/app.py", "flask/app/app.py"]
    part = install_app(make_project, {"app.py": FLASK_APP}, prime)
    assert part["organize"] == {"app.py": "flask/app/app.py"}
    assert part["stage"] == ["flask/app/app.py"]
    assert part["prime"] == ["flask/app/app.py"]


def test_mode_is_decided_by_the_first_entry(make_project: ProjectFactory):
    part = install_app(make_project, {"app.py": FLASK_APP}, ["flask/app/app.py", "-flask/app/x"])
    assert part["organize"] == {"app.py": "flask/app/app.py", "../../-flask/app/x": "-flask/app/x"}


EXCLUDE_FILES = {
    "app.py": FLASK_APP,
    "B.txt": "",
    "a.txt": "",
    "_private": "",
    ".hidden": "",
    ".github/ci.yaml": "",
    "node_modules/x.js": "",
    ".git/HEAD": "",
    ".yarn/cache": "",
    "old.rock": "",
    ".rock": "",
    "app.rock.bak": "",
    "Ä.txt": "",
    "~tilde": "",
    "node_modules2": "",
}
EXCLUDE_LISTING = [
    ".github",
    ".hidden",
    "B.txt",
    "_private",
    "a.txt",
    "app.py",
    "app.rock.bak",
    "node_modules2",
    "requirements.txt",
    "rockcraft.yaml",
    "~tilde",
    "Ä.txt",
]


@pytest.mark.parametrize("prime", [["-flask/app/a.txt"], ["- flask/app/B.txt", "flask/app/x"]])
def test_exclude_mode_lists_every_top_level_entry(make_project: ProjectFactory, prime: list):
    part = install_app(make_project, EXCLUDE_FILES, prime)
    assert list(part["organize"]) == EXCLUDE_LISTING
    assert part["organize"] == {name: f"flask/app/{name}" for name in EXCLUDE_LISTING}
    assert part["stage"] == [f"flask/app/{name}" for name in EXCLUDE_LISTING]
    assert part["prime"] == prime


def test_no_defaults_and_no_user_prime_falls_back_to_the_listing(make_project: ProjectFactory):
    part = install_app(make_project, {"my_app/__init__.py": "app = 1"}, None)
    assert part["prime"] == []
    assert part["organize"] == {
        "my_app": "flask/app/my_app",
        "requirements.txt": "flask/app/requirements.txt",
        "rockcraft.yaml": "flask/app/rockcraft.yaml",
    }
    assert part["stage"] == list(part["organize"].values())


def test_null_or_empty_user_prime_uses_defaults(make_project: ProjectFactory):
    for prime in (None, []):
        root = make_project(
            document=short_form(parts={INSTALL_APP: {"prime": prime, "stage-packages": ["x"]}})
        )
        part = expand_project(root)["parts"][INSTALL_APP]
        assert part["prime"] == ["flask/app/app.py"]
        assert part["stage-packages"] == ["x"]


# Merging with the user's document


def test_user_command_is_kept_and_no_command_added(make_project: ProjectFactory):
    command = "/bin/python3 -m gunicorn -c /flask/gunicorn.conf.py webapp:app"
    files = {"requirements.txt": "flask\ngevent"}
    root = make_project(files, short_form(services={"flask": {"command": command}}))
    assert expand_project(root)["services"]["flask"] == {
        "command": command,
        "override": "replace",
        "startup": "enabled",
        "after": ["statsd-exporter"],
        "user": "_daemon_",
    }


def test_user_service_settings_win_and_lists_merge(make_project: ProjectFactory):
    flask = {"startup": "disabled", "after": ["db", "statsd-exporter"], "environment": {"A": "b"}}
    root = make_project(document=short_form(services={"flask": flask}))
    service = expand_project(root)["services"]["flask"]
    assert service["startup"] == "disabled"
    assert service["after"] == ["statsd-exporter", "db"]
    assert service["environment"] == {"A": "b"}
    assert service["command"].startswith("/bin/python3 -m gunicorn")


@pytest.mark.parametrize("run_user", ["_daemon_", "root", None])
def test_user_run_user_is_refused(make_project: ProjectFactory, run_user):
    # Rockcraft's model refuses a second run-user beside the one the extension sets.
    root = make_project(document=short_form(**{"run-user": run_user}))
    problems = check_project(root)
    assert len(problems) == 1
    assert problems[0].startswith("run-user: the flask-framework extension sets run-user")


def test_user_permissions_are_appended_not_deduplicated(make_project: ProjectFactory):
    owner = {"owner": DAEMON, "group": DAEMON}
    root = make_project(document=short_form(parts={INSTALL_APP: {"permissions": [owner]}}))
    assert expand_project(root)["parts"][INSTALL_APP]["permissions"] == [owner, owner]


def test_user_python_requirements_follow_ours(make_project: ProjectFactory):
    parts = {"flask-framework/dependencies": {"python-requirements": ["requirements-prod.txt"]}}
    root = make_project(document=short_form(parts=parts))
    assert expand_project(root)["parts"]["flask-framework/dependencies"][
        "python-requirements"
    ] == ["requirements.txt", "requirements-prod.txt"]


def test_extensions_key_is_removed_and_other_keys_kept(make_project: ProjectFactory):
    root = make_project(document=short_form(license="Apache-2.0", checks={"c": {"override": "x"}}))
    expanded = expand_project(root)
    assert "extensions" not in expanded
    assert expanded["license"] == "Apache-2.0"
    assert expanded["checks"] == {"c": {"override": "x"}}


def test_new_root_keys_follow_user_keys_in_order(make_project: ProjectFactory):
    expanded = expand_project(make_project())
    assert list(expanded)[-3:] == ["run-user", "services", "parts"]
    assert list(expanded["parts"])[:2] == ["flask-framework/dependencies", INSTALL_APP]


def test_config_files_source_defaults_to_the_bundled_dir(make_project: ProjectFactory):
    part = expand_project(make_project())["parts"]["flask-framework/config-files"]
    assert part["source"] == str(CONFIG_FILES_DIR)
    assert CONFIG_FILES_DIR == Path(__file__).parents[3] / "rock" / "flask_rock" / "files"


def test_expand_accepts_a_string_path(make_project: ProjectFactory):
    root = make_project()
    assert expand_project(str(root))["name"] == "my-app"  # type: ignore[arg-type]


def test_expansion_does_not_touch_the_project(make_project: ProjectFactory):
    root = make_project()
    before = sorted(p.name for p in root.iterdir())
    text = (root / "rockcraft.yaml").read_text()
    expand_project(root)
    assert sorted(p.name for p in root.iterdir()) == before
    assert (root / "rockcraft.yaml").read_text() == text
