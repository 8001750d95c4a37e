"""The hook process's entry point, `charm.main()`, run as Juju runs it: in a fresh interpreter."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

ROOT = pathlib.Path(__file__).resolve().parents[3]

# Runs `charm.main()` with `ops.main` replaced by HOOK (Python source run as the hook's event).
CHILD = textwrap.dedent(
    """
    import atexit, pathlib, sys
    import ops
    import charm

    def hook(charm_class):
        exec(sys.argv[1])

    ops.main = hook
    charm.main()
    """
)


def run_main(hook: str, tmp_path: pathlib.Path, **extra_env: str) -> subprocess.CompletedProcess:
    env = {
        **{k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"},
        "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in ("src", "lib", ".")),
        **extra_env,
    }
    return subprocess.run(
        [sys.executable, "-c", CHILD, textwrap.dedent(hook)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_main_keeps_buffered_output_and_skips_teardown(tmp_path):
    hook = """
        atexit.register(lambda: pathlib.Path("teardown-ran").touch())
        sys.stdout.write("said during the hook")  # buffered: stdout is a pipe
        sys.stderr.write("warned during the hook")
    """
    result = run_main(hook, tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout == "said during the hook"
    assert result.stderr == "warned during the hook"
    assert not (tmp_path / "teardown-ran").exists()


def test_a_failing_hook_still_fails_with_its_traceback(tmp_path):
    result = run_main("raise RuntimeError('the charm broke')", tmp_path)

    assert result.returncode == 1
    assert "RuntimeError: the charm broke" in result.stderr


def test_config_validation_in_a_hook_does_not_search_for_pydantic_plugins(tmp_path):
    # Every installed distribution's metadata would be read: make that search fail loudly.
    hook = """
        import importlib.metadata

        def no_search(*args, **kwargs):
            raise AssertionError("searched for pydantic plugins")

        importlib.metadata.entry_points = no_search
        import config
        print(config.load({"webserver-workers": 3}).webserver_workers, end="")
    """
    result = run_main(hook, tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout == "3"


def test_the_plugin_check_can_fail(tmp_path):
    # Without main()'s setting the same hook does search: the check above can see it.
    hook = """
        import importlib.metadata, os

        def no_search(*args, **kwargs):
            raise AssertionError("searched for pydantic plugins")

        importlib.metadata.entry_points = no_search
        del os.environ["PYDANTIC_DISABLE_PLUGINS"]
        import config
    """
    result = run_main(hook, tmp_path)

    assert result.returncode == 1
    assert "searched for pydantic plugins" in result.stderr
